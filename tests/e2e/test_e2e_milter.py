#!/usr/bin/env python3
"""End to end, inbound: a real Postfix receives real TLS report mail over
SMTP with tlsrpt-milter attached (smtpd_milters), delivers it to a virtual
mailbox, and the milter stores the reports (issue 5).

    test_e2e_milter.py --gen 3.10   Debian 13's Postfix 3.10 (trixie tree)
    test_e2e_milter.py --gen 3.7    Debian 12's Postfix 3.7 (bookworm tree)
Options: --keep (keep the temporary directory, printed).
Env: BUILD_DIR (milter/tlsrpt-milter, reporter/tlsrptctl), SOURCE_DIR,
TLSRPT_CACHE (tree cache), SAMPLES (real reports, default
tests/data/real-reports of the source tree).

Postfix runs chrooted in the cached tree inside a private network
namespace (e2elib), smtpd on 127.0.0.1:25 with the documented settings
    smtpd_milters = unix:run/tlsrpt/milter.sock
    milter_default_action = accept
and virtual(8) Maildir delivery for rcpt.test. tlsrpt-milter runs outside
the chroot with milter_socket pointing into the tree's queue directory, in
the tree's postfix group (as conf/tlsrpt-milter.service does).

Round 1 (milter_action = accept), one SMTP session from Python smtplib:
  google-5.eml to the rua address, with our own Authentication-Results
  (authserv-id mx.rcpt.test, dkim=pass, as an upstream DKIM milter adds);
  an ordinary mail to bob; microsoft-4.eml to the rua address (its own
  Authentication-Results carry a foreign authserv-id: not trusted).
  Checks: all three delivered; the ordinary mail byte for byte as sent,
  the report mails with body and headers as sent (Postfix adds its own
  trace headers and drops Return-Path, nothing else changes); `tlsrptctl
  received summary --json` equals what the sample reports' own JSON says
  (domains, days, organizations, counts, policy types), google verified
  and microsoft unverified, no rejection; the index holds exactly the two
  reports (nothing for the ordinary mail); `received show` gives dkim
  pass/google.com for the verified one; Postfix logged no warning at all
  (no milter warning in particular); the milter logged two "stored" lines
  and nothing at warning level.
Round 2 (milter_action = discard, a fresh store): microsoft-4.eml to the
  rua address alone is discarded (Postfix: "milter triggers DISCARD
  action", nothing new in the mailbox) but stored; google-5.eml to the rua
  address and bob is delivered to both (discard only when every recipient
  is a rua address) and stored.
Exit 0 pass, 1 fail, 77 skipped (no root, no tree, programs not built).
"""
import argparse
import email
import email.policy
import gzip
import json
import os
import re
import smtplib
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib as E  # noqa: E402

failures = []

RCPT_DOMAIN = "rcpt.test"
RUA = "tlsrpt@" + RCPT_DOMAIN
BOB = "bob@" + RCPT_DOMAIN
AUTHSERV_ID = "mx.rcpt.test"
VMAIL_UID = 65534
VMAIL_BASE = "var/mail/tlsrptd-e2e"          # in the tree
MILTER_SOCK = "run/tlsrpt/milter.sock"       # relative to the queue directory
SAMPLES = os.environ.get("SAMPLES") or os.path.join(
    os.path.abspath(E.SOURCE_DIR), "tests", "data", "real-reports")
# what an upstream DKIM verifier (OpenDKIM) in front of this milter adds
OUR_AR = ("Authentication-Results: %s;\r\n\tdkim=pass (2048-bit key; unprotected)"
          " header.d=google.com header.i=@google.com header.b=m4YV2PRj\r\n" % AUTHSERV_ID)

MAIN_CF = """
# tests/e2e/test_e2e_milter.py: inbound mail through tlsrpt-milter
smtpd_milters = unix:%(sock)s
milter_default_action = accept
virtual_mailbox_domains = %(domain)s
virtual_mailbox_base = /%(base)s
virtual_mailbox_maps = texthash:/etc/postfix/vmailbox
virtual_uid_maps = static:%(uid)d
virtual_gid_maps = static:%(uid)d
""" % {"sock": MILTER_SOCK, "domain": RCPT_DOMAIN, "base": VMAIL_BASE, "uid": VMAIL_UID}

