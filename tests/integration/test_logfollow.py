#!/usr/bin/env python3
"""The Postfix log follower (lib/collect/pflog.c) through tests/unit/pflog_tool.c,
with real DNS lookups against tests/tools/testdns.py and a fake postmap(1)
in PATH answering for log_policy_map.

Covers: start at the end without a position file, results with the exact
record and policy, domains without (exactly one) TLSRPT record, rotation
(rename + new file), truncation (copytruncate), restart after SIGTERM with
a session half-read (counted once, nothing counted twice), restart after
SIGKILL, standard input, counting into a day file read back by tlsrptctl,
and one postmap/DNS query per domain (caches)."""
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import (BUILD, SOURCE, TLSRPTCTL, check, check_eq, cleanup, done,  # noqa: E402
                        free_port)

TOOL = os.path.join(BUILD, "tests", "pflog_tool")
TESTDNS = os.path.join(SOURCE, "tests", "tools", "testdns.py")

ZONE = '''
_smtp._tls.example.com TXT "v=TLSRPTv1; rua=mailto:tlsrpt@example.com"
_smtp._tls.example.com TXT "v=spf1 -all"
_smtp._tls.example.org TXT "v=TLSRPTv1;" " rua=https://r.example.org/v1"
_smtp._tls.multi.example TXT "v=TLSRPTv1; rua=mailto:a@multi.example"
_smtp._tls.multi.example TXT "v=TLSRPTv1; rua=mailto:b@multi.example"
_smtp._tls.fail.example SERVFAIL
'''

POLICY = ("secure match=mx1.example.com policy_type=sts policy_domain=example.com "
          "mx_host_pattern=mx1.example.com { policy_string = version: STSv1 } "
          "{ policy_string = mode: enforce } { policy_string = mx: mx1.example.com } "
          "{ policy_string = max_age: 604800 }")

FAKE_POSTMAP = '''#!PYTHON
import sys
# postmap -q KEY TYPE:FILE; FILE holds "KEY REPLY" lines
key, table = sys.argv[2], sys.argv[3]
path = table.split(":", 1)[1]
with open(path + ".queries", "a") as q:
    q.write(key + "\\n")
for line in open(path):
    k, _, v = line.rstrip("\\n").partition(" ")
    if k == key:
        print(v)
        sys.exit(0)
sys.exit(1)
'''

STS_COM = {"policy-type": "sts", "policy-domain": "example.com",
           "policy-string": ["version: STSv1", "mode: enforce", "mx: mx1.example.com",
                             "max_age: 604800"],
           "mx-host": ["mx1.example.com"]}
NONE_ORG = {"policy-type": "no-policy-found", "policy-domain": "example.org",
            "policy-string": [], "mx-host": []}
PR_COM = "v=TLSRPTv1; rua=mailto:tlsrpt@example.com"
PR_ORG = "v=TLSRPTv1; rua=https://r.example.org/v1"


def est(pid, host="mx1.example.com", addr="192.0.2.10", trust="Trusted"):
    return (f"Nov 28 10:00:00 mail postfix/smtp[{pid}]: {trust} TLS connection established to "
            f"{host}[{addr}]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\n")


def dlv(pid, rcpt="u@example.com", host="mx1.example.com", addr="192.0.2.10",
        status="sent (250 2.0.0 Ok)"):
    return (f"Nov 28 10:00:01 mail postfix/smtp[{pid}]: 4N1Q{pid:06d}: to=<{rcpt}>, "
            f"relay={host}[{addr}]:25, delay=1, delays=0/0/1/0, dsn=2.0.0, status={status}\n")


def failure(pid):
    """A hostname mismatch at example.org's MX (verify level)."""
    return (f"Nov 28 10:00:00 mail postfix/smtp[{pid}]: server certificate verification failed "
            f"for mx.example.org[198.51.100.7]:25: num=62:hostname mismatch\n"
            + est(pid, "mx.example.org", "198.51.100.7", "Untrusted")
            + dlv(pid, "v@example.org", "mx.example.org", "198.51.100.7",
                  "deferred (Server certificate not verified)"))


def ok_com(pid):
    return {"d": "example.com", "pr": PR_COM, "failed": False, **STS_COM}


def fail_org():
    return {"d": "example.org", "pr": PR_ORG, "failed": True, **NONE_ORG,
            "result-type": "certificate-host-mismatch",
            "receiving-mx-hostname": "mx.example.org", "receiving-ip": "198.51.100.7",
            "failure-reason-code": None}


def append(path, text):
    with open(path, "a") as fp:
        fp.write(text)


