#!/usr/bin/env python3
"""Side-by-side benchmark: tlsrpt-policyd against Debian's
postfix-mta-sts-resolver (mta-sts-daemon), on the same keys in the same
run, each started with an empty cache:

  cold, 1 connection    N domains never seen, looked up one after the other
  cold, 32 connections  N other domains, 32 client threads
  cached, 1 and 32      lookups/s of the 2N cached domains (bench_socketmap,
                        one request in flight per connection)
  memory                resident set (VmRSS) after all of it
  CPU                   the daemon's own user + system time per cold and per
                        cached lookup (/proc/PID/stat): unlike the rates, it
                        does not depend on what else runs on the machine

tlsrpt-policyd runs twice: with policy_dane = no (MTA-STS only, what the
resolver does) and with policy_dane = yes (an MX and a TLSA lookup before
MTA-STS; one domain in ten has a TLSA record and gets dane-only).

Both get the same loopback test DNS server (tests/tools/testdns.py, as
127.0.0.53, the only resolver in /etc/resolv.conf) and the same HTTPS policy
server on 127.0.0.1:443 with a test CA (SSL_CERT_FILE for the resolver,
sts_ca_file for tlsrpt-policyd), inside a private network and mount
namespace this script creates (root, unshare): nothing outside is touched.
The resolver is the Debian package (./run bench installs it and keeps its
service stopped). Without root, unshare or the package it says so and
exits 0: a benchmark prints numbers, it does not fail.

  bench_compare.py BUILD_DIR [N]     (N per cold phase, default 500)
"""
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
DURATION = 3.0
RESOLVER = shutil.which("mta-sts-daemon") or "/usr/bin/mta-sts-daemon"


def say(msg):
    print(msg, flush=True)


def outside(build, n):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        say("side-by-side benchmark skipped: needs root and unshare (network namespace)")
        return 0
    if not os.access(RESOLVER, os.X_OK):
        say("side-by-side benchmark skipped: postfix-mta-sts-resolver is not installed "
            "(./run bench installs it)")
        return 0
    r = subprocess.run(["unshare", "--net", "--mount", "--", sys.executable,
                        os.path.abspath(__file__), build, str(n), "--inside"])
    return r.returncode


def setup_namespace(tmp):
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    resolv = os.path.join(tmp, "resolv.conf")
    with open(resolv, "w") as fp:
        fp.write("nameserver 127.0.0.53\noptions attempts:2 timeout:2\n")
    subprocess.run(["mount", "--bind", resolv, "/etc/resolv.conf"], check=True)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as fp:
        for line in fp:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    """User + system CPU seconds of process pid (all its threads)."""
    with open("/proc/%d/stat" % pid) as fp:
        f = fp.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def cold(sock, doms, conns):
    import test_policyd as T

    q = queue.Queue()
    per = [doms[i::conns] for i in range(conns)]

    def worker(ds):
        c = T.Client(sock)
        ok = dane = 0
        for d in ds:
            r = c.query(d)
            ok += r.startswith("OK ")
            dane += r.startswith("OK dane")
        q.put((ok, dane))
    ts = [threading.Thread(target=worker, args=(p,)) for p in per]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    res = [q.get() for _ in ts]
    for t in ts:
        t.join()
    wall = time.monotonic() - t0
    return len(doms) / wall, sum(r[0] for r in res), sum(r[1] for r in res)


def cached(build, sock, doms, conns):
    client = os.path.join(build, "tests", "bench", "bench_socketmap")
    out = subprocess.run([client, sock, str(conns), str(DURATION)] + doms,
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]) / DURATION, int(out[1]), int(out[0])


def wait_sock(proc, path, what):
    for _ in range(400):
        if os.path.exists(path):
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(path)
                s.close()
                return
            except OSError:
                pass
        if proc.poll() is not None:
            raise RuntimeError(what + " exited")
        time.sleep(0.05)
    raise RuntimeError(what + " did not start")


def measure(build, name, start, sock, sets):
    proc = start()
    wait_sock(proc, sock, name)
    row = {"name": name}
    try:
        c0 = cpu_s(proc.pid)
        row["cold1"], ok1, dane1 = cold(sock, sets["cold1"], 1)
        row["cold32"], ok32, dane32 = cold(sock, sets["cold32"], 32)
        c1 = cpu_s(proc.pid)
        row["ok"] = ok1 + ok32
        row["dane"] = dane1 + dane32
        every = sets["cold1"] + sets["cold32"]
        row["cached1"], e1, n1 = cached(build, sock, every, 1)
        row["cached32"], e32, n32 = cached(build, sock, every, 32)
        c2 = cpu_s(proc.pid)
        row["errors"] = e1 + e32
        # the daemon's own CPU time per lookup: what load on a shared
        # machine does not change (wall-clock rates above it does)
        row["cpu_cold_ms"] = (c1 - c0) * 1000.0 / len(every)
        row["cpu_cached_us"] = (c2 - c1) * 1e6 / max(1, n1 + n32)
        row["rss"] = rss_kib(proc.pid) / 1024.0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return row


