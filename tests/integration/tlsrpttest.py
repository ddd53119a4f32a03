"""Shared helpers for the integration tests: temporary directories, the
programs built by meson, a running tlsrptd, and libtlsrpt-format datagrams."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SOURCE = os.environ.get("SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
TLSRPTD = os.path.join(BUILD, "milter", "tlsrptd")
TLSRPTCTL = os.path.join(BUILD, "reporter", "tlsrptctl")

FAILURES = []


def check(cond, msg):
    """Record a failed check with its message and go on."""
    if not cond:
        FAILURES.append(msg)
        print("FAIL:", msg, file=sys.stderr)


def check_eq(got, want, what):
    check(got == want, f"{what}: got {got!r}, want {want!r}")


def done(name):
    print(f"{name}: {len(FAILURES)} failed checks")
    sys.exit(1 if FAILURES else 0)


def datagram(d, pr, policies, dpv=True):
    """A datagram laid out byte for byte as libtlsrpt writes it."""
    def js(s):
        return json.dumps(s, ensure_ascii=False)
    out = "{" + ('"dpv": "1",' if dpv else "") + f'"d": {js(d)},"pr": {js(pr)},"policies":['
    parts = []
    for p in policies:
        s = '{"policy-type":%d' % p["type"]
        if p.get("domain") is not None:
            s += ',"policy-domain": ' + js(p["domain"])
        if p.get("strings"):
            s += ',"policy-string":[' + ",".join(js(x) for x in p["strings"]) + "]"
        if p.get("mx"):
            s += ',"mx-host":[' + ",".join(js(x) for x in p["mx"]) + "]"
        det = p.get("details", [])
        if det:
            ds = []
            for fd in det:
                x = '{"c":%d' % fd["c"]
                for k in "snhraf":
                    if fd.get(k) is not None:
                        x += f',"{k}": ' + js(fd[k])
                ds.append(x + "}")
            s += ',"failure-details":[' + ",".join(ds) + "]"
        s += ',"t":%d,"f":%d}' % (len(det), 1 if p.get("failed") else 0)
        parts.append(s)
    return (out + ",".join(parts) + "]}").encode()


class Collector:
    """A tlsrptd in the foreground on a temporary socket and state directory."""

    def __init__(self, tmp, extra_conf="", env=None):
        self.tmp = tmp
        self.sock = os.path.join(tmp, "tlsrpt.sock")
        self.state = os.path.join(tmp, "state")
        self.conf = os.path.join(tmp, "tlsrptd.conf")
        with open(self.conf, "w") as fp:
            fp.write(f"state_directory = {self.state}\nsocket_path = {self.sock}\n"
                     f"sync_interval = 1s\n{extra_conf}")
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.starts = 0

    def start(self):
        self.log = open(os.path.join(self.tmp, "tlsrptd.log"), "a")
        self.proc = subprocess.Popen([TLSRPTD, "-f", "-c", self.conf], stderr=self.log,
                                     env=self.env)
        # ready when it says so (the socket file may be a stale one)
        deadline = time.time() + 10
        while self.logtext().count("collecting TLS results") < self.starts + 1:
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("tlsrptd did not start: " + self.logtext())
            time.sleep(0.01)
        self.starts += 1
        return self

    def logtext(self):
        with open(os.path.join(self.tmp, "tlsrptd.log")) as fp:
            return fp.read()

    def send(self, data):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(data, self.sock)
        s.close()

    def settle(self, want_datagrams, day=None, timeout=10):
        """Wait until the day file shows want_datagrams received."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            st = self.stats(day)
            if st and st["counters"]["datagrams"] >= want_datagrams:
                return st
            time.sleep(0.02)
        raise RuntimeError(f"collector did not count {want_datagrams} datagrams")

    def stats(self, day=None):
        args = [TLSRPTCTL, "-c", self.conf, "stats", "--json"] + (["--day", day] if day else [])
        r = subprocess.run(args, capture_output=True, text=True)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def dump(self, day=None):
        args = [TLSRPTCTL, "-c", self.conf, "dump", "--json"] + (["--day", day] if day else [])
        r = subprocess.run(args, capture_output=True, text=True, check=True)
        return json.loads(r.stdout)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc


def free_port(kind=socket.SOCK_STREAM):
    """A loopback port free at the moment, TCP or (SOCK_DGRAM) UDP."""
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class TestDNS:
    """tests/tools/testdns.py on a free loopback port, serving zone_text
    (written to DIR/zone), for the duration of a with block:
        with TestDNS(tmp, ZONE) as dns: ... f"dns_resolver = {dns.resolver}" """

    def __init__(self, directory, zone_text):
        self.zone = os.path.join(directory, "zone")
        with open(self.zone, "w") as fp:
            fp.write(zone_text)
        self.port = free_port(socket.SOCK_DGRAM)
        self.resolver = f"127.0.0.1:{self.port}"
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, os.path.join(SOURCE, "tests", "tools", "testdns.py"),
                                      "--port", str(self.port), "--zone", self.zone],
                                     stdout=subprocess.PIPE, text=True)
        try:
            check_eq(self.proc.stdout.readline().strip(), "ready", "test DNS server")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(5)
        self.proc.stdout.close()


def tempdir(name):
    d = tempfile.mkdtemp(prefix=name + ".")
    return d


def cleanup(d):
    shutil.rmtree(d, ignore_errors=True)
