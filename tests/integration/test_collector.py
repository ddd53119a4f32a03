#!/usr/bin/env python3
"""The real tlsrptd on a temporary socket: exact counts for every policy type
and result code, bad input survived and counted, SIGKILL and restart, day
rollover at 00:00 UTC, strict configuration checking."""
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import (Collector, TLSRPTD, TestDNS, check, check_eq, cleanup,  # noqa: E402
                        datagram, done, tempdir)

PR_COM = "v=TLSRPTv1; rua=mailto:tlsrpt@example.com"
PR_COM2 = "v=TLSRPTv1;rua=https://reports.example.com/tlsrpt"
PR_NET = "v=TLSRPTv1;rua=mailto:tls@example.net"
PR_ORG = "v=TLSRPTv1;rua=mailto:tls@example.org"
STS = ["version: STSv1", "mode: enforce", "mx: mx1.example.com", "mx: *.example.com",
       "max_age: 604800"]
STS_MX = ["mx1.example.com", "*.example.com"]
TLSA = ["3 1 1 6007EEE553E85D8DF007A845D19EC343283D4E416E9A33F9EF3040C8B7C285BC"]
HELO = "250-mx1.example.com ESMTP\r\n250-STARTTLS\r\n250 SMTPUTF8"
CODES = {201: "starttls-not-supported", 202: "certificate-host-mismatch",
         203: "certificate-not-trusted", 204: "certificate-expired",
         205: "validation-failure", 301: "sts-policy-fetch-error",
         302: "sts-policy-invalid", 303: "sts-webpki-invalid", 304: "tlsa-invalid",
         305: "dnssec-invalid", 306: "dane-required"}
TYPES = {1: "tlsa", 2: "sts", 9: "no-policy-found"}


def workload():
    """(d, pr, policy, dpv) for a realistic mix; every code, all policy types."""
    out = []
    for i in range(10):
        out.append(("example.com", PR_COM, {"type": 9, "domain": "example.com"}, i % 2 == 0))
    for i in range(7):
        out.append(("example.com", PR_COM, {"type": 2, "domain": "example.com",
                                            "strings": STS, "mx": STS_MX}, True))
    for n, code in enumerate(CODES):
        if code in (304, 305, 306):
            continue
        for k in range(1 + n % 3):
            out.append(("example.com", PR_COM, {
                "type": 2, "domain": "example.com", "strings": STS, "mx": STS_MX, "failed": True,
                "details": [{"c": code, "s": "192.0.2.10", "n": "mx1.example.com", "h": HELO,
                             "r": "203.0.113.25",
                             "f": "self-signed_certificate" if code == 205 else None}]}, k % 2 == 0))
    for i in range(4):
        out.append(("Example.NET.", PR_NET, {"type": 1, "domain": "mx.example.net",
                                             "strings": TLSA}, False))
    for code in (304, 305, 306):
        out.append(("example.net", PR_NET, {"type": 1, "domain": "mx.example.net", "strings": TLSA,
                                            "failed": True,
                                            "details": [{"c": code, "s": "192.0.2.10",
                                                         "n": "mx.example.net", "r": "198.51.100.7"}]},
                    True))
    # Postfix 3.10.0-3.10.4: no policy-domain for no-policy-found
    out.append(("example.org", PR_ORG, {"type": 9}, False))
    out.append(("example.org", PR_ORG, {"type": 9, "domain": "example.org", "failed": True,
                                        "details": [{"c": 201, "s": "192.0.2.10", "n": "mx.example.org",
                                                     "h": "250 mx.example.org \u00e4", "r": "198.51.100.9"}]},
                False))
    # the record changed during the day: a second report group
    out.append(("example.com", PR_COM2, {"type": 9, "domain": "example.com"}, True))
    return out


def ascii_lower(s):
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in s)


def helo_name(reply):
    """receiving-mx-helo as a report prints it: the greeting name of the
    first EHLO reply line (RFC 5321 ehlo-ok-rsp), not the capability lines."""
    if reply is None:
        return None
    s = reply.lstrip(" \t")
    if re.match(r"[0-9]{3}([- \r\n]|$)", s):
        if not re.match(r"250[- ]", s):
            return None
        s = s[4:]
    m = re.match(r"[^\x00-\x20\x7f]+", s.lstrip(" \t"))
    if not m or len(m.group(0).encode()) > 255:
        return None
    name = ascii_lower(m.group(0))
    return name[:-1] if len(name) > 1 and name.endswith(".") else name


def uri_or_none(a):
    """additional-information only when it is a URI (RFC 8460 4.4)."""
    if a and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:[^\x00-\x20\x7f\"<>]+", a):
        return a
    return None


