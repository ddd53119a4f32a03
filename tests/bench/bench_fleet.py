#!/usr/bin/env python3
"""Fleet benchmark: prints numbers, never passes or fails.

For each shape (hosts x domains per host), in one run and on one private
PostgreSQL (Debian's server binaries, fsync on, started here on 127.0.0.1):

  * every host's day file is made with tests/mkday from libtlsrpt-layout
    datagrams: the hosts share their domains (a fleet mails the same
    receivers), mix 40 % sts, 30 % tlsa, 30 % no-policy-found, 25 % with a
    failure detail, 1-3 sessions per domain and host;
  * push: the first push of each host (everything new), the same push again
    (unchanged: a no-op), and a push after 10 % more results (the push every
    few minutes while the day fills): seconds per host, median and max;
  * reading the whole fleet's day: `tlsrptctl dump --fleet` (database) side
    by side with `tlsrptctl dump --input` of the same day files;
  * reporting the whole fleet's day: `tlsrpt-report run` of one reporter
    node from the database, side by side with a single host's
    `tlsrpt-report run --input` of the same day files (build, gzip, store;
    delivery off, so the figures are the reporter's and the storage's); the
    report bytes of both are compared;
  * sizes: what the day's rows add to the database (pg_database_size after
    VACUUM, minus that of the empty schema) and the day files' used bytes.

usage: bench_fleet.py BUILD_DIR [--quick] [--shapes 20x10000,100x1000]
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from pgtest import PgServer, pg_bindir, terminate_on_sigterm  # noqa: E402
from tlsrpttest import datagram  # noqa: E402

CTL = os.path.join(BUILD, "reporter", "tlsrptctl")
REPORT = os.path.join(BUILD, "reporter", "tlsrpt-report")
ORG = ("organization_name = Bench Org\ncontact_info = tlsrpt@bench.example\nreport_delay = 0\n"
       "dkim_sign = no\ndelivery_mail = off\ndelivery_https = no\n")
MKDAY = os.path.join(BUILD, "tests", "mkday")
DAY = "2025-05-22"
NOW = str(20231 * 86400 + 3600)      # 2025-05-23T01:00:00Z: the day is complete

STS = ["version: STSv1", "mode: enforce", "mx: mx1.{d}", "mx: mx2.{d}", "max_age: 604800"]


def datagrams(host, ndomains, extra=False):
    """One host's results; 'extra' gives the 10 % added later in the day."""
    out = []
    for i in range(ndomains):
        if extra and i % 10 != host % 10:
            continue
        d = f"d{i}.bench.example"
        pr = f"v=TLSRPTv1; rua=mailto:tlsrpt@{d}"
        kind = i % 10
        if kind < 4:
            pol = {"type": 2, "domain": d, "strings": [s.format(d=d) for s in STS],
                   "mx": [f"mx1.{d}", f"mx2.{d}"]}
        elif kind < 7:
            pol = {"type": 1, "domain": f"mx1.{d}",
                   "strings": [f"3 1 1 {i:064x}"[:72]]}
        else:
            pol = {"type": 9, "domain": d}
        for _ in range(1 + (i + host) % 3):
            out.append(datagram(d, pr, [pol]))
        if i % 4 == 0:
            code = 205 if pol["type"] != 1 else 304
            out.append(datagram(d, pr, [dict(pol, failed=True, details=[
                {"c": code, "s": f"192.0.2.{1 + host % 250}", "n": f"mx1.{d}",
                 "r": "198.51.100.25", "f": "certificate verify failed"}])]))
    return out


def mkday(state, lines):
    r = subprocess.run([MKDAY, "--dir", state, "--day", DAY, "--max-size", str(256 << 20)],
                       input=b"\n".join(lines) + b"\n", capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.decode())


def timed(args, env=None):
    t = time.monotonic()
    r = subprocess.run(args, capture_output=True, text=True, env=env)
    dt = time.monotonic() - t
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.returncode} {r.stderr}")
    return dt, r.stdout


