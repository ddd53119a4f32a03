#!/usr/bin/env python3
"""End to end: tlsrpt-policyd is the smtp_tls_policy_maps of a real Postfix
(socketmap over a unix socket in the chroot tree), fetching MTA-STS policies
from a local HTTPS server (test CA, sts_ca_file, sts_https_port) found
through the test DNS server; Postfix delivers to the test MX servers;
tlsrptd counts what Postfix (and, for failed fetches, tlsrpt-policyd)
reports; tlsrpt-report builds the reports.

    test_e2e_policyd.py --gen 3.10   postfix_generation = 3.10: replies with
                                     the TLSRPT attributes, 3.10 datagrams
    test_e2e_policyd.py --gen 3.7    postfix_generation = 3.7: plain replies,
                                     the log follower
Options: --keep (keep the work directory, printed).

Domains (table DOMAINS): enforce with a good MX (also one not looked up
before the mail), enforce whose MX has a self-signed certificate, enforce
with a wrong-name MX, "mx: *.backup.test" with an MX one label below
(matches) and two labels below (must not match, RFC 8461 4.1), testing mode
with a self-signed MX, a policy without mx lines (sts-policy-invalid), a 404
(sts-policy-fetch-error), a policy host whose certificate names another host
(sts-webpki-invalid). Each has _mta-sts and _smtp._tls TXT records.
DANE (the test DNS server stands for a validating resolver: AD bit set):
a domain with DANE only, one with DANE and an MTA-STS policy (DANE applies,
the policy is never fetched), and one whose MX has a usable TLSA record
that matches nothing under an MTA-STS policy that alone would pass (the
mail is deferred and reported as a tlsa failure, not delivered as sts),
and one whose TLSA lookup fails (bogus, SERVFAIL) under such a policy
(tlsrpt-policyd answers dane, Postfix's own lookup fails and defers, the
report shows dnssec-invalid under the tlsa policy: sent by tlsrpt-policyd
on 3.10, from Postfix's log line on 3.7);
reports show the tlsa policy (the MX host, its TLSA record) exactly, on
3.10 from Postfix itself, on 3.7 from the log follower (tlsrpt-policyd's
dane-only answer through the name "tlsrpt", then its own TLSA lookup).
Smart hosts (transport_maps): the keys Postfix asks ("[host]:25",
"[host]", "host:25") and tlsrpt-policyd's replies to them.
3.7: tlsrptd's log_policy_map is tlsrpt-policyd under the request name
"tlsrpt" (3.10-style replies, through postmap -q), so sessions are reported
under the sts policy Postfix applied.

Steps and exact checks:
 1. prime the policy cache: one socketmap lookup per domain (all but one,
    whose fetch Postfix's own lookup starts), as Postfix makes it; the
    replies are compared with the exact strings wanted (and again after
    the mail, for every domain);
 2. one message per domain, one flush, wait for every delivery attempt;
    which MX got which message (over TLS), which were deferred and why;
    Postfix logged no warning but the MX-pattern one; every policy was
    fetched exactly once (HTTP hits) and tlsrpt-policyd logged exactly
    one fetch failure (and sent one datagram) per broken domain;
 3. `tlsrptctl dump --json`: per domain exactly the policies (type, domain,
    policy strings in file order, mx-host patterns), session counts and
    failure details (Postfix's for the MX sessions, tlsrpt-policyd's for
    the fetch failures);
 4. `tlsrpt-report run --dry-run`: one report per domain with the same
    policies, destinations and date range.
Exit 0 pass, 1 fail, 77 skipped (no root, no tree, programs not built).
"""
import argparse
import datetime
import http.server
import itertools
import os
import re
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib as E  # noqa: E402

failures = []
STS_ID = "20260101T000000"
HTTPS_ADDR = "127.0.0.1"
# where the policy socket is, as Postfix (chrooted) sees it
POLICY_SOCK = "/var/spool/postfix/run/tlsrpt/policy.sock"
# e2elib's MX kinds plus two under backup.test (test CA, right names) for
# the pattern "*.backup.test": one label (matches) and two (does not)
MXS = dict(E.MX, one=("127.0.0.16", "mx.backup.test"),
           deep=("127.0.0.17", "deep.sub.backup.test"),
           # DANE: own listeners with test-CA certificates for their names,
           # so that an MTA-STS policy alone would pass on both
           dane=("127.0.0.18", "mx-dane.test"),          # TLSA 3 1 1 <its key>
           danebad=("127.0.0.19", "mx-danebad.test"),    # TLSA 3 1 1 <zeros>
           danebogus=("127.0.0.20", "mx-danebogus.test"))  # TLSA lookup: SERVFAIL
