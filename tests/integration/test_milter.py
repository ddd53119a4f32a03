#!/usr/bin/env python3
"""tlsrpt-milter driven by Debian's miltertest (Lua scripts) on a unix socket:
a report mail to a configured rua address is stored (and shows in
`tlsrptctl received summary`), with DKIM verified from our own
Authentication-Results; an ordinary mail is accepted untouched; a broken
report mail is accepted (fail open) and leaves a rejection record; an
oversized one is accepted without parsing; an internal error accepts
the mail too (fails open); milter_action = discard drops
report mail only when every recipient is a rua address."""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import BUILD, TLSRPTCTL, check, check_eq, done  # noqa: E402

MILTER = os.path.join(BUILD, "milter", "tlsrpt-milter")
SAMPLES = os.environ.get("SAMPLES", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "..", "data", "real-reports"))
MILTERTEST = shutil.which("miltertest") or "/usr/bin/miltertest"


def lua_str(b):
    """A Lua string literal of the bytes b."""
    out = []
    for c in b:
        if 32 <= c < 127 and c not in (34, 92):
            out.append(chr(c))
        else:
            out.append("\\%03d" % c)
    return '"' + "".join(out) + '"'


def split_message(raw):
    """(headers [(name, value)], body) of a message, as an MTA hands them to a milter."""
    raw = raw.replace(b"\r\n", b"\n")
    head, _, body = raw.partition(b"\n\n")
    headers = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and headers:
            n, v = headers[-1]
            headers[-1] = (n, v + b"\n" + line)
        elif b":" in line:
            n, _, v = line.partition(b":")
            headers.append((n, v.lstrip(b" ")))
    return headers, body.replace(b"\n", b"\r\n")


def script(sock, transactions):
    """A Lua script: one connection, several messages. Each transaction is
    (rcpts, headers, body, want) with want a SMFIR_* name; prints OK/BAD lines."""
    lines = [f'local conn = mt.connect("unix:{sock}", 40, 0.05)',
             'if conn == nil then error("cannot connect") end',
             'assert(mt.conninfo(conn, "sender.example", "192.0.2.1") == nil)',
             'assert(mt.helo(conn, "sender.example") == nil)',
             'local acc = false']
    for i, (rcpts, headers, body, want) in enumerate(transactions):
        lines.append('assert(mt.mailfrom(conn, "<noreply@sender.example>") == nil)')
        for r in rcpts:
            lines.append(f'assert(mt.rcptto(conn, {lua_str(r.encode())}) == nil)')
        if want == "ABORT":
            lines.append(f'mt.header(conn, "Subject", "x")')
            lines.append('assert(mt.abort(conn) == nil)')
            lines.append(f'mt.echo("T{i} OK")')
            continue
        lines.append('assert(mt.data(conn) == nil)')
        lines.append('acc = mt.getreply(conn) == SMFIR_ACCEPT')
        ops = [f'mt.header(conn, {lua_str(n)}, {lua_str(v)})' for n, v in headers]
        ops.append('mt.eoh(conn)')
        # body in chunks of 60000 bytes (below libmilter's chunk limit)
        ops += [f'mt.bodystring(conn, {lua_str(body[off:off + 60000])})'
                for off in range(0, len(body), 60000)]
        ops.append('mt.eom(conn)')
        # after SMFIR_ACCEPT the MTA sends nothing more of this message
        for op in ops:
            lines.append(f'if not acc then assert({op} == nil); '
                         'acc = mt.getreply(conn) == SMFIR_ACCEPT end')
        lines.append(f'if mt.getreply(conn) == {want} then mt.echo("T{i} OK") '
                     f'else mt.echo("T{i} BAD " .. tostring(mt.getreply(conn))) end')
    lines.append('mt.disconnect(conn)')
    return "\n".join(lines) + "\n"


