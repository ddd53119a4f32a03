#!/usr/bin/env python3
"""End to end: a real Postfix delivers real mail over real TLS to test MX
servers; the collector counts what happened; the reporter builds reports.

    test_e2e_postfix.py --gen 3.10   Debian 13 Postfix 3.10 -> libtlsrpt
                                     datagrams -> tlsrptd socket
    test_e2e_postfix.py --gen 3.7    Debian 12 Postfix 3.7 -> maillog_file
                                     -> tlsrptd log_source
Options:
    --probe   no tlsrptd: a throwaway datagram receiver on the socket (3.10)
              and the mail log; prints what Postfix really sent and compares
              it with the table in e2elib.SCENARIOS
    --keep    keep the temporary directory (printed) for inspection
Env: BUILD_DIR (the meson build dir with milter/tlsrptd, reporter/tlsrptctl,
reporter/tlsrpt-report), SOURCE_DIR, TLSRPT_CACHE (tree cache).

Round 1: one message per test domain (e2elib.SCENARIOS) plus one report
mail through the tlsrpt-out transport. Checks, each exact: which messages
reached which MX (over TLS or not); Postfix's TLS log lines; Postfix 3.10's
own "TLSRPT: status=..." lines (one per reported session) and no warning
at all; `tlsrptctl dump --day D --json` equals the expected counters and
`tlsrptctl stats` the expected ingest counters.
Round 2: tlsrptd is stopped and started again (3.7: and the log is rotated
with `postfix logrotate`), the same mail again: every count doubles.
Then `tlsrpt-report run --dry-run` prints one report per TLSRPT domain with
exactly the expected destinations, policies, summaries and failure details.
Exit 0 pass, 1 fail, 77 skipped (no root, no tree, programs not built).
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib as E  # noqa: E402

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        E.log("FAIL: " + msg)


def programs():
    build = os.environ.get("BUILD_DIR") or os.path.join(E.SOURCE_DIR, "build")
    p = {"tlsrptd": os.path.join(build, "milter", "tlsrptd"),
         "tlsrptctl": os.path.join(build, "reporter", "tlsrptctl"),
         "tlsrpt-report": os.path.join(build, "reporter", "tlsrpt-report")}
    missing = [k for k, v in p.items() if not os.access(v, os.X_OK)]
    return p, missing


def capture(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)


class Run:
    """One test run inside the network namespace."""

    def __init__(self, args):
        self.gen = args.gen
        self.args = args
        self.env = E.Env(keep=args.keep)
        self.pf = E.Postfix(self.env, self.gen)
        self.recv = None
        self.collector = None
        self.conf = None
        self.progs, self.missing = programs()
        self.t0 = time.monotonic()
        self.scens = []
        self.report_rcpt = "tlsrpt@" + E.REPORT_DOMAIN

    def elapsed(self):
        return time.monotonic() - self.t0

    # ---- set-up

    def setup(self):
        env, pf = self.env, self.pf
        E.log("Postfix %s in %s, work dir %s" % (pf.version(), pf.tree, env.tmp))
        certs = E.make_certs(os.path.join(env.tmp, "pki"))
        E.set_dane(certs["good"][0])
        self.scens = E.scenarios_for(self.gen)
        zone = os.path.join(env.tmp, "zone")
        with open(zone, "w") as fp:
            fp.write(E.zone_text(self.scens))
        env.start_dns(zone)
        spool = os.path.join(env.tmp, "mx-spool")
        os.makedirs(spool)
        env.start_mx(certs, spool)
        pf.configure(os.path.join(env.tmp, "pki", "ca.crt"))
        if self.args.probe:
            exp = os.environ.get("E2E_EXPERIMENT", "")     # manual experiments only
            if self.gen == "3.10" and exp != "nosocket":
                self.recv = E.DgramReceiver(pf.socket_path)
                if exp == "perm":
                    os.chmod(pf.socket_path, 0o600)
                elif exp == "stale":
                    self.recv.stopped = True
                    self.recv.thread.join()
                    self.recv.sock.close()
        else:
            self.write_conf()
            if self.gen == "3.7":
                # the follower starts at the end of an existing file (no
                # position yet): make that offset 0, Postfix appends
                open(pf.logfile, "w").close()
            self.start_collector()
        pf.start()
        E.log("servers and Postfix up (%.1fs)" % self.elapsed())

    def write_conf(self):
        tmp, state = self.env.tmp, os.path.join(self.env.tmp, "state")
        os.makedirs(state, exist_ok=True)
        self.socket = (self.pf.socket_path if self.gen == "3.10" else
                       os.path.join(tmp, "tlsrpt.sock"))
        lines = E.base_conf_lines(state, self.socket)
        if self.gen == "3.7":
            lines += ["log_source = " + self.pf.logfile,
                      "log_position_file = " + os.path.join(state, "logpos")]
        # manual experiments: extra "key = value" lines, separated by ';'
        lines += [l.strip() for l in os.environ.get("E2E_EXTRA_CONF", "").split(";") if l.strip()]
        self.conf = os.path.join(tmp, "tlsrptd.conf")
        with open(self.conf, "w") as fp:
            fp.write("\n".join(lines) + "\n")

    def start_collector(self):
        errf = open(os.path.join(self.env.tmp, "tlsrptd.log"), "a")
        self.collector = self.env.spawn([self.progs["tlsrptd"], "-c", self.conf, "-f"],
                                        stdout=errf, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket):
            if self.collector.poll() is not None:
                raise RuntimeError("tlsrptd exited %d before creating %s" % (
                    self.collector.returncode, self.socket))
            if time.monotonic() > deadline:
                raise RuntimeError("tlsrptd did not create " + self.socket)
            time.sleep(0.05)

    def stop_collector(self):
        self.collector.terminate()
        try:
            self.collector.wait(10)
        except subprocess.TimeoutExpired:
            self.collector.kill()
            self.collector.wait()
        check(self.collector.returncode == 0, "tlsrptd exit status on SIGTERM: got %r, want 0" %
              self.collector.returncode)

    # ---- mail

    def send_round(self):
        """Submit one message per scenario and the report mail, flush once,
        wait for every delivery attempt; return the log of this round."""
        pf = self.pf
        pf.mark()
        rcpts = ["rcpt@" + s.domain for s in self.scens]
        for r in rcpts:
            pf.submit(r)
        # our own report mail to a domain whose MX fails verification: goes
        # out through tlsrpt-out at level may, and is never counted
        pf.submit(self.report_rcpt, sender=E.REPORT_SENDER, headers="TLS-Required: No\n")
        pf.flush(rcpts)
        attempts = pf.wait_attempts(rcpts + [self.report_rcpt])
        E.log("%d delivery attempts logged (%.1fs)" % (len(attempts), self.elapsed()))
        return pf.read_log()

    def check_deliveries(self, text):
        delivered = {}
        with open(os.path.join(self.env.tmp, "testmx.log")) as fp:
            for line in fp:
                m = re.match(r"delivered (\S+) tls=(\w+) rcpt=(?:TO:)?<?([^>,]+)", line)
                if m:
                    delivered[m.group(3)] = (m.group(1), m.group(2))
        for s in self.scens:
            want = None
            if s.delivered:
                sname = E.server_name(s.mxaddr)
                want = (sname, "no" if sname == E.MX["plain"][1] else "yes")
            got = delivered.get("rcpt@" + s.domain)
            check(got == want, "delivery to %s: got %r, want %r" % (s.domain, got, want))
        rs = [s for s in self.scens if s.domain == E.REPORT_DOMAIN][0]
        want = (E.server_name(rs.mxaddr), "yes")
        got = delivered.get(self.report_rcpt)
        check(got == want, "report mail delivery: got %r, want %r" % (got, want))
        rl = [l for l in text.splitlines() if "to=<%s>" % self.report_rcpt in l]
        check(len(rl) == 1 and "postfix/tlsrpt-out/smtp[" in rl[0] and "status=sent" in rl[0],
              "report mail log: got %r, want one postfix/tlsrpt-out/smtp status=sent line" % rl)

    def check_log(self, text):
        # no warning other than the ones the DANE-unusable domain must give
        # (this also catches "Could not report TLS handshake result")
        expected_warnings = ("unusable TLSA RR: ", "all TLSA records unusable, fallback")
        for l in text.splitlines():
            if re.search(r"\]: (warning|error|fatal|panic): ", l) and \
                    not any(w in l for w in expected_warnings):
                check(False, "Postfix logged: " + l)
        # the TLS lines the 3.7 log follower reads (both versions): one
        # summary per handshake, one failure line per must-match failure
        fail_text = {205: "verification failed for %s[%s]:25: self-signed certificate",
                     204: "verification failed for %s[%s]:25: certificate has expired",
                     202: "verification failed for %s[%s]:25: num=62:hostname mismatch",
                     201: "TLS is required, but was not offered by host %s[%s]"}
        want_lines = {}
        for s in self.scens + [None]:       # None: the report mail
            mxname, mxaddr = (s.mxname, s.mxaddr) if s else E.MX["self"][::-1]
            if mxname != E.MX["plain"][1]:
                k = "TLS connection established to %s[%s]:25:" % (mxname, mxaddr)
                want_lines[k] = want_lines.get(k, 0) + 1
            if s and s.outcome not in (None, "none") and s.outcome[0] in fail_text:
                k = fail_text[s.outcome[0]] % (mxname, mxaddr)
                want_lines[k] = want_lines.get(k, 0) + 1
        for k, w in sorted(want_lines.items()):
            n = sum(1 for l in text.splitlines() if k in l)
            check(n == w, "log lines %r: got %d, want %d" % (k, n, w))
        if self.gen != "3.10":
            return
        # Postfix 3.10's own TLSRPT log line per reported session
        for s in self.scens:
            lines = [l for l in text.splitlines()
                     if "TLSRPT: status=" in l and ("domain=%s," % s.domain) in l]
            want = 1 if s.reported() else 0
            check(len(lines) == want, "TLSRPT log lines for %s: got %d, want %d: %r" % (
                s.domain, len(lines), want, lines))
            if lines and want:
                st = "success" if s.outcome is None else "failure"
                check(("status=%s," % st) in lines[0],
                      "%s: got %r, want status=%s" % (s.domain, lines[0], st))
                if s.outcome not in (None, "none"):
                    ft = E.RT[s.outcome[0]].replace("-", "_")
                    check(("failure_type=" + ft) in lines[0],
                          "%s: got %r, want failure_type=%s" % (s.domain, lines[0], ft))

    def check_datagrams(self):
        raw = self.recv.drain()
        E.log("%d datagrams received" % len(raw))
        for b in raw:
            print(b.decode("utf-8", "replace"))
        got = E.canon_datagrams([json.loads(b) for b in raw])
        check(len(raw) == sum(1 for s in self.scens if s.reported()),
              "datagrams: got %d, want one per reported session" % len(raw))
        for m in E.diff_canon(got, E.expected(self.scens, self.gen)):
            check(False, "datagrams differ from the table: " + m)

    # ---- collector and reporter

    def check_counters(self, day, rounds):
        want = E.expected(self.scens, self.gen, rounds)
        deadline = time.monotonic() + 20
        while True:
            r = capture([self.progs["tlsrptctl"], "-c", self.conf, "dump", "--day", day, "--json"])
            got, records = E.canon_dump(r.stdout) if r.returncode == 0 else ({}, {})
            if got == want or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        E.log("round %d: counters compared (%.1fs)" % (rounds, self.elapsed()))
        nfail = len(failures)
        check(r.returncode == 0, "tlsrptctl dump: exit %d, stderr %s" % (r.returncode, r.stderr))
        for m in E.diff_canon(got, want):
            check(False, "round %d: tlsrptctl dump --day %s --json: %s" % (rounds, day, m))
        for s in self.scens:
            if s.reported():
                check(records.get(s.domain) == s.record, "dump: record of %s: got %r, want %r" % (
                    s.domain, records.get(s.domain), s.record))
        if len(failures) > nfail:
            sys.stderr.write("dump output:\n" + r.stdout + "\n")

        # ingest counters: the follower may still be reading the last lines
        # (a session to a domain without a record is counted only after its
        # TLSRPT lookup), so poll until they match or the deadline passes
        def read_counters():
            r = capture([self.progs["tlsrptctl"], "-c", self.conf, "stats", "--day", day, "--json"])
            check(r.returncode == 0, "tlsrptctl stats: exit %d, stderr %s" % (r.returncode, r.stderr))
            c = {}
            for v in E.json_stream(r.stdout):
                if isinstance(v, dict):
                    c = v.get("counters", {})
            return c
        nrep = rounds * sum(1 for s in self.scens if s.reported())
        nbad = rounds * sum(1 for s in self.scens if s.reported() and s.outcome is not None)
        want_counters = {"sessions": nrep, "failed_sessions": nbad, "overflow_results": 0,
                         "strings_cut": 0, "unknown_result_codes": 0}
        if self.gen == "3.10":
            # the report mail sends no datagram at all (3.10.4+, tlsrpt-out)
            want_counters.update({"datagrams": nrep, "malformed_datagrams": 0,
                                  "wrong_shape_datagrams": 0, "truncated_datagrams": 0,
                                  "unknown_policy_types": 0, "count_mismatches": 0,
                                  "invalid_utf8_repaired": 0, "log_sessions": 0,
                                  "own_report_results_skipped": 0})
        else:
            # TLS sessions to domains without a record: good- and self-norecord
            nnorec = rounds * sum(1 for s in self.scens
                                  if not s.tlsrpt and s.mxname != E.MX["plain"][1])
            want_counters.update({"datagrams": 0, "log_sessions": nrep, "log_unrecognised": 0,
                                  "log_sessions_without_tlsrpt": nnorec})
        deadline = time.monotonic() + 20
        while True:
            counters = read_counters()
            if all(counters.get(k, 0) == w for k, w in want_counters.items()) or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if self.gen != "3.10" and not counters.get("log_lines"):
            check(False, "tlsrptd read no line of %s (log_lines = 0): is log_source "
                  "implemented and wired (lib/collect/pflog.c)?" % self.pf.logfile)
        for k, w in want_counters.items():
            check(counters.get(k, 0) == w, "round %d: stats counter %s: got %r, want %d" % (
                rounds, k, counters.get(k), w))

    def check_reports(self, day, rounds):
        want = E.expected(self.scens, self.gen, rounds)
        now = (datetime.datetime.strptime(day, "%Y-%m-%d") +
               datetime.timedelta(days=1, minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        r = capture([self.progs["tlsrpt-report"], "-c", self.conf, "run", "--dry-run",
                     "--day", day, "--now", now])
        nfail = len(failures)
        check(r.returncode == 0, "tlsrpt-report run --dry-run: exit %d, stderr %s" % (
            r.returncode, r.stderr))
        got, reports = E.canon_reports(r.stdout)
        check(len(reports) == len(want), "reports: got %d, want %d (one per TLSRPT domain)" % (
            len(reports), len(want)))
        for m in E.diff_canon(got, want):
            check(False, "tlsrpt-report run --dry-run: " + m)
        for d, dests, rep in reports:
            wd = ["destination mailto:tlsrpt@%s (record)" % d]
            check(dests == wd, "report for %s: destinations got %r, want %r" % (d, dests, wd))
            check(rep.get("organization-name") == "tlsrptd e2e",
                  "%s: organization-name: got %r" % (d, rep.get("organization-name")))
            check(rep.get("contact-info") == "tlsrpt@sender.test",
                  "%s: contact-info: got %r" % (d, rep.get("contact-info")))
            dr = rep.get("date-range", {})
            wdr = {"start-datetime": day + "T00:00:00Z", "end-datetime": day + "T23:59:59Z"}
            check(dr == wdr, "%s: date-range: got %r, want %r" % (d, dr, wdr))
        if len(failures) > nfail:
            sys.stderr.write("report output:\n" + r.stdout[:20000] + "\n" + r.stderr + "\n")

    # ---- the whole run

    def run(self):
        args = self.args
        if not args.probe and set(self.missing) & {"tlsrptd", "tlsrptctl"}:
            E.missing_input("programs not built: %s (BUILD_DIR=%s)" % (
                ", ".join(self.missing), os.environ.get("BUILD_DIR", "")))
        self.setup()
        day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
        text = self.send_round()
        self.check_deliveries(text)
        self.check_log(text)
        if args.probe or failures:
            for l in text.splitlines():
                if "deferred transport" not in l and (
                        " TLS " in l or "TLSRPT" in l or "verification" in l or "status=" in l):
                    print(l)
        if args.probe:
            if self.recv:
                self.check_datagrams()
            return
        self.check_counters(day, 1)

        # round 2: restart the collector (3.7: rotate the log under it too)
        self.stop_collector()
        self.pf.chroot(["postsuper", "-d", "ALL", "deferred"])
        self.start_collector()
        if self.gen == "3.7":
            self.pf.logrotate()
        self.send_round()
        if datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d") != day:
            E.skip("the run crossed midnight UTC: counters are split over two days")
        self.check_counters(day, 2)

        if "tlsrpt-report" in self.missing:
            self.stop_collector()
            if not failures:
                E.log("collector checks passed (%.1fs)" % self.elapsed())
                E.missing_input("report stage not run: %s not built" % self.progs["tlsrpt-report"])
            return
        self.check_reports(day, 2)
        self.stop_collector()
        E.log("done (%.1fs)" % self.elapsed())

    def cleanup(self):
        self.pf.stop()
        if self.recv:
            self.recv.close()
        for name in ("tlsrptd.log", "testmx.log", "testdns.log"):
            path = os.path.join(self.env.tmp, name)
            if failures and os.path.exists(path):
                with open(path, errors="replace") as fp:
                    sys.stderr.write("---- %s (last 60 lines)\n%s\n" % (
                        name, "".join(fp.readlines()[-60:])))
        self.env.stop()
        if self.args.keep:
            E.log("kept " + self.env.tmp)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gen", choices=("3.10", "3.7"), required=True)
    ap.add_argument("--probe", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    E.run_test(__file__, args, Run, failures)


if __name__ == "__main__":
    main()
