#!/usr/bin/env python3
"""Fleet mode, the report side, against a real PostgreSQL started here:
three hosts push their day files, two reporter nodes (tlsrpt-report with
fleet_database, each its own configuration) report from the database.

Checked:
  * two reporters at the same moment (both holding claims at once: the
    reports table is locked while they start) build every (day, domain,
    record) report once, both of them building, and every destination (the SMTP sink, the HTTPS endpoint)
    receives it exactly once;
  * the reports are byte for byte (gzip) the ones a single host builds from
    the same day files with --input, count for count;
  * a reporter killed in the middle of its deliveries (HTTPS posts that do
    not answer) is taken over by the other node's next run at once: the
    attempts it had in flight are made again (the documented at-least-once
    window: those, and only those, may arrive twice), everything else once;
  * a node that hangs (SIGSTOP) keeps its reports for fleet_lease, then
    another node takes them over; its outcomes after it wakes are refused;
  * a node connected as a database role of its own (which sees other
    roles' sessions without their start time) never takes the leases of a
    node that is delivering: each destination once;
  * a database outage in the middle of a report run: the run stops with
    exit 75 and a clear message; after the restart the next run finishes
    the work; nothing is lost, nothing outside the window arrives twice;
  * a day waits for the final push of every active host (or
    fleet_push_wait); a key that first appears in a late push gets a late
    report of its own, keys already reported do not get a second one;
  * tlsrptctl spool list / show / retry work on the database.
"""
import calendar
import gzip
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import BUILD, check, check_eq, cleanup, datagram, done, tempdir  # noqa: E402
from pgtest import PgServer, require_postgres, terminate_on_sigterm  # noqa: E402
from reporterlib import CTL, MKDAY, REPORT, Endpoint, Sink, mkday  # noqa: E402

ORG = "organization_name = Example Org\ncontact_info = tlsrpt-noreply@sender.example\n"
DAY1, DAY2, DAY3 = "2025-05-22", "2025-05-23", "2025-05-24"


def epoch(day):
    return calendar.timegm(time.strptime(day, "%Y-%m-%d"))


def after(day, seconds):
    return str(epoch(day) + 86400 + seconds)


