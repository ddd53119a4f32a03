#!/usr/bin/env python3
"""Exit codes a script can trust (issue 11 item 4): permission denied is 77
(EX_NOPERM) from every program and command; an empty spool says so and
exits 0; `received rejected` lists the rejected inputs and the summary's
hint names it. Permission cases run the command as nobody (needs root)
against files only root may read."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import BUILD, TLSRPTCTL, TLSRPTD, check, check_eq, done  # noqa: E402

REPORT = os.path.join(BUILD, "reporter", "tlsrpt-report")
MKDAY = os.path.join(BUILD, "tests", "mkday")
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
DAY = "2025-05-22"
DGRAM = (b'{"dpv": "1","d": "example.com","pr": "v=TLSRPTv1; rua=mailto:t@example.com",'
         b'"policies":[{"policy-type":3,"policy-domain": "example.com","t":0,"f":0}]}')


def run(args, nobody=False, **kw):
    r = subprocess.run((AS_NOBODY if nobody else []) + args, capture_output=True, text=True,
                       timeout=30, **kw)
    return r.returncode, r.stdout, r.stderr


def write(path, text, mode=0o644):
    with open(path, "w") as fp:
        fp.write(text)
    os.chmod(path, mode)


def test_empty_spool(tmp):
    conf = os.path.join(tmp, "empty.conf")
    spool = os.path.join(tmp, "spool-empty")
    write(conf, f"spool_directory = {spool}\n")
    rc, out, err = run([TLSRPTCTL, "-c", conf, "spool", "list"])
    check_eq((rc, out, err), (0, f"the spool is empty: {spool} does not exist yet\n", ""),
             "spool list, no spool yet")
    rc, out, err = run([TLSRPTCTL, "-c", conf, "spool", "list", "--json"])
    check_eq((rc, out, err), (0, "[]\n", ""), "spool list --json, no spool yet")
    os.makedirs(os.path.join(spool, "reports"))
    rc, out, err = run([TLSRPTCTL, "-c", conf, "spool", "list"])
    check_eq((rc, out, err), (0, "the spool is empty: no report has been built\n", ""),
             "spool list, empty spool")
    rc, out, err = run([TLSRPTCTL, "-c", conf, "spool", "list", "--json"])
    check_eq((rc, json.loads(out) if rc == 0 else out), (0, []), "spool list --json, empty spool")
    rc, out, err = run([TLSRPTCTL, "-c", conf, "spool", "show", "20250522-0000000000000000"])
    check_eq(rc, 1, "spool show of an id that is not there")


def test_rejected(tmp):
    conf = os.path.join(tmp, "received.conf")
    store = os.path.join(tmp, "store")
    write(conf, f"received_directory = {store}\n")
    rc, out, err = run([TLSRPTCTL, "-c", conf, "received", "rejected"])
    check_eq((rc, out, err), (0, "no rejected inputs\n", ""), "received rejected, none")
    bad = os.path.join(tmp, "not-a-report.json")
    write(bad, '{"organization-name": "x"}\n')
    rc, out, err = run([TLSRPTCTL, "-c", conf, "received", "import", bad])
    m = re.match(r".*: rejected ([0-9a-f]{24}): (.*)\n", out)
    check(rc == 65 and m is not None, f"import of a bad report: exit {rc}, out {out!r}")
    if m is None:
        return
    rid, why = m.group(1), m.group(2)
    rc, out, err = run([TLSRPTCTL, "-c", conf, "received", "rejected"])
    lines = out.splitlines()
    check_eq((rc, len(lines)), (0, 2), f"received rejected: {out!r}")
    check(len(lines) == 2 and lines[0].startswith("ID ") and lines[1].startswith(rid + " ")
          and lines[1].endswith(f"import  not-a-report.json: {why}"), f"received rejected: {out!r}")
    rc, out, err = run([TLSRPTCTL, "-c", conf, "received", "rejected", "--json"])
    got = json.loads(out) if rc == 0 else None
    check_eq([(x["id"], x["source"], x["filename"], x["reason"]) for x in got or []],
             [(rid, "import", "not-a-report.json", why)], "received rejected --json")
    rc, out, err = run([TLSRPTCTL, "-c", conf, "received", "summary"])
    check("Rejected inputs: 1 (list them with tlsrptctl received rejected, "
          "see one with tlsrptctl received show ID)\n" in out, f"summary hint: {out!r}")
    rc, out, err = run([TLSRPTCTL, "-c", conf, "received", "show", rid])
    check(rc == 0 and why in out, f"received show {rid}: exit {rc}")


def test_permissions(tmp):
    """Everything below belongs to root, mode 0700/0600; nobody gets 77."""
    secret = os.path.join(tmp, "secret")
    os.mkdir(secret, 0o700)
    state, spool, store = (os.path.join(secret, n) for n in ("state", "spool", "store"))
    r = subprocess.run([MKDAY, "--dir", state, "--day", DAY], input=DGRAM + b"\n", capture_output=True)
    check_eq(r.returncode, 0, f"mkday: {r.stderr!r}")
    os.makedirs(os.path.join(spool, "reports"))
    os.makedirs(store)
    conf = os.path.join(tmp, "open.conf")          # readable by all: the files are not
    write(conf, f"state_directory = {state}\nspool_directory = {spool}\nreceived_directory = {store}\n"
                f"sts_cache_file = {secret}/sts-cache\nsocket_path = {tmp}/tlsrpt.sock\n"
                "organization_name = Example\ncontact_info = tlsrpt@example.com\n"
                "dkim_sign = no\nsendmail_command = /bin/true\nrealtime_priority = 0\n")
    dayfile = os.path.join(state, "days", DAY + ".tlsrpt")
    denied = [
        ("stats", [TLSRPTCTL, "-c", conf, "stats", "--day", DAY]),
        ("dump", [TLSRPTCTL, "-c", conf, "dump", "--day", DAY]),
        ("dump --input", [TLSRPTCTL, "-c", conf, "dump", "--input", dayfile]),
        ("spool list", [TLSRPTCTL, "-c", conf, "spool", "list"]),
        ("spool show", [TLSRPTCTL, "-c", conf, "spool", "show", "20250522-0000000000000000"]),
        ("spool retry", [TLSRPTCTL, "-c", conf, "spool", "retry", "20250522-0000000000000000"]),
        ("received summary", [TLSRPTCTL, "-c", conf, "received", "summary"]),
        ("received rejected", [TLSRPTCTL, "-c", conf, "received", "rejected"]),
        ("received show", [TLSRPTCTL, "-c", conf, "received", "show", "0" * 24]),
        ("sts show", [TLSRPTCTL, "-c", conf, "sts", "show", "example.com"]),
        ("received check", [TLSRPTCTL, "-c", conf, "received", "check"]),
        ("dashboard", [TLSRPTCTL, "-c", conf, "dashboard", "--output", os.path.join(secret, "site")]),
        ("metrics --output", [TLSRPTCTL, "-c", conf, "metrics", "--output", os.path.join(secret, "m.prom")]),
        ("tlsrptctl, unreadable configuration", [TLSRPTCTL, "-c", os.path.join(secret, "x.conf"),
                                                 "spool", "list"]),
        ("tlsrpt-report run", [REPORT, "-c", conf, "run", "--now", "2025-05-23T12:00:00Z"]),
        ("tlsrpt-report, unreadable configuration", [REPORT, "-c", os.path.join(secret, "x.conf"), "-n"]),
        ("tlsrptd, unreadable state directory", [TLSRPTD, "-f", "-c", conf]),
        ("tlsrptd, unreadable configuration", [TLSRPTD, "-n", "-c", os.path.join(secret, "x.conf")]),
    ]
    write(os.path.join(secret, "x.conf"), "organization_name = x\n", 0o600)
    write(os.path.join(secret, "sts-cache"), "", 0o600)
    for what, args in denied:
        rc, out, err = run(args, nobody=True)
        check(rc == 77 and "Permission denied" in err, f"{what} as nobody: exit {rc}, want 77; stderr {err!r}")
    # the same commands as root succeed or find nothing: the 77 was about permission
    rc, out, err = run([TLSRPTCTL, "-c", conf, "stats", "--day", DAY])
    check_eq(rc, 0, f"stats as root ({err})")


def main():
    tmp = tempfile.mkdtemp(prefix="test_exitcodes.")
    os.chmod(tmp, 0o755)
    try:
        test_empty_spool(tmp)
        test_rejected(tmp)
        if os.geteuid() == 0:
            test_permissions(tmp)
        else:
            print("permission cases not run: they need root (to run commands as nobody)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    done("exitcodes")


if __name__ == "__main__":
    main()
