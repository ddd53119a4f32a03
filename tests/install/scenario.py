"""scenario - what the install test does on the booted machine, after the
machine setup of test_install.py (an operator's mail server before
tlsrptd): the README's "Installing" steps (readme.py runs them word for
word), then mail, restarts, a reboot, the day's report, and the checks.

Phases, each timed:
  install     the README's steps: apt install, the one config file, the
              Postfix lines and the master.cf entry, systemctl enable --now
  round 1     one message each to good.test, self.test and norecord.test
  restart     systemctl restart tlsrptd; round 2
  reboot      systemctl soft-reboot (systemd 254+, Debian 13), or halt and
              a new boot of the same disk (Debian 12); round 3
  report      tlsrpt-report.service at the end of the day: its own
              ExecStart with --now (the reporter's clock option) through a
              runtime drop-in, for that unit only; the report must arrive in
              the rua's local mailbox (Postfix local delivery) and
              `tlsrptctl spool list` must say delivered
  checks      systemctl --failed empty; no "Permission denied" and no
              "Could not report TLS handshake result" in the units' journal
              or Postfix's log
  reinstall   apt install --reinstall keeps the edited tlsrptd.conf and the
              services running
  purge       apt purge stops everything and removes the packages' units,
              configuration, state and sockets; Postfix keeps running
"""
import calendar
import email
import email.policy
import gzip
import json
import os
import re
import subprocess
import time

import machine as M
import mailhost
import readme
import world as W

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
RCPTS = ["u1@good.test", "u2@self.test", "u3@sts.test", "u4@norecord.test"]
UNITS = ["tlsrptd.service", "tlsrpt-report.service", "tlsrpt-report.timer",
         "tlsrpt-milter.service", "tlsrpt-policyd.service"]
DAEMONS = ["tlsrptd.service", "tlsrpt-milter.service", "tlsrpt-policyd.service"]
USERS = ["tlsrptd", "tlsrpt-report", "tlsrpt-milter", "tlsrpt-policyd"]


class Ctx:
    def __init__(self, m, world, release, check, fail, timed):
        self.m = m
        self.world = world
        self.release = release
        self.gen = "3.10" if release == "trixie" else "3.7"
        self.check = check
        self.fail = fail
        self.timed = timed
        self.days = set()
        self.sts_failures = None     # failed policy fetches counted for sts.test


def today():
    return time.strftime("%Y-%m-%d", time.gmtime())


def deliver(c, label):
    c.days.add(today())
    got = mailhost.deliver_round(c.m, c.world, RCPTS, label)
    c.days.add(today())
    # self.test: the self-signed MX first (verify fails), then the good one;
    # sts.test: no policy (its fetch fails), the good MX at may
    c.check(len(got) == len(RCPTS) and all("tls=yes" in g for g in got) and
            all("mx-good.test" in g for g in got),
            "%s: %d messages delivered over TLS by the good MX: %r" % (label, len(RCPTS), got))


def unit_active(c, unit):
    return c.m.run(["systemctl", "is-active", unit], check=False).stdout.strip()


def check_running(c, when, units=DAEMONS):
    for u in units:
        if c.steps.enabled(u):
            st = unit_active(c, u)
            c.check(st == "active", "%s: %s is %s" % (when, u, st))


def stats(c):
    r = c.m.run(["tlsrptctl", "stats", "--day", today()], check=False)
    return r.stdout + r.stderr


def counters(text):
    out = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) == 2 and f[1].isdigit():
            out[f[0]] = int(f[1])
    return out


def sts_fetch_failures(c):
    """The failed sts sessions the collector counted today for sts.test:
    tlsrpt-policyd's datagrams, one per failed policy fetch."""
    r = c.m.run(["tlsrptctl", "dump", "--json", "--day", today()], check=False)
    if r.returncode != 0:
        return 0
    n = 0
    for dom in json.loads(r.stdout).get("domains", []):
        if dom.get("domain") != "sts.test":
            continue
        for e in dom.get("policies", []):
            if e.get("policy", {}).get("policy-type") == "sts":
                n += e.get("summary", {}).get("total-failure-session-count", 0)
    return n


