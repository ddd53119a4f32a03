"""world - the network a test machine sees: a network namespace of the
test's own ("the world") with the test DNS server and the test MX servers
(tests/tools/testdns.py, testmx.py), joined to the machine's network
namespace by one veth link. Addresses are from TEST-NET-1 (192.0.2.0/24,
RFC 5737): they exist only in these two namespaces.

    world 192.0.2.1/24 on w0; servers on its loopback as /32 (answered by
          ARP on the link): DNS 192.0.2.53, MX 192.0.2.11-15
    machine 192.0.2.25/24 on eth0, loopback up
"""
import os
import signal
import subprocess
import sys

import machine as M

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "e2e"))
import e2elib as E  # noqa: E402  (certificates, process helpers)

WORLD_ADDR = "192.0.2.1"
MACHINE_ADDR = "192.0.2.25"
DNS_ADDR = "192.0.2.53"
# kind -> (address, host name); the certificates come from e2elib.make_certs
MX = {
    "good": ("192.0.2.11", "mx-good.test"),        # test CA, right name
    "self": ("192.0.2.12", "mx-self.test"),        # self-signed
    "expired": ("192.0.2.13", "mx-expired.test"),  # test CA, expired
    "wrong": ("192.0.2.14", "mx-wrong.test"),      # test CA, other name
    "plain": ("192.0.2.15", "mx-plain.test"),      # no STARTTLS
}


def _die_with_us():
    """preexec: the server dies with the test even if the test is killed."""
    M._libc.prctl(M.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def ip(*args, check=True):
    r = subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    if check and r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


class World:
    def __init__(self, tmp):
        self.tmp = tmp
        self.ns = "tlsrptd-install-%d" % os.getpid()
        self.procs = []
        self.env = E.Env(keep=True)       # its tmp is unused; our own tmp
        ip("netns", "add", self.ns)
        ip("-n", self.ns, "link", "set", "lo", "up")
        for a in [DNS_ADDR] + [a for a, _ in MX.values()]:
            ip("-n", self.ns, "addr", "add", a + "/32", "dev", "lo")
        self.certs = E.make_certs(os.path.join(tmp, "certs"))
        self.ca = os.path.join(tmp, "certs", "ca.crt")
        self.spool = os.path.join(tmp, "mx-spool")
        os.makedirs(self.spool, exist_ok=True)
        self.zone = os.path.join(tmp, "zone")

    def connect(self, pid):
        """A veth link between the world and the network namespace of the
        process pid (the machine's PID 1), both ends up and addressed."""
        ip("-n", self.ns, "link", "del", "w0", check=False)
        ip("-n", self.ns, "link", "add", "w0", "type", "veth", "peer", "name", "eth0",
           "netns", str(pid))
        ip("-n", self.ns, "addr", "add", WORLD_ADDR + "/24", "dev", "w0")
        ip("-n", self.ns, "link", "set", "w0", "up")
        inside = ["nsenter", "-t", str(pid), "-n", "ip"]
        for args in (["link", "set", "lo", "up"],
                     ["addr", "add", MACHINE_ADDR + "/24", "dev", "eth0"],
                     ["link", "set", "eth0", "up"]):
            r = subprocess.run(inside + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True)
            if r.returncode != 0:
                raise RuntimeError("machine netns: ip %s: %s" % (" ".join(args), r.stderr))

    def start(self, zone_text):
        with open(self.zone, "w") as fp:
            fp.write(zone_text)
        pre = ["ip", "netns", "exec", self.ns, sys.executable]
        errf = open(os.path.join(self.tmp, "testdns.log"), "w")
        p = self.env.spawn(pre + [os.path.join(E.TOOLS, "testdns.py"), "--addr", DNS_ADDR,
                                  "--port", "53", "--zone", self.zone],
                           stdout=subprocess.PIPE, stderr=errf, universal_newlines=True,
                           preexec_fn=_die_with_us)
        E.wait_ready(p, "testdns.py", timeout=60)      # a loaded 2-core machine
        cmd = pre + [os.path.join(E.TOOLS, "testmx.py"), "--spool", self.spool]
        for kind, (addr, name) in MX.items():
            crt, key = self.certs[kind]
            cmd += ["--listen", addr, "25", name, crt, key]
        self.mxlog = os.path.join(self.tmp, "testmx.log")
        errf = open(self.mxlog, "w")
        p = self.env.spawn(cmd, stdout=subprocess.PIPE, stderr=errf, universal_newlines=True,
                           preexec_fn=_die_with_us)
        E.wait_ready(p, "testmx.py", timeout=60)

    def delivered(self):
        """Lines 'delivered NAME tls=... rcpt=...' the MX servers logged."""
        try:
            with open(self.mxlog) as fp:
                return [l.strip() for l in fp if l.startswith("delivered ")]
        except OSError:
            return []

    def stop(self):
        self.env.stop()
        ip("netns", "del", self.ns, check=False)
