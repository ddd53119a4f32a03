#!/usr/bin/env python3
"""No text from outside drives the operator's terminal (issue 10 item 6):
received reports and a day file whose organization, domains, MX names,
IPs, result types, reasons, policy strings and EHLO text carry ESC/CSI
and OSC sequences, CR, 8-bit CSI (U+009B), DEL and direction overrides go
through every tlsrptctl output (received import, summary, show, check,
dump, stats, metrics; text and --json). No output may contain such a
byte; JSON output stays valid JSON and gives back the original values."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import BUILD, TLSRPTCTL, check, check_eq, done  # noqa: E402

MKDAY = os.path.join(BUILD, "tests", "mkday")

ESC = "\x1b]0;owned\x07\x1b[2J\x1b[1;31m"          # OSC title, clear screen, red
EVIL = {
    "org": ESC + "Evil Inc.\r\x1b[1AGoogle Inc.",
    "mx": "mx\x1b[31m.evil.example\x7f",
    "ip": "\u202e4.3.2.1",
    "rtype": "certificate-expired\u009b31m",
    "reason": "bad\x1bP+q\x1b\\\u2066 ok",
    "string": "mode: enforce\x1b[8m hidden",
}
FORBIDDEN = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\x8e\x8f\xa8-\xae]|"
                       rb"\xe2\x81[\xa6-\xa9]|\xd8\x9c")


def report(day):
    return {
        "organization-name": EVIL["org"],
        "date-range": {"start-datetime": day + "T00:00:00Z", "end-datetime": day + "T23:59:59Z"},
        "contact-info": "tlsrpt@evil.example", "report-id": "evil\x1b[0m-1",
        "policies": [{"policy": {"policy-type": "sts", "policy-domain": "rcpt.example",
                                 "policy-string": ["version: STSv1", EVIL["string"]],
                                 "mx-host": [EVIL["mx"]]},
                      "summary": {"total-successful-session-count": 1, "total-failure-session-count": 2},
                      "failure-details": [{"result-type": EVIL["rtype"], "sending-mta-ip": EVIL["ip"],
                                           "receiving-mx-hostname": EVIL["mx"],
                                           "receiving-ip": "198.51.100.1", "failure-reason-code": EVIL["reason"],
                                           "failed-session-count": 2}]}]}


def run(conf, *args):
    r = subprocess.run([TLSRPTCTL, "-c", conf] + list(args), capture_output=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def clean(what, out):
    m = FORBIDDEN.search(out)
    check(m is None, f"{what}: a control byte {m.group(0)!r} at {m.start()}: "
          f"{out[max(0, m.start() - 40):m.start() + 40]!r}" if m else "")
    try:
        out.decode("utf-8")
    except UnicodeDecodeError as e:
        check(False, f"{what}: output is not UTF-8: {e}")


def strings_of(o):
    if isinstance(o, dict):
        for k, v in o.items():
            yield k
            yield from strings_of(v)
    elif isinstance(o, list):
        for v in o:
            yield from strings_of(v)
    elif isinstance(o, str):
        yield o


def main():
    tmp = tempfile.mkdtemp(prefix="test_termesc.")
    try:
        day = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
        conf = os.path.join(tmp, "c.conf")
        with open(conf, "w") as fp:
            fp.write(f"received_directory = {tmp}/received\nstate_directory = {tmp}/state\n")
        path = os.path.join(tmp, "evil" + "\x1b[5m" + ".json")
        with open(path, "w") as fp:
            json.dump(report(day), fp, ensure_ascii=False)
        bad = os.path.join(tmp, "bad.json")
        with open(bad, "w") as fp:
            fp.write('{"date-range":{"start-datetime":"\x1b[2J' + day + '","end-datetime":"x"},"policies":[]}')

        outputs = []
        rc, out, err = run(conf, "received", "import", path, bad)
        outputs.append(("received import", out + err))
        ids = re.findall(rb"stored ([0-9a-f]{24})", out)
        check_eq(len(ids), 1, f"the hostile report is stored ({out!r} {err!r})")
        check(b"\\u001b" in out, f"import output shows the escapes: {out!r}")
        for args in (["received", "summary"], ["received", "summary", "--days", "30"],
                     ["received", "check", "--unverified", "--dry-run", "--no-state"],
                     ["metrics", "--receiving"]):
            rc, out, err = run(conf, *args)
            outputs.append((" ".join(args), out + err))
        rc, out, err = run(conf, "metrics", "--receiving")
        check(rc == 0 and b"\\u" not in out and b"certificate-expired\xef\xbf\xbd31m" in out,
              f"metrics: label values without terminal controls, no \\u escapes (Prometheus "
              f"knows none): {out[-600:]!r}")
        rc, out, err = run(conf, "received", "summary")
        check(b"\\u001b]0;owned\\u0007" in out and b"Google Inc." in out,
              f"summary shows the organization escaped: {out!r}")
        json_outputs = []
        for args in (["received", "summary", "--json"], ["received", "show", ids[0].decode() if ids else "x"],
                     ["received", "check", "--unverified", "--dry-run", "--no-state", "--json"]):
            rc, out, err = run(conf, *args)
            outputs.append((" ".join(args), out + err))
            json_outputs.append((" ".join(args), out))

        # a day file with the same text in every string of a datagram
        dg = {"dpv": "1", "d": "rcpt.example", "pr": "v=TLSRPTv1;rua=mailto:r@rcpt.example" + ESC,
              "policies": [{"policy-type": 2, "policy-domain": "rcpt.example",
                            "policy-string": ["version: STSv1", EVIL["string"]], "mx-host": [EVIL["mx"]],
                            "failure-details": [{"c": 204, "s": EVIL["ip"], "n": EVIL["mx"],
                                                 "h": "250-" + EVIL["mx"] + "\r\n250 STARTTLS",
                                                 "r": "198.51.100.1", "f": EVIL["reason"]}],
                            "t": 1, "f": 1}]}
        r = subprocess.run([MKDAY, "--dir", os.path.join(tmp, "state"), "--day", day, "--max-size", str(1 << 20)],
                           input=json.dumps(dg, ensure_ascii=False) + "\n", capture_output=True, text=True)
        check_eq(r.returncode, 0, f"mkday ({r.stderr})")
        for args in (["dump", "--day", day], ["stats", "--day", day]):
            rc, out, err = run(conf, *args)
            outputs.append((" ".join(args), out + err))
            check_eq(rc, 0, f"{' '.join(args)} exit ({err!r})")
        rc, out, err = run(conf, "dump", "--day", day)
        check(b"mx\\u001b[31m.evil.example\\u007f" in out, f"dump shows the MX name escaped: {out!r}")
        rc, out, err = run(conf, "dump", "--day", day, "--json")
        outputs.append(("dump --json", out + err))
        json_outputs.append(("dump --json", out))

        for what, out in outputs:
            clean(what, out)
        for what, out in json_outputs:
            try:
                o = json.loads(out)
            except ValueError as e:
                check(False, f"{what}: not valid JSON any more: {e}: {out[:300]!r}")
                continue
            got = set(strings_of(o))
            for k in ("org", "mx", "ip", "reason", "string"):
                if what.startswith("received show") or (what.startswith("dump") and k != "org"):
                    check(EVIL[k] in got or any(EVIL[k] in g for g in got),
                          f"{what}: the {k} does not decode back to {EVIL[k]!r}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    done("test_termesc")


if __name__ == "__main__":
    main()