ORDINARY = ("From: Alice <alice@sender.test>\r\n"
            "To: Bob <%s>\r\n"
            "Subject: lunch on Friday?\r\n"
            "Date: Sat, 28 Nov 2026 12:00:00 +0000\r\n"
            "Message-ID: <e2e-ordinary-1@sender.test>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n"
            "\r\n"
            "Hello Bob,\r\n"
            ".a line that starts with a dot\r\n"
            "Authentication-Results: not a header, just body text\r\n"
            "\r\n"
            "-- \r\nAlice\r\n" % BOB).encode()


def check(cond, msg):
    if not cond:
        failures.append(msg)
        E.log("FAIL: " + msg)
    return cond


def programs():
    build = os.environ.get("BUILD_DIR") or os.path.join(E.SOURCE_DIR, "build")
    p = {"tlsrpt-milter": os.path.join(build, "milter", "tlsrpt-milter"),
         "tlsrptctl": os.path.join(build, "reporter", "tlsrptctl")}
    return p, [k for k, v in p.items() if not os.access(v, os.X_OK)]


# ------------------------------------------------------------ sample mail

def crlf(raw):
    return re.sub(rb"\r?\n", b"\r\n", raw)


class Sample:
    """One real report mail: the bytes to send and its report JSON."""

    def __init__(self, name, add_ar=False):
        with open(os.path.join(SAMPLES, name), "rb") as fp:
            raw = crlf(fp.read())
        if raw.startswith(b"From "):                 # an mbox separator line
            raw = raw.split(b"\r\n", 1)[1]
        self.name = name
        self.data = (OUR_AR.encode() if add_ar else b"") + raw
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        rp = msg.get("Return-Path", "")
        self.mail_from = rp.strip().strip("<>") or "noreply@" + msg["TLS-Report-Submitter"]
        self.submitter = msg["TLS-Report-Submitter"].strip()
        self.report = None
        for part in msg.walk():
            if part.get_content_type().startswith("application/tlsrpt"):
                data = part.get_payload(decode=True)
                if data[:2] == b"\x1f\x8b":
                    data = gzip.decompress(data)
                self.report = json.loads(data)
        if self.report is None:
            raise RuntimeError("%s: no application/tlsrpt part" % name)


def expected_groups(samples):
    """The summary groups (tlsrptctl received summary --json) the reports
    in these samples must give: per policy domain and UTC start day."""
    groups = {}
    for s in samples:
        rep = s.report
        org = rep["organization-name"]
        day = rep["date-range"]["start-datetime"][:10]
        for p in rep["policies"]:
            pol, su = p["policy"], p["summary"]
            ok, failed = su["total-successful-session-count"], su["total-failure-session-count"]
            g = groups.setdefault((pol["policy-domain"], day), {
                "domain": pol["policy-domain"], "day": day, "successful": 0, "failed": 0,
                "policies": 0, "organizations": {}, "policy_types": {}})
            g["successful"] += ok
            g["failed"] += failed
            g["policies"] += 1
            o = g["organizations"].setdefault(org, {"successful": 0, "failed": 0})
            o["successful"] += ok
            o["failed"] += failed
            t = pol["policy-type"]
            g["policy_types"][t] = g["policy_types"].get(t, 0) + 1
    return [groups[k] for k in sorted(groups)]


def pick(groups):
    """The fields of summary groups that expected_groups() predicts."""
    keys = ("domain", "day", "successful", "failed", "policies", "organizations",
            "policy_types")
    return [{k: g.get(k) for k in keys} for g in groups]


def split_headers(raw):
    """([(name, whole header bytes)], body) of a message (any line ends)."""
    raw = raw.replace(b"\r\n", b"\n")
    head, _, body = raw.partition(b"\n\n")
    hdrs = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and hdrs:
            hdrs[-1] = (hdrs[-1][0], hdrs[-1][1] + b"\n" + line)
        else:
            hdrs.append((line.split(b":", 1)[0].lower(), line))
    return hdrs, body


