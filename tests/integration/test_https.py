#!/usr/bin/env python3
"""HTTPS delivery (https_post_all) against local servers started here.

Servers on 127.0.0.1 with a test CA made by the openssl CLI: a good HTTPS
server (paths answer 200, 201, 404, 500, 301, a big body), one with a
self-signed certificate, one that accepts and never answers, one that
resets every connection. Each job's result line from deliver_tool is
checked exactly (ok, permanent, status, detail), as is what the server
received (method, Content-Type, no Content-Encoding, body bytes), the
refusal of loopback destinations unless allowed, the refusal of non-https
URLs, and that no more than https_concurrency requests run at once. What a
permanent failure is about (deliver.h, issue 10 item 13): 410, refused URLs
and addresses and a host that does not exist (NXDOMAIN, asked of a testdns)
about the destination; 413 about the report; 404 temporary. A complete 2xx
followed by a broken connection is delivered (item 14).
"""
import http.server
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

SOURCE = os.environ.get('SOURCE_DIR', '.')
BUILD = os.environ.get('BUILD_DIR', 'build')
sys.path.insert(0, os.path.join(SOURCE, 'tests', 'tools'))
import testca  # noqa: E402

TOOL = os.path.join(BUILD, 'tests', 'deliver_tool')
failures = 0
received = []
DEST = []   # the destination flags of the last post() (deliver.h's classes)
received_lock = threading.Lock()
inflight = [0, 0]  # now, peak


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print('FAIL: ' + msg, file=sys.stderr)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get('Content-Length', '0'))
        body = self.rfile.read(n)
        with received_lock:
            received.append((self.server.server_port, self.path, dict(self.headers), body))
            inflight[0] += 1
            inflight[1] = max(inflight[1], inflight[0])
        try:
            if self.path.startswith('/slow'):
                time.sleep(0.1)
            if self.path in ('/ok', '/') or self.path.startswith('/slow'):
                self.reply(200, b'')
            elif self.path == '/created':
                self.reply(201, b'{"status":"created"}')
            elif self.path == '/404':
                self.reply(404, b'no such endpoint')
            elif self.path == '/410':
                self.reply(410, b'gone')
            elif self.path == '/413':
                self.reply(413, b'too large')
            elif self.path == '/500':
                self.reply(500, b'internal error\r\nsecond line\x1b[31m')
            elif self.path == '/301':
                self.send_response(301)
                self.send_header('Location', 'https://127.0.0.1:%d/ok' % self.server.server_port)
                self.send_header('Content-Length', '0')
                self.end_headers()
            elif self.path == '/big':
                self.reply(200, b'x' * (1024 * 1024))
            elif self.path in ('/eof201', '/rst201', '/short201'):
                self.broken_201()
            else:
                self.reply(400, b'unexpected path')
        finally:
            with received_lock:
                inflight[0] -= 1

    def broken_201(self):
        """201, then the connection ends badly (issue 10 item 14): /eof201 as the
        demo's endpoint did (no Content-Length, the body ends at close, closed
        without TLS close_notify: curl 56 with OpenSSL 3.5, accepted by curl
        7.88 with OpenSSL 3.0), /rst201 the same but reset (curl 56 here too),
        /short201 a Content-Length the body never reaches (curl 18)."""
        self.close_connection = True
        self.send_response(201)
        self.send_header('Content-Type', 'text/plain')
        if self.path == '/short201':
            self.send_header('Content-Length', '1000')
        self.end_headers()
        self.wfile.write(b'stored')
        self.wfile.flush()
        time.sleep(0.2)     # the client has the status and headers
        if self.path == '/rst201':
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        # close the TCP connection under the TLS layer: no close_notify
        os.close(self.connection.detach())

    def reply(self, code, body):
        self.send_response(code)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:  # the client stops reading big bodies
            pass


def https_server(cert, key):
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    srv.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, srv.server_port


def raw_server(mode):
    """'hang': accept and never answer; 'reset': accept and send RST."""
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    s.listen(16)
    held = []

    def loop():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            if mode == 'hang':
                held.append(c)
            else:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
                c.close()
    threading.Thread(target=loop, daemon=True).start()
    return s, s.getsockname()[1]


def free_udp_port():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(('127.0.0.1', 0))
    port = u.getsockname()[1]
    u.close()
    return port


def post(opts, pairs):
    cmd = [TOOL]
    for o in opts:
        cmd += ['-o', o]
    cmd.append('post')
    for url, f in pairs:
        cmd += [url, f]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, timeout=40)
    elapsed = time.monotonic() - t0
    lines = r.stdout.decode().splitlines()
    res = []
    DEST.clear()
    for line in lines:
        head, _, detail = line.partition(' detail=')
        kv = dict(x.split('=', 1) for x in head.split())
        res.append((int(kv['ok']), int(kv['permanent']), int(kv['status']), detail))
        DEST.append(int(kv.get('destination', -1)))
    check(len(res) == len(pairs), 'post: %d result lines for %d jobs (stderr %r)' %
          (len(res), len(pairs), r.stderr))
    return res, elapsed, r.returncode