def inside(build, n):
    import test_policyd as T

    tmp = tempfile.mkdtemp(prefix="bench_compare.")
    try:
        setup_namespace(tmp)
        sets = {"cold1": ["c1-%d.bench.test" % i for i in range(n)],
                "cold32": ["c32-%d.bench.test" % i for i in range(n)]}
        doms = sets["cold1"] + sets["cold32"]
        T.SITES.clear()
        for d in doms:
            T.SITES[d] = (200, "text/plain", T.policy("enforce", ["mx." + d]), 0, {})
        T.make_certs(tmp)
        https = T.TLSServer(("127.0.0.1", 443), T.Handler)
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(tmp, "good.pem"), os.path.join(tmp, "good.key"))
        https.socket = ctx.wrap_socket(https.socket, server_side=True)
        threading.Thread(target=https.serve_forever, daemon=True).start()
        zone = os.path.join(tmp, "zone")
        with open(zone, "w") as fp:
            for i, d in enumerate(doms):
                fp.write('_mta-sts.%s TXT "v=STSv1; id=1"\nmta-sts.%s A 127.0.0.1\n' % (d, d))
                fp.write("%s MX 10 mx.%s\nmx.%s A 127.0.0.1\n" % (d, d, d))
                if i % 10 == 0:
                    fp.write("_25._tcp.mx.%s TLSA 3 1 1 %s\n" % (d, "ab" * 32))
        dns = subprocess.Popen([sys.executable, T.TESTDNS, "--addr", "127.0.0.53", "--port", "53",
                                "--zone", zone], stdout=subprocess.PIPE, text=True)
        if dns.stdout.readline().strip() != "ready":
            raise RuntimeError("testdns did not start")

        rows = []
        policyd = os.path.join(build, "milter", "tlsrpt-policyd")
        for dane in ("no", "yes"):
            sock = os.path.join(tmp, "policyd-%s.sock" % dane)
            conf = os.path.join(tmp, "policyd-%s.conf" % dane)
            with open(conf, "w") as fp:
                fp.write("policy_socket = unix:%s\ndns_resolver = 127.0.0.53:53\n"
                         "sts_https_port = 443\nsts_ca_file = %s/ca.pem\n"
                         "sts_cache_file = %s/cache-%s\nsts_reply_budget = 60s\n"
                         "sts_fetch_timeout = 30s\npolicy_dane = %s\n"
                         "sts_allow_loopback_destinations = yes\n" % (
                             sock, tmp, tmp, dane, dane))
            rows.append(measure(build, "tlsrpt-policyd" + (" (DANE on)" if dane == "yes" else ""),
                                lambda conf=conf: subprocess.Popen(
                                    [policyd, "-f", "-c", conf], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL), sock, sets))
        rsock = os.path.join(tmp, "resolver.sock")
        ryml = os.path.join(tmp, "mta-sts-daemon.yml")
        with open(ryml, "w") as fp:
            fp.write('path: "%s"\nmode: 0666\nshutdown_timeout: 5\ncache:\n  type: internal\n'
                     "  options:\n    cache_size: %d\ndefault_zone:\n  strict_testing: false\n"
                     "  timeout: 30\n" % (rsock, 4 * n + 100))
        env = dict(os.environ, SSL_CERT_FILE=os.path.join(tmp, "ca.pem"))
        rows.append(measure(build, "postfix-mta-sts-resolver", lambda: subprocess.Popen(
            [RESOLVER, "-c", ryml, "-v", "warn"], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL), rsock, sets))
        dns.terminate()
        https.shutdown()
        version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}",
                                  "postfix-mta-sts-resolver"], capture_output=True,
                                 text=True).stdout or "?"
        say("")
        say("tlsrpt-policyd vs postfix-mta-sts-resolver %s, %d + %d domains (enforce "
            "policies), loopback DNS and HTTPS, same run, %d CPUs" % (version, n, n,
                                                                     os.cpu_count()))
        say("load average before: %.1f" % os.getloadavg()[0])
        say("%-28s %10s %10s %11s %11s %8s %9s %9s %6s %6s %6s" % (
            "lookups/s", "cold 1", "cold 32", "cached 1", "cached 32", "RSS MiB",
            "CPU/cold", "CPU/cach", "OK", "dane", "errors"))
        for r in rows:
            say("%-28s %10.0f %10.0f %11.0f %11.0f %8.1f %7.2fms %7.1fus %6d %6d %6d" % (
                r["name"], r["cold1"], r["cold32"], r["cached1"], r["cached32"], r["rss"],
                r["cpu_cold_ms"], r["cpu_cached_us"], r["ok"], r["dane"], r["errors"]))
        res = rows[-1]
        for r, label in ((rows[0], "tlsrpt-policyd / resolver"),
                         (rows[1], "  with DANE on / resolver")):
            say("%-28s %9.1fx %9.1fx %10.1fx %10.1fx %7.2fx %8.2fx %8.2fx" % (
                label, r["cold1"] / res["cold1"], r["cold32"] / res["cold32"],
                r["cached1"] / res["cached1"], r["cached32"] / res["cached32"],
                r["rss"] / res["rss"], r["cpu_cold_ms"] / res["cpu_cold_ms"],
                r["cpu_cached_us"] / res["cpu_cached_us"]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    n = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 500
    os.environ.setdefault("BUILD_DIR", build)
    os.environ.setdefault("SOURCE_DIR", SOURCE)
    if "--inside" in sys.argv:
        return inside(build, n)
    return outside(build, n)


if __name__ == "__main__":
    sys.exit(main())