def check_counts(c, rounds, label):
    """After each round the day's counters say exactly what was sent: per
    round one session to good.test, two to self.test (one failed), one to
    sts.test, none for norecord.test; and one failed sts session for each
    failed policy fetch of sts.test, which tlsrpt-policyd tells the collector
    through its socket (the first in round 1; again only 5 minutes after the
    last, so at most one per round here). (Only while the rounds stay in one
    UTC day.)"""
    if len(c.days) > 1:
        M.log("the rounds crossed midnight UTC: per-day counts not checked")
        return
    # the log follower reads asynchronously: give it a moment, then the
    # counts must be exact (and stay so: a re-read would add to them)
    def want(f):
        return (len(RCPTS) * rounds + f, rounds + f)

    deadline = time.monotonic() + 15
    while True:
        f = sts_fetch_failures(c)
        n = counters(stats(c))
        got = (n.get("sessions"), n.get("failed_sessions"))
        if (got == want(f) and f >= 1) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    time.sleep(1)
    f = sts_fetch_failures(c)
    text = stats(c)
    n = counters(text)
    got = (n.get("sessions"), n.get("failed_sessions"))
    M.log("tlsrptctl stats after %s (sts.test fetch failures counted: %d):\n%s" % (label, f, text))
    c.check(1 <= f <= rounds,
            "after %s: %d failed policy fetches of sts.test counted, want 1 to %d "
            "(tlsrpt-policyd's datagrams to the collector)" % (label, f, rounds))
    c.check(got == want(f),
            "after %s: tlsrptctl stats says sessions=%s failed_sessions=%s, want %d and %d" % (
                label, got[0], got[1], *want(f)))
    c.sts_failures = f


# ------------------------------------------------------------------ report

def exec_start_argv(c, unit):
    """The unit's own ExecStart argv, from systemd."""
    out = c.m.run(["systemctl", "show", "-P", "ExecStart", unit]).stdout
    m = re.search(r"argv\[\]=([^;]*);", out)
    if not m:
        raise M.MachineError("cannot read ExecStart of %s: %r" % (unit, out))
    return m.group(1).split()


def run_report(c, now):
    """Start tlsrpt-report.service once with the reporter's clock at 'now'
    (a runtime drop-in replaces ExecStart by the unit's own command plus
    --now; nothing else of the unit changes), then remove the drop-in."""
    argv = exec_start_argv(c, "tlsrpt-report.service")
    dropin = "/run/systemd/system/tlsrpt-report.service.d/zz-install-test-clock.conf"
    c.m.run(["mkdir", "-p", dropin.rsplit("/", 1)[0]])
    c.m.write(dropin, "# tests/install: the end of the day, for this unit only\n"
              "[Service]\nExecStart=\nExecStart=%s --now %s\n" % (" ".join(argv), now))
    c.m.run(["systemctl", "daemon-reload"])
    try:
        r = c.m.run(["systemctl", "start", "tlsrpt-report.service"], check=False, timeout=300)
        c.check(r.returncode == 0, "tlsrpt-report.service failed: %s%s\n%s" % (
            r.stdout, r.stderr, journal(c, "tlsrpt-report.service")[-3000:]))
    finally:
        c.m.run(["rm", "-f", dropin])
        c.m.run(["systemctl", "daemon-reload"])


def mbox_raw(text):
    """The messages of an mbox as they were delivered (the "From " line
    dropped), LF line endings as local(8) writes them."""
    msgs, cur = [], []
    for line in text.splitlines(keepends=True):
        if line.startswith("From ") and cur:
            msgs.append("".join(cur))
            cur = []
        cur.append(line)
    if cur:
        msgs.append("".join(cur))
    return [m.split("\n", 1)[1] for m in msgs if m.startswith("From ")]


