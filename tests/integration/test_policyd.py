#!/usr/bin/env python3
"""tlsrpt-policyd against a local HTTPS policy server with a test CA and the
test DNS server: exact socketmap replies for good, testing, none, malformed,
oversized, slow, redirecting, 404, expired-certificate, wrong-name and
unresolvable policies; the reply budget; the cache across a restart; the
cached policy when a refresh fails; tlsrptctl sts show/refresh; and, for
Postfix 3.7, the failure datagram sent to the collector's socket.

Needs the openssl command line tool."""
import http.server
import os
import socket
import socketserver
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import BUILD, SOURCE, TLSRPTCTL, check, check_eq, done  # noqa: E402

POLICYD = os.path.join(BUILD, "milter", "tlsrpt-policyd")
TESTDNS = os.path.join(SOURCE, "tests", "tools", "testdns.py")
BUDGET = 2          # sts_reply_budget, seconds
SLOW = 4            # the slow server's delay, seconds


def policy(mode, mx, max_age=86400, crlf=False):
    lines = ["version: STSv1", f"mode: {mode}"] + [f"mx: {m}" for m in mx] + [f"max_age: {max_age}"]
    nl = "\r\n" if crlf else "\n"
    return (nl.join(lines) + nl).encode()


ENFORCE = policy("enforce", ["mx1.enforce.test", "*.mail.enforce.test"])
# host -> (status, content type, body, delay, extra headers)
SITES = {
    "enforce.test": (200, "text/plain", ENFORCE, 0, {}),
    "testing.test": (200, "text/plain; charset=utf-8", policy("testing", ["mx.testing.test"], 604800, crlf=True), 0, {}),
    "none.test": (200, "text/plain", b"version: STSv1\nmode: none\nmax_age: 86400\n", 0, {}),
    "malformed.test": (200, "text/plain", b"version: STSv1\nmode: enforce\nmax_age: 86400\n", 0, {}),
    "html.test": (200, "text/html", ENFORCE, 0, {}),
    "oversized.test": (200, "text/plain", ENFORCE + b"x-pad: " + b"a" * 70000 + b"\n", 0, {}),
    "slow.test": (200, "text/plain", policy("enforce", ["mx.slow.test"]), SLOW, {}),
    "redirect.test": (301, "text/plain", b"moved\n", 0,
                      {"Location": "https://mta-sts.enforce.test/.well-known/mta-sts.txt"}),
    "notfound.test": (404, "text/plain", b"not found\n", 0, {}),
    "expired.test": (200, "text/plain", ENFORCE, 0, {}),
    "wrongname.test": (200, "text/plain", ENFORCE, 0, {}),
    "flaky.test": (200, "text/plain", policy("enforce", ["mx.flaky.test"]), 0, {}),
}
HITS = {}
HITS_LOCK = threading.Lock()


