#!/usr/bin/env python3
"""`tlsrptctl received`: every real report in the samples imports, and the
summary gives the exact counts per policy domain, day and organization;
duplicates, rejections, filters, the HTML page and `show`."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import SOURCE, TLSRPTCTL, check, check_eq, done  # noqa: E402

SAMPLES = os.environ.get("SAMPLES", os.path.join(SOURCE, "tests", "data", "real-reports"))

# file -> (status, class) of `received import`; mailru-2.json is the payload
# of mailru-1.eml, so it is the same report (same submitter, id, domain, range).
IMPORT = {
    "google-1.eml": "stored", "google-2.json": "stored", "google-3.eml": "stored",
    "google-4.eml": "stored", "google-5.eml": "stored", "google-6.eml": "stored",
    "google-7.json": "stored", "google-8.json": "stored", "google-9.json": "stored",
    "google-10.json": "stored", "google-11.json": "stored", "mailru-1.eml": "stored",
    "mailru-2.json": "duplicate", "microsoft-1.eml": "stored", "microsoft-2.json": "stored",
    "microsoft-3.eml": "stored", "microsoft-4.eml": "stored", "microsoft-5.json": "stored",
    "microsoft-6.json": "stored", "microsoft-7.json": "stored", "socketlabs-1.json": "stored",
    "socketlabs-2.json": "stored", "stalwart-1.json": "stored", "stalwart-2.json": "stored",
    "sys4-1.json": "stored",
}

# (domain, day) -> (ok, failed, {org: (ok, failed)}, {result-type: n}, {policy-type: n},
#                   {failing mx: n}, {sending ip: n})
# Counted by hand from the samples (MANIFEST.md and the JSON itself).
SUMMARY = {
    ("cardinalhealth.ca", "2024-09-03"): (48, 0, {"Google Inc.": (48, 0)}, {}, {"no-policy-found": 1}, {}, {}),
    ("domain.de", "2025-04-12"): (2, 0, {"Google Inc.": (2, 0)}, {}, {"no-policy-found": 1}, {}, {}),
    ("example.com", "2024-01-09"): (0, 3, {"Example Inc.": (0, 3)}, {"validation-failure": 3}, {"sts": 1},
                                    {"example.com": 3}, {"209.85.222.201": 2, "209.85.208.176": 1}),
    ("example.com", "2024-02-17"): (53, 0, {"Google Inc.": (53, 0)}, {}, {"sts": 1}, {}, {}),
    ("example.com", "2024-03-26"): (7, 0, {"Microsoft Corporation": (7, 0)}, {}, {"sts": 1}, {}, {}),
    ("example.com", "2026-02-08"): (4523, 2, {"Google Inc.": (4523, 2)}, {"certificate-expired": 2}, {"sts": 1},
                                    {"mail.example.com": 2}, {"192.0.2.1": 2}),
    ("example.com", "2026-05-12"): (4, 0, {"Google Inc.": (4, 0)}, {}, {"sts": 1}, {}, {}),
    ("example.com", "2026-05-13"): (2, 0, {"Microsoft Corporation": (2, 0)}, {}, {"sts": 1}, {}, {}),
    ("fastmaildmarc.com", "2020-03-02"): (343, 0, {"Google Inc.": (343, 0)}, {}, {"no-policy-found": 1}, {}, {}),
    ("foo-bar.io", "2025-03-27"): (1, 0, {"Google Inc.": (1, 0)}, {}, {"no-policy-found": 1}, {}, {}),
    ("hin.ch", "2026-01-11"): (1, 0, {"refluxstop.de": (1, 0)}, {}, {"sts": 1}, {}, {}),
    ("josh.scot", "2025-08-03"): (2, 2, {"Microsoft Corporation": (2, 2)}, {"Testing": 3}, {"sts": 1},
                                  {"testing.josh.scot": 3}, {"x.x.x.x": 3}),
    ("krvtz.net", "2023-01-25"): (0, 1, {"Mail.ru": (0, 1)}, {"sts-policy-fetch-error": 1}, {"sts": 1}, {}, {}),
    ("krvtz.net", "2024-09-13"): (4, 0, {"Microsoft Corporation": (4, 0)}, {}, {"sts": 1, "tlsa": 1}, {}, {}),
    ("krvtz.net", "2024-09-15"): (1, 0, {"Google Inc.": (1, 0)}, {}, {"sts": 1}, {}, {}),
    ("krvtz.net", "2024-09-18"): (2, 0, {"Google Inc.": (2, 0)}, {}, {"sts": 1}, {}, {}),
    ("mpi-klsb.mpg.de", "2025-09-20"): (1, 0, {"sonne.floppy.org": (1, 0)}, {}, {"no-policy-found": 1}, {}, {}),
    ("random.net", "2025-05-23"): (4, 0, {"Microsoft Corporation": (4, 0)}, {}, {"sts": 1, "tlsa": 1}, {}, {}),
    ("server.com", "2026-01-11"): (1, 0, {"server.com": (1, 0)}, {}, {"sts": 1}, {}, {}),
    ("test.mailflow.ovh", "2020-02-06"): (1, 13, {"Google Inc.": (1, 13)}, {"validation-failure": 13},
                                          {"no-policy-found": 1, "sts": 2}, None, None),
    ("test.mailflow.ovh", "2020-02-27"): (12, 2, {"socketlabs.com": (12, 2)}, {"certificate-host-mismatch": 2},
                                          {"sts": 2}, {"mta-sts.test.mailflow.ovh": 2}, {"142.0.177.133": 2}),
    ("test.mailflow.ovh", "2020-04-13"): (12, 2, {"ludemo.net": (12, 2)}, {"certificate-host-mismatch": 2},
                                          {"sts": 2}, {"mta-sts.test.mailflow.ovh": 2}, {"142.0.177.133": 2}),
    ("test.xmox.nl", "2023-01-10"): (2, 0, {"Microsoft Corporation": (2, 0)}, {}, {"sts": 1}, {}, {}),
    ("xxxxxxxx.xx", "2025-06-14"): (0, 3, {"Microsoft Corporation": (0, 3)}, {"sts-policy-fetch-error": 3},
                                    {"sts": 1}, {}, {}),
}


def ctl(conf, *args):
    r = subprocess.run([TLSRPTCTL, "-c", conf] + list(args), capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


REPORT = ('{"organization-name":"%s","date-range":{"start-datetime":%s,'
          '"end-datetime":"2025-08-03T23:59:59Z"},"contact-info":"tlsrpt@%s",'
          '"report-id":"%s","policies":[{"policy":{"policy-type":"sts","policy-domain":"%s"},'
          '"summary":{"total-successful-session-count":%s,"total-failure-session-count":%s}}]}')


def test_messy(tmp):
    """Issue 11 item 8: what real mail does to reports. Accept what is
    unambiguous and note it as a deviation of that sender (received show),
    normalize domain names, name the real problem otherwise."""
    conf = os.path.join(tmp, "messy.conf")
    with open(conf, "w") as fp:
        fp.write(f"received_directory = {tmp}/messy\n")

    def imp(name, data):
        path = os.path.join(tmp, name)
        with open(path, "wb") as fp:
            fp.write(data)
        rc, out, err = ctl(conf, "received", "import", path)
        m = re.search(r": (stored|duplicate|rejected) ([0-9a-f]{24})(.*)", out)
        return rc, (m.group(1), m.group(2), m.group(3)) if m else (None, None, out + err)

    def show(rid):
        rc, out, _ = ctl(conf, "received", "show", rid)
        return json.JSONDecoder().raw_decode(out)[0] if rc == 0 else {}

    # a mail saved with its mbox "From " line
    with open(os.path.join(SAMPLES, "google-5.eml"), "rb") as fp:
        eml = fp.read()
    rc, (st, rid, _) = imp("mbox.eml", b"From noreply-smtp-tls-reporting@google.com Sun Sep 15 00:00:00 2024\n" + eml)
    check_eq((rc, st), (0, "stored"), "a mail with an mbox From line")
    rec = show(rid) if rid else {}
    check(any("mbox" in w for w in rec.get("warnings", [])) and rec.get("deviations", 0) >= 1,
          f"mbox From line not noted: {rec.get('warnings')}")

    # counts written as strings, the policy domain in capitals with a trailing dot
    rc, (st, rid, _) = imp("strings.json", (REPORT % ("Strings Org", '"2025-08-03T00:00:00Z"', "strings.example",
                                                      "s1", "Josh.Scot.", '"2"', '"1"')).encode())
    check_eq((rc, st), (0, "stored"), "counts written as strings")
    rec = show(rid) if rid else {}
    pol = rec.get("report", {}).get("policies", [{}])[0]
    check_eq((pol.get("policy", {}).get("policy-domain"), pol.get("summary")),
             ("josh.scot", {"total-successful-session-count": 2, "total-failure-session-count": 1}),
             "normalized domain and counts")
    warn = " ".join(rec.get("warnings", []))
    check('written as a string ("2"), taken as 2' in warn and "normalized" in warn
          and rec.get("deviations") == 4, f"deviations of the sender: {rec.get('warnings')}")
    rc, (st, rid, _) = imp("plain.json", (REPORT % ("Plain Org", '"2025-08-03T00:00:00Z"', "plain.example",
                                                    "p1", "josh.scot", "5", "0")).encode())
    check_eq((rc, st), (0, "stored"), "the same domain written plainly")
    rc, out, err = ctl(conf, "received", "summary", "--json")
    groups = [(g["domain"], g["day"], g["successful"], g["failed"]) for g in json.loads(out)["unverified"]]
    check(("josh.scot", "2025-08-03", 7, 1) in groups and not any(g[0] != "josh.scot" and
          g[0].lower().rstrip(".") == "josh.scot" for g in groups),
          f"Josh.Scot. and josh.scot grouped apart: {groups}")

    # a start-datetime that is not a string: said as what it is
    rc, (st, rid, why) = imp("numdate.json", (REPORT % ("N", "1754179200", "n.example", "n1", "n.example",
                                                        "1", "0")).encode())
    check_eq((rc, st), (65, "rejected"), "a numeric start-datetime")
    check("date-range.start-datetime is a number (1754179200), not an RFC 3339 date-time string" in why,
          f"reason: {why!r}")
    rc, (st, rid, why) = imp("objdate.json", (REPORT % ("N", "{}", "n.example", "n2", "n.example",
                                                        "1", "0")).encode())
    check("date-range.start-datetime is an object, not an RFC 3339 date-time string" in why,
          f"reason: {why!r}")
    # a count that is a string but not a number is named as such
    rc, (st, rid, why) = imp("badcount.json", (REPORT % ("N", '"2025-08-03T00:00:00Z"', "n.example", "n3",
                                                         "n.example", '"many"', "0")).encode())
    check('total-successful-session-count is a string ("many"), not an integer' in why, f"reason: {why!r}")


def test_big_counts(tmp):
    """Issue 10 item 4: eleven reports of 2^53 sessions for one day. The
    totals add up exactly; the chart's bar heights stay within 0..100 (the
    old code multiplied the totals by 100 and overflowed: negative SVG
    heights, and a UBSan report)."""
    conf = os.path.join(tmp, "big.conf")
    with open(conf, "w") as fp:
        fp.write(f"received_directory = {tmp}/big\n")
    files = []
    for i in range(11):
        path = os.path.join(tmp, f"big{i}.json")
        with open(path, "w") as fp:
            fp.write(REPORT % ("Big Org", '"2025-08-03T00:00:00Z"', "big.example", f"b{i}", "big.example",
                               str(2 ** 53), str(2 ** 53)))
        files.append(path)
    rc, out, err = ctl(conf, "received", "import", *files)
    check_eq((rc, out.count(": stored ")), (0, 11), f"eleven big reports stored ({err})")
    rc, out, err = ctl(conf, "received", "summary", "--json")
    g = json.loads(out)["unverified"] if rc == 0 else []
    check_eq([(x["successful"], x["failed"]) for x in g], [(11 * 2 ** 53, 11 * 2 ** 53)], "exact totals")
    html = os.path.join(tmp, "big.html")
    rc, out, err = ctl(conf, "received", "summary", "--html", html)
    check_eq(rc, 0, f"html with big counts ({err})")
    check("runtime error" not in err, f"sanitizer: {err}")
    with open(html) as fp:
        heights = [int(h) for h in re.findall(r'height="(-?\d+)"', fp.read())[1:]]
    check(heights and all(0 <= h <= 100 for h in heights), f"bar heights {heights}")


def main():
    tmp = tempfile.mkdtemp(prefix="test_received.")
    try:
        conf = os.path.join(tmp, "tlsrptd.conf")
        os.makedirs(os.path.join(tmp, "store"), exist_ok=True)   # the package's tmpfiles.d makes it; tlsrptctl as root writes as its owner
        with open(conf, "w") as fp:
            fp.write(f"received_directory = {tmp}/store\n")
        files = sorted(IMPORT)
        check_eq(sorted(f for f in os.listdir(SAMPLES) if f != "MANIFEST.md"), files, "sample files")
        rc, out, err = ctl(conf, "received", "import", *[os.path.join(SAMPLES, f) for f in files])
        check_eq(rc, 0, f"import exit ({err})")
        got = {}
        for line in out.splitlines():
            m = re.match(r"(.*): (stored|duplicate|rejected) ([0-9a-f]{24})", line)
            if m:
                got[os.path.basename(m.group(1))] = m.group(2)
        check_eq(got, IMPORT, "import statuses")
        check_eq(out.count("(unverified"), 25, "imports are unverified")

        rc, out, err = ctl(conf, "received", "summary", "--json")
        check_eq(rc, 0, f"summary exit ({err})")
        s = json.loads(out)
        check_eq(s["verified"], [], "no verified reports")
        check_eq(s["rejected"], 0, "no rejections")
        groups = {(g["domain"], g["day"]): g for g in s["unverified"]}
        check_eq(sorted(groups), sorted(SUMMARY), "summary groups")
        for key, (ok, failed, orgs, rtypes, ptypes, mx, ips) in SUMMARY.items():
            g = groups.get(key)
            if g is None:
                continue
            check_eq((g["successful"], g["failed"]), (ok, failed), f"{key} sessions")
            check_eq({k: (v["successful"], v["failed"]) for k, v in g["organizations"].items()}, orgs,
                     f"{key} organizations")
            check_eq(g.get("result_types", {}), rtypes, f"{key} result types")
            check_eq(g.get("policy_types", {}), ptypes, f"{key} policy types")
            if mx is not None:
                check_eq(g.get("failing_mx_hosts", {}), mx, f"{key} failing MX")
            if ips is not None:
                check_eq(g.get("sending_ips", {}), ips, f"{key} sending IPs")
        check_eq(groups[("krvtz.net", "2024-09-13")]["by_policy_type"],
                 {"sts": {"successful": 2, "failed": 0}, "tlsa": {"successful": 2, "failed": 0}},
                 "microsoft-3 by policy type")
        g = groups.get(("test.mailflow.ovh", "2020-02-06"), {})
        # 8 rows in two sts policies; 209.85.167.193 is in both
        check_eq(g.get("sending_ips"), {"209.85.219.43": 1, "209.85.167.193": 2, "209.85.210.68": 1,
                                        "209.85.210.65": 1, "209.85.167.196": 4, "209.85.167.194": 2,
                                        "209.85.167.195": 2}, "google-11 sending IPs")
        check_eq(g.get("failing_mx_hosts"), {"postfix1.test.mailflow.ovh": 13}, "google-11 failing MX hosts")

        # text output and filters
        rc, out, err = ctl(conf, "received", "summary", "--domain", "KRVTZ.net")
        check_eq(rc, 0, "summary --domain exit")
        check_eq(len(re.findall(r"^  krvtz\.net \d{4}-\d\d-\d\d: ", out, re.M)), 4, "krvtz.net days")
        check("example.com" not in out, "--domain filters")
        check("    by policy type (a session may count under several): sts 2 ok, 0 failed; tlsa 2 ok, 0 failed\n"
              in out, "by policy type line")
        check("  krvtz.net 2023-01-25: 0 ok, 1 failed; policies: sts\n    Mail.ru: 0 ok, 1 failed\n"
              "    result types: sts-policy-fetch-error (1)\n" in out, f"text summary:\n{out}")
        rc, out, err = ctl(conf, "received", "summary", "--days", "1")
        check_eq(rc, 1, "summary --days 1: nothing (CTL_EMPTY)")

        # HTML: one self-contained file
        html = os.path.join(tmp, "r.html")
        rc, out, err = ctl(conf, "received", "summary", "--html", html)
        check_eq(rc, 0, f"html exit ({err})")
        with open(html) as fp:
            page = fp.read()
        check("<svg" in page and "</html>" in page, "html has a chart")
        check(re.search(r'(src|href)\s*=', page) is None, "html has no external assets")
        check("Mail.ru: 0/1" in page, "html has the organization counts")

        # show
        ids = re.findall(r"^unverified\t([0-9a-f]{24})", open(os.path.join(tmp, "store", "index")).read(), re.M)
        check_eq(len(ids), 24, "index lines")
        rc, out, err = ctl(conf, "received", "show", ids[0])
        check_eq(rc, 0, "show exit")
        rec = json.loads(out)
        check_eq(rec["class"], "unverified", "show class")
        check_eq(rec["dkim"], "unknown", "dkim of an import")
        check_eq(rec["report"]["organization-name"], "Google Inc.", "show report")
        rc, out, err = ctl(conf, "received", "show", "000000000000000000000000")
        check_eq(rc, 1, "show of an unknown id")

        # a broken file is rejected and kept; importing it again finds the same record
        bad = os.path.join(tmp, "bad.json.gz")
        with open(bad, "wb") as fp:
            fp.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03truncated")
        rc, out, err = ctl(conf, "received", "import", bad)
        check_eq(rc, 65, "import of a broken file: CTL_DATAERR")
        m = re.search(r"rejected ([0-9a-f]{24}): (.*)", out)
        check(m is not None, f"rejected line: {out!r}")
        if m:
            check("compressed data" in m.group(2), f"reason {m.group(2)!r}")
            rc, out, err = ctl(conf, "received", "show", m.group(1))
            check_eq(rc, 0, "show rejection")
            check(f"rejected/{m.group(1)}.raw" in out, "show names the raw file")
        rc, out, err = ctl(conf, "received", "summary", "--json")
        check_eq(json.loads(out)["rejected"], 1, "one rejection counted")

        # --trusted puts a report among the verified ones
        rc, out, err = ctl(conf, "received", "import", "--trusted", os.path.join(SAMPLES, "google-7.json"))
        check_eq(rc, 0, "trusted import")
        check("(verified)" in out, f"trusted import output {out!r}")
        rc, out, err = ctl(conf, "received", "summary", "--json")
        v = json.loads(out)["verified"]
        check_eq([(g["domain"], g["successful"]) for g in v], [("fastmaildmarc.com", 343)], "verified group")
        rc, out, err = ctl(conf, "received", "bogus")
        check_eq(rc, 64, "usage error")
        test_messy(tmp)
        test_big_counts(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    done("test_received")


if __name__ == "__main__":
    main()
