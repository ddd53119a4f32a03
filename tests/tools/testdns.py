#!/usr/bin/env python3
"""A small authoritative DNS server for tests, on loopback, UDP and TCP.

Zone file lines (one record each, '#' comments):
    NAME TYPE VALUE
    TYPE: A AAAA MX TXT TLSA CNAME, or "NAME SERVFAIL" to make NAME fail.
    TXT values: one or more "quoted" strings (a record's character-strings).
    MX: PREF HOST   TLSA: USAGE SELECTOR MTYPE HEX
    "NAME INSECURE": answers about NAME carry no AD bit (an unsigned zone).
    "NAME TTL SECONDS": the TTL of NAME's records (default 60).
Names are case-insensitive. A known name without the asked type gets an
empty NOERROR answer, an unknown name NXDOMAIN. The AD bit is set on every
answer unless --no-ad or the name is INSECURE (so Postfix treats the data
as DNSSEC-validated).

What this stands for: the DNSSEC-validating resolver that Postfix and
tlsrpt-policyd are told to trust (both trust its AD bit and nothing else).
Such a resolver sets AD only when the whole chain of an answer validated,
clears it for data from unsigned zones (INSECURE here), and answers data
that fails validation ("bogus") with SERVFAIL (SERVFAIL here); the client
never sees signatures. So the client-visible behaviour of a signed zone is
exactly what this server returns, without keys, and tests can make any
name secure, insecure or bogus.
--log FILE appends one "NAME TYPE" line per query (cache tests count them).
Prints "ready" on stdout once listening. SIGHUP re-reads the zone file.
"""
import argparse
import ipaddress
import shlex
import signal
import socket
import struct
import sys
import threading

TYPES = {"A": 1, "CNAME": 5, "MX": 15, "TXT": 16, "AAAA": 28, "TLSA": 52}
MAX_TCP = 65535


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode()
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def rdata(rtype, value):
    if rtype == "A":
        return ipaddress.IPv4Address(value).packed
    if rtype == "AAAA":
        return ipaddress.IPv6Address(value).packed
    if rtype == "CNAME":
        return encode_name(value)
    if rtype == "MX":
        pref, host = value.split(None, 1)
        return struct.pack("!H", int(pref)) + encode_name(host)
    if rtype == "TXT":
        out = b""
        for s in shlex.split(value):
            raw = s.encode()
            while True:         # split long strings at 255 bytes
                out += bytes([min(len(raw), 255)]) + raw[:255]
                raw = raw[255:]
                if not raw:
                    break
        return out
    if rtype == "TLSA":
        u, s, m, h = value.split()
        return bytes([int(u), int(s), int(m)]) + bytes.fromhex(h)
    raise ValueError("unknown type " + rtype)


def load_zone(path):
    zone, servfail, insecure, ttl = {}, set(), set(), {}
    with open(path, encoding="utf-8") as fp:
        for line in fp:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 2)
            name = parts[0].rstrip(".").lower()
            if parts[1].upper() == "SERVFAIL":
                servfail.add(name)
                continue
            if parts[1].upper() == "INSECURE":
                insecure.add(name)
                continue
            if parts[1].upper() == "TTL":
                ttl[name] = int(parts[2])
                continue
            rtype = parts[1].upper()
            zone.setdefault(name, []).append((rtype, rdata(rtype, parts[2])))
    return zone, servfail, insecure, ttl


