#!/usr/bin/env python3
"""tlsrpt-policyd: DANE before MTA-STS (RFC 8461 2, RFC 7672), smart-host and
port keys (RFC 8461 3.4), max_age 0, and policy lines Postfix's attribute
syntax cannot carry, against the test DNS server (AD bit per name: secure,
INSECURE, or SERVFAIL as a validating resolver answers bogus data) and the
local HTTPS policy server of test_policyd.py. Exact replies; DNS queries and
policy fetches counted to check the caches.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import test_policyd as T  # noqa: E402
from tlsrpttest import check, check_eq, done  # noqa: E402

H32 = "ab" * 32                       # a SHA2-256 digest
TLSA_OK = "3 1 1 " + H32
TLSA_UNUSABLE = "3 1 1 0102"          # digest of the wrong length
TLSA_PKIX = "1 1 1 " + H32            # PKIX-EE: unusable for SMTP (RFC 7672 3.1.3)
TTL = 12                              # of the TLSA record that the cache test watches

STS_BODY = T.policy("enforce", ["mx.both.test", "mx.sts.test", "relay.test"])
ZERO_BODY = T.policy("enforce", ["mx.zero.test"], max_age=0)
BRACES_BODY = b"version: STSv1\nmode: enforce\nmx: mx.braces.test\nx-note: {weird}\nmax_age: 86400\n"
# domains with an MTA-STS policy (all served by test_policyd's HTTPS server)
STS = {"both.test": STS_BODY, "sts.test": STS_BODY, "insecuremx.test": STS_BODY,
       "bogus.test": STS_BODY, "relay.test": STS_BODY, "zero.test": ZERO_BODY,
       "braces.test": BRACES_BODY, "mxfail.test": STS_BODY, "broken.test": STS_BODY}

ZONE = f"""
# DANE only
dane.test MX 10 mx.dane.test
mx.dane.test A 127.0.0.1
_25._tcp.mx.dane.test TLSA {TLSA_OK}
_25._tcp.mx.dane.test TTL {TTL}
# DANE and MTA-STS: DANE wins, no policy fetch
both.test MX 10 mx.both.test
mx.both.test A 127.0.0.1
_25._tcp.mx.both.test TLSA {TLSA_OK}
# a usable TLSA record that will not match any certificate: still DANE
broken.test MX 10 mx.broken.test
mx.broken.test A 127.0.0.1
_25._tcp.mx.broken.test TLSA 3 1 1 {"00" * 32}
# MTA-STS only
sts.test MX 10 mx.sts.test
mx.sts.test A 127.0.0.1
# two MX hosts, one with TLSA (DANE for the domain), one unusable
two.test MX 10 mx1.two.test
two.test MX 20 mx2.two.test
mx1.two.test A 127.0.0.1
mx2.two.test A 127.0.0.1
_25._tcp.mx1.two.test TLSA {TLSA_UNUSABLE}
_25._tcp.mx2.two.test TLSA {TLSA_OK}
# only unusable records: "dane" (TLS required, Postfix reports tlsa-invalid)
unusable.test MX 10 mx.unusable.test
mx.unusable.test A 127.0.0.1
_25._tcp.mx.unusable.test TLSA {TLSA_UNUSABLE}
_25._tcp.mx.unusable.test TLSA {TLSA_PKIX}
# MX RRset from an unsigned zone: never DANE, MTA-STS applies
insecuremx.test MX 10 mx.insecuremx.test
insecuremx.test INSECURE
mx.insecuremx.test A 127.0.0.1
_25._tcp.mx.insecuremx.test TLSA {TLSA_OK}
# TLSA from an unsigned zone: never DANE
insecuretlsa.test MX 10 mx.insecuretlsa.test
mx.insecuretlsa.test A 127.0.0.1
_25._tcp.mx.insecuretlsa.test TLSA {TLSA_OK}
_25._tcp.mx.insecuretlsa.test INSECURE
# bogus TLSA (SERVFAIL) under a secure MX with signed addresses: DANE must
# not be bypassed by MTA-STS
bogus.test MX 10 mx.bogus.test
mx.bogus.test A 127.0.0.1
_25._tcp.mx.bogus.test SERVFAIL
_smtp._tls.bogus.test TXT "v=TLSRPTv1; rua=mailto:tls@bogus.test"
# a host in an unsigned zone (insecure address records): no TLSA lookup,
# not DANE, even though its TLSA lookup would fail
lame.test MX 10 mx.lame.test
mx.lame.test A 127.0.0.1
mx.lame.test INSECURE
_25._tcp.mx.lame.test SERVFAIL
# TLSA records but no address for the host: Postfix cannot reach it
noaddr.test MX 10 mx.noaddr.test
_25._tcp.mx.noaddr.test TLSA {TLSA_OK}
# MX host is a CNAME (RFC 7672 2.2.3): TLSA at the end of the chain first...
cname.test MX 10 mail.cname.test
mail.cname.test CNAME mx.provider.test
mx.provider.test A 127.0.0.1
_25._tcp.mx.provider.test TLSA {TLSA_OK}
# ... then at the name in the MX record
cname2.test MX 10 mail.cname2.test
mail.cname2.test CNAME mx.provider2.test
mx.provider2.test A 127.0.0.1
_25._tcp.mail.cname2.test TLSA {TLSA_OK}
# a chain through an unsigned zone: not secure, no DANE
cname3.test MX 10 mail.cname3.test
mail.cname3.test CNAME mx.provider3.test
mx.provider3.test A 127.0.0.1
mx.provider3.test INSECURE
_25._tcp.mx.provider3.test TLSA {TLSA_OK}
# the MX lookup fails: nothing known, MTA-STS
mxfail.test SERVFAIL
# no MX (RFC 7672 2.2.2): the domain is the host
nomx.test A 127.0.0.1
_25._tcp.nomx.test TLSA {TLSA_OK}
# null MX
nullmx.test MX 0 .
# smart host: TLSA only on the submission port
relay.test A 127.0.0.1
_587._tcp.relay.test TLSA {TLSA_OK}
"""


def start_dns(d, qlog):
    zone = os.path.join(d, "zone")
    with open(zone, "w") as fp:
        fp.write(ZONE)
        for dom in STS:
            fp.write(f'_mta-sts.{dom} TXT "v=STSv1; id=20240101"\nmta-sts.{dom} A 127.0.0.1\n')
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = subprocess.Popen([sys.executable, T.TESTDNS, "--port", str(port), "--zone", zone,
                          "--log", qlog], stdout=subprocess.PIPE, text=True)
    if p.stdout.readline().strip() != "ready":
        raise RuntimeError("testdns did not start")
    return p, port


def queries(qlog, name, qtype):
    with open(qlog) as fp:
        return sum(1 for l in fp if l.split() == [name, qtype])


def enforce(dom, body):
    lines = body.decode().splitlines()
    mx = [l[4:] for l in lines if l.startswith("mx: ")]
    return T.want_enforce(dom, body, mx)


def stats(c):
    r = c.query("-", name="tlsrptctl-stats")
    check(r.startswith("OK "), f"stats reply {r!r}")
    return dict(kv.split("=", 1) for kv in r[3:].split())


def main():
    tmp = tempfile.TemporaryDirectory(prefix="test_policyd_dane.")
    d = tmp.name
    T.SITES.clear()
    for dom, body in STS.items():
        T.SITES[dom] = (200, "text/plain", body, 0, {})
    T.make_certs(d)
    https = T.start_https(d)
    qlog = os.path.join(d, "queries")
    dns, dport = start_dns(d, qlog)
    common = (f"dns_resolver = 127.0.0.1:{dport}\nsts_https_port = {https.server_address[1]}\n"
              f"sts_ca_file = {d}/ca.pem\nsts_reply_budget = 10s\nsts_fetch_timeout = 10s\n"
              "sts_allow_loopback_destinations = yes\n")    # the policy hosts are on loopback
    try:
        run(d, common, qlog)
    finally:
        dns.terminate()
        dns.wait()
        https.shutdown()
    done("test_policyd_dane")


def run(d, common, qlog):
    coll_path = os.path.join(d, "collector.sock")
    coll = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    coll.bind(coll_path)
    pd = T.Policyd(d, "dane", common + f"sts_cache_file = {d}/cache\nsocket_path = {coll_path}\n")
    pd.start()
    c = T.Client(pd.sock)
    cases = [
        ("dane.test", "OK dane-only"),
        ("both.test", "OK dane-only"),
        ("broken.test", "OK dane-only"),
        ("two.test", "OK dane-only"),
        ("unusable.test", "OK dane"),
        ("bogus.test", "OK dane"),
        ("nomx.test", "OK dane-only"),
        ("sts.test", enforce("sts.test", STS_BODY)),
        ("insecuremx.test", enforce("insecuremx.test", STS_BODY)),
        ("insecuretlsa.test", "NOTFOUND "),
        ("lame.test", "NOTFOUND "),
        ("noaddr.test", "NOTFOUND "),
        ("cname.test", "OK dane-only"),
        ("cname2.test", "OK dane-only"),
        ("cname3.test", "NOTFOUND "),
        ("mxfail.test", enforce("mxfail.test", STS_BODY)),
        ("nullmx.test", "NOTFOUND "),
        # smart hosts and ports (RFC 8461 3.4): the bracketed domain is the
        # host; its TLSA records are looked up on the port asked
        ("[relay.test]:587", "OK dane-only"),
        ("[relay.test]", enforce("relay.test", STS_BODY)),
        ("[relay.test]:25", enforce("relay.test", STS_BODY)),
        ("relay.test:587", "OK dane-only"),    # no MX: relay.test is the host, port 587
        ("sts.test:25", enforce("sts.test", STS_BODY)),
        ("[sts.test]", enforce("sts.test", STS_BODY)),
        ("[dane.test]", "NOTFOUND "),                          # the domain itself has no TLSA
        ("dane.test:25", "OK dane-only"),
        ("[127.0.0.1]", "NOTFOUND "),
        ("[127.0.0.1]:587", "NOTFOUND "),
        (".sts.test", "NOTFOUND "),
    ]
    for key, want in cases:
        check_eq(c.query(key), want, f"reply for {key}")
    # DANE decided: no MTA-STS policy was fetched for these
    with T.HITS_LOCK:
        hits = dict(T.HITS)
    for dom in ("both.test", "bogus.test", "broken.test"):
        check_eq(hits.get(dom, 0), 0, f"policy fetches for {dom} (DANE applies)")
    check_eq(hits.get("sts.test", 0), 1, "policy fetches for sts.test")
    # no TLSA lookup for a host whose address records are not signed
    check_eq(queries(qlog, "_25._tcp.mx.lame.test", "TLSA"), 0, "TLSA queries for mx.lame.test")

    # cached for the DNS TTL: no query before it runs out, one after
    n0 = queries(qlog, "_25._tcp.mx.dane.test", "TLSA")
    check_eq(n0, 1, "TLSA queries for mx.dane.test after the first lookup")
    for _ in range(5):
        check_eq(c.query("dane.test"), "OK dane-only", "dane.test from the cache")
    check_eq(queries(qlog, "_25._tcp.mx.dane.test", "TLSA"), 1, "TLSA queries while cached")
    time.sleep(TTL - 10 + 10.5)   # TTL 12 s (DANE_MIN_TTL is 10)
    check_eq(c.query("dane.test"), "OK dane-only", "dane.test after the TTL")
    check_eq(queries(qlog, "_25._tcp.mx.dane.test", "TLSA"), 2, "TLSA queries after the TTL")

    # max_age 0: the policy applies to the lookup that fetched it, is not
    # cached, and the next lookup fetches again
    check_eq(c.query("zero.test"), enforce("zero.test", ZERO_BODY), "zero.test (max_age 0)")
    check_eq(c.query("zero.test"), enforce("zero.test", ZERO_BODY), "zero.test again")
    with T.HITS_LOCK:
        check_eq(T.HITS.get("zero.test", 0), 2, "fetches of the max_age 0 policy")

    # a policy line with braces cannot go into { policy_string = ... }
    want = ("OK secure match=mx.braces.test servername=hostname policy_type=sts "
            "policy_domain=braces.test mx_host_pattern=mx.braces.test"
            " { policy_string = version: STSv1 } { policy_string = mode: enforce }"
            " { policy_string = mx: mx.braces.test } { policy_string = max_age: 86400 }")
    check_eq(c.query("braces.test"), want, "braces.test: the x-note line left out")
    check_eq(c.query("braces.test"), want, "braces.test from the cache")
    st = stats(c)
    check_eq(st.get("policy_lines_unsendable"), "1", "stats: policy lines left out")
    check_eq(st.get("max_age_0"), "2", "stats: max_age 0 policies applied")
    check(int(st.get("dane-only", 0)) >= 10, f"stats: dane-only replies {st}")
    out = subprocess.run([T.TLSRPTCTL, "-c", pd.conf, "sts", "stats"], capture_output=True,
                         text=True)
    check_eq(out.returncode, 0, "tlsrptctl sts stats exit status")
    check("policy_lines_unsendable 1\n" in out.stdout and "max_age_0 2\n" in out.stdout,
          f"tlsrptctl sts stats: {out.stdout!r}")

    # the failed TLSA lookup under a signed MX (bogus.test), which Postfix
    # 3.10 does not report: one dnssec-invalid datagram per verdict
    coll.setblocking(False)
    got = []
    while True:
        try:
            got.append(coll.recv(65536).decode())
        except BlockingIOError:
            break
    check_eq(got, ['{"d": "bogus.test","pr": "v=TLSRPTv1; rua=mailto:tls@bogus.test",'
                   '"policies":[{"policy-type":1,"policy-domain": "mx.bogus.test",'
                   '"failure-details":[{"c":305,"n": "mx.bogus.test"}],"t":1,"f":1}]}'],
             "datagrams to the collector")

    # the tlsrpt name (3.7 log follower) gets the dane level too
    check_eq(c.query("dane.test", name="tlsrpt"), "OK dane-only", "tlsrpt name for dane.test")
    pd.stop()
    with open(os.path.join(d, "dane.log")) as fp:
        log = fp.read()
    check("braces.test: 1 policy lines hold { or }" in log, "log: the left-out line is warned about")

    # policy_dane_level = dane; policy_dane = no
    for conf, want_dane, want_both in (
            ("policy_dane_level = dane\n", "OK dane", "OK dane"),
            ("policy_dane = no\n", "NOTFOUND ", enforce("both.test", STS_BODY))):
        p = T.Policyd(d, "x", common + f"sts_cache_file = {d}/cachex\n" + conf)
        p.start()
        c = T.Client(p.sock)
        check_eq(c.query("dane.test"), want_dane, f"dane.test with {conf.strip()}")
        check_eq(c.query("both.test"), want_both, f"both.test with {conf.strip()}")
        p.stop()
    # Postfix 3.7: the same replies; the log follower reports the failed
    # TLSA lookup from Postfix's log line, so no datagram
    p = T.Policyd(d, "g37", common + f"sts_cache_file = {d}/cache37\npostfix_generation = 3.7\n"
                  f"socket_path = {coll_path}\n")
    p.start()
    c = T.Client(p.sock)
    check_eq(c.query("bogus.test"), "OK dane", "bogus.test on 3.7")
    check_eq(c.query("dane.test"), "OK dane-only", "dane.test on 3.7")
    p.stop()
    try:
        extra = coll.recv(65536)
    except BlockingIOError:
        extra = None
    check_eq(extra, None, "datagram from the 3.7 generation")
    r = subprocess.run([T.POLICYD, "-n", "-c", "/dev/null", "-o", "policy_dane_level=dane-maybe"],
                       capture_output=True, text=True)
    check_eq((r.returncode, r.stderr),
             (78, 'tlsrpt-policyd: fatal: -o policy_dane_level: "dane-maybe" is not one of: dane-only, dane\n'),
             "-o policy_dane_level=dane-maybe")


if __name__ == "__main__":
    main()
