#!/usr/bin/env python3
"""`tlsrptctl metrics`: both sides in the Prometheus text format, read back
with a real parser (Debian's python3-prometheus-client): the collector's
counters of a day file, the spool written by tlsrpt-report, the received
store's reports and sessions (the 25 real reports and label values with
quotes, backslashes and newlines), the domain cap, the atomic textfile."""
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import reportgen  # noqa: E402
from tlsrpttest import BUILD, SOURCE, TLSRPTCTL, check, check_eq, datagram, done  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    text_string_to_metric_families = None

SAMPLES = os.path.join(SOURCE, "tests", "data", "real-reports")


def ctl(conf, *args):
    r = subprocess.run([TLSRPTCTL, "-c", conf] + list(args), capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def parse(text):
    """{(name, frozenset(labels)): value} and {family: type} through the real parser."""
    samples, types = {}, {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, types


def get(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def main():
    tmp = tempfile.mkdtemp(prefix="test_metrics.")
    try:
        check(text_string_to_metric_families is not None,
              "python3-prometheus-client (Debian package, ./run deps) is installed")
        if text_string_to_metric_families is None:
            done("test_metrics")
        state, spool, store = (os.path.join(tmp, x) for x in ("state", "spool", "store"))
        sink = os.path.join(tmp, "sendmail.sh")
        with open(sink, "w") as fp:
            fp.write("#!/bin/sh\ncase \"$*\" in *refuse*) cat >/dev/null; exit 67;; esac\ncat >/dev/null\n")
        os.chmod(sink, 0o755)
        conf = os.path.join(tmp, "c.conf")
        os.makedirs(store, exist_ok=True)   # the package's tmpfiles.d makes it; tlsrptctl as root writes as its owner
        with open(conf, "w") as fp:
            fp.write(f"state_directory = {state}\nspool_directory = {spool}\nreceived_directory = {store}\n"
                     f"organization_name = Example Org\ncontact_info = tlsrpt@example.net\n"
                     f"dkim_sign = no\nsendmail_command = {sink}\nreport_delay = 0\n")
        # a day of the collector, then the reporter's spool
        dg = []
        for dom, rua, n, failed in (("ok.example", "mailto:a@ok.example", 5, 1),
                                    ("bad.example", "mailto:refuse@bad.example", 3, 0)):
            p = {"type": 2, "domain": dom, "mx": [f"mx.{dom}"], "strings": ["version: STSv1", "mode: enforce"]}
            dg += [datagram(dom, f"v=TLSRPTv1; rua={rua}", [p])] * n
            dg += [datagram(dom, f"v=TLSRPTv1; rua={rua}", [dict(p, failed=True, details=[
                {"c": 9, "h": f"mx.{dom}"}])])] * failed
        dg.append(b"{not json")
        r = subprocess.run([os.path.join(BUILD, "tests", "mkday"), "--dir", state, "--day", "2026-03-01"],
                           input=b"\n".join(dg) + b"\n", capture_output=True)
        check_eq(r.returncode, 0, f"mkday ({r.stderr.decode()})")
        r = subprocess.run([os.path.join(BUILD, "reporter", "tlsrpt-report"), "-c", conf, "run", "--now",
                            "2026-03-02T12:00:00Z"], capture_output=True, text=True, timeout=60)
        check_eq(r.returncode, 0, f"tlsrpt-report ({r.stderr})")
        # received: the real reports, and one with hostile label values
        files = [os.path.join(SAMPLES, f) for f in sorted(os.listdir(SAMPLES)) if f != "MANIFEST.md"]
        rc, out, err = ctl(conf, "received", "import", *files)
        check_eq(rc, 0, f"import ({err})")
        import datetime
        weird = 'q"uo\\te\nnl.example'
        rep = reportgen.report("O", "x@o.example", "w1", datetime.date(2026, 2, 1), [
            {"domain": weird, "ok": 5, "failed": 2, "details": [('type "x"\\\n', 2)]}])
        rc, out, err = ctl(conf, "received", "import", "--trusted", reportgen.write(tmp, "w.json", rep))
        check_eq(rc, 0, f"import weird ({err})")

        prom = os.path.join(tmp, "tlsrpt.prom")
        rc, out, err = ctl(conf, "metrics", "--now", "2026-03-01", "--output", prom)
        check_eq((rc, out, err), (0, "", ""), "metrics --output")
        check_eq(stat.S_IMODE(os.stat(prom).st_mode), 0o644, "textfile mode")
        check_eq(sorted(os.listdir(tmp)).count("tlsrpt.prom"), 1, "textfile")
        check([f for f in os.listdir(tmp) if ".tmp." in f] == [], "no temporary file left")
        text = open(prom).read()
        samples, types = parse(text)
        # collector
        check_eq(get(samples, "tlsrpt_metrics_source_up", source="collector"), 1.0, "collector up")
        rc, out, err = ctl(conf, "stats", "--day", "2026-03-01", "--json")
        stats = json.loads(out)
        check_eq(stats["counters"]["datagrams"], 10, "mkday counted the 10 lines")
        for name, value in stats["counters"].items():   # metrics say what `tlsrptctl stats` says
            check_eq(get(samples, f"tlsrpt_collector_{name}_total"), float(value), f"collector {name}")
        check_eq(get(samples, "tlsrpt_collector_day_file_used_bytes"), float(stats["store_used_bytes"]),
                 "day file used")
        check_eq(get(samples, "tlsrpt_collector_day_file_size_bytes"), float(stats["store_max_bytes"]),
                 "day file size")
        check_eq(get(samples, "tlsrpt_collector_day_policies"), float(stats["policies"]), "policies")
        check_eq(types.get("tlsrpt_collector_datagrams"), "counter", "counter type")
        # spool
        rc, out, err = ctl(conf, "spool", "list", "--json")
        entries = json.loads(out)
        check_eq(get(samples, "tlsrpt_spool_reports", status="delivered"),
                 float(sum(e["status"] == "delivered" for e in entries)), "spool delivered")
        check_eq(get(samples, "tlsrpt_spool_reports", status="failed"), 1.0, "spool failed (refused)")
        check_eq(get(samples, "tlsrpt_spool_destinations", state="suppressed"), 1.0, "suppressed destination")
        check_eq(get(samples, "tlsrpt_spool_attempts", scheme="mailto", outcome="ok"), 1.0, "attempts ok")
        check_eq(get(samples, "tlsrpt_spool_attempts", scheme="mailto", outcome="failed"), 1.0, "attempts failed")
        check_eq(get(samples, "tlsrpt_spool_suppressed_destinations"), 1.0, "suppression list")
        # received
        want = reportgen.totals(store)
        for (cls, dom), t in want.items():
            check_eq(get(samples, "tlsrpt_received_reports_total", **{"class": cls, "domain": dom}),
                     float(t["reports"]), f"reports {cls} {dom!r}")
            check_eq(get(samples, "tlsrpt_received_sessions_total", **{"class": cls, "domain": dom,
                                                                       "result": "successful"}),
                     float(t["ok"]), f"sessions ok {cls} {dom!r}")
            check_eq(get(samples, "tlsrpt_received_sessions_total", **{"class": cls, "domain": dom,
                                                                       "result": "failed"}),
                     float(t["failed"]), f"sessions failed {cls} {dom!r}")
            for rt, n in t["types"].items():
                check_eq(get(samples, "tlsrpt_received_failed_sessions_total",
                             **{"class": cls, "domain": dom, "result_type": rt}), float(n),
                         f"failed {cls} {dom!r} {rt!r}")
        check(("verified", weird) in want, "the weird domain is in the store as sent")
        check_eq(get(samples, "tlsrpt_received_rejected_total"), 0.0, "rejected")
        # the domain cap: 3 domains kept, the rest summed as _other, totals equal
        with open(conf, "a") as fp:
            fp.write("metrics_max_domains = 3\n")
        rc, out, err = ctl(conf, "metrics", "--receiving")
        check_eq(rc, 0, "metrics --receiving")
        capped, _ = parse(out)
        doms = {dict(k[1])["domain"] for k in capped if k[0] == "tlsrpt_received_sessions_total"}
        check_eq(len(doms - {"_other"}), 3, "metrics_max_domains")
        check("_other" in doms, "_other")
        for res in ("successful", "failed"):
            check_eq(sum(v for k, v in capped.items() if k[0] == "tlsrpt_received_sessions_total"
                         and dict(k[1])["result"] == res),
                     float(sum(t["ok" if res == "successful" else "failed"] for t in want.values())),
                     f"capped totals ({res})")
        check(not any(k[0].startswith("tlsrpt_collector") for k in capped), "--receiving only")
        # nothing to read: still a valid file saying so
        empty = os.path.join(tmp, "empty.conf")
        with open(empty, "w") as fp:
            fp.write(f"state_directory = {tmp}/none\nspool_directory = {tmp}/none/spool\n"
                     f"received_directory = {tmp}/none/received\n")
        rc, out, err = ctl(empty, "metrics")
        check_eq(rc, 0, "metrics with nothing to read")
        s2, _ = parse(out)
        check_eq(get(s2, "tlsrpt_metrics_source_up", source="collector"), 0.0, "collector down")
        rc, out, err = ctl(conf, "metrics", "--output", os.path.join(tmp, "no", "such", "dir.prom"))
        check_eq(rc, 74, "unwritable output: CTL_IOERR")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    done("test_metrics")


if __name__ == "__main__":
    main()
