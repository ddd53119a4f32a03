#!/usr/bin/env python3
"""Benchmark of HTTPS report delivery (https_post_all through deliver_tool).

    bench_https.py [--build DIR] [--reports N] [--urls 1000] [--servers 4]
                   [--size BYTES] [--scenarios 1:16,250:16,250:64]
    BUILD/tests/bench/bench_https   (the same, configured by meson; ./run bench)

Per scenario HOSTS:CONCURRENCY: starts --servers local HTTPS server
processes (Python, test CA made with the openssl CLI) listening on HOSTS
loopback addresses 127.0.0.1..127.0.0.HOSTS, writes --urls distinct endpoint
URLs spread over them (https://127.0.0.X:PORT/rua/I), and has deliver_tool
POST --reports reports round robin over those URLs with https_concurrency =
CONCURRENCY. With 1 host, connections are reused between URLs; with 250
nearly every report needs its own TLS handshake. Prints deliver_tool's line
"N reports to U URLs in S s: R reports/s, F failed" and the client's CPU
time. The Python servers are the limit in the many-hosts case, so those
numbers are a lower bound for the client.
"""
import argparse
import resource
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
# meson installs a copy as BUILD/tests/bench/bench_https with these filled in
TOOLS = '@TOOLS_DIR@'
BUILD = '@BUILD_DIR@'
if TOOLS.startswith('@'):
    TOOLS = os.path.join(HERE, '..', 'tools')
    BUILD = os.environ.get('BUILD_DIR', 'build')
sys.path.insert(0, TOOLS)
import testca  # noqa: E402

SERVER = r'''
import http.server, ssl, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    disable_nagle_algorithm = True
    def log_message(self, *a): pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length', '0')))
        self.send_response(200 if self.path.startswith('/rua/') else 404)
        self.send_header('Content-Length', '0')
        self.end_headers()
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
servers = []
for ip in sys.argv[3:]:
    s = http.server.ThreadingHTTPServer((ip, 0), H)
    s.daemon_threads = True
    s.socket = ctx.wrap_socket(s.socket, server_side=True)
    servers.append(s)
    print(ip, s.server_port, flush=True)
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
servers[0].serve_forever()
'''


def run(args, hosts_n, conc):
    with tempfile.TemporaryDirectory() as d:
        ca = testca.make_ca(d)
        hosts = ['127.0.0.%d' % (i + 1) for i in range(min(max(hosts_n, 1), 250))]
        cert, key = testca.make_cert(d, ca, 'bench', ['IP:' + h for h in hosts])
        procs, endpoints = [], []
        try:
            for k in range(args.servers):
                mine = hosts[k::args.servers] or hosts[:1]
                p = subprocess.Popen([sys.executable, '-c', SERVER, cert, key] + mine,
                                     stdout=subprocess.PIPE, text=True)
                procs.append(p)
                for _ in mine:
                    ip, port = p.stdout.readline().split()
                    endpoints.append((ip, int(port)))
            urls = os.path.join(d, 'urls')
            with open(urls, 'w') as f:
                for i in range(args.urls):
                    f.write('https://%s:%d/rua/%d\n' % (endpoints[i % len(endpoints)] + (i,)))
            body = os.path.join(d, 'report.json.gz')
            with open(body, 'wb') as f:
                f.write(b'\x1f\x8b' + os.urandom(args.size - 2))
            cmd = [os.path.join(args.build, 'tests', 'deliver_tool'),
                   '-o', 'https_ca_file=' + ca[0], '-o', 'allow_loopback_destinations=yes',
                   '-o', 'https_concurrency=%d' % conc,
                   'bench', urls, str(args.reports), body]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            r = subprocess.run(cmd, capture_output=True, text=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            print('https (%d loopback hosts, %d server processes, concurrency %d): %s'
                  % (len(hosts), args.servers, conc, r.stdout.strip()))
            print('  client CPU: user %.2f s, system %.2f s' %
                  (after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime))
            sys.stderr.write(r.stderr)
            return r.returncode
        finally:
            for p in procs:
                p.kill()
                p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default=BUILD)
    ap.add_argument('--reports', type=int, default=2000)
    ap.add_argument('--urls', type=int, default=1000)
    ap.add_argument('--servers', type=int, default=4)
    ap.add_argument('--size', type=int, default=2048)
    ap.add_argument('--scenarios', default='1:16,250:16,250:64',
                    help='comma separated HOSTS:CONCURRENCY; HOSTS distinct loopback '
                         'addresses 127.0.0.1..N (max 250) cannot share connections')
    args = ap.parse_args()
    rc = 0
    for sc in args.scenarios.split(','):
        h, c = sc.split(':')
        rc |= run(args, int(h), int(c))
    return rc


if __name__ == '__main__':
    sys.exit(main())
