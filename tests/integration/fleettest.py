"""Helpers of the fleet tests: hosts (a collector each, with its own state
directory and configuration, fed through the real libtlsrpt), workloads
with shared and host-specific domains, and the tlsrptctl calls."""
import json
import os
import subprocess
import time

from tlsrpttest import BUILD, TLSRPTCTL, Collector

CLIENT = os.path.join(BUILD, "tests", "integration", "libtlsrpt_client")

STS_LINES = ["version: STSv1", "mode: enforce", "mx: mx1.shared.example", "max_age: 604800"]
# strings that test every escaping layer on the way into and out of the database:
# COPY (tab, newline, backslash), array literals (quote, comma, braces, NULL), UTF-8
ODD = ["tab\there", "back\\slash", 'quo"te', "com,ma {brace}", "NULL", "ünïcödé ✓",
       "line\nbreak", ""]


def request(d, pr, p):
    return {"d": d, "pr": pr, "policies": [p]}


def workload(host, rnd, n_shared=12, n_own=6):
    """Requests (as libtlsrpt_client lines) of one host in one round. Shared
    domains appear on every host (their counts must add up), own domains only
    on this one; policy types sts, tlsa, no-policy-found; failures with
    details shared between hosts and details only this host has."""
    out = []
    for k in range(n_shared):
        d = f"shared{k}.example"
        pr = f"v=TLSRPTv1;rua=mailto:tlsrpt@{d}"
        sts = {"type": 2, "domain": d, "strings": STS_LINES, "mx": ["mx1.shared.example"]}
        for _ in range(1 + (k + host + rnd) % 3):
            out.append(request(d, pr, sts))
        if k % 3 == 0:
            out.append(request(d, pr, dict(sts, failed=True, details=[
                {"c": 202, "s": "192.0.2.1", "n": "mx1.shared.example", "r": "198.51.100.1"}])))
        if k % 4 == 1:
            out.append(request(d, pr, dict(sts, failed=True, details=[
                {"c": 204, "s": f"192.0.2.{10 + host}", "n": "mx1.shared.example",
                 "h": "250 mx1.shared.example", "r": "198.51.100.1"}])))
    for k in range(n_own):
        d = f"h{host}-own{k}.example"
        pr = f"v=TLSRPTv1;rua=mailto:r@{d}"
        out.append(request(d, pr, {"type": 9, "domain": d}))
        if k % 2:
            out.append(request(d, pr, {"type": 1, "domain": f"mx.{d}",
                                       "strings": [f"3 1 1 {host:02d}{k:02d}" + "AB" * 30]}))
    odd = {"type": 2, "domain": "odd.example", "strings": ODD, "mx": ["*.odd.example", "NULL"]}
    out.append(request("odd.example", "v=TLSRPTv1; rua=mailto:a@odd.example", odd))
    out.append(request("odd.example", "v=TLSRPTv1; rua=mailto:a@odd.example", dict(
        odd, failed=True, details=[{"c": 205, "s": "192.0.2.1", "h": 'EHLO "x"\t\\ y',
                                    "f": "reason,{with}\"quotes\""}])))
    return out


class Host:
    """One MTA of the fleet: a tlsrptd on its own socket and state directory;
    the same configuration file serves tlsrptctl (push, dump) on that host."""

    def __init__(self, tmp, name, extra_conf=""):
        self.name = name
        self.tmp = os.path.join(tmp, name)
        os.makedirs(self.tmp)
        self.col = Collector(self.tmp, f"fleet_host_name = {name}\n{extra_conf}")
        self.conf = self.col.conf
        self.state = self.col.state
        self.sent = 0

    def start(self):
        self.col.start()
        return self

    def stop(self):
        self.col.stop()

    def feed(self, requests, wait=True):
        """Send the requests through the real libtlsrpt; wait until counted
        (or return the running client when wait is False)."""
        path = os.path.join(self.tmp, f"requests.{self.sent}.jsonl")
        with open(path, "w") as fp:
            fp.write("".join(json.dumps(r) + "\n" for r in requests))
        with open(path) as fp:
            p = subprocess.Popen([CLIENT, self.col.sock], stdin=fp, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        self.sent += len(requests)
        if not wait:
            return p
        out, err = p.communicate(timeout=60)
        if p.returncode != 0 or out.strip() != f"sent {len(requests)}":
            raise RuntimeError(f"libtlsrpt_client: {p.returncode} {out} {err}")
        self.settle()
        return None

    def settle(self):
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.datagrams() >= self.sent:
                return
            time.sleep(0.02)
        raise RuntimeError(f"{self.name}: collector did not count {self.sent} datagrams")

    def datagrams(self):
        total = 0
        for day in self.days():
            st = self.col.stats(day)
            if st:
                total += st["counters"]["datagrams"]
        return total

    def days(self):
        d = os.path.join(self.state, "days")
        if not os.path.isdir(d):
            return []
        return sorted(f[:10] for f in os.listdir(d) if f.endswith(".tlsrpt"))

    def dayfile(self, day):
        return os.path.join(self.state, "days", f"{day}.tlsrpt")

    def ctl(self, *args, env=None, timeout=120):
        return ctl(self.conf, *args, env=env, timeout=timeout)

    def push(self, *args, env=None):
        return self.ctl("push", *args, env=env)

    def push_bg(self, *args):
        return subprocess.Popen([TLSRPTCTL, "-c", self.conf, "push"] + list(args),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ctl(conf, *args, env=None, timeout=120):
    r = subprocess.run([TLSRPTCTL, "-c", conf] + list(args), capture_output=True, text=True,
                       env=env, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def dump_fleet(conf, day):
    rc, out, err = ctl(conf, "dump", "--fleet", "--json", "--day", day)
    if rc != 0:
        raise RuntimeError(f"dump --fleet {day}: {rc} {err}")
    return json.loads(out)


def dump_input(conf, day, files):
    rc, out, err = ctl(conf, "dump", "--json", "--day", day, "--input", *files)
    if rc != 0:
        raise RuntimeError(f"dump --input {day}: {rc} {err}")
    return json.loads(out)
