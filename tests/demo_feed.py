#!/usr/bin/env python3
"""Feeds a collector a realistic day of Postfix 3.10 TLS results, as
libtlsrpt datagrams (Debian 13 layout, no dpv): 40 recipient domains with
MTA-STS, DANE or no policy, mostly successes, and the failures a real
sender sees (expired and self-signed certificates, name mismatches, no
STARTTLS, MTA-STS fetch errors, unusable TLSA records).

usage: demo_feed.py SOCKET [RESULTS [HTTPS-RUA]]
HTTPS-RUA, when given, is added as a second rua to every seventh domain's
record (the demo's local HTTPS endpoint)."""
import json
import random
import socket
import sys

rng = random.Random(8460)          # the same day every time


def ds(x):
    return json.dumps(x, ensure_ascii=False)


def dgram(d, pr, ptype, pdomain, strings=(), mx=(), fail=None):
    s = '{"d": %s,"pr": %s,"policies":[{"policy-type":%d,"policy-domain": %s' % (
        ds(d), ds(pr), ptype, ds(pdomain))
    if strings:
        s += ',"policy-string":[' + ",".join(ds(x) for x in strings) + "]"
    if mx:
        s += ',"mx-host":[' + ",".join(ds(x) for x in mx) + "]"
    if fail:
        f = '{"c":%d,"s": "192.0.2.25","n": %s,"h": %s,"r": %s' % (
            fail[0], ds(fail[1]), ds("250-%s ESMTP\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME" % fail[1]),
            ds(fail[2]))
        if len(fail) > 3:
            f += ',"f": ' + ds(fail[3])
        s += ',"failure-details":[' + f + '}],"t":1,"f":1}]}'
    else:
        s += ',"t":0,"f":0}]}'
    return s.encode()


def domains(https_rua=None):
    out = []
    for i in range(40):
        name = f"{['mail', 'corp', 'shop', 'news', 'bank'][i % 5]}{i}.example"
        pr = f"v=TLSRPTv1; rua=mailto:tlsrpt@{name}"
        if i % 7 == 3:
            pr += "," + (https_rua or f"https://tlsrpt.{name}/v1/report")
        kind = ["sts", "tlsa", "none", "none", "sts"][i % 5]
        weight = rng.choice([1, 2, 5, 20, 80])
        out.append((name, pr, kind, weight))
    return out


def one(name, pr, kind):
    n = rng.randint(1, 2)
    mx = f"mx{n}.{name}"
    ip = f"198.51.100.{(sum(map(ord, name)) * 2 + n) % 254 + 1}"    # one address per MX
    r = rng.random()
    if kind == "sts":
        lines = ["version: STSv1", "mode: enforce", f"mx: *.{name}", "max_age: 604800"]
        fail = None
        if r < 0.03:
            fail = (204, mx, ip)
        elif r < 0.05:
            fail = (202, mx, ip)
        elif r < 0.06:
            fail = (301, mx, ip)
        return dgram(name, pr, 2, name, lines, [f"*.{name}"], fail)
    if kind == "tlsa":
        rr = ["3 1 1 6007EEE553E85D8DF007A845D19EC343283D4E416E9A33F9EF3040C8B7C285BC"]
        fail = (304, mx, ip, "all-TLSA-records-unusable") if r < 0.02 else None
        return dgram(name, pr, 1, mx, rr, (), fail)
    fail = None
    if r < 0.02:
        fail = (201, mx, ip)
    elif r < 0.04:
        fail = (205, mx, ip, "self-signed_certificate")
    return dgram(name, pr, 9, name, (), (), fail)


def main():
    path = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    doms = domains(sys.argv[3] if len(sys.argv) > 3 else None)
    weights = [w for *_, w in doms]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setblocking(True)
    for _ in range(n):
        name, pr, kind, _w = rng.choices(doms, weights)[0]
        s.sendto(one(name, pr, kind), path)
    s.sendto(b'{"d": "broken.example", "pr": ', path)       # one broken datagram, as happens
    print(f"sent {n} results for {len(doms)} domains (and one broken datagram)")


if __name__ == "__main__":
    main()
