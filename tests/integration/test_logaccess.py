#!/usr/bin/env python3
"""The log follower says why it cannot read log_source (Postfix 3.7-3.9).

The real tlsrptd runs as user nobody (setpriv: a service user without the
log's group) and follows a log file only root may read:
  * it logs one error naming the file, the reason (Permission denied) and
    the user, and not again while the reason stays the same, although it
    retries five times a second (before, EACCES was taken for a missing
    file: nothing counted, nothing said);
  * once the file is readable it says so and counts its lines;
  * a rotation to a new file it may not read is the same error again;
  * a log_source that does not exist yet is said once, at info level.
tlsrptd -n as the service user already refuses an unreadable log file
(tests/conf/28-log-source-unreadable.conf). Needs root (to be nobody);
else skipped (77)."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import TLSRPTCTL, TLSRPTD, check, check_eq, cleanup, done, tempdir  # noqa: E402

LINE = "Nov 28 10:00:00 mail postfix/smtpd[7]: connect from unknown[192.0.2.1]\n"


def count(logfile, text):
    with open(logfile) as fp:
        return fp.read().count(text)


def wait_for(logfile, text, n=1, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if count(logfile, text) >= n:
            return True
        time.sleep(0.05)
    return False


def log_lines(conf):
    r = subprocess.run([TLSRPTCTL, "-c", conf, "stats", "--json"], capture_output=True, text=True)
    import json
    try:
        return json.loads(r.stdout)["counters"].get("log_lines", 0)
    except (ValueError, KeyError):
        return None


def start(tmp, name, log):
    d = os.path.join(tmp, name)
    os.mkdir(d)
    os.chmod(d, 0o1777)
    conf = os.path.join(d, "tlsrptd.conf")
    with open(conf, "w") as fp:
        fp.write(f"state_directory = {d}/state\nsocket_path = {d}/tlsrpt.sock\n"
                 f"log_source = {log}\nlog_position_file = {d}/logpos\n"
                 f"realtime_priority = 0\nsync_interval = 1s\n")
    os.chmod(conf, 0o644)
    out = os.path.join(d, "tlsrptd.log")
    err = open(out, "w")
    proc = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                             TLSRPTD, "-f", "-c", conf], stderr=err)
    err.close()
    if not wait_for(out, "collecting TLS results"):
        with open(out) as fp:
            raise RuntimeError("tlsrptd did not start: " + fp.read())
    return proc, conf, out


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root (runs tlsrptd as nobody)")
        sys.exit(77)
    tmp = tempdir("test_logaccess")
    os.chmod(tmp, 0o755)
    procs = []
    try:
        log = os.path.join(tmp, "mail.log")
        with open(log, "w") as fp:
            fp.write(LINE * 3)
        os.chmod(log, 0o600)                   # root's, like Postfix 3.7's maillog_file
        proc, conf, out = start(tmp, "a", log)
        procs.append(proc)
        said = f"error: log follower: cannot open {log}: Permission denied (user nobody may not read it"
        check(wait_for(out, said), f"the unreadable log is named with its reason and the user "
                                   f"({open(out).read()!r})")
        time.sleep(2.5)                        # about 12 more attempts
        check_eq(count(out, "cannot open"), 1, "the error is said once while it lasts")
        check_eq(log_lines(conf), 0, "nothing counted from the unreadable log")

        os.chmod(log, 0o644)
        check(wait_for(out, f"log follower: {log} can be read now"), "readable again: said")
        deadline = time.time() + 10
        while log_lines(conf) != 3 and time.time() < deadline:
            time.sleep(0.1)
        check_eq(log_lines(conf), 3, "its lines are counted once it is readable")

        # rotation to a new file the user may not read
        os.rename(log, log + ".1")
        with open(log, "w") as fp:
            fp.write(LINE)
        os.chmod(log, 0o600)
        check(wait_for(out, said, 2), "a rotation to an unreadable file is the error again")
        time.sleep(1)
        check_eq(count(out, "cannot open"), 2, "said once for the rotation")

        # a log that does not exist yet: said once, as information
        missing = os.path.join(tmp, "later.log")
        proc2, conf2, out2 = start(tmp, "b", missing)
        procs.append(proc2)
        check(wait_for(out2, f"log follower: {missing} does not exist (yet)"),
              "a missing log is said")
        time.sleep(1)
        check_eq(count(out2, "does not exist"), 1, "the missing log is said once")
        check_eq(count(out2, "error:"), 0, "a missing log is no error")
        for p in procs:
            p.terminate()
            check_eq(p.wait(10), 0, "tlsrptd exit status")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        cleanup(tmp)
    done("test_logaccess")


if __name__ == "__main__":
    main()