EXTRA_MX = ("one", "deep", "dane", "danebad", "danebogus")  # the second testmx.py
TLSA_BAD = "3 1 1 " + "00" * 32                      # usable, matches nothing
TLSA_BOGUS = "SERVFAIL"                              # a validating resolver's bogus
GEN = None          # "3.10" or "3.7", set by main()


def check(cond, msg):
    if not cond:
        failures.append(msg)
        E.log("FAIL: " + msg)


def capture(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)


def body(mode, mx):
    return ["version: STSv1", "mode: " + mode] + ["mx: " + m for m in mx] + ["max_age: 86400"]


class Domain:
    """One test domain: its MX, what its policy host serves and what must
    happen. site: (HTTP status, policy lines) or "webpki" (the policy host
    presents a certificate for another name)."""

    def __init__(self, name, mxkind, site, fetch_error=None, prime=True, tlsa=None):
        self.name = name
        self.tlsa = tlsa                        # TLSA record of the MX (DNSSEC-signed)
        self.prime = prime                      # looked up before the mail
        self.mxaddr, self.mxname = MXS[mxkind]
        self.mxkind = mxkind
        self.site = site
        self.fetch_error = fetch_error          # result type name or None
        lines = site[1] if site not in ("webpki", None) else []
        self.lines = lines
        self.mode = None
        self.mx = []
        if not fetch_error and site is not None:
            self.mode = [l[6:] for l in lines if l.startswith("mode: ")][0]
            self.mx = [l[4:] for l in lines if l.startswith("mx: ")]

    @property
    def record(self):
        return "v=TLSRPTv1; rua=mailto:tlsrpt@" + self.name

    def enforced(self):
        return self.mode == "enforce"

    def dane(self):
        """tlsrpt-policyd answers dane-only: Postfix does DANE, MTA-STS is
        not consulted (RFC 8461 2)."""
        return self.tlsa is not None

    def fetched(self):
        """Has tlsrpt-policyd fetched the policy (once)?"""
        return self.site not in ("webpki", None) and not self.dane()

    def delivered(self):
        """Postfix delivers unless an enforced policy meets a bad MX."""
        if self.dane():
            return self.tlsa not in (TLSA_BAD, TLSA_BOGUS)
        if self.mxkind == "deep":
            # 3.7 has only match=.backup.test, which takes any depth
            return not self.enforced() or GEN == "3.7"
        return not self.enforced() or self.mxkind in ("good", "one")

    def skipped_mx(self):
        """Postfix 3.10.5+ (smtp_tls_enforce_sts_mx_patterns = yes) does not
        connect to an MX outside the policy's patterns, and reports nothing."""
        return self.enforced() and self.mxkind == "deep" and GEN == "3.10"

    def reply(self, gen):
        """The socketmap reply wanted for a lookup of this domain."""
        if self.dane():
            return "OK dane" if self.tlsa == TLSA_BOGUS else "OK dane-only"
        if self.site is None or self.fetch_error or (self.mode == "testing" and gen == "3.7"):
            return "NOTFOUND "
        tl = (" policy_type=sts policy_domain=%s" % self.name +
              "".join(" mx_host_pattern=" + m for m in self.mx) +
              "".join(" { policy_string = %s }" % l for l in self.lines))
        if self.mode == "testing":
            return "OK may" + tl
        sec = "OK secure match=%s servername=hostname" % ":".join(
            m[1:] if m.startswith("*") else m for m in self.mx)
        return sec + (tl if gen == "3.10" else "")

    def expected(self, gen):
        """Canonical counters (e2elib.canon_*) for this domain."""
        out = []
        if self.skipped_mx():
            return out
        if self.tlsa == TLSA_BOGUS:
            # no session: Postfix defers on its failed TLSA lookup; 3.10
            # reports nothing (tlsrpt-policyd's datagram has it), 3.7 logs
            # "TLSA lookup error" (the log follower's)
            return [("tlsa", self.mxname, (), (), 0, 1,
                     (("dnssec-invalid", None, self.mxname, None, None, None, None, 1),))]
        # the MX session, as Postfix reports it (3.10) or the log follower
        # finds it (3.7: log_policy_map = the policyd's name "tlsrpt")
        if self.dane():
            # Postfix's own: policy domain = the MX host (TLSA base domain)
            ptype, pdom, strings, mxh = "tlsa", self.mxname, (self.tlsa,), ()
        elif not self.fetch_error:
            ptype, pdom, strings, mxh = "sts", self.name, tuple(self.lines), tuple(self.mx)
        else:
            # NOTFOUND: Postfix's default level may
            ptype, pdom, strings, mxh = "no-policy-found", self.name, (), ()
        if self.delivered():
            out.append((ptype, pdom, strings, mxh, 1, 0, ()))
        else:
            code, reason = DANE_FAIL if self.dane() else E.MUST_MATCH[self.mxkind]
            if gen == "3.10":
                helo = self.mxname.lower()     # the greeting name of E.EHLO
                det = (E.RT[code], E.SMTP_BIND, self.mxname, helo, self.mxaddr, None, reason, 1)
            else:
                det = (E.RT[code], None, self.mxname, None, self.mxaddr, None, reason, 1)
            out.append((ptype, pdom, strings, mxh, 0, 1, (det,)))
        # the failed fetch, as tlsrpt-policyd reports it (only the code; the
        # lines fetched for an invalid policy)
        if self.fetch_error:
            strings = tuple(self.lines) if self.fetch_error == "sts-policy-invalid" else ()
            out.append(("sts", self.name, strings, (), 0, 1,
                        ((self.fetch_error, None, None, None, None, None, None, 1),)))
        return sorted(out, key=repr)