class Tool:
    """A running pflog_tool; reads its JSON lines."""

    def __init__(self, conf, extra=(), env=None, stdin=None):
        self.proc = subprocess.Popen([TOOL, "-c", conf] + list(extra), stdout=subprocess.PIPE,
                                     stdin=stdin, env=env)
        self.buf = b""
        self.results = []
        self.lines = 0
        self.counters = None
        first = self.read(10)
        check_eq(first, {"ready": True}, "pflog_tool ready")

    def read(self, timeout):
        """The next JSON line, None on timeout or end of output."""
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                return None
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if not r:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        obj = json.loads(line)
        if "result" in obj:
            res = dict(obj["result"])
            res.pop("when", None)
            self.results.append(res)
        if "lines" in obj:
            self.lines = obj["lines"]
        if "counters" in obj:
            self.counters = obj["counters"]
        return obj

    def wait_lines(self, n, timeout=10):
        deadline = time.time() + timeout
        while self.lines < n and time.time() < deadline:
            self.read(deadline - time.time())
        check_eq(self.lines, n, "lines read")

    def take(self):
        r, self.results = self.results, []
        return r

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        while self.read(10) is not None:
            pass
        self.proc.wait(10)
        if sig == signal.SIGTERM:
            check_eq(self.proc.returncode, 0, "pflog_tool exit status")
        return self.counters