def detail_key(fd):
    """The failure-details tuple a report prints for one libtlsrpt detail."""
    def opt(k):
        return fd.get(k) or None
    n = opt("n")
    if n is not None and len(n.encode()) <= 255:
        n = ascii_lower(n)
        n = n[:-1] if len(n) > 1 and n.endswith(".") else n
    return (CODES[fd["c"]], opt("s"), n, helo_name(opt("h")), opt("r"), uri_or_none(opt("a")),
            opt("f"))


def expected(load):
    """The dump the collector must produce, computed independently."""
    groups = {}
    for d, pr, p, _ in load:
        d = d.lower().rstrip(".")
        pol = groups.setdefault((d, pr), {})
        key = (TYPES[p["type"]], (p.get("domain") or d).lower(), tuple(p.get("strings", [])),
               tuple(p.get("mx", [])))
        e = pol.setdefault(key, {"ok": 0, "fail": 0, "details": {}})
        e["fail" if p.get("failed") else "ok"] += 1
        for fd in p.get("details", []):
            k = detail_key(fd)
            e["details"][k] = e["details"].get(k, 0) + 1
    return groups


def normalize(dump):
    groups = {}
    for dom in dump["domains"]:
        pol = groups.setdefault((dom["domain"], dom["record"]), {})
        for entry in dom["policies"]:
            p = entry["policy"]
            key = (p["policy-type"], p["policy-domain"], tuple(p.get("policy-string", [])),
                   tuple(p.get("mx-host", [])))
            det = {}
            for fd in entry.get("failure-details", []):
                k = (fd["result-type"], fd.get("sending-mta-ip"), fd.get("receiving-mx-hostname"),
                     fd.get("receiving-mx-helo"), fd.get("receiving-ip"),
                     fd.get("additional-information"), fd.get("failure-reason-code"))
                check(k not in det, f"the failure-details tuple {k!r} is listed twice")
                det[k] = fd["failed-session-count"]
            pol[key] = {"ok": entry["summary"]["total-successful-session-count"],
                        "fail": entry["summary"]["total-failure-session-count"], "details": det}
    return groups


BAD = [b"garbage", b"5", b"[1,2]", b'{"d":"x"}', b"", b"\xff\xfe{",
       b'{"d": "example.com","pr": "v=TLSRPTv1;rua=mai',
       b'{"d":"example.com","pr":"p","policies":[{"policy-type":"9","f":0}]}']


