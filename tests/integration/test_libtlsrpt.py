#!/usr/bin/env python3
"""tlsrptd counts exactly what the real libtlsrpt (Debian 13's) sends: the
same workload as test_collector, but every datagram made by the library.
Then rows that a report prints alike (a non-URI additional-information, the
EHLO capability lines, escaping-heavy and non-ASCII text) must be one row
with the exact count, in `tlsrptctl dump --json` and in the report itself
(issue 10 items 1 and 2)."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import BUILD, Collector, check, check_eq, cleanup, done, tempdir  # noqa: E402
from test_collector import detail_key, expected, normalize, workload  # noqa: E402

CLIENT = os.path.join(BUILD, "tests", "integration", "libtlsrpt_client")
REPORT = os.path.join(BUILD, "reporter", "tlsrpt-report")

PR = "v=TLSRPTv1;rua=mailto:tlsrpt@rows.example"
STS = ["version: STSv1", "mode: enforce", "mx: mx.rows.example", "max_age: 86400"]
WEIRD = "q\"b\\s\tt \u00e4\u20ac\U0001F600 \u0001 end"        # escaping-heavy, non-ASCII
EHLO = "250-MX.Rows.Example ESMTP \"x\"\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 STARTTLS"


def rows_load():
    """(details, repeat): sessions whose rows a report prints alike."""
    base = {"c": 205, "s": "192.0.2.1", "n": "mx.rows.example", "r": "198.51.100.1", "f": WEIRD}
    return [
        ([{"c": 301, "a": "see https://x.example/ for more"}], 3),      # not a URI: dropped
        ([{"c": 301}], 2),
        ([{"c": 301, "a": WEIRD}], 1),
        ([{"c": 301, "a": "https://x.example/why?q=%C3%A4"}], 2),      # a URI: its own row
        ([dict(base, h=EHLO)], 2),
        ([dict(base, h="250 mx.rows.example\r\n")], 1),              # the same greeting name
        ([dict(base, h="mx.rows.example")], 1),
        ([dict(base, h="250-\u00fcber.rows.example ESMTP\r\n250 STARTTLS")], 2),
        ([dict(base, h="250-" + "a" * 300 + "\r\n250 STARTTLS")], 1),  # too long: no name
        ([dict(base, n="MX.Rows.Example.")], 1),
        ([{"c": 202, "s": "192.0.2.1", "n": "mx.rows.example", "r": "198.51.100.1",
           "a": "file:\"x\"", "h": "220 not an ehlo reply"}], 2),
    ]


def check_rows(entry, want, what):
    """No tuple twice; counts exact; sums add up."""
    seen = {}
    for fd in entry.get("failure-details", []):
        k = (fd["result-type"], fd.get("sending-mta-ip"), fd.get("receiving-mx-hostname"),
             fd.get("receiving-mx-helo"), fd.get("receiving-ip"), fd.get("additional-information"),
             fd.get("failure-reason-code"))
        check(k not in seen, f"{what}: tuple {k!r} listed twice")
        seen[k] = seen.get(k, 0) + fd["failed-session-count"]
    check_eq(seen, want, f"{what}: failure-details")
    check_eq(sum(seen.values()), entry["summary"]["total-failure-session-count"],
             f"{what}: rows sum to the total")


def test_rows(tmp):
    col = Collector(tmp).start()
    lines, want = "", {}
    nsent = 0
    for details, repeat in rows_load():
        req = {"d": "rows.example", "pr": PR, "policies": [
            {"type": 2, "domain": "rows.example", "strings": STS, "mx": ["mx.rows.example"],
             "failed": True, "details": details}]}
        for _ in range(repeat):
            lines += json.dumps(req) + "\n"
            nsent += 1
            for fd in details:
                k = detail_key(fd)
                want[k] = want.get(k, 0) + 1
    r = subprocess.run([CLIENT, col.sock], input=lines, capture_output=True, text=True, timeout=60)
    check_eq(r.returncode, 0, f"libtlsrpt client exit ({r.stderr.strip()})")
    col.settle(nsent)
    check_eq(len(want), 6, "distinct rows the report must show")
    dump = col.dump()
    entries = [e for d in dump["domains"] if d["domain"] == "rows.example" for e in d["policies"]]
    check_eq(len(entries), 1, "one policy")
    if entries:
        check_rows(entries[0], want, "tlsrptctl dump --json")
        check_eq(entries[0]["summary"]["total-failure-session-count"], nsent, "failed sessions")
    col.stop()

    # the report built from that day file: the same rows
    day = dump["day"]
    conf = os.path.join(tmp, "report.conf")
    with open(conf, "w") as fp:
        fp.write(f"state_directory = {col.state}\nspool_directory = {tmp}/spool\n"
                 "organization_name = Rows Org\ncontact_info = tlsrpt@sender.example\n"
                 "dkim_sign = no\ndelivery_mail = off\ndelivery_https = no\n")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.mktime(time.strptime(day, "%Y-%m-%d"))
                                                           - time.timezone + 86400 + 7200))
    r = subprocess.run([REPORT, "-c", conf, "run", "--dry-run", "--day", day, "--now", now],
                       capture_output=True, text=True, timeout=60)
    check_eq(r.returncode, 0, f"tlsrpt-report --dry-run exit ({r.stderr.strip()})")
    out = r.stdout
    start = out.find("\n{")
    report = json.loads(out[start + 1:]) if start >= 0 else {}
    pols = report.get("policies", [])
    check_eq(len(pols), 1, "report: one policy")
    if pols:
        check_rows(pols[0], want, "the report")


def main():
    if not os.path.exists(CLIENT):
        print("SKIP: libtlsrpt is not available (./run fetches Debian 13's libtlsrpt0-dev)")
        sys.exit(77)
    tmp = tempdir("tlsrptd-libtlsrpt")
    try:
        col = Collector(tmp).start()
        load = workload()
        lines = "".join(json.dumps({"d": d, "pr": pr, "policies": [p]}) + "\n" for d, pr, p, _ in load)
        # one request with two policies: one session under each
        two = {"d": "multi.example", "pr": "v=TLSRPTv1;rua=mailto:a@multi.example",
               "policies": [{"type": 2, "domain": "multi.example", "strings": ["version: STSv1"],
                             "mx": ["*.multi.example"], "failed": True,
                             "details": [{"c": 302, "s": "192.0.2.1"}]},
                            {"type": 1, "domain": "mx.multi.example", "strings": ["3 1 1 AB"]}]}
        lines += json.dumps(two) + "\n"
        r = subprocess.run([CLIENT, col.sock], input=lines, capture_output=True, text=True, timeout=60)
        check_eq(r.returncode, 0, f"libtlsrpt client exit ({r.stderr.strip()})")
        check_eq(r.stdout.strip(), f"sent {len(load) + 1}", "requests sent")
        col.settle(len(load) + 1)
        want = expected(load + [(two["d"], two["pr"], p, True) for p in two["policies"]])
        check_eq(normalize(col.dump()), want, "dump of what libtlsrpt sent")
        st = col.stats()
        check_eq(st["counters"]["malformed_datagrams"] + st["counters"]["wrong_shape_datagrams"], 0,
                 "no datagram of the real library was rejected")
        col.stop()
        rows = tempdir("tlsrptd-libtlsrpt-rows")
        try:
            test_rows(rows)
        finally:
            cleanup(rows)
    finally:
        cleanup(tmp)
    done("test_libtlsrpt")


if __name__ == "__main__":
    main()