def sh(*args, cwd):
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_certs(d):
    """A test CA; one certificate for the good hosts, one expired."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    sh("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "3",
       "-subj", "/CN=tlsrptd test CA", cwd=d)
    os.makedirs(os.path.join(d, "db"))
    open(os.path.join(d, "db", "index.txt"), "w").close()
    with open(os.path.join(d, "db", "serial"), "w") as fp:
        fp.write("01\n")
    good = ",".join(f"DNS:mta-sts.{h}" for h in SITES if h not in ("wrongname.test", "expired.test"))
    with open(os.path.join(d, "ca.cnf"), "w") as fp:
        fp.write("[ca]\ndefault_ca = test\n[test]\ndir = .\ndatabase = db/index.txt\n"
                 "serial = db/serial\nnew_certs_dir = db\ncertificate = ca.pem\n"
                 "private_key = ca.key\ndefault_md = sha256\npolicy = any\nunique_subject = no\n"
                 "[any]\ncommonName = supplied\n"
                 f"[good]\nsubjectAltName = {good}\n"
                 "[expired]\nsubjectAltName = DNS:mta-sts.expired.test\n")
    for name, dates in (("good", ["-days", "2"]),
                        ("expired", ["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"])):
        sh("openssl", "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
           "-subj", f"/CN={name}", cwd=d)
        sh("openssl", "ca", "-batch", "-config", "ca.cnf", "-in", f"{name}.csr", "-out", f"{name}.pem",
           *dates, "-extensions", name, "-notext", cwd=d)


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0]
        dom = host[len("mta-sts."):] if host.startswith("mta-sts.") else ""
        with HITS_LOCK:
            HITS[dom] = HITS.get(dom, 0) + 1
        if dom not in SITES or self.path != "/.well-known/mta-sts.txt":
            self.send_response(404)
            self.end_headers()
            return
        status, ctype, body, delay, extra = SITES[dom]
        if delay:
            time.sleep(delay)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


class TLSServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass    # clients that hang up (size limit, bad certificate) are expected


def start_https(d):
    good = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    good.load_cert_chain(os.path.join(d, "good.pem"), os.path.join(d, "good.key"))
    expired = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    expired.load_cert_chain(os.path.join(d, "expired.pem"), os.path.join(d, "expired.key"))

    def sni(sock, name, ctx):
        if name == "mta-sts.expired.test":
            sock.context = expired
    good.sni_callback = sni
    srv = TLSServer(("127.0.0.1", 0), Handler)
    srv.socket = good.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def start_dns(d):
    zone = os.path.join(d, "zone")
    with open(zone, "w") as fp:
        for h in list(SITES) + ["nohost.test"]:
            fp.write(f'_mta-sts.{h} TXT "v=STSv1; id=20240101"\n')
            if h != "nohost.test":
                fp.write(f"mta-sts.{h} A 127.0.0.1\n")
        # TLSRPT records for the 3.7 datagram checks
        fp.write('_smtp._tls.notfound.test TXT "v=TLSRPTv1; rua=mailto:tls@notfound.test"\n')
        fp.write('_smtp._tls.expired.test TXT "v=TLSRPTv1;" " rua=mailto:tls@expired.test"\n')
        fp.write('_smtp._tls.flaky.test TXT "v=TLSRPTv1; rua=mailto:tls@flaky.test"\n')
        fp.write('_mta-sts.notxt.test TXT "v=spf1 -all"\n')
        fp.write('_mta-sts.twotxt.test TXT "v=STSv1; id=1"\n_mta-sts.twotxt.test TXT "v=STSv1; id=2"\n')
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = subprocess.Popen([sys.executable, TESTDNS, "--port", str(port), "--zone", zone],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    if line != "ready":
        raise RuntimeError(f"testdns: {line!r}")
    return p, port


class Policyd:
    def __init__(self, d, name, conf):
        self.sock = os.path.join(d, f"{name}.sock")
        self.conf = os.path.join(d, f"{name}.conf")
        with open(self.conf, "w") as fp:
            fp.write(f"policy_socket = unix:{self.sock}\n{conf}")
        self.log = open(os.path.join(d, f"{name}.log"), "a")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([POLICYD, "-f", "-v", "-c", self.conf],
                                     stderr=self.log, stdout=self.log)
        for _ in range(200):
            if os.path.exists(self.sock):
                try:
                    socket.socket(socket.AF_UNIX).connect(self.sock)
                    return
                except OSError:
                    pass
            if self.proc.poll() is not None:
                raise RuntimeError("tlsrpt-policyd exited")
            time.sleep(0.05)
        raise RuntimeError("tlsrpt-policyd did not start")

    def stop(self):
        self.proc.terminate()
        rc = self.proc.wait(timeout=30)
        check_eq(rc, 0, "policyd exit status")


class Client:
    """A socketmap client like Postfix's: one connection, many requests."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(30)
        self.s.connect(path)
        self.buf = b""

    def query(self, key, name="postfix"):
        req = f"{name} {key}".encode()
        self.s.sendall(b"%d:%s," % (len(req), req))
        while True:
            if b":" in self.buf:
                n, rest = self.buf.split(b":", 1)
                if len(rest) > int(n):
                    reply, self.buf = rest[:int(n)], rest[int(n) + 1:]
                    return reply.decode()
            data = self.s.recv(65536)
            if not data:
                raise RuntimeError("connection closed")
            self.buf += data


def strings(body):
    return "".join(f" {{ policy_string = {l} }}" for l in body.decode().splitlines() if l)


def want_enforce(dom, body, mx):
    match = ":".join(m[1:] if m.startswith("*") else m for m in mx)
    return (f"OK secure match={match} servername=hostname policy_type=sts policy_domain={dom}"
            + "".join(f" mx_host_pattern={m}" for m in mx) + strings(body))