def dkim_record(c):
    """(name, TXT value) of the key `tlsrptctl dkim generate` made, from
    `tlsrptctl dkim record` ('NAME. IN TXT ( "..." "..." )')."""
    out = c.m.run(["tlsrptctl", "dkim", "record"]).stdout
    name = out.split()[0].rstrip(".")
    return name, "".join(re.findall(r'"([^"]*)"', out))


def check_dkim(c, mbox, when):
    """Each report mail verifies (dkimpy) with the key the README's
    `tlsrptctl dkim generate` made, as a receiver would with its record, at
    the time it was signed: the reporter's shifted clock ('when', unix
    time) put t= in the future of the real one, which dkimpy refuses."""
    import types
    import dkim
    name, txt = dkim_record(c)
    lookups = []

    def dnsfunc(qname, timeout=5):
        lookups.append(qname)
        return txt.encode() if qname.decode().rstrip(".") == name else None

    real = dkim.time
    dkim.time = types.SimpleNamespace(time=lambda: when + 60)
    try:
        oks = [dkim.verify(raw.encode(), dnsfunc=dnsfunc)
               for raw in mbox_raw(mbox) if "application/tlsrpt" in raw]
    finally:
        dkim.time = real
    c.check(oks, "no report mail to verify")
    for ok in oks:
        c.check(ok is True, "report mail does not verify with the key of %s (lookups %r)" % (
            name, lookups))


def mbox_messages(text):
    msgs, cur = [], []
    for line in text.splitlines(keepends=True):
        if line.startswith("From ") and cur:
            msgs.append("".join(cur))
            cur = []
        cur.append(line)
    if cur:
        msgs.append("".join(cur))
    return [email.message_from_string(m.split("\n", 1)[1], policy=email.policy.default)
            for m in msgs if m.startswith("From ")]


def reports_in_mailbox(c):
    """The RFC 8460 reports (parsed JSON) in the rua's mailbox."""
    out = []
    for msg in mbox_messages(mailhost.mailbox(c.m)):
        for part in msg.walk():
            ct = part.get_content_type()
            if ct in ("application/tlsrpt+gzip", "application/tlsrpt+json"):
                data = part.get_payload(decode=True)
                if ct.endswith("gzip"):
                    data = gzip.decompress(data)
                out.append((msg, json.loads(data)))
    return out


