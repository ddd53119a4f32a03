#!/usr/bin/env python3
"""`tlsrptctl record`: generate (validation, percent-encoding, the zone
line) and check DOMAIN against tests/tools/testdns.py: a good record, one
split in several strings, none, records at the usual wrong names, several
records, v= not first, no rua, a bad scheme, an unencoded comma, SERVFAIL."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import SOURCE, TLSRPTCTL, check, check_eq, done  # noqa: E402

TESTDNS = os.path.join(SOURCE, "tests", "tools", "testdns.py")

ZONE = '''
_smtp._tls.good.test TXT "v=TLSRPTv1; rua=mailto:tlsrpt@good.test"
_smtp._tls.good.test TXT "google-site-verification=abc"
_smtp._tls.split.test TXT "v=TLSRPTv1;" "rua=https://r.split.test/v1,mailto:a@split.test"
smtp.tls.dotted.test TXT "v=TLSRPTv1; rua=mailto:a@dotted.test"
_smtp._tcp.tcp.test TXT "v=TLSRPTv1; rua=mailto:a@tcp.test"
_tls._smtp.swapped.test TXT "v=TLSRPTv1; rua=mailto:a@swapped.test"
apex.test TXT "v=TLSRPTv1; rua=mailto:a@apex.test"
_smtp._tls.two.test TXT "v=TLSRPTv1; rua=mailto:a@two.test"
_smtp._tls.two.test TXT "v=TLSRPTv1; rua=mailto:b@two.test"
_smtp._tls.notfirst.test TXT "rua=mailto:a@notfirst.test; v=TLSRPTv1"
_smtp._tls.norua.test TXT "v=TLSRPTv1;"
_smtp._tls.scheme.test TXT "v=TLSRPTv1; rua=http://r.scheme.test/x"
_smtp._tls.comma.test TXT "v=TLSRPTv1; rua=mailto:a@comma.test,b@comma.test"
_smtp._tls.fail.test SERVFAIL
'''

# domain -> (exit status, substrings of the output)
CASES = {
    "good.test": (0, ["ok: good.test has a valid TLSRPT record with 1 destination(s)",
                      "destination: mailto:tlsrpt@good.test (mail)"]),
    "split.test": (0, ['record at _smtp._tls.split.test: "v=TLSRPTv1;rua=https://r.split.test/v1,mailto:a@split.test"',
                       "destination: https://r.split.test/v1 (HTTPS POST)",
                       "with 2 destination(s)"]),
    "none.test": (1, ["error: no TLSRPT record at _smtp._tls.none.test"]),
    "dotted.test": (65, ["wrong name smtp.tls.dotted.test", "it belongs at _smtp._tls.dotted.test"]),
    "tcp.test": (65, ["wrong name _smtp._tcp.tcp.test"]),
    "swapped.test": (65, ["wrong name _tls._smtp.swapped.test"]),
    "apex.test": (65, ["wrong name apex.test"]),
    "two.test": (65, ["error: 2 TXT records at _smtp._tls.two.test start with \"v=TLSRPTv1\""]),
    "notfirst.test": (65, ["no TLSRPT record at _smtp._tls.notfirst.test",
                           "is not taken as a TLSRPT record", "must be the first field"]),
    "norua.test": (65, ["error: no rua= field"]),
    "scheme.test": (65, ["only mailto: and https: are supported", "no usable mailto: or https: destination"]),
    "comma.test": (65, ["unencoded ','"]),
    "fail.test": (69, ["error: looking up TXT _smtp._tls.fail.test failed"]),
}

GENERATE = [
    # (args, exit, stdout)
    (["--rua", "mailto:tlsrpt@example.net", "--domain", "example.org"], 0,
     '_smtp._tls.example.org. IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@example.net"\n'),
    (["--rua", "mailto:a@example.net,https://r.example.net/x;y,z!w", "--domain", "example.org"], 0,
     '_smtp._tls.example.org. IN TXT "v=TLSRPTv1; rua=mailto:a@example.net,https://r.example.net/x%3By%2Cz%21w"\n'),
    (["--rua", "https://r.example.net/a", "--rua", "mailto:b@example.net"], 0,
     '_smtp._tls.example.com. IN TXT "v=TLSRPTv1; rua=https://r.example.net/a,mailto:b@example.net"\n'),
    (["--rua", "http://r.example.net/"], 64, ""),
    (["--rua", "tlsrpt@example.net"], 64, ""),
    (["--rua", "mailto:nobody"], 64, ""),
    (["--rua", "mailto:a@example.net", "--domain", "bad domain"], 64, ""),
    ([], 64, ""),
]


def main():
    tmp = tempfile.mkdtemp(prefix="test_record.")
    dns = None
    try:
        zone = os.path.join(tmp, "zone")
        with open(zone, "w") as fp:
            fp.write(ZONE)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        dns = subprocess.Popen([sys.executable, TESTDNS, "--port", str(port), "--zone", zone],
                               stdout=subprocess.PIPE, text=True)
        line = dns.stdout.readline().strip()
        check_eq(line, "ready", "testdns started")
        conf = os.path.join(tmp, "tlsrptd.conf")
        with open(conf, "w") as fp:
            fp.write(f"dns_resolver = 127.0.0.1:{port}\n")
        for domain, (want_rc, wants) in CASES.items():
            r = subprocess.run([TLSRPTCTL, "-c", conf, "record", "check", domain],
                               capture_output=True, text=True, timeout=30)
            check_eq(r.returncode, want_rc, f"check {domain} exit (output {r.stdout!r})")
            for w in wants:
                check(w in r.stdout, f"check {domain}: {w!r} not in {r.stdout!r}")
        for args, want_rc, want_out in GENERATE:
            r = subprocess.run([TLSRPTCTL, "-c", conf, "record", "generate"] + args,
                               capture_output=True, text=True, timeout=30)
            check_eq(r.returncode, want_rc, f"generate {args} exit ({r.stderr.strip()})")
            check_eq(r.stdout, want_out, f"generate {args} output")
    finally:
        if dns:
            dns.terminate()
            dns.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    done("test_record")


if __name__ == "__main__":
    main()