DOMAINS = [
    Domain("enforce-good.sts.test", "good",
           (200, body("enforce", ["mx-good.test", "*.backup.test"]))),
    # "*.backup.test": RFC 8461 4.1, the wildcard is one label. Postfix
    # 3.10.13 skips the two-label MX (nothing reported); 3.7 delivers to it
    # (its match=.backup.test takes any depth): pinned, a known limitation
    Domain("enforce-one.sts.test", "one", (200, body("enforce", ["*.backup.test"]))),
    Domain("enforce-deep.sts.test", "deep", (200, body("enforce", ["*.backup.test"]))),
    # not primed: Postfix's own lookup starts the fetch and waits for it
    Domain("cold-enforce.sts.test", "good", (200, body("enforce", ["mx-good.test"])), prime=False),
    Domain("enforce-self.sts.test", "self", (200, body("enforce", ["mx-self.test"]))),
    Domain("enforce-wrong.sts.test", "wrong", (200, body("enforce", ["mx-wrong.test"]))),
    Domain("testing-self.sts.test", "self", (200, body("testing", ["mx-self.test"]))),
    # no mx line in enforce mode: invalid (RFC 8461 3.2)
    Domain("invalid.sts.test", "good", (200, ["version: STSv1", "mode: enforce", "max_age: 86400"]),
           fetch_error="sts-policy-invalid"),
    Domain("notfound.sts.test", "good", (404, ["not found"]), fetch_error="sts-policy-fetch-error"),
    Domain("webpki.sts.test", "good", "webpki", fetch_error="sts-webpki-invalid"),
    # DANE (TLSA values filled in once the keys exist): DANE only; DANE and
    # an MTA-STS policy (DANE applies, the policy is never fetched); a TLSA
    # record that matches nothing under an MTA-STS policy that alone would
    # pass: the delivery fails as DANE and is reported as tlsa
    Domain("dane.pd.test", "dane", None, tlsa="good"),
    Domain("both.pd.test", "dane", (200, body("enforce", ["mx-dane.test"])), tlsa="good"),
    Domain("danebroken.pd.test", "danebad", (200, body("enforce", ["mx-danebad.test"])),
           tlsa=TLSA_BAD),
    # the TLSA lookup fails (bogus) under a signed MX, and an MTA-STS
    # policy would pass: "dane", Postfix's own lookup fails, mail deferred,
    # reported as dnssec-invalid under the tlsa policy
    Domain("danebogus.pd.test", "danebogus", (200, body("enforce", ["mx-danebogus.test"])),
           tlsa=TLSA_BOGUS),
]
# Smart hosts: mail for these recipient domains goes to a fixed next hop
# (transport_maps); Postfix asks the policy table for the next hop as
# written, and tlsrpt-policyd must find its Policy Domain (RFC 8461 3.4).
# Nobody has a TLSRPT record here: 3.10 reports nothing, the 3.7 log
# follower counts one session without a TLSRPT record each.
RELAYS = [
    # (recipient domain, next hop, key Postfix asks, reply, MX kind)
    ("relay-dane.pd.test", "[mx-dane.test]:25", "[mx-dane.test]:25", "OK dane-only", "dane"),
    ("relay-sts.pd.test", "[mx-good.test]", "[mx-good.test]", "NOTFOUND ", "good"),
    # MX lookup for the next hop (it has none: its address, RFC 7672 2.2.2)
    ("relay-port.pd.test", "mx-dane.test:25", "mx-dane.test:25", "OK dane-only", "dane"),
]
# what Postfix reports and logs for a usable TLSA RRset that matches no
# certificate
DANE_FAIL = (203, None)
DANE_FAIL_LOG = "num=65:no matching DANE TLSA records"
HITS = {}
HITS_LOCK = threading.Lock()
SERIAL = itertools.count(int(time.time()) * 100)


# ------------------------------------------------------------ policy host

