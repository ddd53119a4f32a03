"""Postfix 3.7 on Debian 12 logs to the systemd journal: tlsrptd with
log_source = journal:DIR follows journal files written by the real
systemd-journal-remote (from journal export format, as journald stores
Postfix's syslog(3) lines: SYSLOG_FACILITY=2, SYSLOG_IDENTIFIER,
SYSLOG_PID, MESSAGE). Checks: entries appended while it runs are counted
exactly; a restart between a session's TLS line and its delivery line
neither loses that session nor counts anything twice (the saved cursor);
entries from before the first start are not counted; entries of other
facilities are not read."""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import TLSRPTD, Collector, TestDNS, check, check_eq, done, tempdir, cleanup  # noqa: E402
from test_collector import LOG_ZONE  # noqa: E402

REMOTE = "/lib/systemd/systemd-journal-remote"
BOOT = "0123456789abcdef0123456789abcdef"

OLD = """\
postfix/smtp[1001]: Trusted TLS connection established to mx1.example.com[192.0.2.10]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
postfix/smtp[1001]: 4N1OLD0001: to=<old@example.com>, relay=mx1.example.com[192.0.2.10]:25, delay=0.5, delays=0/0/0.3/0.2, dsn=2.0.0, status=sent (250 OK)
"""
ROUND1 = """\
postfix/smtp[2001]: Trusted TLS connection established to mx1.example.com[192.0.2.10]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
postfix/smtp[2001]: 4N1AAA0001: to=<alice@example.com>, relay=mx1.example.com[192.0.2.10]:25, delay=0.52, delays=0.01/0.01/0.3/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok)
postfix/smtp[5010]: server certificate verification failed for mx.example.org[198.51.100.7]:25: certificate has expired
postfix/smtp[5010]: Untrusted TLS connection established to mx.example.org[198.51.100.7]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
postfix/smtp[5010]: 4N1CCC0010: to=<r10@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=1, delays=0/0/1/0, dsn=4.7.5, status=deferred (Server certificate not verified)
postfix/smtp[2003]: Verified TLS connection established to mx1.example.com[192.0.2.10]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
postfix/qmgr[900]: 4N1QQQ0001: removed
"""
ROUND2 = """\
postfix/smtp[2003]: 4N1AAA0003: to=<carol@example.com>, relay=mx1.example.com[192.0.2.10]:25, delay=0.5, delays=0/0/0.3/0.2, dsn=2.0.0, status=sent (250 OK)
postfix/smtp[2004]: Trusted TLS connection established to mx1.example.com[192.0.2.10]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
postfix/smtp[2004]: 4N1AAA0004: to=<dave@example.com>, relay=mx1.example.com[192.0.2.10]:25, delay=0.5, delays=0/0/0.3/0.2, dsn=2.0.0, status=sent (250 OK)
"""


def export(text, facility=2):
    """journal export format of 'IDENT[PID]: MESSAGE' lines."""
    out = b""
    for line in text.splitlines():
        m = re.match(r"^([^\[]+)\[(\d+)\]: (.*)$", line)
        ts = int(time.time() * 1e6)
        out += (b"__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=%s\n_HOSTNAME=mail\n"
                b"SYSLOG_FACILITY=%d\nSYSLOG_IDENTIFIER=%s\nSYSLOG_PID=%s\nMESSAGE=%s\n\n" % (
                    ts, ts, BOOT.encode(), facility, m.group(1).encode(), m.group(2).encode(),
                    m.group(3).encode()))
        time.sleep(0.001)
    return out


def append(jdir, text, facility=2):
    r = subprocess.run([REMOTE, "--output=" + os.path.join(jdir, "remote.journal"), "-"],
                       input=export(text, facility), capture_output=True)
    check(r.returncode == 0, f"systemd-journal-remote: {r.stderr!r}")


def wait_sessions(col, n, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = col.stats()
        if st and st["counters"]["sessions"] >= n:
            break
        time.sleep(0.05)
    time.sleep(0.5)            # anything more would be a wrong count
    return col.stats()


def main():
    if not os.path.exists(REMOTE):
        check(False, f"{REMOTE} missing: apt-get install systemd-journal-remote (./run deps)")
        done("test_journal")
    tmp = tempdir("journal")
    try:
        with TestDNS(tmp, LOG_ZONE) as dns:
            jdir = os.path.join(tmp, "journal")
            os.mkdir(jdir)
            append(jdir, OLD)          # before the first start: not today's news
            col = Collector(tmp, extra_conf=f"log_source = journal:{jdir}\n"
                                            f"log_position_file = {tmp}/logpos\n"
                                            f"dns_resolver = {dns.resolver}\n"
                                            "realtime_priority = 0\n").start()
            append(jdir, ROUND1)
            # the same lines under another facility are not Postfix's
            append(jdir, ROUND1.replace("4N1", "9Z9"), facility=3)
            st = wait_sessions(col, 2)
            check_eq(st["counters"]["sessions"], 2, "round 1: sessions (the old one and the one "
                     "still waiting for its delivery line not counted)")
            check_eq(st["counters"]["failed_sessions"], 1, "round 1: failed sessions")
            check_eq(col.stop(), 0, "exit status")
            pos = open(os.path.join(tmp, "logpos")).read().split()
            check(len(pos) == 4 and pos[0] == "pfjournal1" and int(pos[1]) < int(pos[2]),
                  f"position: want 'pfjournal1 REPLAY DONE CURSOR' with REPLAY before DONE "
                  f"(a session waits), got {pos}")
            # while it is down, the waiting session's delivery line and one more
            append(jdir, ROUND2)
            col.start()
            st = wait_sessions(col, 4)
            check_eq(st["counters"]["sessions"], 4, "after the restart: sessions (the one whose TLS "
                     "line came before the restart counted once, nothing twice)")
            col.stop()
            # a restart with nothing new counts nothing
            col.start()
            st = wait_sessions(col, 5, timeout=1)
            check_eq(st["counters"]["sessions"], 4, "second restart: sessions")
            check_eq(col.stop(), 0, "exit status")
            # a journal that cannot be opened is a clear error
            r = subprocess.run([TLSRPTD, "-f", "-c", col.conf, "-o", "log_source=journal:/nonexistent"],
                               capture_output=True, text=True, timeout=10)
            check(r.returncode == 78 and "cannot open the journal" in r.stderr,
                  f"missing journal directory: rc {r.returncode}, {r.stderr!r}")
    finally:
        cleanup(tmp) if not os.environ.get("KEEP") else print("kept", tmp)
    done("test_journal")


if __name__ == "__main__":
    main()