def ctl(conf, *args):
    r = subprocess.run([CTL, "-c", conf] + list(args), capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


def report_run(conf, *args, timeout=180):
    r = subprocess.run([REPORT, "-c", conf, "run"] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def report_bg(conf, *args):
    return subprocess.Popen([REPORT, "-c", conf, "run"] + list(args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for(cond, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def sink_count(sink, rcpt):
    """Messages the sink stored for 'rcpt' (arrivals, not attempts)."""
    n = 0
    if not os.path.isdir(sink.dir):
        return 0
    for f in os.listdir(sink.dir):
        if not f.endswith(".eml"):
            continue
        with open(os.path.join(sink.dir, f), "rb") as fp:
            head = fp.read(4096).decode("utf-8", "replace")
        if f"X-Sink-Rcpt-To: <{rcpt}>" in head:
            n += 1
    return n


class Fleet:
    def __init__(self, tmp, pg, ep, sink):
        self.tmp, self.pg, self.ep, self.sink = tmp, pg, ep, sink
        self.base = pg.conf_lines(tmp)
        self.hosts = []
        for h in range(3):
            state = os.path.join(tmp, f"host{h}")
            conf = os.path.join(tmp, f"host{h}.conf")
            with open(conf, "w") as fp:
                fp.write(f"state_directory = {state}\nfleet_host_name = mta{h}\n{self.base}")
            self.hosts.append((state, conf))
        self.nodes = []
        for n in range(2):
            conf = os.path.join(tmp, f"node{n}.conf")
            self.write_node(conf, f"rep{n}", "")
            self.nodes.append(conf)

    def write_node(self, conf, name, extra):
        with open(conf, "w") as fp:
            fp.write(f"state_directory = {self.tmp}/{name}-state\nspool_directory = {self.tmp}/{name}-spool\n"
                     f"fleet_host_name = {name}\n{self.base}{ORG}report_delay = 0\ndkim_sign = no\n"
                     f"delivery_mail = smtp\nsmtp_relay = smtp://127.0.0.1:{self.sink.port}\n"
                     f"smtp_starttls = off\nhttps_ca_file = {self.ep.ca}\n"
                     "allow_loopback_destinations = yes\nhttps_timeout = 60s\nmail_timeout = 60s\n"
                     f"fleet_lease = 90s\nretry_initial = 5m\nhttps_concurrency = 4\n{extra}")

    def push(self, h, day):
        """Host h's push as its timer makes it just after the day ended."""
        state, conf = self.hosts[h]
        rc, out, err = ctl(conf, "push", "--now", after(day, 120))
        check_eq(rc, 0, f"push of host {h} after {day} ({err.strip()})")


def domains(prefix, n, host, ep, kind="ok"):
    """Datagrams of 'host' for n domains: mail and HTTPS rua each; every
    domain on every host (counts add up), every third with a failure."""
    out = []
    for i in range(n):
        d = f"{prefix}{i}.example"
        pr = f"v=TLSRPTv1; rua=mailto:r{i}@{d},{ep.base}/{kind}/{prefix}{i}"
        sts = {"type": 2, "domain": d, "strings": ["version: STSv1", "mode: enforce", f"mx: mx.{d}"],
               "mx": [f"mx.{d}"]}
        for _ in range(1 + (i + host) % 3):
            out.append(datagram(d, pr, [sts]))
        if i % 3 == host:
            out.append(datagram(d, pr, [dict(sts, failed=True, details=[
                {"c": 202, "s": f"192.0.2.{host + 1}", "n": f"mx.{d}", "r": "198.51.100.9"}])]))
    return out


def db_reports(pg, day):
    rows = pg.psql(f"SELECT id, encode(gz, 'hex') FROM tlsrpt.reports WHERE day = '{day}' ORDER BY id")
    return {r[0]: bytes.fromhex(r[1]) for r in rows}


def fs_reports(spool):
    out = {}
    d = os.path.join(spool, "reports")
    for rid in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        with open(os.path.join(d, rid, "report.json.gz"), "rb") as fp:
            out[rid] = fp.read()
    return out


def waiting_reporters(pg):
    rows = pg.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tlsrpt-report'"
                   " AND wait_event_type = 'Lock'")
    return int(rows[0][0]) if rows else 0


def test_concurrent_and_identical(fl, tmp):
    """Two reporters at once, each building reports at the same moment: each
    report once, each destination once, byte-identical to --input."""
    n = 150       # more than two claims of 64
    for h in range(3):
        mkday(fl.hosts[h][0], DAY1, domains("a", n, h, fl.ep))
        fl.push(h, DAY1)
    now = after(DAY1, 3 * 3600)
    # The reports table is locked while both nodes start: each claims a
    # batch (the second skips the first one's items), builds it and waits to
    # insert it; so both hold claims at the same moment, whatever the load.
    lock = fl.pg.session()
    lock.stdin.write("BEGIN;\nLOCK TABLE tlsrpt.reports IN SHARE MODE;\nSELECT 'locked';\n")
    lock.stdin.flush()
    check_eq(lock.stdout.readline().strip(), "locked", "the reports table locked")
    p = [report_bg(conf, "--now", now) for conf in fl.nodes]
    both = wait_for(lambda: waiting_reporters(fl.pg) == 2, 60)
    check(both, "both reporters hold a claim and wait to insert their reports")
    lock.stdin.write("ROLLBACK;\n")
    lock.stdin.close()
    lock.wait(timeout=30)
    outs = [x.communicate(timeout=180) for x in p]
    for i, x in enumerate(p):
        check_eq(x.returncode, 0, f"reporter {i} at the same moment ({outs[i][1][-800:]})")
    rows = fl.pg.psql(f"SELECT count(*), count(DISTINCT (d, pr)) FROM tlsrpt.reports WHERE day = '{DAY1}'")
    check_eq(rows, [[str(n), str(n)]], "one report per (day, domain, record)")
    builders = fl.pg.psql(f"SELECT done_by, count(*) FROM tlsrpt.report_items WHERE day = '{DAY1}'"
                          " GROUP BY 1 ORDER BY 1")
    print(f"reports of {DAY1} built by: {builders}")
    check_eq([r[0] for r in builders], ["rep0", "rep1"], "both nodes built reports of the day")
    check_eq(sum(int(r[1]) for r in builders), n, "every item built once")
    for i in range(n):
        d = f"a{i}.example"
        check_eq(fl.ep.count(f"/ok/a{i}"), 1, f"{d}: HTTPS arrivals")
        check_eq(sink_count(fl.sink, f"r{i}@{d}"), 1, f"{d}: mail arrivals")
    # the same day files through a single host's --input
    single = os.path.join(tmp, "single.conf")
    with open(single, "w") as fp:
        fp.write(f"state_directory = {tmp}/single-state\nspool_directory = {tmp}/single-spool\n{ORG}"
                 "report_delay = 0\ndkim_sign = no\ndelivery_mail = off\ndelivery_https = no\n")
    files = [os.path.join(s, "days", f"{DAY1}.tlsrpt") for s, _ in fl.hosts]
    rc, out, err = report_run(single, "--now", now, "--input", *files)
    check_eq(rc, 0, f"single-host --input run ({err[-500:]})")
    fs, db = fs_reports(os.path.join(tmp, "single-spool")), db_reports(fl.pg, DAY1)
    check_eq(sorted(db), sorted(fs), "the same report ids from the database and from --input")
    same = sum(1 for k in fs if db.get(k) == fs[k])
    check_eq(same, len(fs), "reports byte-identical (gzip) to --input's")
    counts_db = {k: json.loads(gzip.decompress(v)) for k, v in db.items()}
    total = sum(p["summary"]["total-successful-session-count"] + p["summary"]["total-failure-session-count"]
                for r in counts_db.values() for p in r["policies"])
    want = sum(1 for h in range(3) for _ in domains("a", n, h, fl.ep))
    check_eq(total, want, "sessions in the reports = datagrams of the three hosts")
    # a second run of both: nothing more
    before = (len(fl.ep.posts), sum(sink_count(fl.sink, f"r{i}@a{i}.example") for i in range(n)))
    for conf in fl.nodes:
        rc, out, err = report_run(conf, "--now", after(DAY1, 4 * 3600))
        check_eq(rc, 0, f"a second run ({err[-300:]})")
    after_ = (len(fl.ep.posts), sum(sink_count(fl.sink, f"r{i}@a{i}.example") for i in range(n)))
    check_eq(after_, before, "a second run of both nodes sends nothing")


def in_flight(pg, day):
    """(domain, uri) of destinations with an attempt in flight."""
    rows = pg.psql("SELECT r.d, d.rec->>'uri' FROM tlsrpt.report_dests d JOIN tlsrpt.reports r"
                   f" ON r.id = d.report WHERE r.day = '{day}' AND d.rec ? 'in-flight'")
    return {(a, b) for a, b in rows}


def interrupted(pg, day):
    rows = pg.psql("SELECT r.d, d.rec->>'uri' FROM tlsrpt.report_dests d JOIN tlsrpt.reports r"
                   f" ON r.id = d.report WHERE r.day = '{day}'"
                   " AND d.rec::text LIKE '%interrupted: the outcome is unknown%'")
    return {(a, b) for a, b in rows}


def check_window(fl, day, prefix, n, flying, what):
    """Every destination reached; twice only where an attempt was in flight."""
    for i in range(n):
        d = f"{prefix}{i}.example"
        uri_h, uri_m = f"{fl.ep.base}/hang/{prefix}{i}", f"mailto:r{i}@{d}"
        h, m = fl.ep.count(f"/hang/{prefix}{i}"), sink_count(fl.sink, f"r{i}@{d}")
        check(h >= 1 and m >= 1, f"{what}: {d} not delivered everywhere (https {h}, mail {m})")
        check(h == 1 or (h == 2 and (d, uri_h) in flying),
              f"{what}: {d}: {h} HTTPS arrivals; 2 only if in flight at the kill ({flying})")
        check(m == 1 or (m == 2 and (d, uri_m) in flying),
              f"{what}: {d}: {m} mail arrivals; 2 only if in flight at the kill")
    states = fl.pg.psql("SELECT d.rec->>'state', count(*) FROM tlsrpt.report_dests d JOIN tlsrpt.reports r"
                        f" ON r.id = d.report WHERE r.day = '{day}' GROUP BY 1")
    check_eq(states, [["delivered", str(2 * n)]], f"{what}: every destination delivered")


def test_kill_and_takeover(fl):
    """Both reporters start at once; the one delivering is killed while its
    posts hang; the other node's next run takes over at once."""
    n = 10
    fl.ep.released.clear()
    for h in range(3):
        mkday(fl.hosts[h][0], DAY2, domains("b", n, h, fl.ep, kind="hang"))
        fl.push(h, DAY2)
    now = after(DAY2, 3 * 3600)
    procs = [report_bg(conf, "--now", now) for conf in fl.nodes]
    ok = wait_for(lambda: sum(1 for p, _ in fl.ep.posts if p.startswith("/hang/b")) >= 4, 60)
    check(ok, "the reporters are delivering (posts waiting)")
    time.sleep(0.5)
    holders = fl.pg.psql(f"SELECT lease_host, count(*) FROM tlsrpt.reports WHERE day = '{DAY2}'"
                         " AND lease_token IS NOT NULL GROUP BY 1 ORDER BY 2 DESC")
    check(len(holders) >= 1, f"a node holds leases while delivering ({holders})")
    victim = int(holders[0][0][-1]) if holders else 0
    rc, out, err = ctl(fl.nodes[0], "db", "status", "--json")
    und = json.loads(out).get("undelivered", []) if rc == 0 else []
    check(any(u["node"] == f"rep{victim}" and u["reports"] > 0 for u in und),
          f"db status shows the node delivering ({und})")
    flying = in_flight(fl.pg, DAY2)
    check(len(flying) >= 1, "attempts are recorded in flight before they are made")
    os.killpg(procs[victim].pid, signal.SIGKILL)
    procs[victim].wait()
    print(f"killed reporter rep{victim} holding {holders[0][1] if holders else 0} report(s); "
          f"{len(flying)} attempt(s) in flight")
    fl.ep.release()
    other = 1 - victim
    out, err = procs[other].communicate(timeout=180)
    check_eq(procs[other].returncode, 0, f"the other reporter's run ({err[-500:]})")
    # the next run of the surviving node takes over at once (the victim's session is gone)
    t0 = time.time()
    rc, out, err = report_run(fl.nodes[other], "--now", after(DAY2, 3 * 3600 + 60))
    check_eq(rc, 0, f"the takeover run ({err[-500:]})")
    print(f"takeover run took {time.time() - t0:.1f} s")
    check(interrupted(fl.pg, DAY2) <= flying, "only attempts in flight were recorded as interrupted")
    check_window(fl, DAY2, "b", n, flying, "kill and takeover")


def test_other_role(fl, tmp):
    """A node that connects with a database role of its own (granted the
    tables, not a member of the first node's role) sees the other nodes'
    sessions without their start time: it must not take their leases for
    dead while they deliver (it did: each of those reports went out twice)."""
    day, n = "2025-05-27", 6
    fl.ep.released.clear()
    pw = "b" + fl.pg.password
    fl.pg.psql(f"CREATE ROLE tlsrpt_b LOGIN PASSWORD '{pw}';"
               " GRANT USAGE ON SCHEMA tlsrpt TO tlsrpt_b;"
               " GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA tlsrpt TO tlsrpt_b;"
               " GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA tlsrpt TO tlsrpt_b",
               user="postgres")
    pwfile = os.path.join(tmp, "b.pw")
    with open(pwfile, "w") as fp:
        fp.write(pw + "\n")
    os.chmod(pwfile, 0o600)
    conf_b = os.path.join(tmp, "node-b.conf")
    fl.write_node(conf_b, "repb", "")
    text = open(conf_b).read()
    text = text.replace("user=tlsrpt ", "user=tlsrpt_b ")
    text = "\n".join(f"fleet_password_file = {pwfile}" if x.startswith("fleet_password_file =") else x
                     for x in text.splitlines()) + "\n"
    with open(conf_b, "w") as fp:
        fp.write(text)
    for h in range(3):
        mkday(fl.hosts[h][0], day, domains("e", n, h, fl.ep, kind="hang"))
        fl.push(h, day)
    now = after(day, 3 * 3600)
    a = report_bg(fl.nodes[0], "--now", now)
    ok = wait_for(lambda: sum(1 for x, _ in fl.ep.posts if x.startswith("/hang/e")) >= 4, 60)
    check(ok, "node A is delivering")
    time.sleep(0.5)
    held = [r[0] for r in fl.pg.psql(f"SELECT id FROM tlsrpt.reports WHERE day = '{day}'"
                                     " AND lease_host = 'rep0' ORDER BY id")]
    check(len(held) >= 1, "node A holds leases")
    if held:
        rc, out, err = ctl(conf_b, "spool", "retry", held[0])
        check(rc == 69 and "being delivered by another node" in err,
              f"node B (its own role) may not lease a report node A delivers: {rc} {out!r} {err!r}")
    b = report_bg(conf_b, "--now", after(day, 3 * 3600 + 60))
    time.sleep(3)
    fl.ep.release()
    for x, what in ((a, "node A"), (b, "node B (its own role)")):
        out, err = x.communicate(timeout=180)
        check_eq(x.returncode, 0, f"{what}: run ({err[-500:]})")
    check_window(fl, day, "e", n, set(), "a node with its own role")


def test_hang_takeover(fl, tmp):
    """A node that hangs without dying (SIGSTOP) keeps its leases until
    fleet_lease has passed since its last write; then the next run of
    another node takes its reports over. When the hung node wakes up, its
    outcomes are refused (the other node's records stand)."""
    day, n = "2025-05-28", 4
    fl.ep.released.clear()
    conf_a = os.path.join(tmp, "node-hang.conf")
    fl.write_node(conf_a, "hang-a", "")
    text = open(conf_a).read()
    for key, val in (("fleet_lease", "60s"), ("https_timeout", "20s"), ("mail_timeout", "20s")):
        text = "\n".join(f"{key} = {val}" if x.startswith(key + " =") else x
                         for x in text.splitlines()) + "\n"
    with open(conf_a, "w") as fp:
        fp.write(text)
    for h in range(3):
        mkday(fl.hosts[h][0], day, domains("f", n, h, fl.ep, kind="hang"))
        fl.push(h, day)
    now = after(day, 3 * 3600)
    a = report_bg(conf_a, "--now", now)
    ok = wait_for(lambda: sum(1 for x, _ in fl.ep.posts if x.startswith("/hang/f")) >= n, 60)
    check(ok, "node A is delivering")
    time.sleep(0.5)
    held = fl.pg.psql(f"SELECT count(*) FROM tlsrpt.reports WHERE day = '{day}' AND lease_host = 'hang-a'")
    check_eq(held, [[str(n)]], "node A holds the day's reports")
    flying = in_flight(fl.pg, day)
    os.killpg(a.pid, signal.SIGSTOP)
    t_stop = time.time()
    try:
        posts = len(fl.ep.posts)
        rc, out, err = report_run(fl.nodes[1], "--now", after(day, 3 * 3600 + 30))
        check_eq(rc, 0, f"node B while A hangs ({err[-300:]})")
        check_eq(len(fl.ep.posts), posts, "node B leaves the reports of a hung node alone within fleet_lease")
        ok = wait_for(lambda: fl.pg.psql(f"SELECT count(*) FROM tlsrpt.reports WHERE day = '{day}'"
                                         " AND lease_host = 'hang-a' AND lease_until > now()") == [["0"]], 90)
        check(ok, "node A's leases run out")
        print(f"node A's leases ran out {time.time() - t_stop:.1f} s after it hung (fleet_lease 60 s)")
        b = report_bg(fl.nodes[1], "--now", after(day, 3 * 3600 + 120))
        ok = wait_for(lambda: len(fl.ep.posts) > posts, 60)
        check(ok, "node B takes the reports over after fleet_lease")
        fl.ep.release()
        out, err = b.communicate(timeout=180)
        check_eq(b.returncode, 0, f"node B's takeover run ({err[-500:]})")
    finally:
        os.killpg(a.pid, signal.SIGCONT)
    fl.ep.release()
    out, err = a.communicate(timeout=180)
    print(f"node A after it woke up: exit {a.returncode}")
    check("leased by another node" in err and "Success" not in err,
          f"node A's late outcomes are refused, and it says why: {err[-600:]!r}")
    check_window(fl, day, "f", n, flying, "a hung node taken over")


def test_outage(fl):
    """The database goes away while a run waits on its deliveries."""
    n = 8
    fl.ep.released.clear()
    for h in range(3):
        mkday(fl.hosts[h][0], DAY3, domains("c", n, h, fl.ep, kind="hang"))
        fl.push(h, DAY3)
    now = after(DAY3, 3 * 3600)
    p = report_bg(fl.nodes[0], "--now", now)
    ok = wait_for(lambda: sum(1 for x, _ in fl.ep.posts if x.startswith("/hang/c")) >= 4, 60)
    check(ok, "the reporter is delivering")
    time.sleep(0.5)
    flying = in_flight(fl.pg, DAY3)
    fl.pg.kill()
    fl.ep.release()
    out, err = p.communicate(timeout=180)
    check_eq(p.returncode, 75, f"a run that lost its database: exit ({err[-600:]})")
    check("nothing is lost" in err or "at-least-once" in err,
          f"a run that lost its database says what happens next: {err[-600:]!r}")
    rc, out, err = report_run(fl.nodes[1], "--now", now)
    check_eq(rc, 75, f"a run with the database down: exit ({err[-300:]})")
    check("database unavailable" in err, f"the database down is said clearly: {err[-300:]!r}")
    fl.pg.start()
    rc, out, err = report_run(fl.nodes[1], "--now", after(DAY3, 3 * 3600 + 60))
    check_eq(rc, 0, f"the run after the outage ({err[-500:]})")
    check_window(fl, DAY3, "c", n, flying, "database outage")


def test_wait_and_late(fl):
    """A day waits for the final push of every active host; late keys."""
    day = "2025-05-25"
    for h in range(3):
        mkday(fl.hosts[h][0], day, domains("d", 4, h, fl.ep))
    for h in range(2):
        fl.push(h, day)
    rc, out, err = ctl(fl.hosts[2][1], "push", "--day", day, "--now", str(epoch(day) + 3600))
    check_eq(rc, 0, "a push of host 2 during the day (not final)")
    rc, out, err = report_run(fl.nodes[0], "--now", after(day, 3600))
    check(rc == 0 and "waits for the final push of: mta2" in err,
          f"the day waits for mta2's final push: {rc} {err[-400:]!r}")
    check_eq(fl.pg.psql(f"SELECT count(*) FROM tlsrpt.reports WHERE day = '{day}'"), [["0"]],
             "nothing reported while a host's final push is missing")
    rc, out, err = report_run(fl.nodes[0], "--now", after(day, 5 * 3600))
    check(rc == 0 and "reported without the final push of mta2" in err,
          f"after fleet_push_wait the day goes out anyway: {rc} {err[-400:]!r}")
    reported = fl.pg.psql(f"SELECT count(*) FROM tlsrpt.reports WHERE day = '{day}'")
    check_eq(reported, [["4"]], "4 reports after fleet_push_wait")
    # mta2 comes back: its final push adds a new key and more sessions to old ones
    late_old = [x for x in domains("d", 4, 2, fl.ep) if b'"d0.example"' in x][:1]
    mkday(fl.hosts[2][0], day, [datagram("late.example", "v=TLSRPTv1; rua=mailto:l@late.example",
                                         [{"type": 9, "domain": "late.example"}])] + late_old)
    fl.push(2, day)
    rc, out, err = report_run(fl.nodes[1], "--now", after(day, 6 * 3600))
    check_eq(rc, 0, f"the run after the late push ({err[-300:]})")
    rows = fl.pg.psql("SELECT r.d, i.late FROM tlsrpt.reports r JOIN tlsrpt.report_items i"
                      f" ON i.report = r.id WHERE r.day = '{day}' ORDER BY 1")
    check_eq(rows, [[f"d{i}.example", "f"] for i in range(4)] + [["late.example", "t"]],
             "the late key got a late report; the others no second one")
    check_eq(sink_count(fl.sink, "l@late.example"), 1, "the late report was delivered")
    rc, out, err = ctl(fl.nodes[0], "db", "status", "--json")
    st = json.loads(out) if rc == 0 else {}
    d = [x for x in st.get("days", []) if x["day"] == day]
    check(d and d[0]["late_sessions"] == 1, f"db status shows the late session of d0.example ({d})")
    check_eq(fl.ep.count("/ok/d0"), 1, "d0.example's report was not sent again")


def test_spool_commands(fl):
    """tlsrptctl spool list / show / retry on the database."""
    day = "2025-05-26"
    fl.ep.flaky_fails = True
    mkday(fl.hosts[0][0], day, [datagram("flaky.example", f"v=TLSRPTv1; rua={fl.ep.base}/flaky/1",
                                         [{"type": 9, "domain": "flaky.example"}])])
    fl.push(0, day)
    for h in (1, 2):        # no results that day: their push after it says so
        fl.push(h, day)
    rc, out, err = report_run(fl.nodes[0], "--now", after(day, 3600))
    check_eq(rc, 0, f"run with a failing endpoint ({err[-300:]})")
    rc, out, err = ctl(fl.nodes[1], "spool", "list", "--json")
    check_eq(rc, 0, f"spool list on the database ({err.strip()})")
    lst = json.loads(out) if rc == 0 else []
    ids = [e["id"] for e in lst if e.get("policy-domain") == "flaky.example"]
    check_eq(len(ids), 1, "spool list shows the report")
    n_all = int(fl.pg.psql("SELECT count(*) FROM tlsrpt.reports")[0][0])
    check_eq(len(lst), n_all, "spool list shows every report of the fleet")
    if ids:
        rc, out, err = ctl(fl.nodes[1], "spool", "show", ids[0])
        check(rc == 0 and "flaky.example" in out and "503" in out, f"spool show: {out[-300:]!r}")
        rc, out, err = ctl(fl.nodes[1], "spool", "retry", ids[0])
        check(rc == 0 and "1 destination(s) due now" in out, f"spool retry: {rc} {out!r} {err!r}")
        fl.ep.flaky_fails = False
        rc, out, err = report_run(fl.nodes[1], "--now", after(day, 3700))
        check_eq(rc, 0, f"run after the retry ({err[-300:]})")
        check_eq(fl.ep.accepted("/flaky/1"), 1, "delivered after spool retry")


def test_check_conf(fl, tmp):
    """tlsrpt-report -n checks the fleet settings without connecting."""
    conf = os.path.join(tmp, "check.conf")
    loose = os.path.join(tmp, "loose.pw")
    with open(loose, "w") as fp:
        fp.write("x\n")
    os.chmod(loose, 0o644)
    cases = [("", 0, "configuration OK"),
             ("fleet_lease = 60s\n", 78, "fleet_lease (60s) must be longer than mail_timeout"),
             ("fleet_password_file = " + loose + "\n", 78, "mode 0644"),
             ("fleet_database = host=x password=y\n", 78, "password in the conninfo")]
    for extra, want, msg in cases:
        fl.write_node(conf, "check", extra)
        # a later duplicate key is an error, so rewrite the keys the case replaces
        text = open(conf).read()
        for line in extra.splitlines():
            key = line.split("=")[0].strip()
            text = "\n".join(x for x in text.splitlines() if not x.startswith(key + " =")) + "\n" + line + "\n"
        with open(conf, "w") as fp:
            fp.write(text)
        r = subprocess.run([REPORT, "-c", conf, "-n"], capture_output=True, text=True)
        check(r.returncode == want and msg in r.stdout + r.stderr,
              f"tlsrpt-report -n with {extra.strip()!r}: {r.returncode} {r.stdout + r.stderr!r}")


def main():
    require_postgres()
    terminate_on_sigterm()
    tmp = tempdir("test_fleet_report")
    pg = ep = sink = None
    try:
        pg = PgServer().start()
        ep = Endpoint(tmp)
        sink = Sink(tmp)
        fl = Fleet(tmp, pg, ep, sink)
        rc, out, err = ctl(fl.nodes[0], "db", "init")
        check_eq(rc, 0, f"db init ({err.strip()})")
        rc, out, err = report_run(fl.nodes[0], "--now", after(DAY1, 0), "--input", "/dev/null")
        check(rc == 64 and "exclude each other" in err, f"--input in fleet mode refused: {rc} {err!r}")
        test_check_conf(fl, tmp)
        test_concurrent_and_identical(fl, tmp)
        test_kill_and_takeover(fl)
        test_other_role(fl, tmp)
        test_hang_takeover(fl, tmp)
        test_outage(fl)
        test_wait_and_late(fl)
        test_spool_commands(fl)
    finally:
        if sink:
            sink.stop()
        if ep:
            ep.stop()
        if pg:
            pg.cleanup()
        cleanup(tmp)
    done("test_fleet_report")


if __name__ == "__main__":
    main()
