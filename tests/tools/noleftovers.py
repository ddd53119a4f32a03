#!/usr/bin/env python3
"""Run a test and fail if it leaves a process behind.

    noleftovers.py COMMAND [ARGS...]

This process becomes a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so
every process the test starts stays its descendant, even one that detaches
(daemon(3), a double fork). When the test has exited, whatever it started is
given two seconds to end; what is still running then was left behind: it is
listed, killed, and the exit status is 1 (else the test's own status,
including 77 for a skip)."""
import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
GRACE = 2.0


def children():
    """Our child processes (reaped zombies excluded): pid -> command line."""
    me, out = os.getpid(), {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fp:
                stat = fp.read()
            # the command may hold spaces and parentheses: fields follow the last ')'
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) != me or fields[0] == "Z":
                continue
            with open(f"/proc/{name}/cmdline", "rb") as fp:
                cmd = fp.read().replace(b"\0", b" ").decode(errors="replace").strip()
            out[int(name)] = cmd or stat[stat.index("(") + 1:stat.rindex(")")]
        except (OSError, ValueError, IndexError):
            continue
    return out


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main():
    if len(sys.argv) < 2:
        sys.stderr.write(__doc__)
        return 64
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.stderr.write("noleftovers: prctl(PR_SET_CHILD_SUBREAPER) failed\n")
        return 1
    test = subprocess.Popen(sys.argv[1:])
    # a signal for us (meson's timeout) goes to the test first
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, f: test.send_signal(s))
    rc = test.wait()
    deadline = time.time() + GRACE
    left = children()
    while left and time.time() < deadline:
        time.sleep(0.05)
        reap()
        left = children()
    if not left:
        return rc
    sys.stderr.write("FAIL: the test left %d process(es) running:\n" % len(left))
    for pid, cmd in sorted(left.items()):
        sys.stderr.write(f"  pid {pid}: {cmd[:300]}\n")
    # kill them and whatever they started (each orphan comes to us in turn)
    for _ in range(50):
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
        reap()
        left = children()
        if not left:
            break
    return 1


if __name__ == "__main__":
    sys.exit(main())
