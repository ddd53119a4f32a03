#!/usr/bin/env python3
"""report_archive_address (issue 11 item 9): every report that goes out is
also mailed, once, to the operator's archive address, through the real
SMTP path (tests/tools/smtpsink.py with STARTTLS and a test CA). The copy is
never a destination: the spool does not list it, it is never retried, a
refusal of the copy changes no delivery state, and a report that is retried
(or delivered later) gets no second copy."""
import email
import email.policy
import glob
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
from tlsrpttest import BUILD, SOURCE, TLSRPTCTL, check, check_eq, done  # noqa: E402
import testca  # noqa: E402

REPORT = os.path.join(BUILD, "reporter", "tlsrpt-report")
MKDAY = os.path.join(BUILD, "tests", "mkday")
SINK = os.path.join(SOURCE, "tests", "tools", "smtpsink.py")
DAY, NOW = "2025-05-22", "2025-05-23T03:00:00Z"
LATER = "2025-05-23T05:00:00Z"      # past every retry of the first failure
ARCHIVE = "tlsrpt-archive@operator.example"


def dgram(domain, rua):
    return json.dumps({"dpv": "1", "d": domain, "pr": "v=TLSRPTv1; rua=" + rua,
                       "policies": [{"policy-type": 9, "policy-domain": domain, "t": 0, "f": 0}]},
                      separators=(",", ":")).encode()


def sink_messages(out):
    msgs = []
    for path in sorted(glob.glob(os.path.join(out, "msg-*.eml"))):
        with open(path, "rb") as fp:
            raw = fp.read()
        head, _, body = raw.partition(b"X-Sink-Helo:")
        rcpts = [l.split(b"<")[1].split(b">")[0].decode() for l in raw.split(b"\r\n")
                 if l.startswith(b"X-Sink-Rcpt-To:")]
        msg = email.message_from_bytes(raw.split(b"\r\n", 4)[4], policy=email.policy.default)
        report = None
        for part in msg.walk():
            if part.get_content_type() == "application/tlsrpt+gzip":
                report = json.loads(gzip.decompress(part.get_content()))
        msgs.append((rcpts, msg, report))
    return msgs