def wait_reports(c, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        got = reports_in_mailbox(c)
        if got:
            return got
        if time.monotonic() > deadline:
            return []
        time.sleep(0.3)


def summarize(reports):
    """{domain: {"ok": n, "fail": n, "details": {(type, reason): n}, "ptypes": set}}"""
    out = {}
    for _, rep in reports:
        for p in rep.get("policies", ()):
            d = p["policy"].get("policy-domain", "?")
            e = out.setdefault(d, {"ok": 0, "fail": 0, "details": {}, "ptypes": set()})
            e["ptypes"].add(p["policy"].get("policy-type"))
            s = p.get("summary", {})
            e["ok"] += s.get("total-successful-session-count", 0)
            e["fail"] += s.get("total-failure-session-count", 0)
            for fd in p.get("failure-details", ()):
                k = (fd.get("result-type"), fd.get("failure-reason-code"))
                e["details"][k] = e["details"].get(k, 0) + fd.get("failed-session-count", 0)
    return out


# ------------------------------------------------------------------ checks

def journal(c, *units):
    args = ["journalctl", "--no-pager", "-o", "short-iso"]
    for u in units:
        args += ["-u", u]
    return c.m.run(args, check=False).stdout


def postfix_log(c):
    text = journal(c, "postfix.service", "postfix@-.service")
    r = c.m.run(["sh", "-c", "cat /var/log/postfix.log /var/log/mail.log 2>/dev/null"], check=False)
    return text + r.stdout


def check_logs(c, when):
    text = journal(c, *UNITS)
    bad = [l for l in text.splitlines() if "Permission denied" in l
           or "cannot send the failure" in l]
    c.check(not bad, "%s: the units' journal says Permission denied:\n  %s" % (
        when, "\n  ".join(bad[:10])))
    pf = postfix_log(c)
    bad = [l for l in pf.splitlines() if "Could not report TLS handshake result" in l
           or "Permission denied" in l]
    c.check(not bad, "%s: Postfix logged:\n  %s" % (when, "\n  ".join(bad[:10])))


def check_failed(c, when):
    f = mailhost.failed_units(c.m)
    c.check(not f, "%s: systemctl --failed: %s" % (when, f))


def sha256(c, path):
    return c.m.run(["sha256sum", path]).stdout.split()[0]


def processes_of(c, users):
    """Processes in the machine running as one of users (procps is not
    installed: read /proc)."""
    r = c.m.sh("for p in /proc/[0-9]*; do u=$(stat -c %U $p 2>/dev/null) && "
               "echo \"$u $(cat $p/comm 2>/dev/null)\"; done", check=False)
    return [l for l in r.stdout.splitlines() if l.split(" ", 1)[0] in users]


# -------------------------------------------------------------------- run

def run(m, world, release, debs, check, fail, timed):
    c = Ctx(m, world, release, check, fail, timed)
    steps = c.steps = readme.Steps(release, "tlsrpt@" + mailhost.HOSTNAME, mailhost.HOSTNAME)
    t_install = time.monotonic()
    try:
        steps.run_install(c, M.log, debs, mailhost.REPO_IN_MACHINE)
    finally:
        left = steps.not_done()
        check(not left, "README Installing steps the test did not carry out: %r" % left)
    timed("README install steps (apt install .. enable --now)", time.monotonic() - t_install)
    check_running(c, "after enable --now")
    check_failed(c, "after the README's steps")

    t = time.monotonic()
    deliver(c, "round 1")
    timed("round 1 (%d messages)" % len(RCPTS), time.monotonic() - t)
    check_counts(c, 1, "round 1")

    t = time.monotonic()
    m.run(["systemctl", "restart", "tlsrptd.service"])
    check_running(c, "after restarting tlsrptd", ["tlsrptd.service"])
    check_counts(c, 1, "the restart")
    deliver(c, "round 2")
    timed("restart + round 2", time.monotonic() - t)
    check_counts(c, 2, "round 2")

    if release == "trixie":
        timed("soft-reboot", m.soft_reboot())
    else:
        timed("halt", m.halt())
        timed("new boot", m.boot())
    check_running(c, "after the reboot")
    check_failed(c, "after the reboot")
    check_counts(c, 2, "the reboot")
    t = time.monotonic()
    deliver(c, "round 3")
    timed("round 3", time.monotonic() - t)
    check_counts(c, 3, "round 3")

    # the end of the (last) day: the reporter's clock one day on, past
    # report_delay (at most 1 h by default)
    last = max(c.days)
    due = calendar.timegm(time.strptime(last, "%Y-%m-%d")) + 86400 + 2 * 3600
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(due))
    run_report(c, now)
    reports = wait_reports(c)
    took = time.monotonic() - t_install
    timed("apt install to the first delivered report", took)
    print("install-to-report %s: %.1f s" % (release, took))
    check(reports, "no report arrived in the rua mailbox; journal:\n" +
          journal(c, "tlsrpt-report.service")[-3000:])
    if reports:
        check_reports(c, reports)
        check_dkim(c, mailhost.mailbox(m), due)
    sp = m.run(["tlsrptctl", "spool", "list"], check=False)
    M.log("tlsrptctl spool list:\n" + sp.stdout + sp.stderr)
    check(sp.returncode == 0 and "delivered" in sp.stdout and
          not re.search(r"\b(pending|failed|given up)\b", sp.stdout),
          "tlsrptctl spool list does not say delivered:\n%s%s" % (sp.stdout, sp.stderr))

    check_failed(c, "after the report")
    check_logs(c, "after the report")

    # the receiving side: a real report mailed to the rua address over SMTP
    # passes tlsrpt-milter (smtpd_milters, as the README sets it) and is in
    # the received store
    t = time.monotonic()
    receive_report(c)
    timed("a report received through the milter", time.monotonic() - t)
    check_failed(c, "after the received report")

    # reinstall keeps the edited configuration
    conf = "/etc/tlsrptd/tlsrptd.conf"
    before = sha256(c, conf)
    t = time.monotonic()
    r = m.run(["apt-get", "install", "-y", "--reinstall", "tlsrptd"], env=APT_ENV, check=False)
    timed("apt install --reinstall tlsrptd", time.monotonic() - t)
    check(r.returncode == 0, "apt install --reinstall: %s%s" % (r.stdout, r.stderr))
    check(sha256(c, conf) == before, "apt install --reinstall changed the edited " + conf)
    check_running(c, "after the reinstall")
    # the state survives it: the day's counters are what they were
    check_counts(c, 3, "the reinstall")
    check_failed(c, "after the reinstall")

    # purge
    pkgs = steps.packages()
    t = time.monotonic()
    r = m.run(["apt-get", "purge", "-y"] + pkgs, env=APT_ENV, check=False)
    timed("apt purge", time.monotonic() - t)
    check(r.returncode == 0, "apt purge: %s%s" % (r.stdout, r.stderr))
    check_purged(c, pkgs)


