#!/usr/bin/env python3
"""tlsrpt-report end to end: day files (made with tests/mkday from
libtlsrpt-format datagrams, one of them from a second host via --input),
`run --now` with a fake sendmail and a local HTTPS endpoint (test CA made
with the openssl CLI), then the spool (tlsrptctl spool list/show/retry),
the mail attachments and the POST bodies: every report decompresses to JSON
that matches the counts and validates against tests/schema/rfc8460.schema.json.
Also: a re-run sends nothing again, the current day is not reported, retry
with backoff, --dry-run writes nothing, -n errors, rua_source=dns (testdns).
"""
import email
import email.policy
import gzip
import http.server
import json
import os
import ssl
import struct
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import (BUILD, SOURCE, TestDNS, check, check_eq, cleanup, datagram,  # noqa: E402
                        done, tempdir)

import jsonschema  # noqa: E402

REPORT = os.path.join(BUILD, "reporter", "tlsrpt-report")
CTL = os.path.join(BUILD, "reporter", "tlsrptctl")
MKDAY = os.path.join(BUILD, "tests", "mkday")
SCHEMA = json.load(open(os.path.join(SOURCE, "tests", "schema", "rfc8460.schema.json")))
NOW = "2025-05-23T03:00:00Z"   # day 2025-05-22 is complete

STS = {"type": 2, "domain": "mail.example", "mx": ["mx1.mail.example"],
       "strings": ["version: STSv1", "mode: enforce", "mx: mx1.mail.example", "max_age: 86400"]}
TLSA = {"type": 1, "domain": "mx.dane.example",
        "strings": ["3 1 1 6007EEE553E85D8DF007A845D19EC343283D4E416E9A33F9EF3040C8B7C285BC"]}


