"""e2elib - the environment of the end-to-end tests: a real Postfix from a
cached Debian tree (tests/e2e/prepare.sh), run chrooted inside a private
network namespace, delivering to test MX servers over real TLS.

Pieces (each starts processes that the Env object stops again):
  netns_reexec()      run the calling script again inside a new netns
                      (`ip netns add`), loopback only; removes it afterwards
  make_certs()        test CA + leaf certificates with the openssl CLI
  Env.start_dns()     tests/tools/testdns.py on 127.0.0.53:53 (the trees'
                      /etc/resolv.conf points there), AD bit set
  Env.start_mx()      tests/tools/testmx.py, one listener per MX kind
  Postfix             configure / start (master -d) / submit / flush / wait
  DgramReceiver       a throwaway AF_UNIX SOCK_DGRAM receiver (probe mode)
  SCENARIOS           the table of test domains and expected results

Exit code 77 (meson: skipped) whenever the environment cannot be built;
the reason is printed loudly on stderr.
"""
import fcntl
import hashlib
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
TOOLS = os.path.join(SOURCE_DIR, "tests", "tools")
CACHE = os.environ.get("TLSRPT_CACHE", "/var/cache/tlsrptd-tests")
SUITE = {"3.10": "trixie", "3.7": "bookworm"}
DNS_ADDR = "127.0.0.53"
SMTP_BIND = "127.0.0.2"          # Postfix's source address: the 's' field
SENDER = "sender@sender.test"
REPORT_SENDER = "tlsrpt-noreply@sender.test"
# our own report mail goes to this domain (its MX fails verification)
REPORT_DOMAIN = "self-secure.test"


def skip(why):
    """The environment cannot run this test (no root, no trees): exit 77."""
    sys.stderr.write("\n*** SKIPPED: %s ***\n\n" % why)
    sys.exit(SKIP)


def missing_input(why):
    """An input the test needs (a program of this build, a file of this
    repository) is missing: a failure, never a skip."""
    sys.stderr.write("\n*** FAILED: missing input: %s ***\n\n" % why)
    sys.exit(1)