SAMPLE = os.path.join(readme.SOURCE_DIR, "tests", "data", "real-reports", "google-5.eml")


def receive_report(c):
    """Google's report (tests/data/real-reports/google-5.eml, unsigned here:
    no Authentication-Results of ours) over SMTP from the world to the
    machine's smtpd, rcpt the milter's rua address; then `tlsrptctl received
    summary` must show it, unverified, with its counts."""
    with open(SAMPLE, "rb") as fp:
        raw = fp.read()
    if raw.startswith(b"From "):
        raw = raw.split(b"\n", 1)[1]
    raw = re.sub(rb"\r?\n", b"\r\n", raw)
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    sender = msg.get("Return-Path", "").strip().strip("<>")
    rcpt = c.steps.milter_rua
    code = ("import smtplib, sys\n"
            "with smtplib.SMTP(sys.argv[1], 25, local_hostname='mail-ot1.google.test',"
            " timeout=30) as s:\n"
            "    r = s.sendmail(sys.argv[2], [sys.argv[3]], sys.stdin.buffer.read())\n"
            "    sys.exit(1 if r else 0)\n")
    r = subprocess.run(["ip", "netns", "exec", c.world.ns, "/usr/bin/python3", "-c", code,
                        W.MACHINE_ADDR, sender, rcpt], input=raw, capture_output=True,
                       timeout=60)
    if not c.check(r.returncode == 0, "SMTP to the machine's smtpd: %s" % r.stderr.decode()[-2000:]):
        return
    deadline = time.monotonic() + 30
    while True:
        s = c.m.run(["tlsrptctl", "received", "summary", "--json"], check=False)
        got = json.loads(s.stdout) if s.returncode == 0 else {}
        rows = [g for g in got.get("unverified", []) if g.get("domain") == "krvtz.net"]
        if rows or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    M.log("tlsrptctl received summary --json: %s" % s.stdout[:2000])
    c.check([(g["day"], g["successful"], g["failed"], g["policy_types"]) for g in rows] ==
            [("2024-09-15", 1, 0, {"sts": 1})] and not got.get("verified"),
            "the report mailed to %s is not in the received store as expected: %s%s\n%s" % (
                rcpt, s.stdout, s.stderr, journal(c, "tlsrpt-milter.service")[-2000:]))
    # the milter passes the mail on (it only reads): the rua mailbox has it
    c.check("TLS-Report-Submitter" in mailhost.mailbox(c.m),
            "the report mail did not reach the rua's mailbox after the milter")


