#!/usr/bin/env python3
"""tlsrptd with its state directory on a full file system (issue 10, item 9).

The test mounts a small tmpfs (4 MiB) in a private mount namespace it
creates (as root: unshare --mount; otherwise unshare -Urm), puts the
state directory on it, starts the real tlsrptd and fills the file system
with a filler file. Then:

  1. datagrams for 6,000 new domains: tlsrptd must stay up (it used to die
     with SIGBUS writing into a sparse day file), every datagram is
     received, each domain that fit is counted exactly once, the others are
     counted in overflow_results, fit + overflow = sent, and the log says
     the file system is full;
  2. the filler is removed: new domains are counted again, nothing more
     overflows;
  3. the next day (the collector's clock 3 s before midnight) with the file
     system full again: the new day file cannot be created, tlsrptd stays
     up and counts nothing into the previous day; once space is freed the
     new day file is opened and the datagrams of the interval are in its
     datagrams and overflow_results counters.
Prints the figures it measured.
"""
import errno
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import (Collector, check, check_eq, cleanup, datagram, done,  # noqa: E402
                        tempdir)

MARK = "TLSRPT_FULLFS_NAMESPACE"
PR = "v=TLSRPTv1;rua=mailto:reports@full.example"


def reexec_in_namespace():
    """Run this script again in a private mount namespace; exit with its status."""
    cmd = ["unshare", "--mount", "--propagation", "private"] if os.geteuid() == 0 else ["unshare", "-Urm"]
    probe = subprocess.run(cmd + ["true"], capture_output=True, text=True)
    if probe.returncode != 0:
        print(f"SKIP: cannot create a mount namespace to mount a small tmpfs ({' '.join(cmd)}: "
              f"{probe.stderr.strip()}); needs root or unprivileged user namespaces")
        sys.exit(77)
    r = subprocess.run(cmd + [sys.executable, os.path.abspath(__file__)], env=dict(os.environ, **{MARK: "1"}))
    sys.exit(r.returncode)


def fill(path):
    """Write 'path' until the file system is full; returns the bytes written."""
    n = 0
    with open(path, "wb", buffering=0) as fp:
        for size in (1 << 16, 4096, 512):
            block = b"\0" * size
            while True:
                try:
                    fp.write(block)
                    n += size
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    return n


def dg(name):
    return datagram(name, PR, [{"type": 9}])


def counts(col, day=None):
    """{domain: sessions} from the day's dump."""
    out = {}
    for d in col.dump(day)["domains"]:
        for e in d["policies"]:
            s = e["summary"]
            out[d["domain"]] = out.get(d["domain"], 0) + s["total-successful-session-count"] + \
                s["total-failure-session-count"]
    return out


