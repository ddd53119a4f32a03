#!/usr/bin/env python3
"""Collector benchmark: prints numbers, never passes or fails.

1. Sustained ingest through the real socket: tlsrptd vs a bare receiver that
   only drains and discards (same batches, same buffers), same sender, same
   run. Rate = datagrams / wall time from the sender's start to the last one
   counted (tlsrptd: seen in its day file; bare: received).
2. Loss under Postfix-like bursts: 100 processes x 20 results, each on a new
   non-blocking socket, at net.unix.max_dgram_qlen 10 (the kernel default)
   and 512 (the shipped sysctl drop-in). The queue length is set inside a
   private network namespace (unshare -n), so the host is not changed.
3. Memory: resident set and day file size after 1, 1k and 100k domains.

usage: bench_collector.py BUILD_DIR [--quick]
"""
import mmap
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
QUICK = "--quick" in sys.argv
TLSRPTD = os.path.join(BUILD, "milter", "tlsrptd")
SENDER = os.path.join(BUILD, "tests", "bench", "dgram_sender")
BARE = os.path.join(BUILD, "tests", "bench", "bare_receiver")
# offsets in the day file header (lib/collect/store.c struct store_header)
HDR_USED, HDR_DATAGRAMS, HDR_SESSIONS = 32, 48, 64


def day_file(state):
    days = os.path.join(state, "days")
    for _ in range(500):
        if os.path.isdir(days):
            files = [f for f in os.listdir(days) if f.endswith(".tlsrpt")]
            if files:
                return os.path.join(days, sorted(files)[-1])
        time.sleep(0.01)
    raise RuntimeError("no day file")


class Daemon:
    def __init__(self, tmp, netns_qlen=None, extra=""):
        self.tmp = tmp
        self.sock = os.path.join(tmp, "s.sock")
        self.state = os.path.join(tmp, "state")
        conf = os.path.join(tmp, "c.conf")
        with open(conf, "w") as fp:
            fp.write(f"state_directory = {self.state}\nsocket_path = {self.sock}\n"
                     "store_max_size = 512M\n" + extra)
        cmd = [TLSRPTD, "-f", "-c", conf]
        if netns_qlen:
            cmd = in_netns(netns_qlen, cmd)
        self.log = open(os.path.join(tmp, "log"), "w")
        self.proc = subprocess.Popen(cmd, stderr=self.log)
        deadline = time.time() + 10
        while "collecting" not in open(os.path.join(tmp, "log")).read():
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("tlsrptd did not start")
            time.sleep(0.01)
        self.fp = open(day_file(self.state), "rb")
        self.mm = mmap.mmap(self.fp.fileno(), 0, prot=mmap.PROT_READ)

    def counter(self, off):
        return struct.unpack_from("<Q", self.mm, off)[0]

    def wait_datagrams(self, n, timeout=120):
        deadline = time.time() + timeout
        while self.counter(HDR_DATAGRAMS) < n:
            if time.time() > deadline:
                raise RuntimeError("collector fell behind")
            time.sleep(0.0005)

    def pid(self):
        # under unshare the daemon is exec'd into the same pid
        return self.proc.pid

    def cpu(self):
        with open(f"/proc/{self.pid()}/stat") as fp:
            f = fp.read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self):
        with open(f"/proc/{self.pid()}/status") as fp:
            for line in fp:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.mm.close()
        self.fp.close()
        self.proc.terminate()
        self.proc.wait(10)


def in_netns(qlen, cmd):
    """cmd in a private network namespace with its own max_dgram_qlen."""
    return ["unshare", "-n", "sh", "-c",
            f"sysctl -q -w net.unix.max_dgram_qlen={qlen} && exec " + " ".join(cmd)]


