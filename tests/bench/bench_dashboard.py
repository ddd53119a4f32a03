#!/usr/bin/env python3
"""bench_dashboard BUILD: a generated year of received reports for 100
domains (tests/integration/reportgen.py), then `tlsrptctl dashboard` over
the default 30 days and over the year, `tlsrptctl metrics` and `received
check`: time and site size, each against the baseline of this run: the
old one-page `received summary --html` of the same store."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import reportgen  # noqa: E402


def du(path):
    total = files = 0
    for root, _, names in os.walk(path):
        for n in names:
            total += os.path.getsize(os.path.join(root, n))
            files += 1
    return total, files


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    ctl = os.path.join(build, "reporter", "tlsrptctl")
    tmp = tempfile.mkdtemp(prefix="bench_dashboard.", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:
        src = os.path.join(tmp, "src")
        os.makedirs(src)
        files = reportgen.year(src)
        conf = os.path.join(tmp, "c.conf")
        with open(conf, "w") as fp:
            fp.write(f"received_directory = {tmp}/store\nspool_directory = {tmp}/nospool\n")
        t0 = time.perf_counter()
        for i in range(0, len(files), 5000):
            subprocess.run([ctl, "-c", conf, "received", "import"] + files[i:i + 5000],
                           check=True, stdout=subprocess.DEVNULL)
        t_import = time.perf_counter() - t0

        def run(*args):
            t = time.perf_counter()
            subprocess.run([ctl, "-c", conf] + list(args), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            return time.perf_counter() - t
        base_t = run("received", "summary", "--html", os.path.join(tmp, "old.html"))
        base_s = os.path.getsize(os.path.join(tmp, "old.html"))
        print(f"dashboard: {len(files):,} received reports for 100 domains over 365 days "
              f"(imported in {t_import:.1f} s, store on {'tmpfs' if tmp.startswith('/dev/shm') else 'disk'})")
        print(f"| what | time | written | files | time / summary --html |")
        print(f"|---|---:|---:|---:|---:|")
        print(f"| received summary --html (baseline) | {base_t:.2f} s | {base_s / 1e6:.1f} MB | 1 | 1.0 |")
        for days in (30, 365):
            site = os.path.join(tmp, f"site{days}")
            t = run("dashboard", "--output", site, "--now", "2025-12-31", "--days", str(days))
            size, n = du(site)
            print(f"| dashboard --days {days} | {t:.2f} s | {size / 1e6:.1f} MB | {n:,} | {t / base_t:.1f} |")
        t = run("metrics", "--output", os.path.join(tmp, "m.prom"))
        print(f"| metrics (both sides) | {t:.2f} s | {os.path.getsize(os.path.join(tmp, 'm.prom')) / 1e3:.0f} kB "
              f"| 1 | {t / base_t:.1f} |")
        t = run("received", "check", "--now", "2025-12-31", "--unverified", "--no-state")
        print(f"| received check | {t:.2f} s | - | - | {t / base_t:.1f} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