def strip_trace(raw):
    """A delivered message without what Postfix itself prepends: virtual(8)'s
    Return-Path, X-Original-To and Delivered-To, then smtpd's one Received
    header."""
    hdrs, body = split_headers(raw)
    want = [b"return-path", b"x-original-to", b"delivered-to", b"received"]
    got = [n for n, _ in hdrs[:len(want)]]
    if got != want:
        return None, "first headers %r, want %r" % (got, want)
    return (hdrs[len(want):], body), None


# ------------------------------------------------------------------ test

class Run:
    def __init__(self, args):
        self.args = args
        self.gen = args.gen
        self.env = E.Env(keep=args.keep)
        self.pf = E.Postfix(self.env, self.gen)
        self.progs, self.missing = programs()
        self.t0 = time.monotonic()
        self.milter = None
        self.milter_log = None
        self.vmail = os.path.join(self.pf.tree, VMAIL_BASE)
        self.sock = os.path.join(self.pf.tree, "var/spool/postfix", MILTER_SOCK)

    def elapsed(self):
        return time.monotonic() - self.t0

    # ---- set-up

    def postfix_gid(self):
        with open(os.path.join(self.pf.tree, "etc/group")) as fp:
            for line in fp:
                f = line.split(":")
                if f[0] == "postfix":
                    return int(f[2])
        raise RuntimeError("no postfix group in %s/etc/group" % self.pf.tree)

    def setup(self):
        env, pf, t = self.env, self.pf, self.pf.tree
        E.log("Postfix %s in %s, work dir %s" % (pf.version(), t, env.tmp))
        zone = os.path.join(env.tmp, "zone")
        with open(zone, "w") as fp:
            fp.write("# test_e2e_milter.py\n%s MX 10 mx.%s\nmx.%s A 127.0.0.1\n" % (
                RCPT_DOMAIN, RCPT_DOMAIN, RCPT_DOMAIN))
        env.start_dns(zone)
        ca = os.path.join(env.tmp, "unused-ca.pem")      # no outbound TLS here
        open(ca, "w").close()
        pf.configure(ca, extra_main=MAIN_CF)
        with open(os.path.join(t, "etc/postfix/vmailbox"), "w") as fp:
            fp.write("%s %s/tlsrpt/\n%s %s/bob/\n" % (RUA, RCPT_DOMAIN, BOB, RCPT_DOMAIN))
        # configure() leaves smtpd out; this test needs it (not chrooted:
        # the tree is the chroot)
        with open(os.path.join(t, "etc/postfix/master.cf"), "a") as fp:
            fp.write("# tests/e2e/test_e2e_milter.py\nsmtp inet n - n - - smtpd\n")
        r = pf.chroot(["postconf", "-P"], check=False)
        if r.returncode != 0 or r.stderr.strip():
            raise RuntimeError("postconf -P: configuration warnings:\n" + r.stderr)
        if os.path.lexists(self.vmail):
            subprocess.run(["rm", "-rf", "--one-file-system", self.vmail], check=True)
        os.makedirs(self.vmail)
        os.chown(self.vmail, VMAIL_UID, VMAIL_UID)
        self.gid = self.postfix_gid()
        self.start_milter("accept")
        pf.start()
        E.log("DNS, milter and Postfix up (%.1fs)" % self.elapsed())

    def start_milter(self, action):
        tmp = self.env.tmp
        self.store = os.path.join(tmp, "received-" + action)
        self.conf = os.path.join(tmp, "milter-%s.conf" % action)
        with open(self.conf, "w") as fp:
            fp.write("milter_socket = unix:%s\n"
                     "milter_rua_addresses = mailto:%s\n"
                     "milter_action = %s\n"
                     "milter_authserv_id = %s\n"
                     "received_directory = %s\n" % (self.sock, RUA.upper(), action,
                                                    AUTHSERV_ID, self.store))
        self.milter_log = os.path.join(tmp, "milter-%s.log" % action)
        errf = open(self.milter_log, "w")
        # group postfix (of the tree): the socket (umask 0117) is 0660
        # root:postfix, smtpd running as the tree's postfix user connects
        self.milter = self.env.spawn([self.progs["tlsrpt-milter"], "-f", "-c", self.conf],
                                     stdout=errf, stderr=subprocess.STDOUT,
                                     group=self.gid, extra_groups=[])
        deadline = time.monotonic() + 10
        while "listening on" not in self.read_milter_log():
            if self.milter.poll() is not None:
                raise RuntimeError("tlsrpt-milter exited %d:\n%s" % (
                    self.milter.returncode, self.read_milter_log()))
            if time.monotonic() > deadline:
                raise RuntimeError("tlsrpt-milter not listening after 10s:\n" +
                                   self.read_milter_log())
            time.sleep(0.02)
        st = os.stat(self.sock)
        check(st.st_gid == self.gid and st.st_mode & 0o777 == 0o660,
              "milter socket: got gid %d mode %o, want gid %d mode 660" % (
                  st.st_gid, st.st_mode & 0o777, self.gid))

    def stop_milter(self):
        self.milter.terminate()
        # libmilter notices the stop only when its accept loop wakes up (a
        # poll timeout of up to 5 s): one connection wakes it at once
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
                c.settimeout(2)
                c.connect(self.sock)
        except OSError:
            pass
        try:
            self.milter.wait(10)
        except subprocess.TimeoutExpired:
            self.milter.kill()
            self.milter.wait()
        check(self.milter.returncode == 0, "tlsrpt-milter exit status on SIGTERM: got %r, want 0"
              % self.milter.returncode)
        text = self.read_milter_log()
        check("Sanitizer" not in text and "runtime error" not in text,
              "sanitizer report from tlsrpt-milter:\n" + text[-3000:])
        return text

    def read_milter_log(self):
        with open(self.milter_log, errors="replace") as fp:
            return fp.read()

    # ---- mail

    def send(self, msgs):
        """One SMTP session to Postfix's smtpd: msgs = [(from, [rcpt], bytes)]."""
        with smtplib.SMTP("127.0.0.1", 25, local_hostname="client.sender.test",
                          timeout=30) as s:
            s.ehlo()
            for mail_from, rcpts, data in msgs:
                refused = s.sendmail(mail_from, rcpts, data)
                check(refused == {}, "SMTP refused %r" % refused)

    def wait_done(self, want, timeout=30.0):
        """Wait until every regex in want matches as many log lines (since
        the mark) as it says, want = [(regex, count)], and the queue is
        empty; return the log."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.pf.read_log()
            missing = [(w, n) for w, n in want if len(re.findall(w, text, re.M)) < n]
            if not missing:
                q = self.pf.chroot(["postqueue", "-j"], check=False)
                if q.returncode == 0 and q.stdout.strip() == "":
                    return text
            if time.monotonic() > deadline:
                raise RuntimeError("not done within %.0fs: missing %r\nqueue: %s\nlog:\n%s" % (
                    timeout, missing, self.pf.chroot(["postqueue", "-p"], check=False).stdout,
                    text))
            time.sleep(0.05)

    def mailbox(self, who):
        d = os.path.join(self.vmail, RCPT_DOMAIN, who, "new")
        out = []
        if os.path.isdir(d):
            for n in sorted(os.listdir(d)):
                with open(os.path.join(d, n), "rb") as fp:
                    out.append(fp.read())
        return out

    # ---- checks

    def check_log(self, text, what):
        for line in text.splitlines():
            if re.search(r"\]: (warning|error|fatal|panic): ", line):
                check(False, "%s: Postfix logged: %s" % (what, line))
            elif "milter" in line and "milter triggers DISCARD action" not in line:
                check(False, "%s: Postfix logged about the milter: %s" % (what, line))

    def check_delivered_as_sent(self, got, sent, what):
        """got (delivered) equals sent apart from Postfix's own trace headers
        and the Return-Path header Postfix drops from received mail."""
        parts, err = strip_trace(got)
        if not check(err is None, "%s: %s" % (what, err)):
            return
        hdrs, body = parts
        shdrs, sbody = split_headers(sent)
        shdrs = [h for h in shdrs if h[0] != b"return-path"]
        check(hdrs == shdrs, "%s: headers changed:\n   got  %r\n   want %r" % (
            what, [h for _, h in hdrs][:40], [h for _, h in shdrs][:40]))
        check(body == sbody, "%s: body changed (got %d bytes, want %d)" % (
            what, len(body), len(sbody)))

    def summary(self):
        r = subprocess.run([self.progs["tlsrptctl"], "-c", self.conf, "received", "summary",
                            "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True)
        check(r.returncode == 0, "received summary: exit %d, stderr %s" % (r.returncode, r.stderr))
        try:
            return json.loads(r.stdout)
        except ValueError:
            check(False, "received summary --json: not JSON: %r" % r.stdout[:500])
            return {}

    def index(self):
        try:
            with open(os.path.join(self.store, "index")) as fp:
                return [line.rstrip("\n").split("\t") for line in fp]
        except FileNotFoundError:
            return []

    def check_store(self, verified, unverified, what):
        """The store holds exactly these samples' reports, split so."""
        s = self.summary()
        for cls, samples in (("verified", verified), ("unverified", unverified)):
            got, want = pick(s.get(cls, [])), expected_groups(samples)
            check(got == want, "%s: summary %s:\n   got  %r\n   want %r" % (what, cls, got, want))
        check(s.get("rejected") == 0, "%s: summary rejected: got %r, want 0" % (
            what, s.get("rejected")))
        idx = self.index()
        got = sorted((x[0], x[5]) for x in idx)
        want = sorted([("verified", v.submitter) for v in verified] +
                      [("unverified", u.submitter) for u in unverified])
        check(got == want, "%s: index (class, submitter): got %r, want %r" % (what, got, want))
        for x in idx:
            r = subprocess.run([self.progs["tlsrptctl"], "-c", self.conf, "received", "show",
                                x[1]], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True)
            rec = json.loads(r.stdout) if r.returncode == 0 else {}
            got = (rec.get("source"), rec.get("dkim"), rec.get("dkim_domain"))
            want = ("milter", "pass", "google.com") if x[0] == "verified" else ("milter",)
            check(got[:len(want)] == want, "%s: show %s (%s): (source, dkim, dkim_domain) "
                  "got %r, want %r" % (what, x[1], x[5], got, want))
            if x[0] == "unverified":
                check(rec.get("dkim") != "pass", "%s: unverified %s has dkim %r" % (
                    what, x[5], rec.get("dkim")))

    def check_milter_log(self, text, stored, what):
        n = len(re.findall(r"TLS report stored as", text))
        check(n == stored, "%s: milter 'stored' lines: got %d, want %d" % (what, n, stored))
        for line in text.splitlines():
            if re.search(r": (warning|error|fatal): ", line):
                check(False, "%s: milter logged: %s" % (what, line))

    # ---- the whole run

    def run(self):
        if self.missing:
            E.missing_input("programs not built: %s (BUILD_DIR=%s)" % (
                ", ".join(self.missing), os.environ.get("BUILD_DIR", "")))
        if not os.path.isfile(os.path.join(SAMPLES, "google-5.eml")):
            E.missing_input("sample reports not found in %s" % SAMPLES)
        google = Sample("google-5.eml", add_ar=True)
        microsoft = Sample("microsoft-4.eml")
        self.setup()
        pf = self.pf

        # round 1: accept
        pf.mark()
        self.send([(google.mail_from, [RUA], google.data),
                   ("alice@sender.test", [BOB], ORDINARY),
                   (microsoft.mail_from, [RUA], microsoft.data)])
        sent = r"to=<%s>, relay=virtual, .*status=sent"
        text = self.wait_done([(sent % re.escape(RUA), 2), (sent % re.escape(BOB), 1)])
        E.log("round 1 delivered (%.1fs)" % self.elapsed())
        self.check_log(text, "accept")
        n = len(re.findall(sent % re.escape(RUA), text))
        check(n == 2, "accept: deliveries to %s: got %d, want 2" % (RUA, n))
        box, bob = self.mailbox("tlsrpt"), self.mailbox("bob")
        check(len(bob) == 1, "accept: bob's mailbox: got %d messages, want 1" % len(bob))
        if bob:
            self.check_delivered_as_sent(bob[0], ORDINARY, "accept: ordinary mail")
        check(len(box) == 2, "accept: rua mailbox: got %d messages, want 2" % len(box))
        by_sub = {}
        for m in box:
            sub = email.message_from_bytes(m, policy=email.policy.compat32)["TLS-Report-Submitter"]
            by_sub[(sub or "").strip()] = m
        for smp in (google, microsoft):
            if check(smp.submitter in by_sub, "accept: %s not in the rua mailbox" % smp.name):
                self.check_delivered_as_sent(by_sub[smp.submitter], smp.data,
                                             "accept: " + smp.name)
        self.check_store([google], [microsoft], "accept")
        self.check_milter_log(self.stop_milter(), 2, "accept")
        E.log("round 1 checked (%.1fs)" % self.elapsed())

        # round 2: discard, fresh store
        self.start_milter("discard")
        pf.mark()
        self.send([(microsoft.mail_from, [RUA], microsoft.data),
                   (google.mail_from, [RUA, BOB], google.data)])
        text = self.wait_done([
            (r"milter-discard: END-OF-MESSAGE from \S+: milter triggers DISCARD action;"
             r" from=<%s> to=<%s>" % (re.escape(microsoft.mail_from), re.escape(RUA)), 1),
            (sent % re.escape(RUA), 1), (sent % re.escape(BOB), 1)])
        E.log("round 2 delivered (%.1fs)" % self.elapsed())
        self.check_log(text, "discard")
        n = len(re.findall(r"milter triggers DISCARD action", text))
        check(n == 1, "discard: DISCARD log lines: got %d, want 1" % n)
        n = len(re.findall(r"status=sent", text))
        check(n == 2, "discard: deliveries: got %d, want 2 (google-5 to both)" % n)
        box, bob = self.mailbox("tlsrpt"), self.mailbox("bob")
        subs = sorted((email.message_from_bytes(m, policy=email.policy.compat32)
                       ["TLS-Report-Submitter"] or "-").strip() for m in box)
        want = sorted([google.submitter, google.submitter, microsoft.submitter])
        check(subs == want, "discard: rua mailbox submitters: got %r, want %r" % (subs, want))
        check(len(bob) == 2, "discard: bob's mailbox: got %d messages, want 2" % len(bob))
        self.check_store([google], [microsoft], "discard")
        self.check_milter_log(self.stop_milter(), 2, "discard")
        E.log("done (%.1fs)" % self.elapsed())

    def cleanup(self):
        self.pf.stop()
        if failures:
            for name in ("milter-accept.log", "milter-discard.log", "testdns.log"):
                path = os.path.join(self.env.tmp, name)
                if os.path.exists(path):
                    with open(path, errors="replace") as fp:
                        sys.stderr.write("---- %s (last 60 lines)\n%s\n" % (
                            name, "".join(fp.readlines()[-60:])))
            sys.stderr.write("---- Postfix log (last 60 lines)\n%s\n" % "".join(
                self.pf.read_log(whole=True).splitlines(True)[-60:]))
        self.env.stop()
        # leave the shared tree as found: no mailboxes, no socket (libmilter
        # does not remove its socket when it runs as root)
        subprocess.run(["rm", "-rf", "--one-file-system", self.vmail])
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        if self.args.keep:
            E.log("kept " + self.env.tmp)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gen", choices=("3.10", "3.7"), required=True)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    E.run_test(__file__, args, Run, failures, (RuntimeError, OSError, smtplib.SMTPException))


if __name__ == "__main__":
    main()
