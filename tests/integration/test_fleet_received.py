#!/usr/bin/env python3
"""Fleet mode, the receiving side, against a real PostgreSQL started here:
tlsrpt-milter on two inbound MX hosts (each its own store, driven by
Debian's miltertest) stores the report mails that reach it; `tlsrptctl push
--received` sends each store to the database; every reader of received
reports then reads the whole fleet from it.

Checked:
  * what the fleet's readers see (received summary, rejected, show,
    metrics --receiving) equals what one host sees when every one of the
    same mails went through its own milter: the same report reaching both
    MX hosts is one report, a forgery signed by another domain never
    shadows the genuine report (the signer is part of the identity);
  * pushes are incremental (only what the index gained) and repeatable
    (nothing twice); a push with the database down exits 69 and loses
    nothing, the milter goes on storing, the next push sends it all;
  * received import and the milter keep working locally in fleet mode.
"""
import calendar
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import TLSRPTCTL, check, check_eq, cleanup, done  # noqa: E402
from pgtest import PgServer, require_postgres, terminate_on_sigterm  # noqa: E402
from test_milter import SAMPLES, Milter, report_mail, split_message  # noqa: E402


def ctl(conf, *args):
    r = subprocess.run([TLSRPTCTL, "-c", conf] + list(args), capture_output=True, text=True,
                       timeout=60)
    return r.returncode, r.stdout, r.stderr


# When a report was stored is when the mail reached a milter: the reference
# host and the MX hosts store the same mail at different moments (a second
# boundary may fall between them). Outputs are compared with the store times
# of this run replaced; which store time the fleet keeps is checked on its own
# (the host whose push brought the record first: stored_times_of_first_push).
STAMP = re.compile(r"(20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ)")
T0 = time.time() - 5


def unstamp(text):
    """'text' (str or bytes) with every timestamp of this run as <stored>."""
    def repl(m):
        t = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%SZ"))
        return "<stored>" if t >= T0 else m.group(1)
    if isinstance(text, bytes):
        return STAMP.sub(repl, text.decode("utf-8", "surrogateescape")).encode(
            "utf-8", "surrogateescape")
    return STAMP.sub(repl, text)


def first_stores(pushes):
    """{(class, id): (host, stored)} from each push's index lines in push order:
    the database keeps a record as the first push that brought it."""
    out = {}
    for host, lines in pushes:
        for x in lines:
            out.setdefault((x[0], x[1]), (host, x[4]))
    return out


def fleet_conf(tmp, name, base):
    """A reader's configuration: the fleet database, no local store."""
    p = os.path.join(tmp, name + ".conf")
    with open(p, "w") as fp:
        fp.write(f"received_directory = {tmp}/{name}-nostore\nfleet_host_name = {name}\n{base}")
    return p