def log(msg):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def run(cmd, check=True, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError("%s: exit %d\n%s%s" % (" ".join(cmd), r.returncode,
                                                  r.stdout, r.stderr))
    return r


# ---------------------------------------------------------------- scenarios
#
# MX kinds: address, host name, certificate kind.
MX = {
    "good":    ("127.0.0.11", "mx-good.test"),      # test CA, right name
    "self":    ("127.0.0.12", "mx-self.test"),      # self-signed
    "expired": ("127.0.0.13", "mx-expired.test"),   # test CA, expired
    "wrong":   ("127.0.0.14", "mx-wrong.test"),     # test CA, other name
    "plain":   ("127.0.0.15", "mx-plain.test"),     # no STARTTLS
}
# DANE host names are aliases of the good MX (same server, same key);
# DANE-EE(3) ignores names, so only the TLSA records differ.
DANE_MX = {
    "dane":  ("127.0.0.11", "mx-dane.test"),        # 3 1 1 <good key>
    "daneu": ("127.0.0.11", "mx-daneu.test"),       # unusable: short digest
}
EHLO = "250-%s testmx\r\n250-PIPELINING\r\n%s250 8BITMIME"


def server_name(addr):
    """Host name the test MX at addr uses in its greeting and EHLO reply."""
    return [n for a, n in MX.values() if a == addr][0]

# result-type codes (libtlsrpt) and names (RFC 8460)
RT = {201: "starttls-not-supported", 202: "certificate-host-mismatch",
      203: "certificate-not-trusted", 204: "certificate-expired",
      205: "validation-failure", 301: "sts-policy-fetch-error",
      302: "sts-policy-invalid", 303: "sts-webpki-invalid",
      304: "tlsa-invalid", 305: "dnssec-invalid", 306: "dane-required"}
PT = {1: "tlsa", 2: "sts", 9: "no-policy-found"}

# What a must-match level (verify, secure, sts) reports per MX kind:
# None = success, else (result-type code, failure-reason-code or None).
MUST_MATCH = {
    "good": None,
    "self": (205, "self-signed_certificate"),
    "expired": (204, None),
    "wrong": (202, None),
    "plain": (201, None),
}
# At 'may' everything that negotiates TLS is a success; plaintext delivery
# is never reported.
MAY = {"good": None, "self": None, "expired": None, "wrong": None,
       "plain": "none"}


def sts_strings(mxname):
    return ["version: STSv1", "mode: enforce", "mx: " + mxname, "max_age: 86400"]


class Scenario:
    """One test domain: recipient domain, MX, Postfix TLS policy entry and
    what the collector must count for it."""

    def __init__(self, domain, mx, policy37, policy310, outcome,
                 ptype="no-policy-found", pdomain=None, strings=None,
                 mxhost=None, tlsrpt=True, delivered=None, dane=None):
        self.domain = domain
        self.mxaddr, self.mxname = mx
        self.policy37 = policy37          # table entry for 3.7 (None: not run)
        self.policy310 = policy310        # table entry for 3.10
        self.outcome = outcome            # None success, "none", (code, reason)
        self.ptype = ptype
        self.pdomain = pdomain or domain
        self.strings = strings
        self.mxhost = mxhost
        self.tlsrpt = tlsrpt              # has a _smtp._tls record
        self.delivered = (outcome is None or outcome == "none") if delivered is None else delivered
        self.dane = dane                  # TLSA value for _25._tcp.<mx>

    @property
    def record(self):
        return "v=TLSRPTv1; rua=mailto:tlsrpt@" + self.domain

    def reported(self):
        return self.tlsrpt and self.outcome != "none"


def build_scenarios():
    out = []
    for kind in ("good", "self", "expired", "wrong", "plain"):
        mx = MX[kind]
        name = mx[1]
        out.append(Scenario(kind + "-may.test", mx, "may", "may", MAY[kind]))
        out.append(Scenario(kind + "-verify.test", mx, "verify", "verify",
                            MUST_MATCH[kind]))
        sec = "secure match=" + name
        out.append(Scenario(kind + "-secure.test", mx, sec, sec, MUST_MATCH[kind]))
        d = kind + "-sts.test"
        sts = ("secure match=%s policy_type=sts policy_domain=%s %s "
               "mx_host_pattern=%s" % (name, d, " ".join(
                   "{ policy_string = %s }" % s for s in sts_strings(name)), name))
        out.append(Scenario(d, mx, None, sts, MUST_MATCH[kind], ptype="sts",
                            strings=sts_strings(name), mxhost=[name]))
    # the STS plugin says the policy failed: forced failure type
    name = MX["good"][1]
    d = "good-stsinvalid.test"
    sts = ("secure match=%s policy_type=sts policy_domain=%s %s mx_host_pattern=%s "
           "policy_failure=sts-policy-invalid" % (name, d, " ".join(
               "{ policy_string = %s }" % s for s in sts_strings(name)), name))
    out.append(Scenario(d, MX["good"], None, sts, (302, None), ptype="sts",
                        strings=sts_strings(name), mxhost=[name]))
    # DANE (TLSA values filled in by set_dane() once the keys exist)
    out.append(Scenario("good-dane.test", DANE_MX["dane"], None, "dane", None,
                        ptype="tlsa", pdomain=DANE_MX["dane"][1]))
    out.append(Scenario("good-daneunusable.test", DANE_MX["daneu"], None, "dane",
                        (304, "all-TLSA-records-unusable"), ptype="tlsa",
                        pdomain=DANE_MX["daneu"][1], delivered=True))
    # no _smtp._tls record: never reported, whatever happens
    out.append(Scenario("self-norecord.test", MX["self"], "verify", "verify",
                        MUST_MATCH["self"], tlsrpt=False))
    out.append(Scenario("good-norecord.test", MX["good"], "verify", "verify",
                        None, tlsrpt=False))
    return out


SCENARIOS = build_scenarios()


def set_dane(good_cert):
    """Fill in the TLSA records once the good MX key exists."""
    usable = tlsa_311(good_cert)
    unusable = "3 1 1 0102"          # digest of the wrong length
    for s in SCENARIOS:
        if s.mxname == DANE_MX["dane"][1]:
            s.dane, s.strings = usable, [usable]
        elif s.mxname == DANE_MX["daneu"][1]:
            s.dane, s.strings = unusable, [unusable]


def scenarios_for(gen):
    return [s for s in SCENARIOS if (s.policy310 if gen == "3.10" else s.policy37)]


def policy_table(gen):
    lines = []
    for s in scenarios_for(gen):
        lines.append("%s %s" % (s.domain, s.policy310 if gen == "3.10" else s.policy37))
    return "\n".join(lines) + "\n"


def zone_text(scens):
    lines = ["# generated by tests/e2e/e2elib.py"]
    for addr, name in list(MX.values()) + list(DANE_MX.values()):
        lines.append("%s A %s" % (name, addr))
    for s in scens:
        lines.append("%s MX 10 %s" % (s.domain, s.mxname))
        if s.tlsrpt:
            lines.append('_smtp._tls.%s TXT "%s"' % (s.domain, s.record))
        if s.dane:
            lines.append("_25._tcp.%s TLSA %s" % (s.mxname, s.dane))
    return "\n".join(lines) + "\n"


def expected(scens, gen, rounds=1):
    """The canonical counters (see canon_*): {d: [policy-entry, ...]}.
    3.10 failure details carry every field Postfix sends (s = our bind
    address, n, h = the greeting name of the MX's EHLO reply, r); the 3.7 log has no
    source address and no EHLO text, so only n, r and the codes."""
    out = {}
    for s in scens:
        if not s.reported():
            continue
        ok, fail, details = 0, 0, []
        if s.outcome is None:
            ok = rounds
        else:
            fail = rounds
            code, reason = s.outcome
            if gen == "3.10":
                sname = server_name(s.mxaddr)
                # receiving-mx-helo is the greeting name of the EHLO reply
                # (EHLO % ...), not its capability lines (issue 10 item 2)
                helo = sname.lower()
                details.append((RT[code], SMTP_BIND, s.mxname, helo, s.mxaddr, None, reason,
                                rounds))
            else:
                details.append((RT[code], None, s.mxname, None, s.mxaddr, None, reason, rounds))
        out.setdefault(s.domain, []).append(
            (s.ptype, s.pdomain, tuple(s.strings or ()), tuple(s.mxhost or ()),
             ok, fail, tuple(sorted(details, key=repr))))
    return out


# ------------------------------------------------------- canonical counters
#
# Datagrams (probe), `tlsrptctl dump --json` and RFC 8460 reports are all
# turned into {d: sorted list of (ptype, pdomain, strings, mx, ok, fail,
# details)} with details = sorted (result-type, s, n, h, r, a, f, count);
# a datagram's h (the whole EHLO reply) becomes its greeting name.

def greeting_name(reply):
    """The greeting name of an EHLO reply ("250-mx.example testmx\r\n250-...")
    as the collector keeps it for receiving-mx-helo (issue 10 item 2): what
    Postfix sends in the datagram is the whole reply."""
    if reply is None:
        return None
    s = reply.lstrip(" \t")
    if re.match(r"[0-9]{3}([- \r\n]|$)", s):
        if not re.match(r"250[- ]", s):
            return None
        s = s[4:]
    m = re.match(r"[^\x00-\x20\x7f]+", s.lstrip(" \t"))
    if not m or len(m.group(0).encode()) > 255:
        return None
    name = "".join(c.lower() if "A" <= c <= "Z" else c for c in m.group(0))
    return name[:-1] if len(name) > 1 and name.endswith(".") else name


def canon_datagrams(dgrams):
    acc = {}
    for dg in dgrams:
        d = dg["d"].lower().rstrip(".")
        for p in dg["policies"]:
            ptype = PT.get(p["policy-type"], str(p["policy-type"]))
            # strict: no fallback for an absent policy-domain (3.10.5+ sends it)
            key = (d, ptype, p.get("policy-domain"),
                   tuple(p.get("policy-string", ())), tuple(p.get("mx-host", ())))
            e = acc.setdefault(key, [0, 0, {}])
            if p.get("f"):
                e[1] += 1
            else:
                e[0] += 1
            for fd in p.get("failure-details", ()):
                dk = (RT.get(fd.get("c"), str(fd.get("c"))), fd.get("s"), fd.get("n"),
                      greeting_name(fd.get("h")), fd.get("r"), fd.get("a"), fd.get("f"))
                e[2][dk] = e[2].get(dk, 0) + 1
    return _fold(acc)


def _fold(acc):
    out = {}
    for (d, ptype, pdom, strings, mx), (ok, fail, det) in acc.items():
        details = tuple(sorted((k + (n,) for k, n in det.items()), key=repr))
        out.setdefault(d, []).append((ptype, pdom, strings, mx, ok, fail, details))
    return {d: sorted(v, key=repr) for d, v in out.items()}


def canon_report_policies(policies, d, acc):
    """Add RFC 8460 'policies' entries (of a report for domain d)."""
    for p in policies:
        pol = p["policy"]
        summ = p.get("summary", {})
        key = (d, pol["policy-type"], pol.get("policy-domain", d).lower(),
               tuple(pol.get("policy-string", ())), tuple(pol.get("mx-host", ())))
        e = acc.setdefault(key, [0, 0, {}])
        e[0] += summ.get("total-successful-session-count", 0)
        e[1] += summ.get("total-failure-session-count", 0)
        for fd in p.get("failure-details", ()):
            dk = (fd.get("result-type"), fd.get("sending-mta-ip"),
                  fd.get("receiving-mx-hostname"), fd.get("receiving-mx-helo"),
                  fd.get("receiving-ip"), fd.get("additional-information"),
                  fd.get("failure-reason-code"))
            e[2][dk] = e[2].get(dk, 0) + fd.get("failed-session-count", 0)


def json_stream(text):
    """Every JSON value in text (one document, JSON lines or concatenated)."""
    dec, i, out = json.JSONDecoder(), 0, []
    while i < len(text):
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        if i >= len(text):
            break
        if text[i] not in "{[":
            j = text.find("\n", i)      # skip a non-JSON line
            i = len(text) if j < 0 else j + 1
            continue
        val, i = dec.raw_decode(text, i)
        out.append(val)
    return out


def canon_reports(text):
    """Output of `tlsrpt-report run --dry-run`: per report a header line
    "report SPOOLID DOMAIN FILENAME", indented lines (report-id, sessions,
    "destination URI (SOURCE)"), then the report JSON. Returns (canonical
    counters, [(domain, [destination lines], report object)])."""
    acc, reports = {}, []
    dec = json.JSONDecoder()
    domain, dests = None, []
    lines = text.split("\n")
    k = 0
    while k < len(lines):
        line = lines[k]
        if line.startswith("report "):
            f = line.split()
            domain, dests = (f[2] if len(f) > 2 else None), []
            k += 1
        elif line.startswith("  destination ") or line.startswith("  no destination"):
            dests.append(line.strip())
            k += 1
        elif line.startswith("{"):
            rest = "\n".join(lines[k:])
            val, end = dec.raw_decode(rest)
            reports.append((domain, dests, val))
            canon_report_policies(val.get("policies", ()), domain, acc)
            k += rest[:end].count("\n") + 1
        else:
            k += 1
    return _fold(acc), reports


def canon_dump(text):
    """`tlsrptctl dump --day D --json`: {"day": D, "domains": [{"domain",
    "record", "policies": [RFC 8460 policy entries]}]}. Returns (canonical
    counters, {domain: record})."""
    acc, records = {}, {}
    for v in json_stream(text):
        for dom in v.get("domains", ()) if isinstance(v, dict) else ():
            d = dom["domain"]
            records[d] = dom.get("record")
            canon_report_policies(dom.get("policies", ()), d, acc)
    return _fold(acc), records


def diff_canon(got, want):
    """Human-readable differences, [] when equal."""
    msgs = []
    for d in sorted(set(got) | set(want)):
        g, w = got.get(d), want.get(d)
        if g != w:
            msgs.append("domain %s:\n   got  %r\n   want %r" % (d, g, w))
    return msgs


# -------------------------------------------------------------------- certs

OPENSSL_CNF = """\
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = placeholder
[ ca ]
default_ca = testca
[ testca ]
dir = %(dir)s
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
commonName = supplied
[ v3_ca ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""


def make_certs(d):
    """Test CA and one key/certificate per MX kind in directory d.
    Returns {kind: (cert, key)}; cert '-' for the plaintext MX."""
    os.makedirs(os.path.join(d, "newcerts"), exist_ok=True)
    cnf = os.path.join(d, "openssl.cnf")
    with open(cnf, "w") as fp:
        fp.write(OPENSSL_CNF % {"dir": d})
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as fp:
        fp.write("1000\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    p = lambda n: os.path.join(d, n)
    run(["openssl", "req", "-config", cnf, "-x509"] + ec + [
        "-keyout", p("ca.key"), "-out", p("ca.crt"), "-days", "3650",
        "-subj", "/CN=tlsrptd e2e test CA", "-extensions", "v3_ca"])

    def leaf(kind, cn, san, start=None, end=None, selfsigned=False):
        ext = p(kind + ".ext")
        with open(ext, "w") as fp:
            fp.write("basicConstraints = CA:false\nkeyUsage = critical, digitalSignature\n"
                     "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:%s\n" % san)
        key, crt = p(kind + ".key"), p(kind + ".crt")
        if selfsigned:
            run(["openssl", "req", "-config", cnf, "-x509"] + ec + [
                "-keyout", key, "-out", crt, "-days", "3650", "-subj", "/CN=" + cn,
                "-addext", "subjectAltName = DNS:" + san])
            return crt, key
        csr = p(kind + ".csr")
        run(["openssl", "req", "-config", cnf, "-new"] + ec + [
            "-keyout", key, "-out", csr, "-subj", "/CN=" + cn])
        cmd = ["openssl", "ca", "-batch", "-config", cnf, "-notext", "-in", csr,
               "-out", crt, "-cert", p("ca.crt"), "-keyfile", p("ca.key"),
               "-extfile", ext]
        if start:
            cmd += ["-startdate", start, "-enddate", end]
        else:
            cmd += ["-days", "3650"]
        run(cmd)
        return crt, key

    out = {
        "good": leaf("good", MX["good"][1], MX["good"][1]),
        "self": leaf("self", MX["self"][1], MX["self"][1], selfsigned=True),
        "expired": leaf("expired", MX["expired"][1], MX["expired"][1],
                        start="20200101000000Z", end="20210101000000Z"),
        "wrong": leaf("wrong", "other-host.test", "other-host.test"),
        "plain": ("-", "-"),
    }
    return out


def tlsa_311(cert):
    """'3 1 1 HEX' (DANE-EE, SPKI, SHA-256) of a PEM certificate."""
    pub = run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"]).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub.encode(),
                         stdout=subprocess.PIPE, check=True).stdout
    return "3 1 1 " + hashlib.sha256(der).hexdigest().upper()


# ------------------------------------------------------------- processes

def wait_ready(proc, what, timeout=15.0, want="ready"):
    """Read stdout lines of proc until one equals want; fail on exit/timeout.
    Reads the pipe itself: select() on the buffered file object does not see
    the lines its buffer already holds (two lines that arrive in one read
    left "ready" unseen until the timeout). Nothing reads the pipe after."""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    lines, buf = [], b""
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode(errors="replace").strip()
                lines.append(line)
                if line == want:
                    return lines
        if proc.poll() is not None:
            break
    raise RuntimeError("%s did not become ready (exit %r), output: %r" % (what, proc.poll(), lines))


class Env:
    """Owns the temporary directory and every process started."""

    def __init__(self, keep=False):
        self.tmp = tempfile.mkdtemp(prefix="tlsrptd-e2e-")
        self.procs = []
        self.keep = keep

    def spawn(self, cmd, **kw):
        p = subprocess.Popen(cmd, **kw)
        self.procs.append(p)
        return p

    def start_dns(self, zone_path):
        errf = open(os.path.join(self.tmp, "testdns.log"), "w")
        p = self.spawn([sys.executable, os.path.join(TOOLS, "testdns.py"),
                        "--addr", DNS_ADDR, "--port", "53", "--zone", zone_path],
                       stdout=subprocess.PIPE, stderr=errf, universal_newlines=True)
        wait_ready(p, "testdns.py")
        return p

    def start_mx(self, certs, spool):
        cmd = [sys.executable, os.path.join(TOOLS, "testmx.py"), "--spool", spool]
        for kind, (addr, name) in MX.items():
            crt, key = certs[kind]
            cmd += ["--listen", addr, "25", name, crt, key]
        errf = open(os.path.join(self.tmp, "testmx.log"), "w")
        p = self.spawn(cmd, stdout=subprocess.PIPE, stderr=errf, universal_newlines=True)
        wait_ready(p, "testmx.py")
        return p

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


def netns_reexec(argv):
    """Run argv (this script with --inside) in a fresh network namespace with
    only loopback; return its exit status. Skips if namespaces are missing."""
    if os.geteuid() != 0:
        skip("the e2e tests need root (network namespace, chroot)")
    if not shutil.which("ip"):
        skip("the ip command is missing (apt-get install iproute2)")
    ns = "tlsrptd-e2e-%d" % os.getpid()
    r = run(["ip", "netns", "add", ns], check=False)
    if r.returncode != 0:
        skip("cannot create a network namespace: " + r.stderr.strip())
    try:
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        # net.unix.max_dgram_qlen is per namespace and starts at 10 in a new
        # one: a burst of parallel deliveries would lose datagrams (Postfix:
        # "Could not report ... Resource temporarily unavailable"). Tests
        # need exact counts, so give the queue room (the README tells
        # administrators the same).
        qlen = os.environ.get("E2E_DGRAM_QLEN", "512")     # experiments only
        run(["ip", "netns", "exec", ns, "sh", "-c",
             "echo %d > /proc/sys/net/unix/max_dgram_qlen" % int(qlen)])
        addrs = {a for a, _ in MX.values()} | {DNS_ADDR, SMTP_BIND}
        for a in sorted(addrs):
            run(["ip", "-n", ns, "addr", "add", a + "/32", "dev", "lo"])
        return subprocess.call(["ip", "netns", "exec", ns] + argv)
    finally:
        run(["ip", "netns", "del", ns], check=False)


# ----------------------------------------------------------------- postfix

# The test's own settings; the shipped conf/postfix-<gen>-main.cf is added
# on top (keys it sets are taken from it), so the tests run the README's
# configuration, with the report sender replaced by REPORT_SENDER.
MAIN_CF_COMMON = """\
compatibility_level = %(compat)s
myhostname = sender.test
mydomain = sender.test
myorigin = sender.test
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = /var/log/postfix.log
smtp_bind_address = %(bind)s
smtp_host_lookup = dns
smtp_dns_support_level = dnssec
smtp_tls_security_level = may
smtp_tls_loglevel = 1
smtp_tls_CAfile = /etc/postfix/testca.pem
smtp_tls_policy_maps = texthash:/etc/postfix/tls_policy
smtp_tls_session_cache_database =
smtp_tls_connection_reuse = no
smtp_connection_cache_on_demand = no
smtp_connect_timeout = 5s
smtp_helo_timeout = 10s
defer_transports = smtp
minimal_backoff_time = 2h
maximal_backoff_time = 4h
queue_run_delay = 2h
soft_bounce = yes
notify_classes =
biff = no
"""
SHIPPED_MAIN = {"3.10": "postfix-3.10-main.cf", "3.7": "postfix-3.7-main.cf"}
SHIPPED_MASTER = {"3.10": "postfix-master.cf", "3.7": "postfix-3.7-master.cf"}
SHIPPED_SENDER = "tlsrpt-noreply@example.com"


def shipped(name):
    path = os.path.join(SOURCE_DIR, "conf", name)
    with open(path) as fp:
        return fp.read().replace(SHIPPED_SENDER, REPORT_SENDER)


def main_cf(gen):
    """The test's main.cf: own settings, then the shipped file's."""
    ship = shipped(SHIPPED_MAIN[gen])
    keys = {l.split("=", 1)[0].strip() for l in ship.splitlines()
            if l.strip() and not l.startswith("#") and not l[0].isspace() and "=" in l}
    own = MAIN_CF_COMMON % {"compat": "3.9" if gen == "3.10" else "3.6", "bind": SMTP_BIND}
    own = "".join(l + "\n" for l in own.splitlines() if l.split("=", 1)[0].strip() not in keys)
    return ("# generated by tests/e2e/e2elib.py for one test run\n" + own +
            "\n# conf/%s\n" % SHIPPED_MAIN[gen] + ship)


class Postfix:
    def __init__(self, env, gen):
        self.env = env
        self.gen = gen
        self.tree = os.path.join(CACHE, SUITE[gen])
        self.master = None
        self.log_mark = None
        self.logfile = os.path.join(self.tree, "var/log/postfix.log")
        self.socket_dir = os.path.join(self.tree, "var/spool/postfix/run/tlsrpt")
        self.socket_path = os.path.join(self.socket_dir, "tlsrpt.sock")

    def lock(self, timeout=240):
        """Hold an exclusive lock on this tree for the life of the process
        (two runs at once would share the queue, config and socket)."""
        os.makedirs(CACHE, exist_ok=True)
        fd = os.open(os.path.join(CACHE, SUITE[self.gen] + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() > deadline:
                    skip("the %s tree stayed in use by another test run for %ds" % (
                        SUITE[self.gen], timeout))
                time.sleep(0.5)

    def tree_gid(self, name):
        """The gid of group 'name' in the tree's /etc/group."""
        with open(os.path.join(self.tree, "etc/group")) as fp:
            for line in fp:
                f = line.split(":")
                if f[0] == name:
                    return int(f[2])
        raise RuntimeError("no group %s in %s/etc/group" % (name, self.tree))

    def check_tree(self):
        if not os.path.isfile(os.path.join(self.tree, ".tlsrptd-tree-ok")):
            # normally ./run test has built the trees; from within a test the
            # build must end before meson's timeout (then: skipped)
            log("no %s tree yet: building it now (tests/e2e/prepare.sh)" % SUITE[self.gen])
            r = subprocess.call(["sh", os.path.join(HERE, "prepare.sh"), SUITE[self.gen]],
                                env=dict(os.environ, PREPARE_TIMEOUT="200"))
            if r == SKIP:
                skip("prepare.sh could not build the %s tree" % SUITE[self.gen])
            if r != 0:
                skip("building the %s tree failed (see prepare.sh output above)" % SUITE[self.gen])
        if len(self.socket_path) >= 104:
            skip("socket path too long for AF_UNIX: %s (set TLSRPT_CACHE shorter)" % self.socket_path)

    def chroot(self, args, check=True, input=None):
        r = subprocess.run(["chroot", self.tree] + args, input=input,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True)
        if check and r.returncode != 0:
            raise RuntimeError("chroot %s: exit %d\n%s%s" % (" ".join(args), r.returncode,
                                                             r.stdout, r.stderr))
        return r

    def version(self):
        return self.chroot(["postconf", "-dh", "mail_version"]).stdout.strip()

    def configure(self, ca_cert, extra_main=""):
        t = self.tree
        self.stop_leftover()
        with open(os.path.join(t, "etc/resolv.conf"), "w") as fp:
            fp.write("nameserver %s\noptions attempts:2 timeout:2\n" % DNS_ADDR)
        with open(os.path.join(t, "etc/hosts"), "w") as fp:
            fp.write("127.0.0.1 localhost\n")
        shutil.copy(ca_cert, os.path.join(t, "etc/postfix/testca.pem"))
        with open(os.path.join(t, "etc/postfix/tls_policy"), "w") as fp:
            fp.write(policy_table(self.gen))
        with open(os.path.join(t, "etc/postfix/main.cf"), "w") as fp:
            fp.write(main_cf(self.gen) + extra_main)
        # Debian's master.cf plus the shipped report transport; no chroot
        # (the tree is the chroot), no smtpd
        with open(os.path.join(t, "usr/share/postfix/master.cf.dist")) as fp:
            master = fp.read() + "\n" + shipped(SHIPPED_MASTER[self.gen])
        lines = []
        for line in master.splitlines():
            f = line.split()
            if line and not line[0].isspace() and not line.startswith("#") and len(f) >= 8:
                if f[:2] == ["smtp", "inet"]:
                    line = "#" + line
                else:
                    f[4] = "n"
                    line = " ".join(f[:8]) + (" " + " ".join(f[8:]) if f[8:] else "")
            lines.append(line)
        with open(os.path.join(t, "etc/postfix/master.cf"), "w") as fp:
            fp.write("\n".join(lines) + "\n")
        # empty queue and log: nothing from an earlier run may be delivered
        spool = os.path.join(t, "var/spool/postfix")
        for q in ("incoming", "active", "deferred", "hold", "maildrop", "corrupt",
                  "bounce", "defer", "trace", "flush"):
            qd = os.path.join(spool, q)
            if os.path.isdir(qd):
                for e in os.listdir(qd):
                    p = os.path.join(qd, e)
                    shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
        if os.path.exists(self.logfile):
            os.unlink(self.logfile)
        # as packaged (README "Privileges"), but root's: the daemons run as
        # root here, and root binds only in a directory no one else can
        # write; setgid postfix gives the 0660 sockets group postfix
        os.makedirs(self.socket_dir, exist_ok=True)
        os.chown(self.socket_dir, 0, self.tree_gid("postfix"))
        os.chmod(self.socket_dir, 0o2755)
        # "postfix check" (2-3 s) once per tree: it fixes ownership and
        # modes; configuration warnings are caught by postconf every run
        stamp = os.path.join(t, ".tlsrptd-postfix-checked")
        if not os.path.exists(stamp):
            r = self.chroot(["postfix", "check"], check=False)
            if r.returncode != 0 or r.stderr.strip():
                raise RuntimeError("postfix check: %s%s" % (r.stdout, r.stderr))
            open(stamp, "w").close()
        for opt in ("-n", "-P"):
            r = self.chroot(["postconf", opt], check=False)
            if r.returncode != 0 or r.stderr.strip():
                raise RuntimeError("postconf %s: configuration warnings:\n%s" % (opt, r.stderr))

    def stop_leftover(self):
        pidf = os.path.join(self.tree, "var/spool/postfix/pid/master.pid")
        try:
            pid = int(open(pidf).read().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return
        log("stopping a Postfix left running in %s (pid %d)" % (self.tree, pid))
        self.chroot(["postfix", "abort"], check=False)
        time.sleep(0.5)

    def start(self):
        self.master = self.env.spawn(["chroot", self.tree, "/usr/lib/postfix/sbin/master", "-d"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # ready when postlogd has written the master's start line
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if "daemon started" in self.read_log(whole=True):
                return
            if self.master.poll() is not None:
                raise RuntimeError("postfix master exited %d; log:\n%s" %
                                   (self.master.returncode, self.read_log()))
            time.sleep(0.05)
        raise RuntimeError("postfix did not start; log:\n" + self.read_log())

    def stop(self):
        if self.master and self.master.poll() is None:
            self.chroot(["postfix", "stop"], check=False)
            try:
                self.master.wait(10)
            except subprocess.TimeoutExpired:
                self.master.kill()

    def read_log(self, whole=False):
        """The mail log from the last mark() on (whole: from its start)."""
        try:
            with open(self.logfile, "rb") as fp:
                st = os.fstat(fp.fileno())
                if not whole and self.log_mark and self.log_mark[0] == st.st_ino:
                    fp.seek(self.log_mark[1])
                return fp.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def mark(self):
        """Later read_log() calls see only lines written after now."""
        try:
            st = os.stat(self.logfile)
            self.log_mark = (st.st_ino, st.st_size)
        except FileNotFoundError:
            self.log_mark = None

    def logrotate(self):
        """`postfix logrotate`: rename (and gzip) the log; a new one starts."""
        self.chroot(["postfix", "logrotate"])
        self.log_mark = None

    def submit(self, rcpt, sender=SENDER, headers=""):
        msg = ("From: <%s>\nTo: <%s>\nSubject: tlsrptd e2e %s\n%s\nTest message.\n"
               % (sender, rcpt, rcpt, headers))
        self.chroot(["/usr/sbin/sendmail", "-i", "-f", sender, "--", rcpt], input=msg)

    def flush(self, rcpts, timeout=30.0):
        """Flush once, after every rcpt sits in the deferred queue: a message
        that reaches the queue manager after the flush request would stay
        deferred ("deferred transport") until a second flush, and a second
        flush would repeat the handshakes of the failed ones."""
        want = set(rcpts)
        rx = re.compile(r"to=<([^>]+)>, relay=none, .*status=deferred \(deferred transport\)")
        deadline = time.monotonic() + timeout
        while True:
            held = {m.group(1) for m in rx.finditer(self.read_log())} & want
            if held == want:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("not held in the queue within %.0fs: %s" % (
                    timeout, sorted(want - held)))
            time.sleep(0.05)
        self.chroot(["postqueue", "-f"])

    def wait_attempts(self, rcpts, timeout=60.0):
        """Wait until every rcpt has a real delivery attempt logged (sent,
        deferred or bounced with a relay other than none). Returns
        {rcpt: status line}."""
        want = set(rcpts)
        rx = re.compile(r"to=<([^>]+)>, relay=(\S+), .* status=(\w+)")
        deadline = time.monotonic() + timeout
        while True:
            done = {}
            for line in self.read_log().splitlines():
                m = rx.search(line)
                if m and m.group(1) in want and m.group(2) != "none," and \
                        "deferred transport" not in line:
                    done[m.group(1)] = line
            if len(done) == len(want):
                return done
            if time.monotonic() > deadline:
                raise RuntimeError("no delivery attempt within %.0fs for: %s\nlog:\n%s" % (
                    timeout, sorted(want - set(done)), self.read_log()))
            time.sleep(0.1)


class DgramReceiver:
    """Throwaway collector for probing what Postfix sends."""

    def __init__(self, path):
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.path = path
        self.raw = []
        self.stopped = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopped:
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if r:
                self.raw.append(self.sock.recv(65536))

    def drain(self, quiet=0.5):
        """Datagrams so far, once none arrived for 'quiet' seconds."""
        while True:
            n = len(self.raw)
            time.sleep(quiet)
            if len(self.raw) == n:
                return list(self.raw)

    def close(self):
        self.stopped = True
        self.thread.join()
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass



def base_conf_lines(state, collector_sock):
    """The tlsrptd.conf lines every e2e test shares: everything under 'state',
    the collector on 'collector_sock', the test DNS server, the report
    sender, and a reporter that builds reports but delivers nothing."""
    return [
        "state_directory = " + state,
        "spool_directory = " + os.path.join(state, "spool"),
        "received_directory = " + os.path.join(state, "received"),
        "socket_path = " + collector_sock,
        "socket_mode = 0666",
        "dns_resolver = %s:53" % DNS_ADDR,
        "envelope_sender = " + REPORT_SENDER,
        "organization_name = tlsrptd e2e",
        "contact_info = tlsrpt@sender.test",
        "dkim_sign = no",
        "delivery_mail = sendmail",
        "sendmail_command = /bin/false",
        "delivery_https = no",
    ]

def run_test(script, args, make_run, failures, errors=(RuntimeError,)):
    """The main of every e2e test: outside, check root and the tree, take
    the tree's lock and run SCRIPT again inside a new network namespace;
    inside, run make_run(args).run() and cleanup(). Exits 0, 1 (failed
    checks, collected in 'failures') or 77 (skipped)."""
    if not args.inside:
        if os.geteuid() != 0:
            skip("the e2e tests need root (network namespace, chroot)")
        pf = Postfix(None, args.gen)
        pf.check_tree()
        pf.lock()       # held by this process while the inner one runs
        argv = [sys.executable, os.path.abspath(script)] + sys.argv[1:] + ["--inside"]
        sys.exit(netns_reexec(argv))
    run = make_run(args)
    try:
        run.run()
    except errors as e:
        failures.append("%s: %s" % (type(e).__name__, e))
        log("ERROR: %s: %s" % (type(e).__name__, e))
    finally:
        run.cleanup()
    if failures:
        log("%d check(s) failed" % len(failures))
        sys.exit(1)
    log("all checks passed")