class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        dom = host[len("mta-sts."):] if host.startswith("mta-sts.") else host
        with HITS_LOCK:
            HITS[dom] = HITS.get(dom, 0) + 1
        d = [x for x in DOMAINS if x.name == dom and x.site not in ("webpki", None)]
        if not d or self.path != "/.well-known/mta-sts.txt":
            status, text = 404, "no such policy\n"
        else:
            status, text = d[0].site[0], "".join(l + "\n" for l in d[0].site[1])
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class TLSServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass        # the client that rejects the wrong-name certificate


def issue(pki, name, sans):
    """A leaf certificate of the e2elib test CA for 'sans'."""
    p = lambda n: os.path.join(pki, n)
    with open(p(name + ".ext"), "w") as fp:
        fp.write("basicConstraints = CA:false\nextendedKeyUsage = serverAuth\n"
                 "subjectAltName = %s\n" % ",".join("DNS:" + s for s in sans))
    E.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
           "-nodes", "-keyout", p(name + ".key"), "-out", p(name + ".csr"),
           "-subj", "/CN=" + sans[0]])
    E.run(["openssl", "x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.crt"),
           "-CAkey", p("ca.key"), "-set_serial", str(next(SERIAL)), "-days", "30",
           "-extfile", p(name + ".ext"), "-out", p(name + ".crt")])
    return p(name + ".crt"), p(name + ".key")