class Milter:
    def __init__(self, tmp, name, extra=""):
        self.sock = os.path.join(tmp, name + ".sock")
        self.store = os.path.join(tmp, name + "-store")
        self.conf = os.path.join(tmp, name + ".conf")
        with open(self.conf, "w") as fp:
            fp.write(f"milter_socket = unix:{self.sock}\n"
                     f"received_directory = {self.store}\n"
                     "milter_rua_addresses = tlsrpt@rcpt.example, mailto:other-rua@rcpt.example\n"
                     "milter_authserv_id = mx.rcpt.example\n"
                     "max_message_size = 64k\n" + extra)
        self.proc = subprocess.Popen([MILTER, "-f", "-c", self.conf], stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stderr.readline()      # "listening on ..." is the ready signal
        check("listening on" in line, f"milter did not start: {line!r}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        text = self.proc.stderr.read()
        check("Sanitizer" not in text, f"sanitizer report from the milter: {text[-2000:]}")
        return text

    def run(self, transactions, what):
        path = self.sock + ".lua"
        with open(path, "w") as fp:
            fp.write(script(self.sock, transactions))
        r = subprocess.run([MILTERTEST, "-s", path], capture_output=True, timeout=30)
        out = r.stdout.decode(errors="replace")
        check_eq(r.returncode, 0, f"{what}: miltertest exit ({r.stderr.decode(errors='replace')})")
        for i in range(len(transactions)):
            check(f"T{i} OK" in out, f"{what}: transaction {i}: {out.strip()!r}")

    def index(self):
        try:
            with open(os.path.join(self.store, "index")) as fp:
                return [line.rstrip("\n").split("\t") for line in fp]
        except FileNotFoundError:
            return []

    def ctl(self, *args):
        r = subprocess.run([TLSRPTCTL, "-c", self.conf] + list(args), capture_output=True,
                           text=True, timeout=30)
        return r.returncode, r.stdout, r.stderr


def report_of(eml):
    """The JSON report inside a report mail."""
    import email
    import gzip
    for part in email.message_from_bytes(eml).walk():
        if part.get_content_type().startswith("application/tlsrpt"):
            data = part.get_payload(decode=True)
            return json.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    return None


def report_mail(frm, submitter, ar_domain, report):
    """(headers, body) of a report mail as the MTA hands it over, with our
    server's Authentication-Results for a signature by ar_domain."""
    import gzip
    gz = base64.encodebytes(gzip.compress(json.dumps(report).encode())).replace(b"\n", b"\r\n")
    head = [(b"Authentication-Results", b"mx.rcpt.example; dkim=pass header.d=" + ar_domain.encode()),
            (b"From", frm.encode()), (b"To", b"tlsrpt@rcpt.example"),
            (b"Subject", b"Report Domain: krvtz.net Submitter: " + submitter.encode()),
            (b"TLS-Report-Domain", b"krvtz.net"), (b"TLS-Report-Submitter", submitter.encode()),
            (b"MIME-Version", b"1.0"),
            (b"Content-Type", b'multipart/report; report-type="tlsrpt"; boundary="b"')]
    body = (b"--b\r\nContent-Type: text/plain\r\n\r\nreport\r\n--b\r\n"
            b"Content-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + gz + b"--b--\r\n")
    return head, body


def test_forgery(tmp, g_head, g_body, genuine, action):
    """Issue 10 item 7, the attack as found: attacker.example signs a report
    that claims Google's contact-info and its predictable report-id (and a
    second one that is self-consistent but calls itself Google Inc.), both
    before Google's genuine report arrives. The genuine one must be stored,
    verified for google.com; the forgeries never verified for google.com,
    never merged with it, and the summary must say who signed what."""
    want = "SMFIR_DISCARD" if action == "discard" else "SMFIR_ACCEPT"
    forged = json.loads(json.dumps(genuine))
    forged["policies"][0]["summary"] = {"total-successful-session-count": 0,
                                        "total-failure-session-count": 4242}
    forged["policies"][0]["failure-details"] = [{"result-type": "certificate-expired",
                                                 "failed-session-count": 4242}]
    selfsigned = json.loads(json.dumps(forged))
    selfsigned["contact-info"] = "tlsrpt@attacker.example"
    ar_ok = [(b"Authentication-Results", b"mx.rcpt.example;\n\tdkim=pass header.d=google.com")]
    f_head, f_body = report_mail("reports@attacker.example", "google.com", "attacker.example", forged)
    s_head, s_body = report_mail("reports@attacker.example", "attacker.example", "attacker.example",
                                 selfsigned)
    m = Milter(tmp, "forge-" + action, f"milter_action = {action}\n")
    m.run([(["<tlsrpt@rcpt.example>"], f_head, f_body, want),
           (["<tlsrpt@rcpt.example>"], s_head, s_body, want),
           (["<tlsrpt@rcpt.example>"], ar_ok + g_head, g_body, want),
           # the genuine one resent: a duplicate of it, and only of it
           (["<tlsrpt@rcpt.example>"], ar_ok + g_head, g_body, want)], f"forgery ({action})")
    idx = m.index()
    check_eq([(x[0], x[5]) for x in idx],
             [("unverified", "google.com"), ("verified", "attacker.example"), ("verified", "google.com")],
             f"forgery ({action}): index (class, submitter); the genuine report is stored")
    recs = []
    for x in idx:
        rc, out, err = m.ctl("received", "show", x[1])
        recs.append(json.loads(out) if rc == 0 else {})
    check_eq([(r.get("dkim"), r.get("dkim_domain"), r.get("dkim_verified")) for r in recs],
             [("unaligned", "attacker.example", False), ("pass", "attacker.example", True),
              ("pass", "google.com", True)], f"forgery ({action}): who signed each record")
    if len(recs) == 3:
        su = recs[2].get("report", {}).get("policies", [{}])[0].get("summary")
        check_eq(su, genuine["policies"][0]["summary"], f"forgery ({action}): the genuine counts kept")
    rc, out, err = m.ctl("received", "summary", "--json")
    s = json.loads(out) if rc == 0 else {}
    ver = {(g["domain"], g["day"]): g for g in s.get("verified", [])}
    g = ver.get(("krvtz.net", "2024-09-15"), {})
    check_eq(g.get("signed_by"), {"Google Inc.": {"google.com": {"successful": 1, "failed": 0},
                                                  "attacker.example": {"successful": 0, "failed": 4242}}},
             f"forgery ({action}): verified summary says who signed")
    rc, out, err = m.ctl("received", "summary")
    check("    Google Inc.: 1 ok, 4242 failed\n" in out and
          "\n      signed by google.com: 1 ok, 0 failed\n" in out and
          "\n      signed by attacker.example: 0 ok, 4242 failed\n" in out and
          "    Google Inc.: 0 ok, 4242 failed (signed by attacker.example, not the submitter)\n" in out,
          f"forgery ({action}): text summary:\n{out}")
    m.stop()


def main():
    tmp = tempfile.mkdtemp(prefix="test_milter.")
    try:
        with open(os.path.join(SAMPLES, "google-5.eml"), "rb") as fp:
            g_head, g_body = split_message(fp.read())
        with open(os.path.join(SAMPLES, "mailru-1.eml"), "rb") as fp:
            m_head, m_body = split_message(fp.read())
        # our MTA's verdict on google-5, as OpenDKIM would add it
        ar_ok = [(b"Authentication-Results", b"mx.rcpt.example;\n\tdkim=pass header.d=google.com")]
        ar_forged = [(b"Authentication-Results", b"evil.example; dkim=pass header.d=google.com")]
        plain_head = [(b"From", b"alice@sender.example"), (b"To", b"bob@rcpt.example"),
                      (b"Subject", b"hello"), (b"Content-Type", b"text/plain")]
        plain_body = b"Just a mail.\r\n"
        gz = base64.encodebytes(b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"garbage-not-deflate")
        broken_head = [(b"From", b"noreply@sender.example"), (b"TLS-Report-Domain", b"rcpt.example"),
                       (b"Content-Type", b'multipart/report; report-type=tlsrpt; boundary="b"')]
        broken_body = (b"--b\r\nContent-Type: text/plain\r\n\r\nreport\r\n--b\r\n"
                       b"Content-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                       + gz.replace(b"\n", b"\r\n") + b"--b--\r\n")
        big_body = (b"x" * 998 + b"\r\n") * 100      # 100 kB > max_message_size 64k

        m = Milter(tmp, "a")
        m.run([
            (["<TLSRPT@Rcpt.Example>"], ar_ok + g_head, g_body, "SMFIR_ACCEPT"),
            (["<bob@rcpt.example>"], plain_head, plain_body, "SMFIR_ACCEPT"),
            (["<tlsrpt@rcpt.example>"], [], b"", "ABORT"),
            (["<other-rua@rcpt.example>"], broken_head, broken_body, "SMFIR_ACCEPT"),
            (["<tlsrpt@rcpt.example>"], plain_head, big_body, "SMFIR_ACCEPT"),
            (["<tlsrpt@rcpt.example>"], ar_forged + m_head, m_body, "SMFIR_ACCEPT"),
        ], "accept milter")
        idx = m.index()
        check_eq([(x[0]) for x in idx], ["verified", "rejected", "unverified"], "index classes")
        if len(idx) == 3:
            check_eq(idx[0][5:7], ["google.com", "krvtz.net"], "google-5 submitter/domain")
            check_eq(idx[2][5:7], ["corp.mail.ru", "krvtz.net"], "mailru-1 submitter/domain")
            check("corrupt compressed data" in idx[1][6] or "truncated" in idx[1][6],
                  f"rejection reason {idx[1][6]!r}")
            rej = os.path.join(m.store, "rejected", idx[1][1] + ".raw")
            check(os.path.exists(rej), "raw rejected message kept")
            if os.path.exists(rej):
                with open(rej, "rb") as fp:
                    raw = fp.read()
                check(b"garbage" not in raw and b"TLS-Report-Domain: rcpt.example" in raw,
                      "raw message holds the headers")
            rc, out, err = m.ctl("received", "show", idx[0][1])
            check_eq(rc, 0, "show exit")
            rec = json.loads(out) if rc == 0 else {}
            check_eq(rec.get("dkim"), "pass", "dkim of google-5")
            check_eq(rec.get("dkim_domain"), "google.com", "dkim_domain of google-5")
            check_eq(rec.get("source"), "milter", "source")
        rc, out, err = m.ctl("received", "summary", "--json")
        check_eq(rc, 0, f"summary exit ({err})")
        s = json.loads(out) if rc == 0 else {}
        ver = [(g["domain"], g["day"], g["successful"], g["failed"]) for g in s.get("verified", [])]
        unv = [(g["domain"], g["day"], g["successful"], g["failed"]) for g in s.get("unverified", [])]
        check_eq(ver, [("krvtz.net", "2024-09-15", 1, 0)], "verified summary")
        check_eq(unv, [("krvtz.net", "2023-01-25", 0, 1)], "unverified summary")
        check_eq(s.get("rejected"), 1, "rejected count")
        log = m.stop()
        check("larger than max_message_size" in log, "oversized mail logged")

        genuine = report_of(open(os.path.join(SAMPLES, "google-5.eml"), "rb").read())
        for action in ("accept", "discard"):
            test_forgery(tmp, g_head, g_body, genuine, action)

        d = Milter(tmp, "d", "milter_action = discard\n")
        d.run([
            (["<tlsrpt@rcpt.example>"], g_head, g_body, "SMFIR_DISCARD"),
            # a duplicate is discarded too
            (["<tlsrpt@rcpt.example>"], g_head, g_body, "SMFIR_DISCARD"),
            # another recipient than the rua: delivered
            (["<tlsrpt@rcpt.example>", "<bob@rcpt.example>"], m_head, m_body, "SMFIR_ACCEPT"),
            # not a report: never discarded
            (["<tlsrpt@rcpt.example>"], plain_head, plain_body, "SMFIR_ACCEPT"),
        ], "discard milter")
        check_eq([x[0] for x in d.index()], ["unverified", "unverified", "rejected"], "discard index")
        d.stop()

        # an internal error (the store cannot be written) still accepts the mail
        e = Milter(tmp, "e", "milter_action = discard\n")
        os.rmdir(os.path.join(e.store, "tmp"))
        with open(os.path.join(e.store, "tmp"), "w") as fp:
            fp.write("not a directory\n")
        e.run([(["<tlsrpt@rcpt.example>"], g_head, g_body, "SMFIR_ACCEPT")], "failing store")
        check_eq(e.index(), [], "failing store index")
        log = e.stop()
        check("storing the TLS report failed" in log, f"failing store logged: {log!r}")

        # -n checks the configuration
        bad = os.path.join(tmp, "bad.conf")
        with open(bad, "w") as fp:
            fp.write("milter_rua_addresses = not-an-address\n")
        r = subprocess.run([MILTER, "-n", "-c", bad], capture_output=True, text=True, timeout=10)
        check_eq(r.returncode, 78, "-n on a bad config")
        check('"not-an-address" is not an address' in r.stderr, f"-n message {r.stderr!r}")
        r = subprocess.run([MILTER, "-n", "-c", m.conf], capture_output=True, text=True, timeout=10)
        check_eq(r.returncode, 0, f"-n on a good config ({r.stderr})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    done("test_milter")


if __name__ == "__main__":
    main()