def shape(pg, tmp, nhosts, ndomains):
    base = pg.conf_lines(tmp)
    pg.psql("VACUUM")
    empty = pg.size()
    hosts = []
    for h in range(nhosts):
        d = os.path.join(tmp, f"h{h}")
        os.makedirs(d)
        conf = os.path.join(d, "tlsrptd.conf")
        with open(conf, "w") as fp:
            fp.write(f"state_directory = {d}/state\nfleet_host_name = bench{h}\n{base}")
        mkday(os.path.join(d, "state"), datagrams(h, ndomains))
        hosts.append((conf, os.path.join(d, "state")))
    files = [os.path.join(s, "days", f"{DAY}.tlsrpt") for _, s in hosts]
    first = [timed([CTL, "-c", c, "push", "--now", NOW])[0] for c, _ in hosts]
    again = [timed([CTL, "-c", c, "push", "--all", "--now", NOW])[0] for c, _ in hosts]
    for h, (_, s) in enumerate(hosts):
        mkday(s, datagrams(h, ndomains, extra=True))
    incr = [timed([CTL, "-c", c, "push", "--all", "--now", NOW])[0] for c, _ in hosts]
    conf0 = hosts[0][0]
    t_fleet, out_fleet = timed([CTL, "-c", conf0, "dump", "--fleet", "--json", "--day", DAY])
    t_input, out_input = timed([CTL, "-c", conf0, "dump", "--json", "--day", DAY, "--input"] + files)
    same = json.loads(out_fleet) == json.loads(out_input)
    # the day's reports: one reporter node from the database, and one host from --input
    node = os.path.join(tmp, "node.conf")
    with open(node, "w") as fp:
        fp.write(f"state_directory = {tmp}/node-state\nspool_directory = {tmp}/node-spool\n"
                 f"fleet_host_name = reporter\n{base}{ORG}")
    single = os.path.join(tmp, "single.conf")
    with open(single, "w") as fp:
        fp.write(f"state_directory = {tmp}/single-state\nspool_directory = {tmp}/single-spool\n{ORG}")
    t_rep_fleet, _ = timed([REPORT, "-c", node, "run", "--now", NOW])
    t_rep_input, _ = timed([REPORT, "-c", single, "run", "--now", NOW, "--input"] + files)
    rows = pg.psql("SELECT id, encode(gz, 'hex') FROM tlsrpt.reports")
    db_gz = {r[0]: r[1] for r in rows}
    fs_dir = os.path.join(tmp, "single-spool", "reports")
    fs_ids = sorted(os.listdir(fs_dir)) if os.path.isdir(fs_dir) else []
    identical = len(fs_ids) == len(db_gz) and all(
        db_gz.get(i) == open(os.path.join(fs_dir, i, "report.json.gz"), "rb").read().hex() for i in fs_ids)
    pg.psql("VACUUM")
    dbsize = pg.size() - empty
    used = 0
    for c, _ in hosts[:1]:
        st = json.loads(subprocess.run([CTL, "-c", c, "stats", "--json", "--day", DAY],
                                       capture_output=True, text=True).stdout)
        used = st["store_used_bytes"] * nhosts   # hosts are alike in size
    rows = int(pg.psql(f"SELECT count(*) FROM tlsrpt.policy_counts WHERE day = '{DAY}'")[0][0])
    return {
        "hosts": nhosts, "domains": ndomains, "rows": rows,
        "first": first, "again": again, "incr": incr,
        "dump_fleet": t_fleet, "dump_input": t_input, "same": same,
        "dbsize": dbsize, "used": used, "reports": len(db_gz),
        "rep_fleet": t_rep_fleet, "rep_input": t_rep_input, "identical": identical,
    }


def ms(v):
    return f"{v * 1000:,.0f} ms"


def main():
    if pg_bindir() is None:
        print("bench_fleet: PostgreSQL server binaries not found (Debian package postgresql); skipped")
        return
    terminate_on_sigterm()
    shapes = [(20, 10000), (100, 1000)]
    if "--quick" in sys.argv:
        shapes = [(5, 1000), (10, 200)]
    for a in sys.argv:
        if a.startswith("--shapes="):
            shapes = [tuple(int(x) for x in s.split("x")) for s in a.split("=", 1)[1].split(",")]
    results = []
    for nh, nd in shapes:
        tmp = tempfile.mkdtemp(prefix="bench_fleet.")
        pg = PgServer(fsync=True)
        try:
            pg.start()
            conf = os.path.join(tmp, "init.conf")
            with open(conf, "w") as fp:
                fp.write(pg.conf_lines(tmp))
            subprocess.run([CTL, "-c", conf, "db", "init"], check=True, capture_output=True)
            results.append(shape(pg, tmp, nh, nd))
        finally:
            pg.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)
    print("Fleet push and report (PostgreSQL on 127.0.0.1, fsync on; pushes one host after the other)")
    print()
    print("| hosts x domains | count rows/day | first push per host (median / max) | unchanged push | "
          "after +10 % results | database growth | day files (used) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['hosts']} x {r['domains']:,} | {r['rows']:,} | "
              f"{ms(statistics.median(r['first']))} / {ms(max(r['first']))} | "
              f"{ms(statistics.median(r['again']))} | {ms(statistics.median(r['incr']))} | "
              f"{r['dbsize'] / 1048576:.1f} MiB | {r['used'] / 1048576:.1f} MiB |")
    print()
    print("| hosts x domains | reports | report run, fleet (database) | report run, --input (same files) "
          "| ratio | same bytes | dump --fleet | dump --input | same |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---|")
    for r in results:
        print(f"| {r['hosts']} x {r['domains']:,} | {r['reports']:,} | {ms(r['rep_fleet'])} | "
              f"{ms(r['rep_input'])} | {r['rep_fleet'] / r['rep_input']:.2f} | "
              f"{'yes' if r['identical'] else 'NO'} | {ms(r['dump_fleet'])} | {ms(r['dump_input'])} | "
              f"{'yes' if r['same'] else 'NO'} |")


if __name__ == "__main__":
    main()
