#!/usr/bin/env python3
"""Benchmark of tlsrpt-policyd over its socketmap socket.

  cached:  lookups/s of cached policies, with 1..N client processes, each on
           one connection doing sequential lookups (as Postfix's smtp
           processes do), over DOMAINS different domains;
  cold:    DOMAINS domains never seen before, looked up at once from C
           connections: every lookup needs discovery + HTTPS fetch by the
           worker pool; wall time, fetches/s and reply latency.

Uses the local HTTPS server, test CA and test DNS of
tests/integration/test_policyd.py. Run:
  BUILD_DIR=build SOURCE_DIR=. python3 tests/bench/bench_policyd.py [DOMAINS]
"""
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

# filled in when meson configures this file into the build directory
if not "@BUILD_DIR@".startswith("@"):
    os.environ.setdefault("BUILD_DIR", "@BUILD_DIR@")
    os.environ.setdefault("SOURCE_DIR", "@SOURCE_DIR@")
SOURCE = os.environ.get("SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
import test_policyd as t  # noqa: E402

CLIENT = os.path.join(t.BUILD, "tests", "bench", "bench_socketmap")

DOMAINS = int(sys.argv[1]) if len(sys.argv) > 1 else 200
DURATION = 3.0


def names(prefix):
    return [f"d{i}.{prefix}.bench" for i in range(DOMAINS)]


def cold_worker(sock, doms, q):
    c = t.Client(sock)
    lat, ok = [], 0
    for d in doms:
        t0 = time.monotonic()
        r = c.query(d)
        lat.append(time.monotonic() - t0)
        ok += r.startswith("OK secure")
    q.put((lat, ok))


def run_threads(n, target, args_of):
    q = queue.Queue()
    ts = [threading.Thread(target=target, args=args_of(i) + (q,)) for i in range(n)]
    t0 = time.monotonic()
    for th in ts:
        th.start()
    res = [q.get() for _ in ts]
    for th in ts:
        th.join()
    return res, time.monotonic() - t0


def main():
    tmp = tempfile.TemporaryDirectory(prefix="bench_policyd.")
    d = tmp.name
    t.SITES.clear()
    warm = names("warm")
    cold = {conc: names(f"cold{conc}") for conc in (1, 8, 32)}
    for dom in warm + [x for v in cold.values() for x in v]:
        t.SITES[dom] = (200, "text/plain", t.policy("enforce", [f"mx.{dom}"]), 0, {})
    t.make_certs(d)
    https = t.start_https(d)
    dns, dport = t.start_dns(d)
    pd = t.Policyd(d, "bench", f"dns_resolver = 127.0.0.1:{dport}\nsts_https_port = {https.server_address[1]}\n"
                   f"sts_ca_file = {d}/ca.pem\nsts_cache_file = {d}/cache\nsts_reply_budget = 60s\n"
                   "sts_allow_loopback_destinations = yes\n"
                   f"sts_fetch_timeout = 30s\n")
    pd.start()
    print(f"tlsrpt-policyd benchmark, {DOMAINS} domains, {os.cpu_count()} CPUs")
    print()
    print("cold lookups (discovery + HTTPS fetch each; 8 worker threads; client threads)")
    print(f"{'connections':>11} {'domains':>8} {'wall s':>8} {'fetch/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'ok':>6}")
    for conc in (1, 8, 32):
        per = [cold[conc][i::conc] for i in range(conc)]
        res, wall = run_threads(conc, cold_worker, lambda i: (pd.sock, per[i]))
        lat = sorted(x for r in res for x in r[0])
        ok = sum(r[1] for r in res)
        print(f"{conc:>11} {len(lat):>8} {wall:>8.2f} {len(lat) / wall:>8.1f} "
              f"{lat[len(lat) // 2] * 1000:>8.1f} {lat[int(len(lat) * 0.99)] * 1000:>8.1f} {ok:>6}")
    # warm the cache
    c = t.Client(pd.sock)
    for dom in warm:
        c.query(dom)
    print()
    print(f"cached lookups (C client bench_socketmap, {DURATION:.0f} s per row, one request "
          "in flight per connection)")
    print(f"{'connections':>11} {'lookups':>9} {'lookups/s':>10} {'errors':>7}")
    for conc in (1, 4, 16, 64):
        out = subprocess.run([CLIENT, pd.sock, str(conc), str(DURATION)] + warm,
                             capture_output=True, text=True, check=True).stdout.split()
        total, errors = int(out[0]), int(out[1])
        print(f"{conc:>11} {total:>9} {total / DURATION:>10.0f} {errors:>7}")
    pd.stop()
    dns.terminate()
    https.shutdown()


if __name__ == "__main__":
    main()