def check_reports(c, reports):
    rounds = 3
    s = summarize(reports)
    M.log("reports: %s" % {d: dict(v, ptypes=sorted(v["ptypes"])) for d, v in s.items()})
    want = {
        "good.test": {"ok": rounds, "fail": 0, "details": {}},
        "self.test": {"ok": rounds, "fail": rounds,
                      "details": {("validation-failure", "self-signed_certificate"): rounds}},
    }
    for d, w in want.items():
        g = s.get(d)
        if not c.check(g is not None, "no report for %s: got %s" % (d, sorted(s))):
            continue
        c.check((g["ok"], g["fail"], g["details"]) == (w["ok"], w["fail"], w["details"]),
                "report for %s: got ok=%d fail=%d %r, want ok=%d fail=%d %r" % (
                    d, g["ok"], g["fail"], g["details"], w["ok"], w["fail"], w["details"]))
        c.check(g["ptypes"] == {"no-policy-found"}, "%s: policy types %r" % (d, g["ptypes"]))
    # sts.test: its sessions at may, and each failed fetch as a failed sts
    # session (the count the collector had after the last round)
    g = s.get("sts.test")
    if c.check(g is not None, "no report for sts.test: got %s" % sorted(s)):
        f = c.sts_failures
        types = {k[0]: v for k, v in g["details"].items()}
        c.check(g["ptypes"] == {"no-policy-found", "sts"},
                "sts.test: policy types %r, want no-policy-found and sts" % g["ptypes"])
        c.check(g["ok"] == rounds and types == {"sts-policy-fetch-error": g["fail"]} and
                g["fail"] >= 1 and (f is None or g["fail"] == f),
                "report for sts.test: got ok=%d fail=%d %r, want ok=%d and only "
                "sts-policy-fetch-error, %s failed" % (g["ok"], g["fail"], g["details"], rounds,
                                                       f if f is not None else "at least 1"))
    c.check("norecord.test" not in s, "a report for norecord.test (no TLSRPT record)")
    for msg, rep in reports:
        c.check(msg["To"] and "%s@" % "reports" in str(msg["To"]),
                "report mail To: %r" % msg["To"])


def check_purged(c, pkgs):
    m = c.m
    left = processes_of(c, USERS)
    c.check(not left, "after apt purge, processes still run: %r" % left)
    r = m.run(["systemctl", "list-unit-files", "--no-legend", "--no-pager", "tlsrpt*"],
              check=False)
    c.check(not r.stdout.strip(), "after apt purge, unit files remain:\n" + r.stdout)
    for u in UNITS:
        st = unit_active(c, u)
        c.check(st in ("inactive", "unknown"), "after apt purge: %s is %s" % (u, st))
    # README: purge removes the day files, the spool, the received store,
    # the policy cache, the DKIM keys and the socket directories (and the
    # configuration: a conffile); the system users stay
    r = m.sh("ls -d /etc/tlsrptd /var/lib/tlsrptd /var/lib/tlsrpt-report /var/lib/tlsrpt-milter "
             "/var/lib/tlsrpt-policyd /var/spool/postfix/run 2>/dev/null", check=False)
    c.check(not r.stdout.strip(), "after apt purge, left behind:\n" + r.stdout)
    for p in pkgs:
        st = m.run(["dpkg-query", "-W", "-f", "${Status}", p], check=False).stdout.strip()
        c.check(st in ("", "unknown ok not-installed"), "after apt purge, %s: %r" % (p, st))
    c.check(unit_active(c, "postfix.service") == "active", "Postfix stopped by the purge")
    check_failed(c, "after apt purge")
