#!/usr/bin/env python3
"""Fleet mode, the push side, against a real PostgreSQL started here
(Debian's server binaries, initdb into a temporary directory, 127.0.0.1 on a
private port): three collectors with separate state directories, fed
through the real libtlsrpt, push to one database.

Checked:
  * db init / status, and the schema check of push before init;
  * pushes repeated and interleaved with counting never count twice: after
    every round the fleet's day read back from the database equals, count
    for count, `tlsrptctl dump --input` of the three day files, and the
    workload computed independently (test_collector.expected);
  * a repeated push writes nothing; a host that never reached the database
    catches up, including past days, but not days older than
    fleet_push_max_age; final pushes after the day ended;
  * a database outage in the middle of a push transaction (the push blocked
    on a row lock, then the server killed) loses nothing: the previous
    push stays whole, the next push after the restart makes it exact;
  * the database unreachable at the start: exit 69 and a clear message;
  * settings: password file permissions and symlinks, a password in the
    conninfo, two machines under one host name, single-host mode.
"""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import BUILD, check, check_eq, cleanup, done, tempdir  # noqa: E402
from pgtest import PgServer, require_postgres, terminate_on_sigterm  # noqa: E402
from fleettest import CLIENT, Host, ctl, dump_fleet, dump_input, workload  # noqa: E402
from test_collector import expected, normalize  # noqa: E402

MKDAY = os.path.join(BUILD, "tests", "mkday")
# the schema steps lib/fleet/dbschema.c has (a new step must be added here:
# db migrate from 1 applies every later step, each exactly once)
LATEST = 3


def flatten(reqs):
    return [(r["d"], r["pr"], p, True) for r in reqs for p in r["policies"]]


def agree(hosts, day, what, loads=None, files=None):
    """The database's day equals the --input merge of the day files (and the
    independently computed workload when given)."""
    files = files or [h.dayfile(day) for h in hosts if os.path.exists(h.dayfile(day))]
    fleet = dump_fleet(hosts[0].conf, day)
    merged = dump_input(hosts[0].conf, day, files)
    check_eq(fleet, merged, f"{what}: dump --fleet equals dump --input of {len(files)} day files")
    if loads is not None:
        check_eq(normalize(fleet), expected(flatten(loads)), f"{what}: counts equal the workload")


