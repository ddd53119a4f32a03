"""Hostile received reports for the memory bound of the report parser (issue
10 item 3), shared by tests/integration/test_bounds.py (which asserts the
bound) and tests/bench/bench_received.py (which prints the figures against
a real report's cost).

Every shape decompresses to at most SIZE bytes, just below the default
max_report_size (20M), so each one passes the decompression limit and
reaches the JSON parser. Most compress about 1000:1: a 20 KB attachment.
"""
import gzip
import json
import os
import subprocess
import tempfile

SIZE = 20_000_000            # below max_report_size = 20M (20,971,520 bytes)
RLIMIT = 1 << 30             # address-space cap for the measured child: an
                             # unbounded parser fails there instead of taking the machine

HEAD = ('{"organization-name":"Hostile Example","date-range":{"start-datetime":'
        '"2026-01-01T00:00:00Z","end-datetime":"2026-01-01T23:59:59Z"},'
        '"contact-info":"tlsrpt@hostile.example","report-id":"%s",')


def _repeat(head, unit, tail, sep=","):
    n = (SIZE - len(head) - len(tail)) // (len(unit) + len(sep))
    return head + sep.join([unit] * n) + tail


def real_report():
    """A report shaped like Google's (the baseline): two policies, a few rows."""
    rows = [{"result-type": "certificate-expired", "sending-mta-ip": f"209.85.220.{i}",
             "receiving-ip": "198.51.100.25", "receiving-mx-hostname": "mx1.example.com",
             "failed-session-count": 3 + i} for i in range(8)]
    rep = {"organization-name": "Google Inc.",
           "date-range": {"start-datetime": "2026-01-01T00:00:00Z",
                          "end-datetime": "2026-01-01T23:59:59Z"},
           "contact-info": "smtp-tls-reporting@google.com",
           "report-id": "2026-01-01T00:00:00Z_example.com",
           "policies": [
               {"policy": {"policy-type": "sts",
                           "policy-string": ["version: STSv1", "mode: enforce",
                                             "mx: mx1.example.com", "mx: mx2.example.com",
                                             "max_age: 604800"],
                           "policy-domain": "example.com",
                           "mx-host": ["mx1.example.com", "mx2.example.com"]},
                "summary": {"total-successful-session-count": 4711,
                            "total-failure-session-count": sum(r["failed-session-count"] for r in rows)},
                "failure-details": rows},
               {"policy": {"policy-type": "no-policy-found", "policy-domain": "example.com"},
                "summary": {"total-successful-session-count": 12, "total-failure-session-count": 0}}]}
    return json.dumps(rep).encode()


def shapes():
    """(name, JSON bytes, what the import must say): the hostile inputs."""
    row = ('{"result-type":"certificate-expired","sending-mta-ip":"192.0.2.1",'
           '"receiving-ip":"198.51.100.1","receiving-mx-hostname":"mx.example.com",'
           '"failed-session-count":1}')
    pol = ('{"policy":{"policy-type":"sts","policy-domain":"example.com"},"summary":'
           '{"total-successful-session-count":1,"total-failure-session-count":0}}')
    # the heaviest input that is accepted: 10,000 rows (the budget) whose
    # strings stay just within the 4 MiB text budget
    budget_row = ('{"result-type":"validation-failure","sending-mta-ip":"192.0.2.%d",'
                  '"failure-reason-code":"' + "r" * 360 + '","failed-session-count":1}')
    budget = (HEAD % "budget" + '"policies":[{"policy":{"policy-type":"sts",'
              '"policy-domain":"example.com"},"summary":{"total-successful-session-count":0,'
              '"total-failure-session-count":10000},"failure-details":['
              + ",".join(budget_row % (i % 250) for i in range(10000)) + "]}]}")
    return [
        ("empty objects {\"x\":[{},{},...]}", _repeat('{"x":[', "{}", "]}").encode(),
         "more than 1000000 JSON values"),
        ("deep arrays [[[[...", ('{"x":' + "[" * (SIZE // 2 - 4) + "]" * (SIZE // 2 - 4) + "}").encode(),
         "nested deeper than 16 levels"),
        ("one long string", ('{"organization-name":"' + "a" * (SIZE - 30) + '"}').encode(),
         "date-range missing"),
        ("many keys", _repeat("{", '"k":1', "}").encode(), "more than 1000000 JSON values"),
        ("many failure-detail rows",
         _repeat(HEAD % "rows" + '"policies":[{"policy":{"policy-type":"sts"},"failure-details":[',
                 row, "]}]}").encode(), "more than 10000 failure-details"),
        ("many policies", _repeat(HEAD % "pols" + '"policies":[', pol, "]}").encode(),
         "more than 1000 policies"),
        ("many mx-host strings",
         _repeat(HEAD % "mx" + '"policies":[{"policy":{"mx-host":[', '"mx: mx.example.com"',
                 "]}}]}").encode(), "mx-host has more than 1000 entries"),
        ("at the budgets (accepted)", budget.encode(), "stored"),
    ]


def gz(data):
    return gzip.compress(data, 9)


def measure(maxrss, argv, timeout=120, limit=RLIMIT):
    """Run argv under tests/tools/maxrss (address-space cap RLIMIT): (exit
    status, output, peak RSS in KiB of that program alone, its CPU seconds).
    'limit' 2**64-1 is none (AddressSanitizer reserves terabytes of address
    space, so a sanitized program can not run under the cap)."""
    fd, out = tempfile.mkstemp(prefix="maxrss.")
    os.close(fd)
    # meson sets MALLOC_PERTURB_, which fills every allocation and so makes
    # RSS the size allocated (a doubling buffer counts in full) rather than
    # the memory used, as in production
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_PERTURB_"}
    p = subprocess.Popen([maxrss, out, str(limit)] + list(argv), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True, env=env)
    try:
        text, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)         # maxrss and the program it runs
        text, _ = p.communicate()
        text += b"(killed after %d s)" % timeout
    try:
        with open(out) as fp:
            kib, cpu = (fp.read().split() + ["0", "0"])[:2]
    finally:
        os.unlink(out)
    return p.returncode, text.decode(errors="replace"), int(kib), float(cpu)


def vm_hwm_kib(pid):
    """Peak RSS so far of a running process (VmHWM)."""
    with open(f"/proc/{pid}/status") as fp:
        for line in fp:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def sanitized(binary):
    """Was the binary built with ASan (its RSS is then not comparable)?"""
    with open(binary, "rb") as fp:
        return b"__asan_init" in fp.read()


def cpu_seconds(pid):
    """CPU seconds (user + system) a running process has used."""
    with open(f"/proc/{pid}/stat") as fp:
        f = fp.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