def start_https(pki):
    good = issue(pki, "sts-good", ["mta-sts." + d.name for d in DOMAINS
                                   if d.site not in ("webpki", None)])
    wrong = issue(pki, "sts-wrong", ["mta-sts.elsewhere.test"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*good)
    wctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    wctx.load_cert_chain(*wrong)

    def sni(sock, name, _ctx):
        if name and name.startswith("mta-sts.webpki."):
            sock.context = wctx
    ctx.sni_callback = sni
    srv = TLSServer((HTTPS_ADDR, 0), Handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def zone_text():
    lines = ["# generated by tests/e2e/test_e2e_policyd.py"]
    for addr, name in MXS.values():
        lines.append("%s A %s" % (name, addr))
    for d in DOMAINS:
        lines.append("%s MX 10 %s" % (d.name, d.mxname))
        lines.append('_smtp._tls.%s TXT "%s"' % (d.name, d.record))
        if d.site is not None:
            lines.append('_mta-sts.%s TXT "v=STSv1; id=%s"' % (d.name, STS_ID))
            lines.append("mta-sts.%s A %s" % (d.name, HTTPS_ADDR))
        tlsa = ("_25._tcp.%s SERVFAIL" % d.mxname if d.tlsa == TLSA_BOGUS else
                "_25._tcp.%s TLSA %s" % (d.mxname, d.tlsa))
        if d.tlsa and tlsa not in lines:        # two domains share mx-dane.test
            lines.append(tlsa)
    return "\n".join(lines) + "\n"


def socketmap_query(path, keys, timeout=30):
    """Replies of tlsrpt-policyd for keys, one connection, as Postfix asks."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(path)
    buf, out = b"", []
    for key in keys:
        req = ("postfix " + key).encode()
        s.sendall(b"%d:%s," % (len(req), req))
        while True:
            if b":" in buf:
                n, rest = buf.split(b":", 1)
                if len(rest) > int(n):
                    out.append(rest[:int(n)].decode())
                    buf = rest[int(n) + 1:]
                    break
            data = s.recv(65536)
            if not data:
                raise RuntimeError("tlsrpt-policyd closed the connection")
            buf += data
    s.close()
    return out


# -------------------------------------------------------------------- run

class Run:
    def __init__(self, args):
        self.gen = args.gen
        self.args = args
        self.env = E.Env(keep=args.keep)
        self.pf = E.Postfix(self.env, self.gen)
        self.build = os.environ.get("BUILD_DIR") or os.path.join(E.SOURCE_DIR, "build")
        self.progs = {"tlsrptd": os.path.join(self.build, "milter", "tlsrptd"),
                      "tlsrpt-policyd": os.path.join(self.build, "milter", "tlsrpt-policyd"),
                      "tlsrptctl": os.path.join(self.build, "reporter", "tlsrptctl"),
                      "tlsrpt-report": os.path.join(self.build, "reporter", "tlsrpt-report")}
        self.https = None
        self.t0 = time.monotonic()

    def elapsed(self):
        return time.monotonic() - self.t0

    def spawn_logged(self, name, cmd, env=None):
        errf = open(os.path.join(self.env.tmp, name + ".log"), "a")
        return self.env.spawn(cmd, stdout=errf, stderr=subprocess.STDOUT, env=env)

    def wait_socket(self, proc, path, what):
        deadline = time.monotonic() + 10
        while not os.path.exists(path):
            if proc.poll() is not None:
                raise RuntimeError("%s exited %d before creating %s" % (
                    what, proc.returncode, path))
            if time.monotonic() > deadline:
                raise RuntimeError("%s did not create %s" % (what, path))
            time.sleep(0.05)

    def setup(self):
        env, pf, tmp = self.env, self.pf, self.env.tmp
        E.log("Postfix %s in %s, work dir %s" % (pf.version(), pf.tree, tmp))
        pki = os.path.join(tmp, "pki")
        certs = E.make_certs(pki)
        self.https = start_https(pki)
        # the MX certificates of the second testmx.py, before the zone (TLSA)
        extra = {k: issue(pki, "mx-" + k, [MXS[k][1]]) for k in EXTRA_MX}
        for d in DOMAINS:
            if d.tlsa == "good":
                d.tlsa = E.tlsa_311(extra["dane"][0])
        zone = os.path.join(tmp, "zone")
        with open(zone, "w") as fp:
            fp.write(zone_text())
        env.start_dns(zone)
        spool = os.path.join(tmp, "mx-spool")
        os.makedirs(spool)
        env.start_mx(certs, spool)
        # the two MX under backup.test: a second testmx.py
        cmd = [sys.executable, os.path.join(E.TOOLS, "testmx.py"), "--spool", spool]
        for kind in EXTRA_MX:
            addr, name = MXS[kind]
            cmd += ["--listen", addr, "25", name] + list(extra[kind])
        errf = open(os.path.join(tmp, "testmx2.log"), "w")
        E.wait_ready(env.spawn(cmd, stdout=subprocess.PIPE, stderr=errf, universal_newlines=True),
                     "testmx.py (backup.test)")
        # tlsrpt-policyd is the policy table (instead of e2elib's texthash)
        table = "smtp_tls_policy_maps = texthash:/etc/postfix/tls_policy\n"
        if table not in E.MAIN_CF_COMMON:
            raise RuntimeError("e2elib.MAIN_CF_COMMON has no line %r to replace" % table)
        # relative to the queue directory, as the README gives it: Debian
        # runs smtp(8) chrooted there (these trees do not, the install test
        # does)
        E.MAIN_CF_COMMON = E.MAIN_CF_COMMON.replace(
            table, "smtp_tls_policy_maps = socketmap:unix:%s:postfix\n" %
            os.path.relpath(POLICY_SOCK, "/var/spool/postfix"))
        with open(os.path.join(pf.tree, "etc/postfix/transport"), "w") as fp:
            fp.write("".join("%s smtp:%s\n" % (r[0], r[1]) for r in RELAYS))
        pf.configure(os.path.join(pki, "ca.crt"),
                     extra_main="transport_maps = texthash:/etc/postfix/transport\n")

        # one configuration file for tlsrptd, tlsrpt-policyd and the tools
        state = os.path.join(tmp, "state")
        os.makedirs(state)
        self.collector_sock = (pf.socket_path if self.gen == "3.10" else
                               os.path.join(tmp, "tlsrpt.sock"))
        self.policy_sock = os.path.join(pf.tree, POLICY_SOCK.lstrip("/"))
        if len(self.policy_sock) >= 104:
            E.skip("policy socket path too long for AF_UNIX: " + self.policy_sock)
        lines = E.base_conf_lines(state, self.collector_sock) + [
            "policy_socket = unix:" + self.policy_sock,
            "postfix_generation = " + self.gen,
            "policy_default_level = may",
            "sts_cache_file = " + os.path.join(state, "sts-cache"),
            "sts_https_port = %d" % self.https.server_address[1],
            "sts_ca_file = " + os.path.join(pki, "ca.crt"),
            # the test's policy host is on loopback (issue 10 item 8)
            "sts_allow_loopback_destinations = yes",
            "sts_reply_budget = 10s",
            "sts_fetch_timeout = 10s",
        ]
        env_collector = None
        if self.gen == "3.7":
            # the log has no policy data: the follower asks tlsrpt-policyd
            # (name "tlsrpt": 3.10 replies) with "postmap -q", here the
            # tree's postmap (the socket path is the same inside the tree)
            lines += ["log_source = " + pf.logfile,
                      "log_position_file = " + os.path.join(state, "logpos"),
                      "log_policy_map = socketmap:unix:%s:tlsrpt" % POLICY_SOCK]
            open(pf.logfile, "w").close()     # the follower starts at offset 0
            bindir = os.path.join(tmp, "bin")
            os.makedirs(bindir)
            with open(os.path.join(bindir, "postmap"), "w") as fp:
                fp.write('#!/bin/sh\nexec chroot %s /usr/sbin/postmap "$@"\n' % pf.tree)
            os.chmod(os.path.join(bindir, "postmap"), 0o755)
            env_collector = dict(os.environ, PATH=bindir + ":" + os.environ.get(
                "PATH", "/usr/bin:/bin"))
        self.conf = os.path.join(tmp, "tlsrptd.conf")
        with open(self.conf, "w") as fp:
            fp.write("\n".join(lines) + "\n")

        self.collector = self.spawn_logged(
            "tlsrptd", [self.progs["tlsrptd"], "-c", self.conf, "-f"], env=env_collector)
        self.wait_socket(self.collector, self.collector_sock, "tlsrptd")
        self.policyd = self.spawn_logged("tlsrpt-policyd", [
            self.progs["tlsrpt-policyd"], "-c", self.conf, "-f", "-v"])
        self.wait_socket(self.policyd, self.policy_sock, "tlsrpt-policyd")
        pf.start()
        E.log("servers, tlsrptd, tlsrpt-policyd and Postfix up (%.1fs)" % self.elapsed())

    def prime(self):
        """One lookup per domain, as Postfix makes it: the fetches happen
        now, not while Postfix waits for the reply budget."""
        primed = [d for d in DOMAINS if d.prime]
        keys = [d.name for d in primed]
        t = time.monotonic()
        got = socketmap_query(self.policy_sock, keys)
        E.log("policy cache primed in %.2fs" % (time.monotonic() - t))
        for d, g in zip(primed, got):
            check(g == d.reply(self.gen), "policyd reply for %s:\n   got  %r\n   want %r" % (
                d.name, g, d.reply(self.gen)))
        # a second lookup answers from the cache, fetches nothing more
        again = socketmap_query(self.policy_sock, keys)
        check(again == got, "second lookups: got %r, want the first replies %r" % (again, got))

    def send(self):
        pf = self.pf
        pf.mark()
        rcpts = ["rcpt@" + d.name for d in DOMAINS] + ["rcpt@" + r[0] for r in RELAYS]
        for r in rcpts:
            pf.submit(r)
        pf.flush(rcpts)
        attempts = pf.wait_attempts(rcpts)
        E.log("%d delivery attempts logged (%.1fs)" % (len(attempts), self.elapsed()))
        text = pf.read_log()
        expected_warnings = []
        for d in DOMAINS:
            line = attempts["rcpt@" + d.name]
            want = "sent" if d.delivered() else "deferred"
            m = re.search(r" status=(\w+)", line)
            check(m and m.group(1) == want, "%s: got %r, want status=%s" % (d.name, line, want))
            if d.skipped_mx():
                want = ("relay=none, ", "status=deferred (server unavailable or unable to "
                        "receive mail)")
                check(all(w in line for w in want), "%s: got %r, want %r in it" % (
                    d.name, line, want))
                want = ("warning: MX name '%s' does not match STS MX pattern for '%s'" % (
                    d.mxname, d.name))
                n = sum(1 for l in text.splitlines() if want in l)
                check(n == 1, "%s: log lines %r: got %d, want 1" % (d.name, want, n))
                expected_warnings.append(want)
            elif d.tlsa == TLSA_BOGUS:
                want = "status=deferred (TLSA lookup error for %s:25)" % d.mxname
                check(want in line, "%s: got %r, want %r in it" % (d.name, line, want))
                expected_warnings += [
                    "warning: DANE TLSA lookup problem: ",
                    "warning: TLS policy lookup for %s/%s: TLSA lookup error for %s:25" % (
                        d.name, d.mxname, d.mxname)]
            elif not d.delivered():
                check("status=deferred (Server certificate not verified)" in line,
                      "%s: got %r, want deferred (Server certificate not verified)" % (
                          d.name, line))
                why = {"self": "self-signed certificate", "wrong": "num=62:hostname mismatch",
                       "danebad": DANE_FAIL_LOG}
                want = "verification failed for %s[%s]:25: %s" % (
                    d.mxname, d.mxaddr, why[d.mxkind])
                pid = re.search(r"postfix/smtp\[(\d+)\]", line).group(1)
                n = sum(1 for l in text.splitlines() if want in l and "[%s]" % pid in l)
                check(n == 1, "%s: log lines %r of smtp[%s]: got %d, want 1" % (
                    d.name, want, pid, n))
        # only the enforced policies made Postfix verify (the others: may)
        for addr, name in MXS.values():
            want = "Verified TLS connection established to %s[%s]:25" % (name, addr)
            n = sum(1 for l in text.splitlines() if want in l)
            w = sum(1 for d in DOMAINS if (d.enforced() or d.dane()) and d.delivered() and
                    d.mxname == name) + sum(1 for r in RELAYS if r[3] != "NOTFOUND " and
                                            MXS[r[4]][1] == name)
            check(n == w, "log lines %r: got %d, want %d" % (want, n, w))
        for l in text.splitlines():
            if re.search(r"\]: (warning|error|fatal|panic): ", l) and \
                    not any(w in l for w in expected_warnings):
                check(False, "Postfix logged: " + l)
        # which MX got which message
        # smart hosts: the key asked, the reply, DANE verified, delivered
        with open(os.path.join(self.env.tmp, "tlsrpt-policyd.log"), errors="replace") as fp:
            plog = fp.read()
        for dom, nexthop, key, reply, kind in RELAYS:
            asked = re.findall(r"lookup postfix (\S+): (.*)$", plog, re.M)
            check((key, reply.strip()) in asked, "smart host %s: Postfix's lookup %r answered "
                  "%r not in the policyd log (lookups: %r)" % (dom, key, reply, asked))
            line = attempts["rcpt@" + dom]
            want = "relay=%s[%s]:25" % (MXS[kind][1], MXS[kind][0])
            check(want in line and "status=sent" in line, "%s: got %r, want %s sent" % (
                dom, line, want))
        delivered = {}
        for name in ("testmx.log", "testmx2.log"):
            with open(os.path.join(self.env.tmp, name)) as fp:
                for line in fp:
                    m = re.match(r"delivered (\S+) tls=(\w+) rcpt=(?:TO:)?<?([^>,]+)", line)
                    if m:
                        delivered[m.group(3)] = (m.group(1), m.group(2))
        for d in DOMAINS:
            want = (d.mxname, "yes") if d.delivered() else None
            got = delivered.get("rcpt@" + d.name)
            check(got == want, "delivery to %s: got %r, want %r" % (d.name, got, want))
        if failures:
            for l in text.splitlines():
                if "deferred transport" not in l and (
                        " TLS " in l or "TLSRPT" in l or "verification" in l or "status=" in l):
                    print(l)

    def check_fetches(self):
        with HITS_LOCK:
            hits = dict(HITS)
        # the wrong-name policy host is never asked: the handshake fails
        want = {d.name: 1 for d in DOMAINS if d.fetched()}
        check(hits == want, "policy fetches (HTTP requests per domain): got %r, want %r" % (
            hits, want))
        with open(os.path.join(self.env.tmp, "tlsrpt-policyd.log"), errors="replace") as fp:
            text = fp.read()
        for d in DOMAINS:
            n = len(re.findall(r"%s: MTA-STS policy fetch failed \(%s\)" % (
                re.escape(d.name), d.fetch_error or "NONE"), text))
            ok = len(re.findall(r"%s: MTA-STS policy id=%s mode=\w+ max_age=86400 fetched" % (
                re.escape(d.name), STS_ID), text))
            want = (1, 0) if d.fetch_error else (0, 1) if d.fetched() else (0, 0)
            check((n, ok) == want, "tlsrpt-policyd log for %s: (failed, fetched) got %r, want %r"
                  % (d.name, (n, ok), want))
            sent = len(re.findall(r"%s: reported %s to the collector" % (
                re.escape(d.name), d.fetch_error), text)) if d.fetch_error else 0
            check(sent == (1 if d.fetch_error else 0), "tlsrpt-policyd: failure datagrams for %s: "
                  "got %d, want %d" % (d.name, sent, 1 if d.fetch_error else 0))
        bad = [l for l in text.splitlines() if (": warning: " in l or ": error: " in l or
                                                "fatal" in l) and "policy fetch failed" not in l]
        check(not bad, "tlsrpt-policyd warnings: %r" % bad)

    def want(self):
        return {d.name: d.expected(self.gen) for d in DOMAINS if d.expected(self.gen)}

    def check_dump(self, day):
        want = self.want()
        deadline = time.monotonic() + 20
        while True:
            r = capture([self.progs["tlsrptctl"], "-c", self.conf, "dump", "--day", day, "--json"])
            got, records = E.canon_dump(r.stdout) if r.returncode == 0 else ({}, {})
            if got == want or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        nfail = len(failures)
        check(r.returncode == 0, "tlsrptctl dump: exit %d, stderr %s" % (r.returncode, r.stderr))
        for m in E.diff_canon(got, want):
            check(False, "tlsrptctl dump --day %s --json: %s" % (day, m))
        for d in DOMAINS:
            if d.name not in want:
                continue
            check(records.get(d.name) == d.record, "dump: record of %s: got %r, want %r" % (
                d.name, records.get(d.name), d.record))
        if len(failures) > nfail:
            sys.stderr.write("dump output:\n" + r.stdout + "\n")

        # ingest counters: Postfix's sessions (3.10 datagrams or 3.7 log
        # lines) plus one datagram per failed fetch from tlsrpt-policyd
        r = capture([self.progs["tlsrptctl"], "-c", self.conf, "stats", "--day", day, "--json"])
        check(r.returncode == 0, "tlsrptctl stats: exit %d, stderr %s" % (r.returncode, r.stderr))
        counters = {}
        for v in E.json_stream(r.stdout):
            if isinstance(v, dict):
                counters = v.get("counters", {})
        nfetch = sum(1 for d in DOMAINS if d.fetch_error)
        nmx = sum(1 for d in DOMAINS if not d.skipped_mx())
        nbad = nfetch + sum(1 for d in DOMAINS if not d.delivered() and not d.skipped_mx())
        want_c = {"sessions": nmx + nfetch, "failed_sessions": nbad,
                  "datagrams": (nmx if self.gen == "3.10" else 0) + nfetch,
                  "log_sessions": 0 if self.gen == "3.10" else nmx,
                  "malformed_datagrams": 0, "wrong_shape_datagrams": 0,
                  "truncated_datagrams": 0, "count_mismatches": 0, "unknown_policy_types": 0,
                  "unknown_result_codes": 0, "strings_cut": 0, "overflow_results": 0,
                  "log_unrecognised": 0,
                  "log_sessions_without_tlsrpt": 0 if self.gen == "3.10" else len(RELAYS)}
        for k, w in sorted(want_c.items()):
            check(counters.get(k, 0) == w, "stats counter %s: got %r, want %d" % (
                k, counters.get(k), w))
        E.log("counters compared (%.1fs)" % self.elapsed())

    def check_reports(self, day):
        want = self.want()
        now = (datetime.datetime.strptime(day, "%Y-%m-%d") +
               datetime.timedelta(days=1, minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        r = capture([self.progs["tlsrpt-report"], "-c", self.conf, "run", "--dry-run",
                     "--day", day, "--now", now])
        nfail = len(failures)
        check(r.returncode == 0, "tlsrpt-report run --dry-run: exit %d, stderr %s" % (
            r.returncode, r.stderr))
        got, reports = E.canon_reports(r.stdout)
        check(sorted(d for d, _, _ in reports) == sorted(want),
              "reports: got %r, want one per domain %r" % (
                  sorted(d for d, _, _ in reports), sorted(want)))
        for m in E.diff_canon(got, want):
            check(False, "tlsrpt-report run --dry-run: " + m)
        for d, dests, rep in reports:
            wd = ["destination mailto:tlsrpt@%s (record)" % d]
            check(dests == wd, "report for %s: destinations got %r, want %r" % (d, dests, wd))
            dr = rep.get("date-range", {})
            wdr = {"start-datetime": day + "T00:00:00Z", "end-datetime": day + "T23:59:59Z"}
            check(dr == wdr, "%s: date-range: got %r, want %r" % (d, dr, wdr))
            # the policy strings in file order, exactly as served
            for p in rep.get("policies", ()):
                pol = p["policy"]
                dom = [x for x in DOMAINS if x.name == d]
                if pol.get("policy-type") == "sts" and "policy-string" in pol and dom:
                    check(pol["policy-string"] == dom[0].lines,
                          "%s: report policy-string: got %r, want %r" % (
                              d, pol["policy-string"], dom[0].lines))
        if len(failures) > nfail:
            sys.stderr.write("report output:\n" + r.stdout[:20000] + "\n" + r.stderr + "\n")

    def stop(self, proc, what):
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        check(proc.returncode == 0, "%s exit status on SIGTERM: got %r, want 0" % (
            what, proc.returncode))

    def run(self):
        missing = [k for k, v in self.progs.items() if not os.access(v, os.X_OK)]
        if missing:
            E.missing_input("programs not built: %s (BUILD_DIR=%s)" % (", ".join(missing), self.build))
        self.collector = self.policyd = None
        self.setup()
        day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
        self.prime()
        self.send()
        # after the mail: every domain answered from the cache, unchanged
        got = socketmap_query(self.policy_sock, [d.name for d in DOMAINS])
        for d, g in zip(DOMAINS, got):
            check(g == d.reply(self.gen), "policyd reply for %s after the mail:\n   got  %r\n"
                  "   want %r" % (d.name, g, d.reply(self.gen)))
        self.check_fetches()
        self.check_dump(day)
        if datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d") != day:
            E.skip("the run crossed midnight UTC: counters are split over two days")
        self.check_reports(day)
        self.stop(self.policyd, "tlsrpt-policyd")
        self.stop(self.collector, "tlsrptd")
        E.log("done (%.1fs)" % self.elapsed())

    def cleanup(self):
        self.pf.stop()
        if self.https:
            self.https.shutdown()
        for name in ("tlsrpt-policyd.log", "tlsrptd.log", "testmx.log", "testmx2.log",
                     "testdns.log"):
            path = os.path.join(self.env.tmp, name)
            if failures and os.path.exists(path):
                with open(path, errors="replace") as fp:
                    sys.stderr.write("---- %s (last 60 lines)\n%s\n" % (
                        name, "".join(fp.readlines()[-60:])))
        self.env.stop()
        if self.args.keep:
            E.log("kept " + self.env.tmp)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gen", choices=("3.10", "3.7"), required=True)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    global GEN
    GEN = args.gen
    E.run_test(__file__, args, Run, failures)


if __name__ == "__main__":
    main()