def main():
    tmp = tempfile.mkdtemp(prefix="test_archive.")
    sink = None
    try:
        ca = testca.make_ca(tmp)
        cert, key = testca.make_cert(tmp, ca, "relay", ["DNS:localhost", "IP:127.0.0.1"])
        out = os.path.join(tmp, "sink")
        sink = subprocess.Popen([sys.executable, SINK, "--port", "0", "--dir", out, "--cert", cert,
                                 "--key", key], stdout=subprocess.PIPE, text=True)
        port = int(sink.stdout.readline().split()[1])
        state, spool = os.path.join(tmp, "state"), os.path.join(tmp, "spool")
        # a.example accepts, b.example refuses for now (451), c.example has only
        # an HTTPS destination that is down: each report gets one copy all the same
        r = subprocess.run([MKDAY, "--dir", state, "--day", DAY], capture_output=True, input=b"\n".join([
            dgram("a.example", "mailto:tlsrpt@a.example"),
            dgram("b.example", "mailto:reject4@b.example"),
            dgram("c.example", "https://127.0.0.1:1/tlsrpt"),
        ]) + b"\n")
        check_eq(r.returncode, 0, f"mkday ({r.stderr!r})")
        conf = os.path.join(tmp, "tlsrptd.conf")
        with open(conf, "w") as fp:
            fp.write(f"state_directory = {state}\nspool_directory = {spool}\n"
                     "organization_name = Sender Org\ncontact_info = tlsrpt-noreply@sender.example\n"
                     f"report_delay = 0\ndkim_sign = no\ndelivery_mail = smtp\n"
                     f"smtp_relay = smtp://127.0.0.1:{port}\nsmtp_ca_file = {ca[0]}\n"
                     "allow_loopback_destinations = yes\nhttps_connect_timeout = 2s\n"
                     "retry_initial = 5m\nretry_period = 1h\n"
                     f"report_archive_address = {ARCHIVE}\n")
        r = subprocess.run([REPORT, "-c", conf, "-n"], capture_output=True, text=True)
        check_eq((r.returncode, r.stderr), (0, ""), "-n with an archive address")

        r = subprocess.run([REPORT, "-c", conf, "run", "--now", NOW], capture_output=True, text=True)
        check_eq(r.returncode, 0, f"run ({r.stderr})")
        msgs = sink_messages(out)
        to_archive = [m for m in msgs if m[0] == [ARCHIVE]]
        to_rua = [m for m in msgs if m[0] != [ARCHIVE]]
        check_eq(sorted(m[2]["policies"][0]["policy"]["policy-domain"] for m in to_archive),
                 ["a.example", "b.example", "c.example"], "one archive copy per report")
        check_eq([m[0] for m in to_rua], [["tlsrpt@a.example"]], "report mail to the rua")
        for rcpts, msg, report in to_archive:
            check(report is not None and msg["Subject"].startswith("Report Domain: ")
                  and msg["TLS-Report-Domain"] == report["policies"][0]["policy"]["policy-domain"],
                  f"archive copy is the report mail: {msg['Subject']!r}")
        if to_rua and to_archive:
            a = [m for m in to_archive if m[2]["policies"][0]["policy"]["policy-domain"] == "a.example"]
            check(a and a[0][2] == to_rua[0][2], "the copy carries the same report as the rua mail")

        # the spool knows nothing of the copies
        r = subprocess.run([TLSRPTCTL, "-c", conf, "spool", "list", "--json"], capture_output=True, text=True)
        lst = {x["policy-domain"]: x for x in json.loads(r.stdout)} if r.returncode == 0 else {}
        check_eq({d: (x["destinations"], x["delivered"], x["status"]) for d, x in lst.items()},
                 {"a.example": (1, 1, "delivered"), "b.example": (1, 0, "pending"),
                  "c.example": (1, 0, "pending")}, "spool states (copies are no destination)")
        for d, x in lst.items():
            r = subprocess.run([TLSRPTCTL, "-c", conf, "spool", "show", x["id"]], capture_output=True, text=True)
            check(ARCHIVE not in r.stdout, f"spool show {d} mentions the archive address")

        # retries: b and c are tried again; no second copy of anything
        r = subprocess.run([REPORT, "-c", conf, "run", "--now", LATER], capture_output=True, text=True)
        check_eq(r.returncode, 0, f"second run ({r.stderr})")
        again = sink_messages(out)
        check_eq(len([m for m in again if m[0] == [ARCHIVE]]), 3, "copies after the retries")

        # a refused copy changes nothing: another day, the archive address refuses
        r = subprocess.run([MKDAY, "--dir", state, "--day", "2025-05-23"], capture_output=True,
                           input=dgram("a.example", "mailto:tlsrpt@a.example") + b"\n")
        cfg = open(conf).read().replace(f"report_archive_address = {ARCHIVE}",
                                        "report_archive_address = reject5@operator.example")
        with open(conf, "w") as fp:
            fp.write(cfg)
        r = subprocess.run([REPORT, "-c", conf, "run", "--now", "2025-05-24T03:00:00Z"],
                           capture_output=True, text=True)
        check_eq(r.returncode, 0, f"run with a refusing archive ({r.stderr})")
        check("archive copy to reject5@operator.example failed" in r.stderr,
              f"the refusal is logged: {r.stderr!r}")
        r = subprocess.run([TLSRPTCTL, "-c", conf, "spool", "list", "--json"], capture_output=True, text=True)
        day2 = [x for x in json.loads(r.stdout) if x["day"] == "2025-05-23"] if r.returncode == 0 else []
        check_eq([(x["destinations"], x["delivered"], x["status"]) for x in day2], [(1, 1, "delivered")],
                 "the report of a refused copy is delivered")

        # the address is checked: -n and run refuse a bad one, with its origin
        with open(conf, "w") as fp:
            fp.write(cfg.replace("report_archive_address = reject5@operator.example",
                                 "report_archive_address = archive"))
        r = subprocess.run([REPORT, "-c", conf, "-n"], capture_output=True, text=True)
        check(r.returncode == 78 and f"{conf}:14: report_archive_address: the address \"archive\" refused" in r.stderr,
              f"-n with a bad archive address: {r.returncode} {r.stderr!r}")
    finally:
        if sink:
            sink.terminate()
            sink.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    done("archive")


if __name__ == "__main__":
    main()