def main():
    tmp = tempdir("test_fullfs")
    fs = os.path.join(tmp, "state")    # the Collector's state_directory
    os.mkdir(fs)
    mounted = False
    col = None
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tlsrpt-fullfs", fs],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"SKIP: cannot mount a tmpfs in the new namespace: {r.stderr.strip()}")
            sys.exit(77)
        mounted = True
        col = Collector(tmp)
        col.start()
        filler = os.path.join(fs, "filler")
        filled = fill(filler)
        st = os.statvfs(fs)
        check_eq(st.f_bavail, 0, "free blocks after filling the file system")
        print(f"tmpfs 4 MiB, filler {filled} bytes, day file reserved before the disk filled up")

        # 1. new domains on a full file system
        n1 = 6000
        for i in range(n1):
            col.send(dg(f"a{i}.example"))
        st = col.settle(n1)
        check(col.proc.poll() is None, f"tlsrptd died on a full file system (exit {col.proc.returncode})")
        c = st["counters"]
        got = counts(col)
        fit = sum(1 for i in range(n1) if got.get(f"a{i}.example") == 1)
        check_eq(len(got), fit, "domains counted (each exactly once)")
        check_eq(c["datagrams"], n1, "datagrams received on a full disk")
        check_eq(c["sessions"], fit, "sessions = domains that fit")
        check_eq(c["overflow_results"], n1 - fit, "overflow_results = domains that did not fit")
        check(0 < fit < n1, f"some domains fit and some overflowed: {fit} of {n1}")
        check("no space left on the file system" in col.logtext(), "no log line about the full disk")
        print(f"full disk: {n1} new domains sent, {fit} counted exactly, {n1 - fit} in overflow_results")
        # known keys still count on a full disk
        for i in range(50):
            col.send(dg("a0.example"))
        st = col.settle(n1 + 50)
        check_eq(counts(col).get("a0.example"), 51, "a known domain counts on a full disk")
        check_eq(st["counters"]["overflow_results"], n1 - fit, "overflow after known keys")

        # 2. space freed: counting resumes
        os.unlink(filler)
        n2 = 500
        for i in range(n2):
            col.send(dg(f"b{i}.example"))
        st = col.settle(n1 + 50 + n2)
        got = counts(col)
        check_eq(sum(1 for i in range(n2) if got.get(f"b{i}.example") == 1), n2,
                 "new domains counted once space was freed")
        check_eq(st["counters"]["overflow_results"], n1 - fit, "overflow after space was freed")
        check(col.proc.poll() is None, "tlsrptd died after space was freed")
        col.stop()

        # 3. the next day on a full disk
        now = time.time()
        midnight = (int(now) // 86400 + 1) * 86400
        offset = int(midnight - 3 - now)
        day1 = time.strftime("%Y-%m-%d", time.gmtime(midnight - 1))
        day2 = time.strftime("%Y-%m-%d", time.gmtime(midnight))
        col.env["TLSRPTD_TEST_CLOCK_OFFSET"] = str(offset)
        col.start()
        col.send(dg("c0.example"))
        base1 = col.settle(1, day=day1)["counters"]["datagrams"]
        fill(filler)
        time.sleep(max(0, midnight + 1.2 - (time.time() + offset)))
        n3 = 40
        for i in range(n3):
            col.send(dg(f"c{i}.example"))
        time.sleep(0.5)
        check(col.proc.poll() is None, "tlsrptd died at the day change on a full disk")
        check(col.stats(day2) is None, f"a day file for {day2} exists on a full disk")
        check_eq(col.stats(day1)["counters"]["datagrams"], base1, f"datagrams of {day2} counted into {day1}")
        check("cannot open the day file of " + day2 in col.logtext(), "no log line about the day file")
        os.unlink(filler)
        time.sleep(1.2)             # the open is retried at most once a second
        n4 = 10
        for i in range(n4):
            col.send(dg(f"d{i}.example"))
        st = col.settle(n3 + n4, day=day2)
        c = st["counters"]
        check_eq(c["datagrams"], n3 + n4, f"datagrams of {day2}")
        check_eq(c["overflow_results"], n3, f"overflow_results of {day2} (results received without a day file)")
        check_eq(c["sessions"], n4, f"sessions of {day2} once space was freed")
        check_eq(counts(col, day2), {f"d{i}.example": 1 for i in range(n4)}, f"domains of {day2}")
        print(f"next day on a full disk: {n3} results counted in overflow_results, "
              f"{n4} counted once space was freed")
        check_eq(col.stop(), 0, "tlsrptd exit status")
    finally:
        if col:
            rc = col.stop()
            if rc is not None and rc < 0:
                check(False, f"tlsrptd was killed by signal {-rc}")
        if mounted:
            subprocess.run(["umount", "-l", fs])
        cleanup(tmp)
    done("test_fullfs")


def run():
    try:
        main()
    except (RuntimeError, OSError) as e:   # a collector that died: no socket, no settling
        check(False, f"tlsrptd died or stopped answering: {e}")
        done("test_fullfs")


if __name__ == "__main__":
    if os.environ.get(MARK) != "1":
        reexec_in_namespace()
    run()