def check_config_errors():
    # (more in tests/conf/, run by test_conf.py)
    for opt, msg in (("postfix_generation=3.9", '-o postfix_generation: "3.9" is not one of: 3.10, 3.7'),
                     ("policy_default_level=secure",
                      '-o policy_default_level: "secure" is not one of: may, encrypt, dane'),
                     ("policy_socket=tcp:1", '-o policy_socket: want unix:PATH or inet:HOST:PORT, not "tcp:1"')):
        r = subprocess.run([POLICYD, "-n", "-c", "/dev/null", "-o", opt], capture_output=True, text=True)
        check_eq((r.returncode, r.stderr), (78, f"tlsrpt-policyd: fatal: {msg}\n"), f"-n -o {opt}")
    tmp = tempfile.mkdtemp(prefix="policyd-n.")
    try:
        r = subprocess.run([POLICYD, "-n", "-c", "/dev/null", "-o", f"policy_socket=unix:{tmp}/p.sock",
                            "-o", f"sts_cache_file={tmp}/cache"], capture_output=True, text=True)
        check_eq((r.returncode, r.stdout.startswith("tlsrpt-policyd: configuration OK (checked as user "),
                  r.stderr), (0, True, ""), f"-n: {r.stdout!r}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    check_config_errors()
    tmp = tempfile.TemporaryDirectory(prefix="test_policyd.")
    d = tmp.name
    make_certs(d)
    https = start_https(d)
    dns, dport = start_dns(d)
    try:
        run_all(d, https, dport)
    finally:
        dns.terminate()
        dns.wait()
        https.shutdown()
    done("test_policyd")


def run_all(d, https, dport):
    port = https.server_address[1]
    strict = (f"dns_resolver = 127.0.0.1:{dport}\nsts_https_port = {port}\n"
              f"sts_ca_file = {d}/ca.pem\nsts_reply_budget = {BUDGET}s\nsts_fetch_timeout = 10s\n")
    run_netcheck(d, strict)
    # the policy hosts of these tests are on loopback
    common = strict + "sts_allow_loopback_destinations = yes\n"
    coll310_path = os.path.join(d, "collector310.sock")
    coll310 = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    coll310.bind(coll310_path)
    pd = Policyd(d, "p310", common + f"sts_cache_file = {d}/cache310\nsocket_path = {coll310_path}\n")
    pd.start()
    try:
        run_310(d, pd)
    finally:
        if pd.proc.poll() is None:
            pd.stop()
    # the failed fetches of domains with a TLSRPT record, once each
    coll310.setblocking(False)
    got = []
    while True:
        try:
            got.append(coll310.recv(65536).decode())
        except BlockingIOError:
            break
    check_eq(got, [failure_dgram("notfound.test", 301), failure_dgram("expired.test", 303),
                   failure_dgram("flaky.test", 301, FLAKY)], "3.10 failure datagrams")

    # the level of non-enforcing replies follows policy_default_level
    for level, want in (("encrypt", "OK encrypt policy_type=sts policy_domain=testing.test "
                         "mx_host_pattern=mx.testing.test" + strings(SITES["testing.test"][2])),
                        ("dane", "NOTFOUND ")):
        p = Policyd(d, "p" + level, common + f"sts_cache_file = {d}/cache310\npolicy_default_level = {level}\n")
        p.start()
        c = Client(p.sock)
        check_eq(c.query("testing.test"), want, f"testing.test with policy_default_level = {level}")
        check_eq(c.query("enforce.test"), want_enforce("enforce.test", ENFORCE, ["mx1.enforce.test", "*.mail.enforce.test"]),
                 f"enforce.test with policy_default_level = {level}")
        p.stop()

    # Postfix 3.7: plain replies, failures as datagrams to the collector
    coll_path = os.path.join(d, "collector.sock")
    coll = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    coll.bind(coll_path)
    coll.settimeout(5)
    p37 = Policyd(d, "p37", common + f"sts_cache_file = {d}/cache37\npostfix_generation = 3.7\n"
                  f"socket_path = {coll_path}\n")
    p37.start()
    try:
        run_37(p37, coll)
    finally:
        p37.stop()


FLAKY = policy("enforce", ["mx.flaky.test"])


def run_netcheck(d, strict):
    """Issue 10 item 8: DNS that the domain's owner controls pointed the
    policy fetch at internal addresses, and the failure report then told
    whether a TLS server answered there. Policy hosts on loopback, private
    or link-local addresses are refused before anything is sent, unless
    the override says otherwise."""
    before = dict(HITS)
    p = Policyd(d, "pnet", strict + f"sts_cache_file = {d}/cachenet\n")
    p.start()
    c = Client(p.sock)
    check_eq(c.query("enforce.test"), "NOTFOUND ", "a policy host on loopback: no policy")
    r = c.query("enforce.test", name="tlsrptctl-refresh")
    check("policy host address 127.0.0.1 is loopback (sts_allow_loopback_destinations = no)" in r,
          f"refresh of a policy on loopback: {r!r}")
    p.stop()
    check_eq(HITS.get("enforce.test", 0) - before.get("enforce.test", 0), 0,
             "requests that reached the loopback policy host")
    with open(os.path.join(d, "pnet.log")) as fp:
        log = fp.read()
    check("is loopback (sts_allow_loopback_destinations = no)" in log, f"refusal logged: {log[-500:]!r}")
    # the overrides: loopback only, and every non-public address
    for name, extra in (("pnetl", "sts_allow_loopback_destinations = yes\n"),
                        ("pnetp", "sts_allow_private_destinations = yes\n")):
        p = Policyd(d, name, strict + f"sts_cache_file = {d}/cache{name}\n" + extra)
        p.start()
        c = Client(p.sock)
        check_eq(c.query("enforce.test"), want_enforce("enforce.test", ENFORCE,
                                                       ["mx1.enforce.test", "*.mail.enforce.test"]),
                 f"a policy host on loopback with {extra.strip()}")
        p.stop()


def failure_dgram(dom, code, cached=None):
    pol = ""
    if cached:
        lines = cached.decode().splitlines()
        mx = [l[4:] for l in lines if l.startswith("mx: ")]
        pol = (',"policy-string":[' + ",".join(f'"{l}"' for l in lines) + "]"
               + ',"mx-host":[' + ",".join(f'"{m}"' for m in mx) + "]")
    return (f'{{"d": "{dom}","pr": "v=TLSRPTv1; rua=mailto:tls@{dom}","policies":'
            f'[{{"policy-type":2,"policy-domain": "{dom}"{pol},"failure-details":[{{"c":{code}}}],'
            '"t":1,"f":1}]}')


def run_310(d, pd):
    c = Client(pd.sock)
    pfx = "OK may policy_type=sts policy_domain="
    cases = [
        ("enforce.test", want_enforce("enforce.test", ENFORCE, ["mx1.enforce.test", "*.mail.enforce.test"])),
        ("ENFORCE.Test.", want_enforce("enforce.test", ENFORCE, ["mx1.enforce.test", "*.mail.enforce.test"])),
        ("testing.test", pfx + "testing.test mx_host_pattern=mx.testing.test" + strings(SITES["testing.test"][2])),
        ("none.test", "NOTFOUND "),
        ("notxt.test", "NOTFOUND "),
        ("twotxt.test", "NOTFOUND "),
        ("unknown.test", "NOTFOUND "),
        # failed fetches: deliver as if there were no policy (RFC 8461 3.3)
        ("malformed.test", "NOTFOUND "),
        ("html.test", "NOTFOUND "),
        ("oversized.test", "NOTFOUND "),
        ("redirect.test", "NOTFOUND "),
        ("notfound.test", "NOTFOUND "),
        ("nohost.test", "NOTFOUND "),
        ("expired.test", "NOTFOUND "),
        ("wrongname.test", "NOTFOUND "),
        (".enforce.test", "NOTFOUND "),
        ("[127.0.0.1]", "NOTFOUND "),
        ("[mx1.enforce.test]:587", "NOTFOUND "),
        # the Policy Domain of a next hop with a port is its domain (RFC 8461 3.4)
        ("enforce.test:25", want_enforce("enforce.test", ENFORCE, ["mx1.enforce.test", "*.mail.enforce.test"])),
        ("localhost", "NOTFOUND "),
        ("bad_name.test", "NOTFOUND "),
    ]
    for key, want in cases:
        check_eq(c.query(key), want, f"3.10 reply for {key}")

    # several requests in one write, answered in order; a split netstring
    raw = socket.socket(socket.AF_UNIX)
    raw.settimeout(10)
    raw.connect(pd.sock)
    raw.sendall(b"21:postfix .enforce.test,17:postfix none.test,11:postfix [1")
    time.sleep(0.1)
    raw.sendall(b"],")
    got = b""
    while got.count(b",") < 3:
        more = raw.recv(4096)
        if not more:
            break
        got += more
    check_eq(got, b"9:NOTFOUND ,9:NOTFOUND ,9:NOTFOUND ,", "pipelined requests")
    raw.sendall(b"x:bad,")
    check_eq(raw.recv(4096), b"", "connection closed after a malformed netstring")
    raw.close()

    # the failures are cached: a second lookup fetches nothing (5-minute rule)
    before = dict(HITS)
    for key in ("notfound.test", "expired.test", "enforce.test", "malformed.test"):
        c.query(key)
    check_eq({k: HITS.get(k, 0) - before.get(k, 0) for k in ("notfound.test", "enforce.test", "malformed.test")},
             {"notfound.test": 0, "enforce.test": 0, "malformed.test": 0}, "fetches on repeated lookups")
    # (expired.test: the TLS handshake fails before any request is made)

    # slow policy host: the fallback comes within the budget, the policy later
    t0 = time.monotonic()
    got = c.query("slow.test")
    took = time.monotonic() - t0
    check_eq(got, "NOTFOUND ", "slow.test reply within the budget")
    check(BUDGET - 0.3 <= took < BUDGET + 1.0, f"slow.test: answered after {took:.2f}s, want ~{BUDGET}s")
    # other lookups are not held up meanwhile
    t0 = time.monotonic()
    c2 = Client(pd.sock)
    check_eq(c2.query("enforce.test")[:9], "OK secure", "cached lookup during a slow fetch")
    check(time.monotonic() - t0 < 0.5, "cached lookup during a slow fetch was slow")
    time.sleep(SLOW - BUDGET + 1)
    check_eq(c.query("slow.test"), want_enforce("slow.test", SITES["slow.test"][2], ["mx.slow.test"]),
             "slow.test after the fetch completed")

    # a refresh that fails keeps the cached policy in use
    check_eq(c.query("flaky.test"), want_enforce("flaky.test", SITES["flaky.test"][2], ["mx.flaky.test"]),
             "flaky.test first")
    SITES["flaky.test"] = (500, "text/plain", b"oops\n", 0, {})
    r = c.query("flaky.test", name="tlsrptctl-refresh")
    check_eq(r, "OK failed sts-policy-fetch-error mta-sts.flaky.test: HTTP status 500", "refresh status of flaky.test")
    check_eq(c.query("flaky.test"), want_enforce("flaky.test", policy("enforce", ["mx.flaky.test"]), ["mx.flaky.test"]),
             "flaky.test uses the cached policy after a failed refresh")
    check_eq(c.query("nosuch.test", name="tlsrptctl-refresh"),
             "OK no-policy no valid _mta-sts.nosuch.test TXT record", "refresh of a domain without policy")
    check_eq(c.query("[1.2.3.4]", name="tlsrptctl-refresh"), "PERM not a domain name", "refresh of an address")

    # tlsrptctl sts show / refresh, when tlsrptctl has the subcommand
    if os.path.exists(TLSRPTCTL):
        out = subprocess.run([TLSRPTCTL, "-c", pd.conf, "sts", "show", "flaky.test"],
                             capture_output=True, text=True)
        check_eq(out.returncode, 0, "tlsrptctl sts show exit status")
        for want in ("mode: enforce", "mx: mx.flaky.test", "last error: sts-policy-fetch-error"):
            check(want in out.stdout, f"tlsrptctl sts show: {want!r} missing in {out.stdout!r}")
        out = subprocess.run([TLSRPTCTL, "-c", pd.conf, "sts", "show", "unknown-domain.test"],
                             capture_output=True, text=True)
        check_eq(out.returncode, 1, "tlsrptctl sts show of an unknown domain")
        out = subprocess.run([TLSRPTCTL, "-c", pd.conf, "sts", "refresh", "enforce.test"],
                             capture_output=True, text=True)
        check_eq((out.returncode, out.stdout), (0, "enforce.test: fetched id=20240101 expires="
                                                 + out.stdout.split("expires=")[-1]), "tlsrptctl sts refresh")

    # restart: the cache file brings the policies back without a fetch
    SITES["flaky.test"] = (200, "text/plain", policy("enforce", ["mx.flaky.test"]), 0, {})
    pd.stop()
    before = dict(HITS)
    pd.start()
    c = Client(pd.sock)
    check_eq(c.query("enforce.test"), want_enforce("enforce.test", ENFORCE, ["mx1.enforce.test", "*.mail.enforce.test"]),
             "enforce.test after a restart")
    check_eq(c.query("testing.test"), pfx + "testing.test mx_host_pattern=mx.testing.test"
             + strings(SITES["testing.test"][2]), "testing.test after a restart")
    check_eq(c.query("expired.test"), "NOTFOUND ", "expired.test failure after a restart")
    check_eq(HITS.get("enforce.test", 0) - before.get("enforce.test", 0), 0, "fetches after a restart")


def run_37(p, coll):
    c = Client(p.sock)
    check_eq(c.query("enforce.test"), "OK secure match=mx1.enforce.test:.mail.enforce.test servername=hostname",
             "3.7 enforce reply")
    check_eq(c.query("testing.test"), "NOTFOUND ", "3.7 testing reply")
    # the name "tlsrpt" (tlsrptd's log_policy_map) is answered as for 3.10
    check_eq(c.query("enforce.test", name="tlsrpt"),
             want_enforce("enforce.test", ENFORCE, ["mx1.enforce.test", "*.mail.enforce.test"]),
             "3.7 enforce reply for the name tlsrpt")
    check_eq(c.query("testing.test", name="tlsrpt"),
             "OK may policy_type=sts policy_domain=testing.test mx_host_pattern=mx.testing.test"
             + strings(SITES["testing.test"][2]), "3.7 testing reply for the name tlsrpt")
    check_eq(c.query("notfound.test"), "NOTFOUND ", "3.7 fetch error reply")
    try:
        got = coll.recv(65536).decode()
    except socket.timeout:
        got = None
    check_eq(got, '{"d": "notfound.test","pr": "v=TLSRPTv1; rua=mailto:tls@notfound.test","policies":'
             '[{"policy-type":2,"policy-domain": "notfound.test","failure-details":[{"c":301}],"t":1,"f":1}]}',
             "3.7 datagram for notfound.test")
    check_eq(c.query("expired.test"), "NOTFOUND ", "3.7 webpki error reply")
    try:
        got = coll.recv(65536).decode()
    except socket.timeout:
        got = None
    check_eq(got, '{"d": "expired.test","pr": "v=TLSRPTv1; rua=mailto:tls@expired.test","policies":'
             '[{"policy-type":2,"policy-domain": "expired.test","failure-details":[{"c":303}],"t":1,"f":1}]}',
             "3.7 datagram for expired.test")
    # no TLSRPT record: no datagram
    check_eq(c.query("malformed.test"), "NOTFOUND ", "3.7 invalid policy reply")
    # a refresh failure with a cached policy reports the cached lines
    check_eq(c.query("flaky.test")[:9], "OK secure", "3.7 flaky.test first")
    SITES["flaky.test"] = (404, "text/plain", b"gone\n", 0, {})
    c.query("flaky.test", name="tlsrptctl-refresh")
    try:
        got = coll.recv(65536).decode()
    except socket.timeout:
        got = None
    check_eq(got, '{"d": "flaky.test","pr": "v=TLSRPTv1; rua=mailto:tls@flaky.test","policies":'
             '[{"policy-type":2,"policy-domain": "flaky.test","policy-string":["version: STSv1",'
             '"mode: enforce","mx: mx.flaky.test","max_age: 86400"],"mx-host":["mx.flaky.test"],'
             '"failure-details":[{"c":301}],"t":1,"f":1}]}', "3.7 datagram for flaky.test with cached policy")
    coll.settimeout(0.3)
    try:
        extra = coll.recv(65536)
    except socket.timeout:
        extra = None
    check_eq(extra, None, "3.7: no datagram for a domain without TLSRPT record")


if __name__ == "__main__":
    main()