def main():
    with tempfile.TemporaryDirectory() as tmp:
        ca = testca.make_ca(tmp)
        good_cert = testca.make_cert(tmp, ca, 'good', ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1'])
        bad_cert = testca.make_cert(tmp, None, 'selfsigned', ['DNS:localhost', 'IP:127.0.0.1'])
        good, gport = https_server(*good_cert)
        bad, bport = https_server(*bad_cert)
        hang, hport = raw_server('hang')
        reset, rport = raw_server('reset')
        report = os.path.join(tmp, 'report.json.gz')
        payload = b'\x1f\x8b\x08\x00' + bytes(range(256)) * 40
        with open(report, 'wb') as f:
            f.write(payload)
        base = ['https_ca_file=' + ca[0], 'allow_loopback_destinations=yes',
                'https_connect_timeout=2s', 'https_timeout=2s']
        G = 'https://127.0.0.1:%d' % gport

        # one batch: every outcome, results in job order
        cases = [
            # url, ok, permanent, status, detail (exact, or prefix when it ends in '*')
            (G + '/ok', 1, 0, 200, 'HTTP 200'),
            (G + '/created', 1, 0, 201, 'HTTP 201'),
            (G + '/404', 0, 0, 404, 'HTTP 404: no such endpoint'),
            (G + '/410', 0, 1, 410, 'HTTP 410: gone'),
            (G + '/413', 0, 1, 413, 'HTTP 413: too large'),
            (G + '/500', 0, 0, 500, 'HTTP 500: internal error  second line\\x1b[31m'),
            (G + '/301', 0, 0, 301, 'HTTP 301: redirect to https://127.0.0.1:%d/ok not followed' % gport),
            (G + '/big', 1, 0, 200, 'HTTP 200'),
            (G + '/eof201', 1, 0, 201, '|HTTP 201'),
            (G + '/rst201', 1, 0, 201, 'HTTP 201 (then the connection failed: *(curl 56); the complete status counts)'),
            (G + '/short201', 1, 0, 201, 'HTTP 201 (then the connection failed: *(curl 18); the complete status counts)'),
            ('https://127.0.0.1:%d/ok' % bport, 0, 0, 0, '*(curl 60)'),
            ('https://127.0.0.1:%d/ok' % hport, 0, 0, 0, '*(curl 28)'),
            ('https://127.0.0.1:%d/ok' % rport, 0, 0, 0, '|(curl 7)|(curl 35)|(curl 56)'),
            ('http://127.0.0.1:%d/ok' % gport, 0, 1, 0,
             'URL "http://127.0.0.1:%d/ok" refused: only https:// is allowed' % gport),
            ('mailto:x@example.com', 0, 1, 0,
             'URL "mailto:x@example.com" refused: only https:// is allowed'),
            (G + '/ok\r\nX: y', 0, 1, 0, '*has a space, control or non-ASCII byte'),
        ]
        res, elapsed, rc = post(base, [(c[0], report) for c in cases])
        check(rc == 1, 'post exit %d, want 1 (some failed)' % rc)
        for c, r in zip(cases, res):
            want = c[1:4]
            check(r[:3] == want, '%s: got ok/permanent/status %r, want %r (%s)' %
                  (c[0], r[:3], want, r[3]))
            if '*' in c[4][1:]:
                head, _, tail = c[4].partition('*')
                check(r[3].startswith(head) and r[3].endswith(tail),
                      '%s: detail %r, want %r' % (c[0], r[3], c[4]))
            elif c[4].startswith('|'):
                check(any(x in r[3] for x in c[4][1:].split('|')),
                      '%s: detail %r, want one of %r' % (c[0], r[3], c[4][1:]))
            elif c[4].startswith('*'):
                check(c[4][1:] in r[3], '%s: detail %r, want it to contain %r' % (c[0], r[3], c[4][1:]))
            else:
                check(r[3] == c[4], '%s: detail %r, want %r' % (c[0], r[3], c[4]))
        # what a permanent failure is about (deliver.h): only 410 and refused URLs blame the destination
        for c, dflag in zip(cases, DEST):
            want = 1 if (c[2] == 1 and ('/410' in c[0] or 'refused' in c[4] or 'has a space' in c[4])) else 0
            check(dflag == want, '%s: destination flag %d, want %d' % (c[0], dflag, want))
        # the hanging server costs about one timeout, jobs run in parallel
        check(elapsed < 6, 'batch took %.1f s, want < 6 (timeouts 2 s, parallel)' % elapsed)

        # what the good server received for /ok
        oks = [x for x in received if x[0] == gport and x[1] == '/ok']
        check(len(oks) == 1, 'good server got %d POSTs to /ok, want 1 (no redirect followed)' % len(oks))
        if oks:
            h = {k.lower(): v for k, v in oks[0][2].items()}
            check(h.get('content-type') == 'application/tlsrpt+gzip',
                  'Content-Type %r' % h.get('content-type'))
            check('content-encoding' not in h, 'Content-Encoding sent: %r' % h.get('content-encoding'))
            check('expect' not in h, 'Expect header sent')
            check(h.get('user-agent', '').startswith('tlsrptd/'), 'User-Agent %r' % h.get('user-agent'))
            check(oks[0][3] == payload, 'body differs (%d bytes, want %d)' % (len(oks[0][3]), len(payload)))
        check(not any(x[0] == bport for x in received), 'bad-certificate server got a request')

        # bad certificate accepted when https_verify = no
        res, _, _ = post(base + ['https_verify=no'], [('https://127.0.0.1:%d/ok' % bport, report)])
        check(res[:1] and res[0][:3] == (1, 0, 200), 'https_verify=no: got %r, want ok 200' % res)
        # wrong host name with verification on (certificate has no 127.0.0.2)
        res, _, _ = post(base, [('https://127.0.0.2:%d/ok' % gport, report)])
        check(res[:1] and res[0][0] == 0, '127.0.0.2 (no SAN, nothing listening?) got %r' % res)

        # a host name that does not exist (NXDOMAIN) is about the destination; one
        # that exists but could not be resolved just now is retried. curl asks the
        # system resolver (which knows neither name); the check asks dns_resolver.
        dnsport = free_udp_port()
        zone = os.path.join(tmp, 'zone')
        with open(zone, 'w') as f:
            f.write('exists.tlsrpt.test A 127.0.0.1\n')
        dns = subprocess.Popen([sys.executable, os.path.join(SOURCE, 'tests', 'tools', 'testdns.py'),
                                '--port', str(dnsport), '--zone', zone], stdout=subprocess.PIPE, text=True)
        try:
            check(dns.stdout.readline().strip() == 'ready', 'testdns did not start')
            res, _, _ = post(base + ['dns_resolver=127.0.0.1:%d' % dnsport],
                             [('https://nx.tlsrpt.test/r', report), ('https://exists.tlsrpt.test/r', report)])
            check(len(res) == 2 and res[0][:3] == (0, 1, 0) and DEST[0] == 1 and
                  res[0][3] == 'host nx.tlsrpt.test does not exist (NXDOMAIN)',
                  'NXDOMAIN host: got %r %r, want permanent, about the destination' % (res[:1], DEST[:1]))
            check(len(res) == 2 and res[1][:2] == (0, 0) and '(curl 6)' in res[1][3],
                  'host that exists but is not resolvable now: got %r, want temporary' % (res[1:],))
        finally:
            dns.terminate()
            dns.wait()

        # loopback refused unless allowed; checked after DNS ("localhost")
        received.clear()
        strict = ['https_ca_file=' + ca[0], 'https_timeout=2s']
        for url in (G + '/ok', 'https://localhost:%d/ok' % gport, 'https://[::1]:%d/ok' % gport,
                    'https://[::ffff:127.0.0.1]:%d/ok' % gport):
            res, _, _ = post(strict, [(url, report)])
            check(res[:1] and res[0][:3] == (0, 1, 0) and 'is loopback (allow_loopback_destinations = no)' in res[0][3],
                  '%s not allowed: got %r, want permanent loopback refusal' % (url, res))
        check(received == [], 'server got %d requests from refused jobs' % len(received))
        res, _, _ = post(strict + ['allow_private_destinations=yes'], [(G + '/ok', report)])
        check(res[:1] and res[0][:3] == (1, 0, 200), 'allow_private_destinations=yes: got %r' % res)
        res, _, _ = post(strict, [('https://10.255.255.1:%d/ok' % gport, report),
                                  ('https://[fe80::1]:%d/ok' % gport, report),
                                  ('https://169.254.169.254/latest', report)])
        wants = ['10.255.255.1 is private', 'fe80::1 is link-local', '169.254.169.254 is link-local']
        for r, w in zip(res, wants):
            check(r[:3] == (0, 1, 0) and ('destination address ' + w + ' (allow_private_destinations = no)') in r[3],
                  'private destination: got %r, want refusal "%s"' % (r, w))
        res, _, _ = post(['allow_loopback_destinations=yes', 'https_timeout=2s'],
                         [('https://10.255.255.1/ok', report)])
        check(res[:1] and res[0][:2] == (0, 1) and 'is private' in res[0][3],
              'loopback allowance must not allow private: got %r' % res)

        # bounded concurrency
        received.clear()
        inflight[1] = 0
        res, _, rc = post(base + ['https_concurrency=3'],
                          [(G + '/slow%d' % i, report) for i in range(12)])
        check(rc == 0 and all(r[0] == 1 for r in res), 'concurrency batch: rc %d, %r' % (rc, res[:3]))
        check(len(received) == 12, 'concurrency batch: server got %d, want 12' % len(received))
        check(2 <= inflight[1] <= 3, 'peak concurrent requests %d, want 2..3' % inflight[1])

        for s in (good, bad):
            s.shutdown()
        hang.close()
        reset.close()

    if failures:
        print('%d failures' % failures)
        return 1
    print('https: ok')
    return 0


if __name__ == '__main__':
    sys.exit(main())
