#!/usr/bin/env python3
"""`tlsrptctl received check` against stores that do and do not cross its
thresholds: failure rate, a new result type, a new failing MX host, a usual
reporter gone silent; each told once (state file), --no-state, unverified
reports ignored unless asked, the alert mail, exit codes."""
import datetime
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import reportgen  # noqa: E402
from tlsrpttest import TLSRPTCTL, check, check_eq, done  # noqa: E402

D0 = datetime.date(2026, 1, 1)


def ctl(conf, *args):
    r = subprocess.run([TLSRPTCTL, "-c", conf] + list(args), capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def day(n):
    return D0 + datetime.timedelta(days=n)


def pol(dom, ok, failed=0, rt="certificate-expired", mx="mx1"):
    det = [(rt, failed, f"{mx}.{dom}", "192.0.2.1")] if failed else []
    return {"domain": dom, "strings": ["version: STSv1", "mode: enforce"], "mx": [f"*.{dom}"],
            "ok": ok, "failed": failed, "details": det}


def main():
    tmp = tempfile.mkdtemp(prefix="test_check.")
    try:
        src = os.path.join(tmp, "src")
        os.makedirs(src)
        conf = os.path.join(tmp, "c.conf")
        store = os.path.join(tmp, "store")
        mailout = os.path.join(tmp, "mail.txt")
        sendmail = os.path.join(tmp, "sendmail.sh")
        with open(sendmail, "w") as fp:
            fp.write(f"#!/bin/sh\necho \"$@\" > {mailout}.args\ncat > {mailout}\n")
        os.chmod(sendmail, 0o755)
        os.makedirs(store, exist_ok=True)   # the package's tmpfiles.d makes it; tlsrptctl as root writes as its owner
        with open(conf, "w") as fp:
            fp.write(f"received_directory = {store}\ncontact_info = tlsrpt@example.net\n"
                     f"sendmail_command = {sendmail}\n")

        def imp(name, rep, trusted=True):
            path = reportgen.write(src, name, rep)
            rc, out, err = ctl(conf, "received", "import", *(["--trusted"] if trusted else []), path)
            check_eq(rc, 0, f"import {name} ({err})")

        # 30 quiet days: good.example (1 % failures, all certificate-expired on mx1),
        # two reporters for good.example; quiet.example under the threshold
        for n in range(30):
            imp(f"g{n}.json", reportgen.report("Google Inc.", "x@google.com", f"g{n}", day(n),
                                               [pol("good.example", 99, 1)]))
            imp(f"m{n}.json", reportgen.report("Microsoft Corporation", "x@microsoft.com", f"m{n}", day(n),
                                               [pol("good.example", 50)]))
            imp(f"q{n}.json", reportgen.report("Google Inc.", "x@google.com", f"q{n}", day(n),
                                               [pol("quiet.example", 100, 4)]))
        now = day(29).isoformat()
        rc, out, err = ctl(conf, "received", "check", "--now", now)
        check_eq((rc, out), (0, "nothing new (window 2 days ending 2026-01-30)\n"),
                 f"below every threshold: exit 0 ({err})")

        # day 30: good.example 20 % failures, a new result type on a new MX
        imp("g30.json", reportgen.report("Google Inc.", "x@google.com", "g30", day(30),
                                         [pol("good.example", 80, 20, rt="validation-failure", mx="mx2")]))
        imp("m30.json", reportgen.report("Microsoft Corporation", "x@microsoft.com", "m30", day(30),
                                         [pol("good.example", 50)]))
        imp("q30.json", reportgen.report("Google Inc.", "x@google.com", "q30", day(30),
                                         [pol("quiet.example", 100, 4)]))
        now = day(30).isoformat()
        rc, out, err = ctl(conf, "received", "check", "--now", now, "--dry-run")
        check_eq(rc, 2, f"thresholds crossed: exit 2 ({err})")
        lines = sorted(out.splitlines())
        check_eq(lines, sorted([
            "ALERT verified good.example rate: failure rate 7.00 % (21 of 300 sessions) reached "
            "alert_failure_rate 5 %",
            "ALERT verified good.example type: new result type validation-failure (20 failed sessions; "
            "none in the 30 days before)",
            "ALERT verified good.example mx: new failing MX host mx2.good.example (20 failed sessions; "
            "none in the 30 days before)",
        ]), "alerts")
        check("quiet.example" not in out, "quiet.example (2 %) stays below the threshold")
        check(not os.path.exists(mailout), "no mail without alert_mail_to")
        rc2, out2, _ = ctl(conf, "received", "check", "--now", now, "--mail", "postmaster@example.net")
        check_eq((rc2, sorted(out2.splitlines())), (2, lines), "same alerts with the state written")
        check(os.path.exists(os.path.join(store, "check-state.json")), "state file in received_directory")
        mail = open(mailout).read().replace("\r\n", "\n") if os.path.exists(mailout) else ""
        check("\nTo: postmaster@example.net\n" in mail and "\nSubject: TLS reports: 3 new alerts on " in mail
              and "\nAuto-Submitted: auto-generated\n" in mail,
              f"alert mail headers: {mail[:300]!r}")
        check("ALERT verified good.example mx: new failing MX host mx2.good.example" in mail, "alert mail body")
        check(open(mailout + ".args").read().split()[-2:] == ["--", "postmaster@example.net"],
              "sendmail gets the recipient")
        rc, out, err = ctl(conf, "received", "check", "--now", now)
        check_eq((rc, out.startswith("nothing new")), (0, True), "each alert is told once")
        rc, out, err = ctl(conf, "received", "check", "--now", now, "--no-state")
        check_eq((rc, len(out.splitlines())), (2, 3), "--no-state: every condition that holds")

        # Microsoft stops reporting: silent after alert_silence (3 days)
        for n in range(31, 34):
            imp(f"g{n}.json", reportgen.report("Google Inc.", "x@google.com", f"g{n}", day(n),
                                               [pol("good.example", 100)]))
        rc, out, err = ctl(conf, "received", "check", "--now", day(32).isoformat())
        check_eq(rc, 0, f"silent for 2 days: nothing yet, and the rate recovered ({out})")
        check("INFO verified good.example rate: failure rate back below 5 %" in out, f"recovery told: {out!r}")
        rc, out, err = ctl(conf, "received", "check", "--now", day(33).isoformat())
        check_eq((rc, out.startswith("nothing new")), (0, True), "silent for 2.5 days: not yet")
        rc, out, err = ctl(conf, "received", "check", "--now", day(34).isoformat())
        check_eq(rc, 2, "silent for 3.5 days: alert")
        check_eq(out.splitlines(), [
            "ALERT verified good.example silent: no report from Microsoft Corporation "
            "since 2026-01-31T23:59:59Z (it reported on 26 of the last 30 days)",
            "ALERT verified quiet.example silent: no report from Google Inc. "
            "since 2026-01-31T23:59:59Z (it reported on 26 of the last 30 days)"], "silent reporters")
        rc, out, err = ctl(conf, "received", "check", "--now", day(34).isoformat())
        check_eq(rc, 0, "silence told once")

        # unverified reports count only with --unverified
        for n in range(34, 36):
            imp(f"u{n}.json", reportgen.report("Evil", "x@evil.example", f"u{n}", day(n),
                                               [pol("good.example", 0, 50, rt="starttls-not-supported")]),
                trusted=False)
        rc, out, err = ctl(conf, "received", "check", "--now", day(35).isoformat(), "--dry-run")
        check("Evil" not in out and "starttls" not in out, f"unverified ignored: {out!r}")
        rc, out, err = ctl(conf, "received", "check", "--now", day(35).isoformat(), "--dry-run", "--unverified")
        check_eq(rc, 2, "--unverified: alert")
        check("ALERT unverified good.example type: new result type starttls-not-supported" in out,
              f"unverified alert: {out!r}")
        rc, out, err = ctl(conf, "received", "check", "--bogus")
        check_eq(rc, 64, "usage")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    done("test_check")


if __name__ == "__main__":
    main()