def main():
    require_postgres()
    terminate_on_sigterm()
    tmp = tempfile.mkdtemp(prefix="test_fleet_received.")
    pg = None
    milters = []
    try:
        pg = PgServer().start()
        base = pg.conf_lines(tmp)
        reader = fleet_conf(tmp, "reader", base)
        rc, out, err = ctl(reader, "db", "init")
        check_eq(rc, 0, f"db init ({err.strip()})")

        with open(os.path.join(SAMPLES, "google-5.eml"), "rb") as fp:
            g_head, g_body = split_message(fp.read())
        with open(os.path.join(SAMPLES, "mailru-1.eml"), "rb") as fp:
            m_head, m_body = split_message(fp.read())
        with open(os.path.join(SAMPLES, "google-5.eml"), "rb") as fp:
            from test_milter import report_of
            genuine = report_of(fp.read())
        ar_ok = [(b"Authentication-Results", b"mx.rcpt.example;\n\tdkim=pass header.d=google.com")]
        ar_forged = [(b"Authentication-Results", b"evil.example; dkim=pass header.d=google.com")]
        forged = json.loads(json.dumps(genuine))
        forged["policies"][0]["summary"] = {"total-successful-session-count": 0,
                                            "total-failure-session-count": 4242}
        f_head, f_body = report_mail("reports@attacker.example", "google.com", "attacker.example",
                                     forged)
        other = json.loads(json.dumps(genuine))
        other["report-id"] = "other-report-1"
        other["policies"][0]["summary"] = {"total-successful-session-count": 7,
                                           "total-failure-session-count": 1}
        o_head, o_body = report_mail("noreply-smtp-tls-reporting@google.com", "google.com",
                                     "google.com", other)
        to = ["<tlsrpt@rcpt.example>"]
        mails_a = [(to, ar_ok + g_head, g_body, "SMFIR_ACCEPT"),        # genuine, at both MX
                   (to, f_head, f_body, "SMFIR_ACCEPT")]                # a forgery first seen here
        mails_b = [(to, ar_ok + g_head, g_body, "SMFIR_ACCEPT"),
                   (to, ar_forged + m_head, m_body, "SMFIR_ACCEPT"),     # unverified
                   (to, o_head, o_body, "SMFIR_ACCEPT")]
        late_a = [(to, ar_ok + g_head, g_body, "SMFIR_ACCEPT"),         # the genuine one again
                  (to, [(b"Authentication-Results", b"mx.rcpt.example; dkim=pass header.d=google.com")]
                   + o_head, o_body, "SMFIR_ACCEPT")]

        # the reference: one host's milter sees every mail
        single = Milter(tmp, "single")
        milters.append(single)
        single.run(mails_a + mails_b + late_a, "single host")

        # the fleet: two MX hosts, each its own store
        mx = [Milter(tmp, f"mx{i}", base + f"fleet_host_name = mx{i}\n") for i in range(2)]
        milters += mx
        # a second apart each time, so that the store times always differ
        time.sleep(1.1)
        mx[0].run(mails_a, "mx0")
        time.sleep(1.1)
        mx[1].run(mails_b, "mx1")
        pushes = []
        for i, m in enumerate(mx):
            lines = m.index()
            rc, out, err = m.ctl("push", "--received")
            check_eq(rc, 0, f"push --received ({err.strip()})")
            pushes.append((f"mx{i}", lines))
        rc, out, err = mx[0].ctl("push", "--received")
        check(rc == 0 and "0 report(s) new" in out and "0 index line(s)" in out,
              f"a second push sends nothing: {out.strip()!r}")

        # the database down: the milter goes on, the push says so, nothing is lost
        pg.stop()
        mx[0].run(late_a, "mx0 with the database down")
        rc, out, err = mx[0].ctl("push", "--received")
        check(rc == 69 and "database unavailable" in err and "nothing is lost" in err,
              f"push --received with the database down: {rc} {err.strip()!r}")
        rc, out, err = ctl(reader, "received", "summary", "--json")
        check_eq(rc, 69, f"a reader with the database down: exit ({err.strip()})")
        pg.start()
        pushes.append(("mx0", mx[0].index()[len(pushes[0][1]):]))
        # mx0 stored one new record (the genuine report again is a duplicate
        # there); mx1 had pushed the same report already: one row for both
        rc, out, err = mx[0].ctl("push", "--received")
        check(rc == 0 and "1 index line(s): 0 report(s) new in the database, 1 there already" in out,
              f"the push after the outage: {out.strip()!r}")

        # the store time the fleet keeps: the first push's
        rows = pg.psql("SELECT r.class, r.id, h.name, r.stored_at FROM tlsrpt.received r"
                       " JOIN tlsrpt.hosts h ON h.id = r.host_id ORDER BY 1, 2")
        first = first_stores(pushes)
        check_eq(rows, [[c, i, h, t] for (c, i), (h, t) in sorted(first.items())],
                 "each record as the first push brought it (host, store time)")
        for (c, i), (h, t) in sorted(first.items()):
            got = json.loads(ctl(reader, "received", "show", i)[1] or "{}").get("stored")
            want = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t)))
            check_eq(got, want, f"received show {i}: stored by {h}")

        # every reader sees what the single host sees
        for args in (["received", "summary", "--json"], ["received", "summary", "--json", "--days", "0"],
                     ["received", "rejected", "--json"], ["received", "summary"]):
            r1 = ctl(single.conf, *args)
            r2 = ctl(reader, *args)
            check_eq(r2[0], r1[0], f"{' '.join(args)}: exit")
            check_eq(unstamp(r2[1]), unstamp(r1[1]), f"{' '.join(args)}: the fleet's equals one host's")
        rows = pg.psql("SELECT class, count(*) FROM tlsrpt.received GROUP BY 1 ORDER BY 1")
        want = {}
        for x in single.index():
            want.setdefault(x[0], set()).add(x[1])
        check_eq(rows, [[k, str(len(v))] for k, v in sorted(want.items())],
                 "rows per class = distinct records of the single host's store")
        for x in single.index():
            a, b = ctl(single.conf, "received", "show", x[1]), ctl(reader, "received", "show", x[1])
            check_eq((b[0], unstamp(b[1])), (a[0], unstamp(a[1])), f"received show {x[1]}")
        # the genuine report and the forgery stay apart: the forgery, signed by
        # attacker.example, is unverified and never merged into google.com's
        summ = json.loads(ctl(reader, "received", "summary", "--json")[1])
        ver = json.dumps(summ.get("verified", []))
        unv = json.dumps(summ.get("unverified", []))
        check("attacker.example" not in ver and "4242" not in ver and "attacker.example" in unv,
              f"the forgery stays apart from the genuine report: {ver[:300]} / {unv[:300]}")
        m1 = ctl(single.conf, "metrics", "--receiving", "--now", "2024-09-20")
        m2 = ctl(reader, "metrics", "--receiving", "--now", "2024-09-20")
        check_eq(m2[1], m1[1], "metrics --receiving: the fleet's equals one host's")

        # the dashboard: the same pages from the database as from one host's store
        pages = []
        for conf, name in ((single.conf, "single"), (reader, "fleet")):
            out_dir = os.path.join(tmp, "site-" + name)
            rc, out, err = ctl(conf, "dashboard", "--output", out_dir, "--now", "2024-09-20",
                               "--days", "30")
            check_eq(rc, 0, f"dashboard ({name}): {err.strip()}")
            files = {}
            for root, _, names in os.walk(out_dir):
                for n in names:
                    with open(os.path.join(root, n), "rb") as fp:
                        files[os.path.relpath(os.path.join(root, n), out_dir)] = unstamp(fp.read())
            pages.append(files)
        check_eq(sorted(pages[1]), sorted(pages[0]), "dashboard: the same files")
        # sent.html is the sent side: the reference host has no spool, the
        # fleet's (empty) spool is the database's; every other page the same
        diff = [k for k in pages[0] if k != "sent.html" and pages[1].get(k) != pages[0][k]]
        check_eq(diff, [], "dashboard: the same bytes (received pages; store times apart)")
        check(b"Delivery state per destination" in pages[1].get("sent.html", b""),
              "dashboard: the sent page from the database's spool")

        # import stays local, and reaches the database with the next push
        rc, out, err = mx[1].ctl("received", "import", os.path.join(SAMPLES, "microsoft-2.json"))
        check_eq(rc, 0, f"received import in fleet mode, locally ({err.strip()})")
        rc, out, err = mx[1].ctl("push", "--received")
        check(rc == 0 and "1 report(s) new" in out, f"the imported report pushed: {out.strip()!r}")
    finally:
        for m in milters:
            m.stop()
        if pg:
            pg.cleanup()
        cleanup(tmp)
    done("test_fleet_received")


if __name__ == "__main__":
    main()