class Server:
    def __init__(self, zone_path, ad, log=None):
        self.zone_path = zone_path
        self.ad = ad
        self.log = log
        self.lock = threading.Lock()
        self.reload()

    def reload(self, *_):
        self.zone, self.servfail, self.insecure, self.ttl = load_zone(self.zone_path)

    def answer(self, query):
        if len(query) < 12:
            return None
        qid, flags, qd = struct.unpack("!HHH", query[:6])
        pos, labels = 12, []
        try:
            while query[pos]:
                n = query[pos]
                labels.append(query[pos + 1:pos + 1 + n].decode("ascii", "replace"))
                pos += 1 + n
            pos += 1
            qtype, = struct.unpack("!H", query[pos:pos + 2])
            question = query[12:pos + 4]
        except (IndexError, struct.error):
            return None
        name = ".".join(labels).lower()
        if self.log:
            rname = {v: k for k, v in TYPES.items()}.get(qtype, str(qtype))
            with self.lock, open(self.log, "a") as fp:
                fp.write("%s %s\n" % (name, rname))
        rflags = 0x8400 | (flags & 0x0100)  # QR, AA, copy RD
        secure = self.ad and name not in self.insecure
        answers = []
        rcode = 0
        if name in self.servfail:
            rcode = 2
            secure = False
        elif name not in self.zone:
            rcode = 3
        else:
            cur, seen = name, 0
            while cur in self.zone and seen < 8:
                seen += 1
                recs = self.zone[cur]
                cname = [r for r in recs if r[0] == "CNAME"]
                if cname and qtype != TYPES["CNAME"]:
                    answers.append((cur, "CNAME", cname[0][1]))
                    cur = decode_simple(cname[0][1])
                    continue
                answers += [(cur, t, d) for t, d in recs if TYPES[t] == qtype]
                break
            if any(owner in self.insecure for owner, _, _ in answers):
                secure = False
        if secure:
            rflags |= 0x0020
        # EDNS: echo an OPT record when the query has one (DO bit kept).
        opt = b""
        if len(query) > pos + 4 + 10 and struct.unpack("!H", query[10:12])[0]:
            opt = b"\0" + struct.pack("!HHIH", 41, 4096, 0x00008000, 0)
        header = struct.pack("!HHHHHH", qid, rflags | rcode, 1, len(answers), 0,
                             1 if opt else 0)
        body = b""
        for owner, t, d in answers:
            body += encode_name(owner) + struct.pack("!HHIH", TYPES[t], 1,
                                                     self.ttl.get(owner, 60), len(d)) + d
        return header + question + body + opt


def decode_simple(wire):
    labels, pos = [], 0
    while wire[pos]:
        n = wire[pos]
        labels.append(wire[pos + 1:pos + 1 + n].decode())
        pos += 1 + n
    return ".".join(labels).lower()


def serve_udp(sock, server):
    while True:
        data, addr = sock.recvfrom(4096)
        reply = server.answer(data)
        if reply is not None:
            if len(reply) > 1232:       # too large for UDP: set TC
                reply = reply[:2] + bytes([reply[2] | 0x02]) + reply[3:12] + \
                    data[12:len(data)]
                reply = reply[:6] + b"\0\0\0\0\0\0" + reply[12:]
            sock.sendto(reply, addr)


def serve_tcp_client(conn, server):
    with conn:
        conn.settimeout(10)
        try:
            while True:
                hdr = conn.recv(2)
                if len(hdr) < 2:
                    return
                n, = struct.unpack("!H", hdr)
                data = b""
                while len(data) < n:
                    chunk = conn.recv(n - len(data))
                    if not chunk:
                        return
                    data += chunk
                reply = server.answer(data)
                if reply is None:
                    return
                conn.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            return


def serve_tcp(sock, server):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=serve_tcp_client, args=(conn, server), daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--zone", required=True)
    ap.add_argument("--no-ad", action="store_true")
    ap.add_argument("--log")
    args = ap.parse_args()
    server = Server(args.zone, not args.no_ad, args.log)
    family = socket.AF_INET6 if ":" in args.addr else socket.AF_INET
    udp = socket.socket(family, socket.SOCK_DGRAM)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    udp.bind((args.addr, args.port))
    tcp = socket.socket(family, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((args.addr, args.port))
    tcp.listen(16)
    signal.signal(signal.SIGHUP, server.reload)
    threading.Thread(target=serve_tcp, args=(tcp, server), daemon=True).start()
    print("ready", flush=True)
    serve_udp(udp, server)


if __name__ == "__main__":
    sys.exit(main())
