#!/usr/bin/env python3
"""tlsrptd counts exactly what the real libtlsrpt (Debian 13's) sends: the
same workload as test_collector, but every datagram made by the library."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import BUILD, Collector, check, check_eq, cleanup, done, tempdir  # noqa: E402
from test_collector import expected, normalize, workload  # noqa: E402

CLIENT = os.path.join(BUILD, "tests", "integration", "libtlsrpt_client")


def main():
    if not os.path.exists(CLIENT):
        print("SKIP: libtlsrpt is not available (./run fetches Debian 13's libtlsrpt0-dev)")
        sys.exit(77)
    tmp = tempdir("tlsrptd-libtlsrpt")
    try:
        col = Collector(tmp).start()
        load = workload()
        lines = "".join(json.dumps({"d": d, "pr": pr, "policies": [p]}) + "\n" for d, pr, p, _ in load)
        # one request with two policies: one session under each
        two = {"d": "multi.example", "pr": "v=TLSRPTv1;rua=mailto:a@multi.example",
               "policies": [{"type": 2, "domain": "multi.example", "strings": ["version: STSv1"],
                             "mx": ["*.multi.example"], "failed": True,
                             "details": [{"c": 302, "s": "192.0.2.1"}]},
                            {"type": 1, "domain": "mx.multi.example", "strings": ["3 1 1 AB"]}]}
        lines += json.dumps(two) + "\n"
        r = subprocess.run([CLIENT, col.sock], input=lines, capture_output=True, text=True, timeout=60)
        check_eq(r.returncode, 0, f"libtlsrpt client exit ({r.stderr.strip()})")
        check_eq(r.stdout.strip(), f"sent {len(load) + 1}", "requests sent")
        col.settle(len(load) + 1)
        want = expected(load + [(two["d"], two["pr"], p, True) for p in two["policies"]])
        check_eq(normalize(col.dump()), want, "dump of what libtlsrpt sent")
        st = col.stats()
        check_eq(st["counters"]["malformed_datagrams"] + st["counters"]["wrong_shape_datagrams"], 0,
                 "no datagram of the real library was rejected")
        col.stop()
    finally:
        cleanup(tmp)
    done("test_libtlsrpt")


if __name__ == "__main__":
    main()
