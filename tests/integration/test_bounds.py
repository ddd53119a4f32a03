#!/usr/bin/env python3
"""The memory bound of received reports (issue 10 item 3), measured: every
hostile shape of tests/tools/hostile_reports.py (20 MB of JSON in a gzip
attachment of 20-80 KB: empty objects, deep arrays, one long string, many
keys, rows, policies, mx-host strings, and the heaviest input that is still
accepted) goes through `tlsrptctl received import` and through
tlsrpt-milter. Each must be rejected with its reason (or stored, for the
one within the budgets), and the peak RSS of the process must stay below
LIMIT_MIB. Before the streaming parser, `received import` of the first
shape took 5.4 GB (it now fails at the 1 GiB address-space cap the test
sets). The figures are printed; CPU times are printed, not asserted
(tests/bench/bench_received.py compares them with a real report's)."""
import base64
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import hostile_reports as hr  # noqa: E402
from tlsrpttest import BUILD, TLSRPTCTL, check, cleanup, done  # noqa: E402
from test_milter import MILTER, MILTERTEST, script, split_message  # noqa: E402

MAXRSS = os.path.join(BUILD, "tests", "maxrss")
LIMIT_MIB = 64


def mail(name, payload):
    b64 = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    return (b"From: noreply@hostile.example\r\nTo: tlsrpt@rcpt.example\r\n"
            b"Subject: Report Domain: example.com Submitter: hostile.example Report-ID: <x@hostile.example>\r\n"
            b"TLS-Report-Domain: example.com\r\nTLS-Report-Submitter: hostile.example\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=tlsrpt; boundary=\"b\"\r\n"
            b"\r\n--b\r\nContent-Type: text/plain\r\n\r\nreport\r\n--b\r\n"
            b"Content-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=\"hostile.example!example.com!1!2!"
            + name.encode() + b".json.gz\"\r\n\r\n" + b64 + b"--b--\r\n")


def import_case(conf, path, name, want, sanitized):
    rc, out, kib, cpu = hr.measure(MAXRSS, [TLSRPTCTL, "-c", conf, "received", "import", path],
                                   limit=2 ** 64 - 1 if sanitized else hr.RLIMIT)
    mib = kib / 1024
    print(f"  import {name:45} {mib:7.1f} MiB {cpu:6.2f} s CPU  {out.strip()[-70:]}")
    check(want in out, f"import {name}: output {out.strip()[-300:]!r}, want {want!r}")
    check(rc in (0, 65), f"import {name}: exit {rc}")
    check(kib > 0, f"import {name}: no RSS figure")
    if not sanitized:
        check(mib < LIMIT_MIB, f"import {name}: peak RSS {mib:.1f} MiB, limit {LIMIT_MIB} MiB")
    return mib


def milter_case(tmp, name, payload, want, sanitized):
    import subprocess
    sock = os.path.join(tmp, "m.sock")
    store = os.path.join(tmp, "m-store-" + str(abs(hash(name))))
    conf = os.path.join(tmp, "m.conf")
    with open(conf, "w") as fp:
        fp.write(f"milter_socket = unix:{sock}\nreceived_directory = {store}\n"
                 "milter_rua_addresses = tlsrpt@rcpt.example\nmilter_authserv_id = mx.rcpt.example\n")
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_PERTURB_"}     # see hr.measure
    proc = subprocess.Popen([MILTER, "-f", "-c", conf], stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stderr.readline()
        check("listening on" in line, f"milter did not start: {line!r}")
        base = hr.vm_hwm_kib(proc.pid)
        cpu0 = hr.cpu_seconds(proc.pid)
        headers, body = split_message(mail(name.split()[0], payload))
        lua = os.path.join(tmp, "m.lua")
        with open(lua, "w") as fp:
            fp.write(script(sock, [(["<tlsrpt@rcpt.example>"], headers, body, "SMFIR_ACCEPT")]))
        r = subprocess.run([MILTERTEST, "-s", lua], capture_output=True, timeout=120)
        cpu = hr.cpu_seconds(proc.pid) - cpu0
        check("T0 OK" in r.stdout.decode(errors="replace"),
              f"milter {name}: {r.stdout!r} {r.stderr!r}")
        mib = hr.vm_hwm_kib(proc.pid) / 1024
        with open(os.path.join(store, "index")) as fp:
            idx = fp.read()
        print(f"  milter {name:45} {mib:7.1f} MiB {cpu:6.2f} s CPU  (at start {base / 1024:.1f} MiB)")
        check(want in idx or (want == "stored" and "verified\t" in idx),
              f"milter {name}: index {idx[-300:]!r}, want {want!r}")
        if not sanitized:
            check(mib < LIMIT_MIB, f"milter {name}: peak RSS {mib:.1f} MiB, limit {LIMIT_MIB} MiB")
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()


def main():
    tmp = tempfile.mkdtemp(prefix="test_bounds.")
    sanitized = hr.sanitized(TLSRPTCTL)
    if sanitized:
        print("sanitizer build: the reasons are checked, the RSS figures are not comparable")
    try:
        conf = os.path.join(tmp, "tlsrptd.conf")
        with open(conf, "w") as fp:
            fp.write(f"received_directory = {tmp}/store\n")
        print(f"peak RSS of one process per input (limit {LIMIT_MIB} MiB):")
        real = os.path.join(tmp, "real.json.gz")
        with open(real, "wb") as fp:
            fp.write(hr.gz(hr.real_report()))
        import_case(conf, real, "a real report (baseline)", "stored", sanitized)
        for name, data, want in hr.shapes():
            path = os.path.join(tmp, "hostile.json.gz")
            with open(path, "wb") as fp:
                fp.write(hr.gz(data))
            import_case(conf, path, name, want, sanitized)
        # the same bytes uncompressed: a 20 MB file read and parsed in place
        name, data, want = hr.shapes()[0]
        path = os.path.join(tmp, "hostile.json")
        with open(path, "wb") as fp:
            fp.write(data)
        import_case(conf, path, "(plain JSON) " + name, want, sanitized)
        os.unlink(path)
        for name, data, want in hr.shapes():
            milter_case(tmp, name, hr.gz(data), want, sanitized)
    finally:
        cleanup(tmp)
    done("test_bounds")


if __name__ == "__main__":
    main()