def waiting_push(pg, timeout=20):
    """Wait until a push transaction waits on a lock; True if seen."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = pg.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name ="
                       " 'tlsrptctl push' AND wait_event_type = 'Lock'")
        if rows and rows[0][0] != "0":
            return True
        time.sleep(0.05)
    return False


def test_concurrent_migrate(pg, tmp):
    """Two db migrate at once (another database): each step applied once."""
    pg.psql("CREATE DATABASE tlsrpt2 OWNER tlsrpt", db="postgres", user="postgres")
    conf = os.path.join(tmp, "db2.conf")
    with open(conf, "w") as fp:
        fp.write(f"fleet_database = {pg.conninfo().replace('dbname=tlsrpt', 'dbname=tlsrpt2')}\n"
                 f"fleet_password_file = {tmp}/db.pw\n")
    rc, out, err = ctl(conf, "db", "init", "--to", "1")
    check_eq(rc, 0, f"db init --to 1 of the second database ({err.strip()})")
    procs = [subprocess.Popen([os.path.join(BUILD, "reporter", "tlsrptctl"), "-c", conf, "db", "migrate"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=60) + (p.returncode,) for p in procs]
    check_eq([o[2] for o in outs], [0, 0, 0], f"three concurrent migrates succeed ({outs})")
    for step in range(2, LATEST + 1):
        check_eq(sum(f"applied step {step}:" in o[0] for o in outs), 1,
                 f"step {step} applied once ({outs})")
    check_eq(pg.psql("SELECT version FROM tlsrpt.schema_version ORDER BY 1", db="tlsrpt2"),
             [[str(v)] for v in range(1, LATEST + 1)], "schema_version rows")


def test_settings(pg, tmp, base):
    """Bad fleet settings are clear errors (exit 78, EX_CONFIG), never a
    connection attempt with them."""
    def conf_with(extra):
        p = os.path.join(tmp, "bad.conf")
        with open(p, "w") as fp:
            fp.write(f"state_directory = {tmp}/badstate\nfleet_host_name = bad\n{extra}")
        return p

    pw = os.path.join(tmp, "db.pw")
    loose = os.path.join(tmp, "loose.pw")
    shutil.copy(pw, loose)
    os.chmod(loose, 0o644)
    link = os.path.join(tmp, "link.pw")
    os.symlink(pw, link)
    cases = [
        (f"fleet_database = {pg.conninfo()}\nfleet_password_file = {loose}\n", 78, "mode 0644"),
        (f"fleet_database = {pg.conninfo()}\nfleet_password_file = {link}\n", 78, "symlink"),
        (f"fleet_database = {pg.conninfo()} password=x\n", 78, "password in the conninfo"),
        (f"fleet_database = host=127.0.0.1 port={pg.port} dbname=tlsrpt user=tlsrpt\n"
         f"fleet_password_file = {tmp}/missing.pw\n", 78, "No such file"),
        ("", 78, "single-host mode"),
    ]
    for extra, want_rc, want_msg in cases:
        rc, out, err = ctl(conf_with(extra), "push")
        check_eq(rc, want_rc, f"push with {extra.strip()!r}: exit")
        check(want_msg in err, f"push with {extra.strip()!r}: message {err.strip()!r} "
              f"should say {want_msg!r}")
    rc, out, err = ctl(conf_with(f"fleet_database = {pg.conninfo()}\nfleet_password_file = {pw}\n"),
                       "db", "status")
    check_eq(rc, 0, f"db status with good settings ({err.strip()})")


def main():
    if not os.path.exists(CLIENT):
        print("SKIP: libtlsrpt is not available (./run fetches Debian 13's libtlsrpt0-dev)")
        sys.exit(77)
    require_postgres()
    terminate_on_sigterm()
    tmp = tempdir("test_fleet_push")
    pg = None
    hosts = []
    try:
        pg = PgServer().start()
        base = pg.conf_lines(tmp)
        hosts = [Host(tmp, f"mta{i}", base).start() for i in range(3)]
        a, b, c = hosts

        # push before the schema exists: a clear message, exit 69
        rc, out, err = a.push()
        check_eq(rc, 69, "push before db init: exit")
        check("tlsrptctl db init" in err, f"push before db init says what to do: {err.strip()!r}")
        rc, out, err = a.ctl("db", "init", "--to", "1")
        check_eq(rc, 0, f"db init --to 1 ({err.strip()})")
        rc, out, err = a.push()
        check(rc == 69 and "run tlsrptctl db migrate" in err,
              f"push against an older schema says to migrate: {rc} {err.strip()!r}")
        rc, out, err = a.ctl("db", "migrate")
        check(rc == 0 and all(f"applied step {v}:" in out for v in range(2, LATEST + 1))
              and f"schema version {LATEST} (was 1)" in out,
              f"db migrate from 1: {rc} {out!r} {err.strip()!r}")
        rc, out, err = a.ctl("db", "migrate")
        check(rc == 0 and "nothing to do" in out, f"db migrate again: {rc} {out!r}")
        rc, out, err = a.ctl("db", "init")
        check(rc != 0 and "exists already" in err, f"second db init refused: {rc} {err.strip()!r}")
        test_concurrent_migrate(pg, tmp)
        test_settings(pg, tmp, base)

        loads = []
        # round 1: A and B count and push; C counts but cannot reach the database
        for i, h in enumerate(hosts):
            w = workload(i, 1)
            h.feed(w)
            loads += w
        for h in (a, b):
            rc, out, err = h.push()
            check_eq(rc, 0, f"{h.name} push round 1 ({err.strip()})")
        day = a.days()[-1]
        agree([a, b], day, "round 1, A and B", files=[a.dayfile(day), b.dayfile(day)])

        # the same push again writes nothing
        before = pg.psql("SELECT host_id, pushes, pushed_at FROM tlsrpt.host_days ORDER BY 1")
        rc, out, err = a.push()
        check_eq(rc, 0, "repeated push")
        check("0 pushed, 1 unchanged" in out, f"repeated push is a no-op: {out.strip()!r}")
        check_eq(pg.psql("SELECT host_id, pushes, pushed_at FROM tlsrpt.host_days ORDER BY 1"),
                 before, "a repeated push leaves host_days as it was")

        # round 2: counting and pushing interleaved on every host, C joins
        for rnd in range(2, 5):
            procs = []
            for i, h in enumerate(hosts):
                w = workload(i, rnd)
                loads += w
                procs.append((h, h.feed(w, wait=False)))
            pushes = [h.push_bg() for h in hosts]     # while the datagrams arrive
            for h, p in procs:
                out, err = p.communicate(timeout=60)
                check_eq(p.returncode, 0, f"{h.name} client round {rnd} ({err.strip()})")
                h.settle()
            for p in pushes:
                out, err = p.communicate(timeout=60)
                check_eq(p.returncode, 0, f"interleaved push round {rnd} ({err.strip()})")
            for h in hosts:
                rc, out, err = h.push()
                check_eq(rc, 0, f"{h.name} push after round {rnd} ({err.strip()})")
            for d in sorted(set(x for h in hosts for x in h.days())):
                agree(hosts, d, f"round {rnd}, {d}", loads if len(a.days()) == 1 else None)

        # a database outage in the middle of a push transaction
        snapshot_b = os.path.join(tmp, "b-before.tlsrpt")
        shutil.copy(b.dayfile(day), snapshot_b)
        w = workload(1, 9)
        b.feed(w)
        lock = pg.session()
        lock.stdin.write("BEGIN;\nSELECT 1 FROM tlsrpt.host_days h JOIN tlsrpt.hosts n ON"
                         f" n.id = h.host_id WHERE n.name = '{b.name}' FOR UPDATE OF h;\n")
        lock.stdin.flush()
        time.sleep(0.3)
        p = b.push_bg()
        check(waiting_push(pg), "the push reached its last statement and waits on the lock")
        uncommitted = pg.psql(f"SELECT sum(sessions) FROM tlsrpt.host_days h JOIN tlsrpt.hosts n"
                              f" ON n.id = h.host_id WHERE n.name = '{b.name}'")
        pg.kill()
        out, err = p.communicate(timeout=60)
        lock.kill()
        lock.wait()
        check_eq(p.returncode, 69, f"push cut off by the outage: exit ({err.strip()!r})")
        check("database unavailable" in err and "nothing is lost" in err,
              f"push cut off by the outage says so: {err.strip()!r}")
        pg.start()
        check_eq(pg.psql(f"SELECT sum(sessions) FROM tlsrpt.host_days h JOIN tlsrpt.hosts n"
                         f" ON n.id = h.host_id WHERE n.name = '{b.name}'"), uncommitted,
                 "after the outage B's pushed sessions are those of its previous push")
        agree(hosts, day, "after the outage, the previous push whole",
              files=[a.dayfile(day), snapshot_b, c.dayfile(day)])
        rc, out, err = b.push()
        check_eq(rc, 0, f"push after the outage ({err.strip()})")
        loads += w
        agree(hosts, day, "after the outage and the next push", loads if len(a.days()) == 1 else None)

        # the database down when the push starts
        pg.stop()
        rc, out, err = a.push()
        check_eq(rc, 69, "push with the database down: exit")
        check("database unavailable" in err and "source of truth" in err,
              f"push with the database down says so: {err.strip()!r}")
        pg.start()

        # a host that was cut off catches up past days, but not older than fleet_push_max_age
        now = int(time.time())
        today = now // 86400
        old_days = [today - 2, today - 1, today - 40]
        names = [time.strftime("%Y-%m-%d", time.gmtime(d * 86400)) for d in old_days]
        for n, dname in enumerate(names):
            dg = subprocess.run(["python3", "-c", "import json,sys\n"
                                 "sys.path.insert(0, %r)\n" % os.path.dirname(__file__) +
                                 "from tlsrpttest import datagram\n"
                                 "for i in range(%d): sys.stdout.buffer.write(datagram("
                                 "'past.example', 'v=TLSRPTv1;rua=mailto:p@past.example',"
                                 " [{'type': 9}]) + b'\\n')" % (n + 2)],
                                capture_output=True, check=True).stdout
            subprocess.run([MKDAY, "--dir", c.state, "--day", dname], input=dg, check=True,
                           capture_output=True)
        rc, out, err = c.push()
        check_eq(rc, 0, f"catch-up push ({err.strip()})")
        for n, dname in enumerate(names[:2]):
            agree([c, a, b], dname, f"caught-up day {dname}", files=[c.dayfile(dname)])
        rows = pg.psql(f"SELECT count(*) FROM tlsrpt.host_days WHERE day = '{names[2]}'")
        check_eq(rows[0][0], "0", "a day older than fleet_push_max_age is not pushed")
        rows = pg.psql(f"SELECT final FROM tlsrpt.host_days WHERE day IN ('{names[0]}', '{names[1]}')")
        check_eq(rows, [["t"], ["t"]], "past days are pushed as final")

        # final pushes: after the day ended the push marks it; later pushes skip it
        after = str((today + 1) * 86400 + 120)
        for h in hosts:
            rc, out, err = h.push("--now", after)
            check_eq(rc, 0, f"{h.name} final push ({err.strip()})")
        rows = pg.psql(f"SELECT count(*) FILTER (WHERE final), count(*) FROM tlsrpt.host_days"
                       f" WHERE day = '{day}'")
        check_eq(rows, [["3", "3"]], "every host's final push of the day recorded")
        rc, out, err = a.push("--now", after)
        check("1 final already" in out, f"a final day is not read again: {out.strip()!r}")
        # a clock that goes back makes the day current again: read, marked not final
        rc, out, err = a.push()
        check(rc == 0 and "1 unchanged" in out, f"push after the clock went back: {out.strip()!r}")
        rows = pg.psql(f"SELECT final FROM tlsrpt.host_days h JOIN tlsrpt.hosts n ON n.id ="
                       f" h.host_id WHERE n.name = '{a.name}' AND day = '{day}'")
        check_eq(rows, [["f"]], "after the clock went back the day is not final")
        a.feed(workload(0, 21))
        loads += workload(0, 21)
        rc, out, err = a.push()
        check(rc == 0 and "1 pushed" in out, f"results counted after the clock went back are pushed: {out.strip()!r}")
        agree(hosts, day, "after the clock went back", loads if len(a.days()) == 1 else None)
        a.push("--now", after)

        # two machines under one host name: refused, nothing overwritten
        pg.psql(f"UPDATE tlsrpt.hosts SET machine_id = repeat('0', 32) WHERE name = '{a.name}'")
        rc, out, err = a.push("--all")
        check(rc != 0 and "registered to another machine" in err,
              f"a second machine under one name is refused: {rc} {err.strip()!r}")
        pg.psql(f"UPDATE tlsrpt.hosts SET machine_id = '' WHERE name = '{a.name}'")

        # the dictionaries are shared: one row per distinct policy of the fleet
        fleet = dump_fleet(a.conf, day)
        npol = sum(len(dom["policies"]) for dom in fleet["domains"])
        rows = pg.psql("SELECT count(DISTINCT policy_id) FROM tlsrpt.policy_counts"
                       f" WHERE day = '{day}'")
        check_eq(int(rows[0][0]), npol, "policy rows of the day = distinct policies of the fleet")
        rc, out, err = a.ctl("db", "status")
        check(rc == 0 and all(h.name in out for h in hosts), f"db status lists the hosts: {out!r}")

        # the database is input too: a dictionary row changed by hand is never used
        pg.psql("UPDATE tlsrpt.policies SET pdomain = 'evil.example'"
                " WHERE id = (SELECT min(id) FROM tlsrpt.policies WHERE d = 'shared0.example')")
        a.feed(workload(0, 20))
        rc, out, err = a.push()
        check(rc != 0 and "do not match their key" in err,
              f"a push next to a tampered policy row refuses: {rc} {err.strip()!r}")
        pg.psql("UPDATE tlsrpt.policies SET pdomain = 'shared0.example' WHERE pdomain = 'evil.example'")
        rc, out, err = a.push()
        check_eq(rc, 0, f"push after the repair ({err.strip()})")
        # counts whose fleet sum does not fit a report are skipped and said, not wrapped
        pg.psql("UPDATE tlsrpt.policy_counts SET successes = 9007199254740991 WHERE policy_id ="
                " (SELECT id FROM tlsrpt.policies WHERE d = 'shared1.example' LIMIT 1)")
        rc, out, err = ctl(a.conf, "dump", "--fleet", "--json", "--day", day)
        check(rc == 65 and "out of bounds" in err and "shared1.example" not in out,
              f"an overflowing sum is a skipped row: {rc} {err.strip()!r}")
    finally:
        for h in hosts:
            h.stop()
        if pg:
            pg.cleanup()
        cleanup(tmp)
    done("test_fleet_push")


if __name__ == "__main__":
    main()