def send_parallel(sock, count, domains, senders=2):
    """Blocking senders in parallel, so that the receiver is the bottleneck."""
    procs = [subprocess.Popen([SENDER, "bulk", sock, str(count // senders), str(domains)],
                              stdout=subprocess.DEVNULL) for _ in range(senders)]
    for p in procs:
        p.wait()


def ingest(count, domains, qlen, senders):
    tmp = tempfile.mkdtemp(prefix="bench-ingest.")
    try:
        # bare receiver, with tlsrptd's default real-time priority
        sock = os.path.join(tmp, "bare.sock")
        rx = subprocess.Popen(in_netns(qlen, [BARE, sock, str(count), "5"]),
                              stdout=subprocess.PIPE, text=True)
        rx.stdout.readline()
        t0 = time.perf_counter()
        send_parallel(sock, count, domains, senders)
        out = rx.communicate(timeout=60)[0]
        bare_wall = time.perf_counter() - t0
        bare_cpu = float(out.split("cpu")[1].split()[0])
        # tlsrptd
        d = Daemon(tmp, netns_qlen=qlen, extra="realtime_priority = 0\n")
        cpu0 = d.cpu()
        t0 = time.perf_counter()
        send_parallel(d.sock, count, domains, senders)
        d.wait_datagrams(count)
        col_wall = time.perf_counter() - t0
        col_cpu = d.cpu() - cpu0
        bad = d.counter(HDR_DATAGRAMS) - d.counter(HDR_SESSIONS)
        d.stop()
        return count / bare_wall, count / col_wall, bare_cpu / count * 1e6, col_cpu / count * 1e6, bad
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def burst(qlen, procs=100, per=20):
    tmp = tempfile.mkdtemp(prefix="bench-burst.")
    try:
        d = Daemon(tmp, netns_qlen=qlen)
        out = subprocess.run([SENDER, "burst", d.sock, str(procs), str(per), "1000"],
                             capture_output=True, text=True, check=True).stdout.split()
        sent, lost = int(out[1]), int(out[3])
        d.wait_datagrams(sent, timeout=30)
        time.sleep(0.2)
        counted = d.counter(HDR_DATAGRAMS)
        d.stop()
        return sent, lost, counted
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def memory(domains):
    tmp = tempfile.mkdtemp(prefix="bench-mem.")
    try:
        d = Daemon(tmp)
        count = max(100, domains * 6)
        subprocess.run([SENDER, "bulk", d.sock, str(count), str(domains)], check=True,
                       stdout=subprocess.DEVNULL)
        d.wait_datagrams(count)
        used, rss = d.counter(HDR_USED), d.rss_kib()
        d.stop()
        return count, used, rss
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    runs = 1 if QUICK else 3
    count = 200000 if QUICK else 1000000
    print(f"# tlsrptd collector benchmark ({os.cpu_count()} cores, {time.strftime('%Y-%m-%d')})\n")
    print(f"## Sustained ingest: {count} datagrams, 10,000 domains, blocking senders, normal scheduling for both receivers, median of {runs} runs\n")
    print("| max_dgram_qlen | senders | bare receiver datagrams/s | tlsrptd datagrams/s | tlsrptd / bare "
          "| CPU µs/datagram bare | CPU µs/datagram tlsrptd |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for qlen, senders in ((10, 1), (512, 1), (512, 2)):
        res = [ingest(count, 10000, qlen, senders) for _ in range(runs)]
        bare = statistics.median(r[0] for r in res)
        col = statistics.median(r[1] for r in res)
        print(f"| {qlen} | {senders} | {bare:,.0f} | {col:,.0f} | {col / bare * 100:.1f} % | "
              f"{statistics.median(r[2] for r in res):.2f} | {statistics.median(r[3] for r in res):.2f} |")
        if any(r[4] for r in res):
            print(f"(rejected datagrams: {res[0][4]})")
    print()

    print("## Loss with Postfix-like bursts: 100 processes x 20 results, new non-blocking socket each\n")
    print("| net.unix.max_dgram_qlen | runs | sent | lost (EAGAIN) | loss | counted = sent |")
    print("|---:|---:|---:|---:|---:|---|")
    for qlen in (10, 512):
        rs = [burst(qlen) for _ in range(3 if QUICK else 10)]
        sent = sum(r[0] for r in rs)
        lost = sum(r[1] for r in rs)
        ok = all(r[2] == r[0] for r in rs)
        print(f"| {qlen} | {len(rs)} | {sent} | {lost} | {lost / (sent + lost) * 100:.2f} % | {'yes' if ok else 'NO'} |")

    print("\n## Memory\n")
    print("| domains / day | datagrams | day file used | tlsrptd RSS |")
    print("|---:|---:|---:|---:|")
    for n in (1, 1000, 100000):
        count, used, rss = memory(n)
        print(f"| {n:,} | {count:,} | {used / 2**20:.2f} MiB | {rss / 1024:.1f} MiB |")


if __name__ == "__main__":
    main()