def main():
    tmp = tempfile.mkdtemp(prefix="test_logfollow.")
    dns = None
    tools = []
    try:
        zone = os.path.join(tmp, "zone")
        with open(zone, "w") as fp:
            fp.write(ZONE)
        port = free_port()
        dns = subprocess.Popen([sys.executable, TESTDNS, "--port", str(port), "--zone", zone],
                               stdout=subprocess.PIPE, text=True)
        check_eq(dns.stdout.readline().strip(), "ready", "testdns started")

        bindir = os.path.join(tmp, "bin")
        os.mkdir(bindir)
        postmap = os.path.join(bindir, "postmap")
        with open(postmap, "w") as fp:
            fp.write(FAKE_POSTMAP.replace("PYTHON", sys.executable))
        os.chmod(postmap, 0o755)
        policy = os.path.join(tmp, "policy")
        with open(policy, "w") as fp:
            fp.write(f"example.com {POLICY}\n")
        env = dict(os.environ, PATH=bindir + ":" + os.environ.get("PATH", "/usr/bin:/bin"))

        log = os.path.join(tmp, "mail.log")
        pos = os.path.join(tmp, "logpos")
        state = os.path.join(tmp, "state")
        conf = os.path.join(tmp, "tlsrptd.conf")
        with open(conf, "w") as fp:
            fp.write(f"log_source = {log}\nlog_position_file = {pos}\n"
                     f"dns_resolver = 127.0.0.1:{port}\nlog_policy_map = texthash:{policy}\n"
                     f"state_directory = {state}\nenvelope_sender = tlsrpt-noreply@sender.example\n")

        # 0. lines already in the file at the first start are not counted
        append(log, est(1) + dlv(1))
        t = Tool(conf, ["--interval", "20"], env=env)
        tools.append(t)

        # 1. results: sts policy from the table, a failure, domains without
        #    exactly one record (none, two, SERVFAIL)
        append(log, est(10) + dlv(10) + failure(11)
               + est(12, "mx.nodns.example", "192.0.2.30") + dlv(12, "w@nodns.example", "mx.nodns.example", "192.0.2.30")
               + est(13, "mx.multi.example", "192.0.2.31") + dlv(13, "w@multi.example", "mx.multi.example", "192.0.2.31")
               + est(14, "mx.fail.example", "192.0.2.32") + dlv(14, "w@fail.example", "mx.fail.example", "192.0.2.32")
               + est(15) + dlv(15))
        t.wait_lines(13)
        check_eq(t.take(), [ok_com(10), fail_org(), ok_com(15)], "results of phase 1")

        # 2. rotation: the rest of the old file, then the new one
        append(log, est(20))
        os.rename(log, log + ".1")
        append(log + ".1", dlv(20))
        append(log, failure(21))
        t.wait_lines(18)
        check_eq(t.take(), [ok_com(20), fail_org()], "results across rotation")

        # 3. truncation (copytruncate): the file is cut below our offset
        append(log, "Nov 28 10:00:02 mail postfix/smtpd[99]: padding " + "x" * 3000 + "\n")
        t.wait_lines(19)
        with open(log, "r+") as fp:
            fp.truncate(0)
        append(log, est(30) + dlv(30))
        t.wait_lines(21)
        check_eq(t.take(), [ok_com(30)], "results after truncation")

        # 4. restart (SIGTERM) between a TLS line and its delivery line
        append(log, est(40))
        t.wait_lines(22)
        counters = t.stop()
        check_eq(counters, {"log_lines": 22, "log_sessions": 6, "log_sessions_without_tlsrpt": 3},
                 "counters of the first run")
        append(log, dlv(40) + est(41) + dlv(41))
        t = Tool(conf, ["--interval", "20"], env=env)
        tools.append(t)
        t.wait_lines(3)
        check_eq(t.take(), [ok_com(40), ok_com(41)], "results after restart: once each")

        # 5. SIGKILL after a batch: nothing counted twice
        append(log, est(50) + dlv(50))
        t.wait_lines(5)
        check_eq(t.take(), [ok_com(50)], "result before SIGKILL")
        t.stop(signal.SIGKILL)
        append(log, est(51) + dlv(51))
        t = Tool(conf, ["--interval", "20"], env=env)
        tools.append(t)
        t.wait_lines(2)
        check_eq(t.take(), [ok_com(51)], "results after SIGKILL")
        counters = t.stop()
        check_eq(counters, {"log_lines": 2, "log_sessions": 1}, "counters after SIGKILL restart")

        # the caches: one table query and one TXT lookup per domain and run
        with open(policy + ".queries") as fp:
            queries = fp.read().split()
        check_eq(sorted(set(queries)), [".org", "example.com", "example.org"],
                 "policy table keys asked")
        check_eq(queries.count("example.com"), 3, "example.com asked once per run (3 runs)")

        # 6. standard input (journalctl -f | ...), ends at EOF
        conf_stdin = os.path.join(tmp, "stdin.conf")
        with open(conf_stdin, "w") as fp:
            fp.write(f"log_source = -\ndns_resolver = 127.0.0.1:{port}\n"
                     f"envelope_sender = tlsrpt-noreply@sender.example\n")
        p = subprocess.Popen([TOOL, "-c", conf_stdin], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
        iso = "2026-11-28T10:00:00+0000 mail "
        text = (iso + "postfix/qmgr[9]: 4N1Q000060: from=<tlsrpt-noreply@sender.example>, size=1, nrcpt=1 (queue active)\n"
                + est(60).replace("Nov 28 10:00:00 mail ", iso) + dlv(60).replace("Nov 28 10:00:01 mail ", iso)
                + failure(61).replace("Nov 28 10:00:00 mail ", iso))
        out, _ = p.communicate(text, timeout=20)
        check_eq(p.returncode, 0, "pflog_tool exit status at end of stdin")
        objs = [json.loads(x) for x in out.splitlines()]
        results = [dict(o["result"]) for o in objs if "result" in o]
        for r in results:
            r.pop("when", None)
        check_eq(results, [fail_org()], "results from standard input")
        check_eq(objs[-1], {"counters": {"log_lines": 6, "log_sessions": 1,
                                         "own_report_results_skipped": 1}},
                 "counters from standard input (report mail skipped)")

        # 7. counting into a day file, read back with tlsrptctl dump
        r = subprocess.run([TOOL, "-c", conf, "--once", "--from-start", "--store", state],
                           capture_output=True, text=True, env=env, timeout=30)
        check_eq(r.returncode, 0, f"pflog_tool --store ({r.stderr})")
        day = time.strftime("%Y-%m-%d", time.gmtime())
        r = subprocess.run([TLSRPTCTL, "-c", conf, "dump", "--json", "--day", day],
                           capture_output=True, text=True, timeout=30)
        check_eq(r.returncode, 0, f"tlsrptctl dump ({r.stderr})")
        try:
            dump = json.loads(r.stdout)
        except ValueError:
            dump = {}
        got = {}
        for d in dump.get("domains", []):
            for pol in d["policies"]:
                got[d["domain"]] = (pol["summary"]["total-successful-session-count"],
                                    pol["summary"]["total-failure-session-count"])
        # the file now holds sessions 30, 40, 41, 50, 51 (example.com)
        check_eq(got, {"example.com": (5, 0)}, "day file counts")
        r = subprocess.run([TLSRPTCTL, "-c", conf, "stats", "--json", "--day", day],
                           capture_output=True, text=True, timeout=30)
        try:
            counters = json.loads(r.stdout)["counters"]
        except (ValueError, KeyError):
            counters = {}
        check_eq({k: counters.get(k) for k in ("sessions", "failed_sessions", "log_lines",
                                                "log_sessions")},
                 {"sessions": 5, "failed_sessions": 0, "log_lines": 10, "log_sessions": 5},
                 "day file counters")
    finally:
        for t in tools:
            if t.proc.poll() is None:
                t.proc.kill()
                t.proc.wait()
        if dns:
            dns.terminate()
            dns.wait()
        cleanup(tmp)
    done("test_logfollow")


if __name__ == "__main__":
    main()
