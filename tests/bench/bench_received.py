#!/usr/bin/env python3
"""Benchmark of the received-report parser under hostile input (issue 10
item 3): peak RSS and CPU seconds of one `tlsrptctl received import` per
input, for a real-shaped report (the baseline, measured in the same run)
and for every hostile shape of tests/tools/hostile_reports.py (20 MB of
JSON each, in a 20-80 KB gzip), with the ratio to the baseline. The median
of RUNS runs is shown. Run:
  BUILD_DIR=build SOURCE_DIR=. python3 tests/bench/bench_received.py [RUNS]
"""
import os
import shutil
import statistics
import sys
import tempfile

# filled in when meson configures this file into the build directory
if not "@BUILD_DIR@".startswith("@"):
    os.environ.setdefault("BUILD_DIR", "@BUILD_DIR@")
    os.environ.setdefault("SOURCE_DIR", "@SOURCE_DIR@")
SOURCE = os.environ.get("SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILD = os.environ.get("BUILD_DIR", os.path.join(SOURCE, "build"))
sys.path.insert(0, os.path.join(SOURCE, "tests", "tools"))
import hostile_reports as hr  # noqa: E402

CTL = os.path.join(BUILD, "reporter", "tlsrptctl")
MAXRSS = os.path.join(BUILD, "tests", "maxrss")


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    tmp = tempfile.mkdtemp(prefix="bench_received.")
    try:
        conf = os.path.join(tmp, "c.conf")
        with open(conf, "w") as fp:
            fp.write(f"received_directory = {tmp}/store\n")
        real = hr.real_report()
        cases = [("a real report (baseline)", hr.gz(real), len(real))]
        cases += [(name, hr.gz(data), len(data)) for name, data, _ in hr.shapes()]
        print(f"received import, one process per input, median of {runs} runs "
              "(JSON: decompressed size; RSS: the process's peak)")
        print(f"{'input':44} {'gzip':>8} {'JSON':>9} {'peak RSS':>10} {'x real':>7} "
              f"{'CPU':>8} {'x real':>7}  result")
        base = None
        for name, payload, jlen in cases:
            path = os.path.join(tmp, "in.json.gz")
            with open(path, "wb") as fp:
                fp.write(payload)
            rss, cpu, out = [], [], ""
            for _ in range(runs):
                shutil.rmtree(os.path.join(tmp, "store"), ignore_errors=True)
                rc, out, kib, sec = hr.measure(MAXRSS, [CTL, "-c", conf, "received", "import", path])
                rss.append(kib / 1024)
                cpu.append(sec)
            r, c = statistics.median(rss), statistics.median(cpu)
            if base is None:
                base = (r, max(c, 0.001))
            verdict = "stored" if ": stored " in out else out.strip().split(": ")[-1].split(" at offset")[0]
            print(f"{name:44} {len(payload) / 1024:6.1f} K {jlen / 1e6:7.3f} M {r:8.1f} M "
                  f"{r / base[0]:6.1f}x {c:7.3f} s {c / base[1]:6.0f}x  {verdict}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