def make_ca(tmp):
    """A test CA and a server certificate for 127.0.0.1, with the openssl CLI."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=tmp)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=tlsrptd test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
        "-subj", "/CN=127.0.0.1")
    with open(os.path.join(tmp, "ext.cnf"), "w") as fp:
        fp.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")
    return os.path.join(tmp, "ca.pem"), os.path.join(tmp, "srv.pem"), os.path.join(tmp, "srv.key")


class Endpoint:
    """HTTPS receiver: stores POSTs; /ok* answers 200, anything else 503."""

    def __init__(self, cert, key):
        self.posts = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                outer.posts.append((self.path, self.headers.get("Content-Type"), body))
                code = 200 if self.path.startswith("/ok") else 503
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def paths(self):
        return sorted(p for p, _, _ in self.posts)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def mkday(state, day, dgrams):
    r = subprocess.run([MKDAY, "--dir", state, "--day", day], input=b"\n".join(dgrams) + b"\n",
                       capture_output=True)
    check(r.returncode == 0, f"mkday {day}: {r.stderr.decode()}")
    return r.stdout.decode()


def messages(maildir):
    out = []
    for name in sorted(os.listdir(maildir)):
        if name.endswith(".eml"):
            with open(os.path.join(maildir, name), "rb") as fp:
                raw = fp.read()
            args = open(os.path.join(maildir, name[:-4] + ".args")).read().split()
            out.append((args, email.message_from_bytes(raw, policy=email.policy.default)))
    return out


def attachment(msg):
    for part in msg.walk():
        if part.get_content_type() == "application/tlsrpt+gzip":
            return part.get_filename(), part.get_content()
    return None, None


def summary(report):
    """{(policy-type, policy-domain): (ok, fail, sum of failed-session-count)}"""
    out = {}
    for p in report["policies"]:
        s = p["summary"]
        det = sum(d["failed-session-count"] for d in p.get("failure-details", []))
        out[(p["policy"]["policy-type"], p["policy"]["policy-domain"])] = (
            s["total-successful-session-count"], s["total-failure-session-count"], det)
    return out


def validate(report, what):
    try:
        jsonschema.validate(report, SCHEMA)
    except jsonschema.ValidationError as e:
        check(False, f"{what}: schema: {e.message} at {list(e.absolute_path)}")


def edit_first_policy(src, dst, offset, value):
    """Copy a day file with the u64 at 'offset' of its first policy record
    (store.h: 32 successes, 40 failures) set to 'value', as another writer could."""
    with open(src, "rb") as fp:
        data = bytearray(fp.read())
    used = struct.unpack_from("<Q", data, 32)[0]
    pos = 4096
    while pos < used:
        kind, size = struct.unpack_from("<II", data, pos)
        if kind == 3:
            struct.pack_into("<Q", data, pos + offset, value)
            break
        pos += size
    with open(dst, "wb") as fp:
        fp.write(data)


def run(conf, *args, env=None):
    r = subprocess.run([REPORT, "-c", conf] + list(args), capture_output=True, text=True, env=env)
    return r.returncode, r.stdout, r.stderr


def ctl(conf, *args):
    r = subprocess.run([CTL, "-c", conf, "spool"] + list(args), capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def main():
    tmp = tempdir("test_reporter")
    ep = None
    try:
        ca, cert, key = make_ca(tmp)
        ep = Endpoint(cert, key)
        base = f"https://127.0.0.1:{ep.port}"
        state, state2 = os.path.join(tmp, "state"), os.path.join(tmp, "host2")
        maildir = os.path.join(tmp, "mail")
        os.mkdir(maildir)
        sendmail = os.path.join(tmp, "sendmail")
        with open(sendmail, "w") as fp:
            # stores each message; "nouser@..." is refused permanently (EX_NOUSER)
            fp.write('#!/bin/sh\nfor a; do last="$a"; done\n'
                     'case "$last" in nouser@*) cat >/dev/null; echo "$last" >> "%s/refused"; exit 67;; esac\n'
                     'f="%s/$(date +%%s%%N).$$"\necho "$@" > "$f.args"\ncat > "$f.eml"\n'
                     % (tmp, maildir))
        os.chmod(sendmail, 0o755)

        rec_mail = "v=TLSRPTv1; rua=mailto:tlsrpt@mail.example"
        rec_both = f"v=TLSRPTv1;rua=mailto:rep@dane.example,{base}/ok/dane"
        rec_fail = f"v=TLSRPTv1;rua={base}/fail/x"
        rec_gone = "v=TLSRPTv1;rua=mailto:nouser@gone.example"
        fail_detail = {"c": 204, "s": "192.0.2.10", "n": "mx1.mail.example", "r": "198.51.100.7"}
        host1 = ([datagram("mail.example", rec_mail, [STS])] * 7 +
                 [datagram("mail.example", rec_mail, [dict(STS, failed=True, details=[fail_detail])])] * 2 +
                 [datagram("dane.example", rec_both, [TLSA])] * 3 +
                 [datagram("fail.example", rec_fail, [{"type": 9}])] +
                 [datagram("gone.example", rec_gone, [{"type": 9}])] +
                 [datagram("bad.example", "v=TLSRPTv1;rua=reports@bad.example", [{"type": 9}])])
        host2 = ([datagram("mail.example", rec_mail, [STS])] * 4 +
                 [datagram("mail.example", rec_mail, [dict(STS, failed=True, details=[fail_detail])])])
        check_eq(mkday(state, "2025-05-22", host1).strip(), "15 datagrams, 15 sessions, 0 rejected", "mkday host1")
        check_eq(mkday(state2, "2025-05-22", host2).strip(), "5 datagrams, 5 sessions, 0 rejected", "mkday host2")
        mkday(state, "2025-05-23", [datagram("today.example", rec_mail, [STS])])
        input2 = os.path.join(state2, "days", "2025-05-22.tlsrpt")

        conf = os.path.join(tmp, "tlsrptd.conf")
        spool = os.path.join(tmp, "spool")
        common = (f"state_directory = {state}\nspool_directory = {spool}\n"
                  f"contact_info = tlsrpt-noreply@sender.example\n"
                  f"report_delay = 0\ndkim_sign = no\nsendmail_command = {sendmail}\n"
                  f"https_ca_file = {ca}\nallow_loopback_destinations = yes\n"
                  f"https_timeout = 10s\nretry_initial = 5m\nretry_period = 1h\n")
        with open(conf, "w") as fp:
            fp.write(common)

        # -n: organization_name is required
        rc, out, err = run(conf, "-n")
        check_eq(rc, 78, "-n without organization_name: exit")
        check_eq(err, "tlsrpt-report: error: organization_name (default): not set (every report names it)\n"
                 "tlsrpt-report: fatal: the configuration has 1 problem\n", "-n error")
        with open(conf, "a") as fp:
            fp.write("organization_name = Sender Example Org\n")
        rc, out, err = run(conf, "-n")
        check_eq(rc, 0, f"-n: exit ({err})")

        # dry run: prints, writes nothing
        rc, out, err = run(conf, "run", "--dry-run", "--now", NOW, "--input", input2)
        check_eq(rc, 0, f"dry run exit ({err})")
        check(out.count("report 20250522-") == 5, f"dry run: got {out.count('report 20250522-')} reports, want 5")
        check(not os.path.exists(os.path.join(spool, "reports")), "dry run wrote the spool")
        check_eq(os.listdir(maildir), [], "dry run sent mail")

        # an unreadable day file: nothing reported, the day stays open
        garbage = os.path.join(tmp, "garbage.tlsrpt")
        with open(garbage, "wb") as fp:
            fp.write(b"TLSRPTDY" + b"\xff" * 5000)
        rc, out, err = run(conf, "run", "--now", NOW, "--input", input2, garbage)
        check_eq(rc, 0, f"run with a corrupt input: exit ({err})")
        check("garbage.tlsrpt" in err and "day 2025-05-22 not reported" in err,
              f"run with a corrupt input: {err!r}")
        check(not os.path.exists(os.path.join(spool, "days", "2025-05-22")), "day marked despite a corrupt input")
        check_eq(os.listdir(maildir), [], "mail sent despite a corrupt input")

        # counts above 2^53-1 (2^64-1 and 2^63 would print as -1 and INT64_MIN):
        # a clear error naming the file and the record, nothing reported
        for n, field in ((2 ** 64 - 1, 32), (2 ** 63, 40)):
            bad = os.path.join(tmp, "bigcount.tlsrpt")
            edit_first_policy(input2, bad, field, n)
            rc, out, err = run(conf, "run", "--dry-run", "--now", NOW, "--input", bad)
            check(f"bigcount.tlsrpt: policy record at offset 4" in err and f"{n} is above 2^53-1" in err
                  and "day 2025-05-22 not reported" in err, f"count {n} in a day file: {err!r}")
            check("-1" not in out and str(-2 ** 63) not in out and "report 2025" not in out,
                  f"count {n} in a day file reported: {out!r}")

        # the real run
        rc, out, err = run(conf, "run", "--now", NOW, "--input", input2)
        check_eq(rc, 0, f"run exit ({err})")
        rc, out, err = ctl(conf, "list", "--json")
        check_eq(rc, 0, f"spool list exit ({err})")
        lst = {e["policy-domain"]: e for e in json.loads(out)}
        check_eq(sorted(lst), ["bad.example", "dane.example", "fail.example", "gone.example", "mail.example"],
                 "spool domains")
        want_status = {"mail.example": "delivered", "dane.example": "delivered", "fail.example": "pending",
                       "gone.example": "failed", "bad.example": "no-destinations"}
        for d, st in want_status.items():
            if d in lst:
                check_eq(lst[d]["status"], st, f"status of {d}")
        if "mail.example" in lst:
            check_eq((lst["mail.example"]["successes"], lst["mail.example"]["failures"]), (11, 3),
                     "mail.example counts (two hosts merged)")
        check("today.example" not in lst, "the current day was reported")

        # mail: one message per mailto destination
        msgs = messages(maildir)
        rcpts = sorted(a[-1] for a, _ in msgs)
        check_eq(rcpts, ["rep@dane.example", "tlsrpt@mail.example"], "mail recipients")
        for args, msg in msgs:
            check_eq(args[:2], ["-f", "tlsrpt-noreply@sender.example"], "sendmail envelope sender")
            name, gz = attachment(msg)
            check(gz is not None, f"mail to {args[-1]}: no application/tlsrpt+gzip part")
            if gz is None:
                continue
            rep = json.loads(gzip.decompress(gz))
            validate(rep, f"mail report to {args[-1]}")
            dom = msg["TLS-Report-Domain"]
            check(name.startswith(f"sender.example!{dom}!1747872000!1747958399!") and name.endswith(".json.gz"),
                  f"attachment filename {name}")
            check(f"Report-ID: <{rep['report-id']}>" in " ".join(str(msg["Subject"]).split()),
                  f"Subject {msg['Subject']!r} lacks the report-id {rep['report-id']}")
            if dom == "mail.example":
                check_eq(summary(rep), {("sts", "mail.example"): (11, 3, 3)}, "mail.example report counts")
                det = rep["policies"][0]["failure-details"]
                check_eq(det, [{"result-type": "certificate-expired", "sending-mta-ip": "192.0.2.10",
                                "receiving-mx-hostname": "mx1.mail.example", "receiving-ip": "198.51.100.7",
                                "failed-session-count": 3}], "mail.example failure-details")
                check_eq(rep["policies"][0]["policy"]["mx-host"], ["mx1.mail.example"], "mx-host")
            elif dom == "dane.example":
                check_eq(summary(rep), {("tlsa", "mx.dane.example"): (3, 0, 0)}, "dane.example report counts")
            check_eq(rep["date-range"], {"start-datetime": "2025-05-22T00:00:00Z",
                                         "end-datetime": "2025-05-22T23:59:59Z"}, "date-range")
            check_eq(rep["organization-name"], "Sender Example Org", "organization-name")
            check_eq(rep["contact-info"], "tlsrpt-noreply@sender.example", "contact-info")

        # https: dane ok, fail 503 (retried later)
        check_eq(ep.paths(), ["/fail/x", "/ok/dane"], "POST paths")
        for path, ctype, body in ep.posts:
            check_eq(ctype, "application/tlsrpt+gzip", f"POST {path} content type")
            rep = json.loads(gzip.decompress(body))
            validate(rep, f"POST {path}")
            if path == "/ok/dane":
                check_eq(summary(rep), {("tlsa", "mx.dane.example"): (3, 0, 0)}, "POSTed dane report")
            if path == "/fail/x":
                check_eq(summary(rep), {("no-policy-found", "fail.example"): (1, 0, 0)}, "POSTed fail report")
        # the same report by mail and HTTPS is the same bytes
        dane_mail = [attachment(m)[1] for a, m in msgs if a[-1] == "rep@dane.example"]
        dane_post = [b for p, _, b in ep.posts if p == "/ok/dane"]
        check(dane_mail and dane_post and dane_mail[0] == dane_post[0], "dane report differs between mail and POST")

        # spool show: the report and the history
        fid = lst.get("fail.example", {}).get("id", "x")
        rc, out, err = ctl(conf, "show", fid)
        check_eq(rc, 0, f"spool show exit ({err})")
        check('"policy-domain":"fail.example"' in out.replace(" ", ""), "spool show: report JSON missing")
        check("/fail/x: pending, next attempt 2025-05-23T03:05:00Z" in out, f"spool show history: {out}")
        check("status 503" in out, "spool show: the 503 attempt is not listed")
        rc, out, err = ctl(conf, "show", "20250522-0000000000000000")
        check_eq(rc, 1, "spool show of an unknown id: exit")

        # a re-run at the same time: nothing new
        nposts, nmails = len(ep.posts), len(messages(maildir))
        rc, out, err = run(conf, "run", "--now", NOW, "--input", input2)
        check_eq(rc, 0, f"re-run exit ({err})")
        check_eq((len(ep.posts), len(messages(maildir))), (nposts, nmails), "re-run sent again")

        # --day: the current day is refused; a reported day is not reported again
        rc, out, err = run(conf, "run", "--now", NOW, "--day", "2025-05-23")
        check_eq(rc, 64, "--day of the current day: exit")
        check("is not complete yet" in err, f"--day of the current day: {err!r}")
        rc, out, err = run(conf, "run", "--now", "1747969200", "--day", "2025-05-22")
        check_eq(rc, 0, f"--day of a reported day: exit ({err})")
        check("day 2025-05-22 was reported already" in err, f"--day of a reported day: {err!r}")
        check_eq((len(ep.posts), len(messages(maildir))), (nposts, nmails), "--day re-run sent again")
        rc, out, err = run(conf, "run", "--now", "yesterday")
        check_eq(rc, 64, "--now yesterday: exit")

        # 5 minutes later: the 503 destination is retried (once), nothing else
        rc, out, err = run(conf, "run", "--now", "2025-05-23T03:05:00Z")
        check_eq(rc, 0, f"retry run exit ({err})")
        check_eq(ep.paths(), ["/fail/x", "/fail/x", "/ok/dane"], "POST paths after the retry")
        check_eq(len(messages(maildir)), nmails, "mail after the retry run")

        # after retry_period (1h) it is given up; the operator can make it due again
        for t in ("2025-05-23T03:15:00Z", "2025-05-23T03:35:00Z", "2025-05-23T04:00:00Z"):
            run(conf, "run", "--now", t)
        rc, out, err = ctl(conf, "list", "--json")
        lst = {e["policy-domain"]: e for e in json.loads(out)}
        check_eq(lst.get("fail.example", {}).get("status"), "failed", "fail.example after retry_period")
        check_eq(ep.paths().count("/fail/x"), 5, "attempts to /fail/x within retry_period")
        rc, out, err = ctl(conf, "retry", fid)
        check_eq((rc, out.strip()), (0, f"{fid}: 1 destination(s) due now"), "spool retry")
        run(conf, "run", "--now", "2025-05-23T05:00:00Z")
        check_eq(ep.paths().count("/fail/x"), 6, "attempts to /fail/x after spool retry")
        refused = open(os.path.join(tmp, "refused")).read().split()
        check_eq(refused, ["nouser@gone.example"], "attempts to the permanently refusing mailbox")

        # rua_source = dns: destinations from a fresh lookup (testdns.py)
        zone = (f'_smtp._tls.mail.example TXT "v=TLSRPTv1;" "rua={base}/ok/dns"\n'
                f'_smtp._tls.dane.example TXT "v=spf1 -all"\n')
        with TestDNS(tmp, zone) as dns:
            conf2 = os.path.join(tmp, "dns.conf")
            with open(conf2, "w") as fp:
                fp.write(common.replace(spool, spool + "-dns") +
                         f"organization_name = Org\nrua_source = dns\ndns_resolver = {dns.resolver}\n")
            before = len(ep.posts)
            nm = len(messages(maildir))
            rc, out, err = run(conf2, "run", "--now", NOW)
            check_eq(rc, 0, f"dns run exit ({err})")
            new = sorted(p for p, _, _ in ep.posts[before:])
            check_eq(new, ["/ok/dns"], "rua_source=dns: POSTs")
            check_eq(len(messages(maildir)), nm, "rua_source=dns: no mail (the record Postfix saw is ignored)")
    finally:
        if ep:
            ep.stop()
        cleanup(tmp)
    done("test_reporter")


if __name__ == "__main__":
    main()
