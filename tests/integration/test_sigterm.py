#!/usr/bin/env python3
"""SIGTERM under load loses nothing the kernel accepted (issue 10, item 12),
and removes the socket only while it is still tlsrptd's own.

Each repetition starts the real tlsrptd, lets two sender processes hammer
its socket the way Postfix does (non-blocking sendto, one datagram per
result; EAGAIN, ENOENT, ECONNREFUSED and EPIPE are failures the sender
sees), sends SIGTERM while they are sending, waits for the exit, and then
tells the senders to stop. Every datagram whose sendto() succeeded must be
in the day file's datagrams counter: equal, in every repetition. Prints
the totals and how the senders' failed sends were distributed.
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import Collector, check, cleanup, done, tempdir  # noqa: E402

REPETITIONS = 25
SENDERS = 2

SENDER = r"""
import errno, os, socket, sys, signal
path, tag = sys.argv[1], sys.argv[2]
msg = ('{"dpv":"1","d":"term%s.example","pr":"v=TLSRPTv1;rua=mailto:r@term.example",'
       '"policies":[{"policy-type":9,"t":0,"f":0}]}' % tag).encode()
stop = False
def on_term(*a):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setblocking(False)
ok, errs = 0, {}
print("go", flush=True)
while not stop:
    try:
        s.sendto(msg, path)
        ok += 1
    except OSError as e:
        errs[e.errno] = errs.get(e.errno, 0) + 1
print(ok, " ".join("%s=%d" % (errno.errorcode.get(k, k), v) for k, v in sorted(errs.items())), flush=True)
"""


def datagrams(col, days):
    total = 0
    for d in days:
        st = col.stats(d)
        if st:
            total += st["counters"]["datagrams"]
    return total


def socket_still_ours(tmp):
    """SIGTERM removes the socket only if it is still the file this tlsrptd
    bound (lib/core/usock): its own goes; a socket another instance renamed
    into place meanwhile (a restart racing the old one's exit) stays."""
    import socket as so
    own = os.path.join(tmp, "own")
    os.mkdir(own)
    col = Collector(own).start()
    col.stop()
    check(not os.path.exists(col.sock), "SIGTERM: tlsrptd's own socket removed")
    other = os.path.join(tmp, "other")
    os.mkdir(other)
    col = Collector(other).start()
    s = so.socket(so.AF_UNIX, so.SOCK_DGRAM)
    s.bind(col.sock + ".next")
    os.rename(col.sock + ".next", col.sock)   # the next instance's socket
    ino = os.lstat(col.sock).st_ino
    col.stop()
    check(os.path.exists(col.sock) and os.lstat(col.sock).st_ino == ino,
          "SIGTERM: a socket renamed into place by another instance is left alone")
    s.close()


def main():
    tmp = tempdir("test_sigterm")
    socket_still_ours(tmp)
    lost_runs, total_ok, total_counted = 0, 0, 0
    errs_seen = {}
    try:
        for rep in range(REPETITIONS):
            rdir = os.path.join(tmp, f"r{rep}")
            os.mkdir(rdir)
            col = Collector(rdir).start()
            days = {time.strftime("%Y-%m-%d", time.gmtime())}
            senders = [subprocess.Popen([sys.executable, "-c", SENDER, col.sock, str(i)],
                                        stdout=subprocess.PIPE, text=True) for i in range(SENDERS)]
            for p in senders:
                p.stdout.readline()          # "go"
            time.sleep(0.15)
            col.proc.send_signal(signal.SIGTERM)
            rc = col.proc.wait(20)
            time.sleep(0.05)                 # senders go on against the vanished socket
            ok = 0
            for p in senders:
                p.send_signal(signal.SIGTERM)
                line = p.stdout.readline().split()
                p.wait(10)
                ok += int(line[0])
                for kv in line[1:]:
                    k, v = kv.split("=")
                    errs_seen[k] = errs_seen.get(k, 0) + int(v)
            col.proc = None
            days.add(time.strftime("%Y-%m-%d", time.gmtime()))
            counted = datagrams(col, days)
            check(rc == 0, f"repetition {rep}: tlsrptd exit status {rc}")
            check(counted == ok, f"repetition {rep}: sendto() succeeded {ok} times, {counted} counted "
                                 f"({ok - counted} lost)")
            if counted != ok:
                lost_runs += 1
            total_ok += ok
            total_counted += counted
            cleanup(rdir)
        print(f"{REPETITIONS} SIGTERMs under load from {SENDERS} senders: {total_ok} datagrams accepted "
              f"by the kernel, {total_counted} counted, {total_ok - total_counted} lost in {lost_runs} "
              f"stops; senders' failed sends: "
              + ", ".join(f"{k} {v}" for k, v in sorted(errs_seen.items())))
    finally:
        cleanup(tmp)
    done("test_sigterm")


if __name__ == "__main__":
    main()