def test_counting_and_crash(tmp):
    col = Collector(tmp).start()
    load = workload()
    n = 0
    for i, (d, pr, p, dpv) in enumerate(load):
        col.send(datagram(d, pr, [p], dpv))
        n += 1
        if i % 10 == 0:            # bad input interleaved: must change nothing else
            col.send(BAD[(i // 10) % len(BAD)])
            n += 1
    nbad = n - len(load)
    st = col.settle(n)
    check(col.proc.poll() is None, "collector died on bad input")
    check_eq(st["counters"]["sessions"], len(load), "sessions counted")
    check_eq(st["counters"]["malformed_datagrams"] + st["counters"]["wrong_shape_datagrams"],
             nbad, "bad datagrams counted")
    want = expected(load)
    check_eq(normalize(col.dump()), want, "dump after counting")
    check("dropped a datagram" in col.logtext(), "bad input was not logged")

    # SIGKILL: nothing counted may be lost; a restart continues the same day
    col.stop(signal.SIGKILL)
    col.start()
    check_eq(normalize(col.dump()), want, "dump after kill -9 and restart")
    extra = [("example.net", PR_NET, {"type": 1, "domain": "mx.example.net", "strings": TLSA}, True)] * 3
    for d, pr, p, dpv in extra:
        col.send(datagram(d, pr, [p], dpv))
    col.settle(n + 3)
    check_eq(normalize(col.dump()), expected(load + extra), "counting continued after restart")
    # SIGHUP reopens the log and changes nothing else
    col.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while "logs reopened" not in col.logtext() and time.time() < deadline:
        time.sleep(0.02)
    check("logs reopened" in col.logtext(), "SIGHUP not acknowledged")
    col.send(datagram("example.net", PR_NET, [extra[0][2]]))
    col.settle(n + 4)
    check(col.proc.poll() is None, "collector stopped after SIGHUP")
    check_eq(col.stop(), 0, "exit status after SIGTERM")
    check(not os.path.exists(col.sock), "socket not removed on shutdown")


def test_rollover(tmp):
    now = time.time()
    midnight = (int(now) // 86400 + 1) * 86400
    offset = midnight - 2.5 - now          # the collector's clock: 2.5 s before midnight
    col = Collector(tmp, env={"TLSRPTD_TEST_CLOCK_OFFSET": str(int(offset))}).start()
    day1 = time.strftime("%Y-%m-%d", time.gmtime(midnight - 1))
    day2 = time.strftime("%Y-%m-%d", time.gmtime(midnight))
    p = {"type": 9, "domain": "roll.example"}
    for _ in range(25):
        col.send(datagram("roll.example", PR_ORG, [p]))
    col.settle(25, day=day1)
    time.sleep(max(0, midnight + 1 - (time.time() + int(offset))))
    for _ in range(17):
        col.send(datagram("roll.example", PR_ORG, [p]))
    col.settle(17, day=day2)
    s1, s2 = col.stats(day1), col.stats(day2)
    check_eq(s1["counters"]["sessions"], 25, f"sessions on {day1}")
    check_eq(s2["counters"]["sessions"], 17, f"sessions on {day2}")
    check("closed" in col.logtext(), "rollover not logged")
    col.stop()


def test_socket_and_config(tmp):
    col = Collector(tmp, extra_conf="socket_mode = 0620\n").start()
    mode = stat.S_IMODE(os.stat(col.sock).st_mode)
    check_eq(oct(mode), oct(0o620), "socket mode")
    check(stat.S_ISSOCK(os.stat(col.sock).st_mode), "socket is a socket")
    col.stop()
    # a stale socket file is replaced; a regular file in its place is refused
    col.start()
    col.stop(signal.SIGKILL)
    check(os.path.exists(col.sock), "stale socket left by kill -9")
    col.start()
    col.stop()
    with open(col.sock, "w") as fp:
        fp.write("not a socket")
    r = subprocess.run([TLSRPTD, "-f", "-c", col.conf], capture_output=True, text=True, timeout=10)
    check(r.returncode != 0 and "is not a socket" in r.stderr, f"regular file at socket path: {r.stderr}")

    cases = [
        ("sockt_path = /x\n", 2, 'unknown key "sockt_path"'),
        ("socket_mode = 999\n", 2, "socket_mode: must be an octal mode"),
        ("socket_path = relative\n", 2, "socket_path: must be an absolute path"),
        ("store_max_size = 10\n", 2, "store_max_size: out of range"),
        ("sync_interval = 5 minutes\n", 2, "sync_interval: bad duration suffix"),
        ("user = a\nuser = b\n", 3, 'duplicate key "user"'),
        ("just text\n", 2, 'expected "key = value"'),
    ]
    for i, (text, line, want) in enumerate(cases):
        path = os.path.join(tmp, f"bad{i}.conf")
        with open(path, "w") as fp:
            fp.write("# comment\n" + text)
        r = subprocess.run([TLSRPTD, "-n", "-c", path], capture_output=True, text=True)
        check(r.returncode == 78 and f"{path}:{line}: " in r.stderr and want in r.stderr,
              f"config {text.strip()!r}: rc {r.returncode}, stderr {r.stderr.strip()!r}, want {want!r}")
    r = subprocess.run([TLSRPTD, "-n", "-c", col.conf, "-o", "organization_name=Example",
                        "-o", "contact_info=tlsrpt@example.com"], capture_output=True, text=True)
    check_eq((r.returncode, r.stderr), (0, ""), "tlsrptd -n on a good configuration")


def test_privilege_drop(tmp):
    """Started as root with user = nobody: binds as root, then runs and counts as nobody."""
    if os.geteuid() != 0:
        print("privilege drop not tested: not root")
        return
    os.chmod(tmp, 0o755)
    col = Collector(tmp, extra_conf="user = nobody\nsocket_mode = 0666\n").start()
    with open(f"/proc/{col.proc.pid}/status") as fp:
        ids = {l.split(":")[0]: l.split()[1:] for l in fp if l.startswith(("Uid", "Gid"))}
    import pwd
    nobody = pwd.getpwnam("nobody")
    check_eq(ids["Uid"], [str(nobody.pw_uid)] * 4, "uids after the drop (real, effective, saved, fs)")
    check_eq(ids["Gid"][0], str(nobody.pw_gid), "gid after the drop")
    col.send(datagram("example.com", PR_COM, [{"type": 9, "domain": "example.com"}]))
    st = col.settle(1)
    check_eq(st["counters"]["sessions"], 1, "counted after dropping privileges")
    check_eq(os.stat(col.state).st_uid, nobody.pw_uid, "state directory owned by the user")
    check_eq(col.stop(), 0, "exit status")


LOG_LINES = """\
Nov 28 10:00:01 mail postfix/smtp[2001]: Trusted TLS connection established to mx1.example.com[192.0.2.10]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
Nov 28 10:00:01 mail postfix/smtp[2001]: 4N1AAA0001: to=<alice@example.com>, relay=mx1.example.com[192.0.2.10]:25, delay=0.52, delays=0.01/0.01/0.3/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok)
Nov 28 10:00:02 mail postfix/smtp[2002]: Trusted TLS connection reused to mx1.example.com[192.0.2.10]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
Nov 28 10:00:02 mail postfix/smtp[2002]: 4N1AAA0002: to=<bob@example.com>, relay=mx1.example.com[192.0.2.10]:25, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok)
Nov 28 12:00:04 mail postfix/smtp[5010]: server certificate verification failed for mx.example.org[198.51.100.7]:25: certificate has expired
Nov 28 12:00:04 mail postfix/smtp[5010]: Untrusted TLS connection established to mx.example.org[198.51.100.7]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
Nov 28 12:00:04 mail postfix/smtp[5010]: 4N1CCC0010: to=<r10@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=1, delays=0/0/1/0, dsn=4.7.5, status=deferred (Server certificate not verified)
Nov 28 16:00:02 mail postfix/tlsrpt-out/smtp[9002]: Untrusted TLS connection established to mx.example.org[198.51.100.7]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
Nov 28 16:00:02 mail postfix/tlsrpt-out/smtp[9002]: 4N1GGG0002: to=<tlsrpt@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=1, delays=0/0/1/0, dsn=2.0.0, status=sent (250 OK)
Nov 28 16:00:03 mail postfix/smtp[2003]: Verified TLS connection established to mx1.example.net[192.0.2.30]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
Nov 28 16:00:03 mail postfix/smtp[2003]: 4N1AAA0003: to=<carol@example.net>, relay=mx1.example.net[192.0.2.30]:25, delay=0.5, delays=0/0/0.3/0.2, dsn=2.0.0, status=sent (250 OK)
"""


# the TLSRPT records of the log lines' domains (test_journal too)
LOG_ZONE = ('_smtp._tls.example.com TXT "v=TLSRPTv1; rua=mailto:tlsrpt@example.com"\n'
            '_smtp._tls.example.org TXT "v=TLSRPTv1;rua=mailto:tls@example.org"\n')


def test_log_source(tmp):
    """Postfix 3.7: the collector follows the mail log; lines appended while it
    runs are counted into the same day files as datagrams."""
    with TestDNS(tmp, LOG_ZONE) as dns:
        log = os.path.join(tmp, "mail.log")
        open(log, "w").close()
        col = Collector(tmp, extra_conf=f"log_source = {log}\nlog_position_file = {tmp}/logpos\n"
                                        f"dns_resolver = {dns.resolver}\n").start()
        with open(log, "a") as fp:
            fp.write(LOG_LINES)
        deadline = time.time() + 10
        while time.time() < deadline:
            st = col.stats()
            if st and st["counters"]["sessions"] >= 2:
                break
            time.sleep(0.05)
        time.sleep(0.5)            # anything more would be a wrong count
        st = col.stats()
        got = normalize(col.dump())
        want = {("example.com", "v=TLSRPTv1; rua=mailto:tlsrpt@example.com"): {
                    ("no-policy-found", "example.com", (), ()): {"ok": 1, "fail": 0, "details": {}}},
                ("example.org", "v=TLSRPTv1;rua=mailto:tls@example.org"): {
                    ("no-policy-found", "example.org", (), ()): {"ok": 0, "fail": 1, "details": {
                        ("certificate-expired", None, "mx.example.org", None, "198.51.100.7", None, None): 1}}}}
        check_eq(got, want, "sessions counted from the log (reused and report transport skipped, "
                            "example.net without TLSRPT not reported)")
        check_eq(st["counters"]["sessions"], 2, "sessions")
        check(st["counters"].get("log_sessions_without_tlsrpt", 0) >= 1, "no-TLSRPT session not counted as such")
        col.stop()
        check(os.path.exists(os.path.join(tmp, "logpos")), "log position not written")


def main():
    for t in (test_counting_and_crash, test_rollover, test_socket_and_config, test_privilege_drop,
              test_log_source):
        tmp = tempdir("tlsrptd-" + t.__name__)
        try:
            t(tmp)
        except Exception as e:     # a crash of the test itself is a failure
            check(False, f"{t.__name__}: {e!r}")
        finally:
            cleanup(tmp)
    done("test_collector")


if __name__ == "__main__":
    main()
