"""tlsrptctl dkim generate / record, and a DKIM key the reporter cannot use.

generate writes the key with the right owner, group and mode and prints a
TXT record that dkimpy (python3-dkim) accepts for a report mail signed with
that key; an existing key is kept unless --force. A missing or unreadable
key is a local error: tlsrpt-report exits 78 and says so, and no
destination is marked failed or suppressed; the next run with a good key
delivers. Root parts (group, unreadable key) need root; without it they
are reported as not run."""
import grp
import json
import os
import pwd
import re
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import TLSRPTCTL, BUILD, check, check_eq, done, tempdir, cleanup, datagram  # noqa: E402

try:
    import dkim
except ImportError:
    sys.path.append('/usr/lib/python3/dist-packages')
    import dkim

TOOL = os.path.join(BUILD, "tests", "deliver_tool")
MKDAY = os.path.join(BUILD, "tests", "mkday")
REPORT = os.path.join(BUILD, "reporter", "tlsrpt-report")
ROOT = os.geteuid() == 0


def record_of(out):
    """The TXT record printed by tlsrptctl: (owner name, joined strings)."""
    m = re.search(r'^(\S+) IN TXT \((.*?)\)', out, re.S | re.M)
    if not m:
        return None, None
    return m.group(1), "".join(re.findall(r'"([^"]*)"', m.group(2)))


def sign(key, alg, selector):
    opts = ['contact_info=tlsrpt@sender.example', 'dkim_sign=yes', 'dkim_key_file=' + key,
            'dkim_selector=' + selector, 'dkim_algorithm=' + alg]
    cmd = [TOOL]
    for o in opts:
        cmd += ['-o', o]
    r = subprocess.run(cmd + ['build', 'reports@example.com'], capture_output=True)
    check(r.returncode == 0, f"deliver_tool build with the generated {alg} key: {r.stderr!r}")
    return r.stdout


def verify(msg, name, rec, **kw):
    return dkim.verify(msg, dnsfunc=lambda n, timeout=5: rec.encode() if n == name.encode() else None,
                       **kw)


def test_generate(tmp):
    conf = os.path.join(tmp, "gen.conf")
    with open(conf, "w") as fp:
        fp.write("contact_info = tlsrpt@sender.example\norganization_name = Sender\n")
    kdir = os.path.join(tmp, "keys")
    os.mkdir(kdir, 0o755)
    group = ["--group", "nogroup"] if ROOT else []
    for alg, sel in (("rsa-sha256", "tlsrpt"), ("ed25519-sha256", "tlsrpt-ed")):
        key = os.path.join(kdir, sel + ".pem")
        r = subprocess.run([TLSRPTCTL, "-c", conf, "dkim", "generate", "--selector", sel,
                            "--algorithm", alg, "--key-file", key] + group,
                           capture_output=True, text=True)
        check_eq(r.returncode, 0, f"dkim generate {alg} ({r.stderr.strip()})")
        st = os.lstat(key)
        check_eq(f"{stat.S_IMODE(st.st_mode):04o}", "0640", f"{alg} key mode")
        check_eq(st.st_uid, os.geteuid(), f"{alg} key owner")
        if ROOT:
            check_eq(st.st_gid, grp.getgrnam("nogroup").gr_gid, f"{alg} key group")
        check(not [n for n in os.listdir(kdir) if n.endswith(".tmp")], "temporary file left")
        name, rec = record_of(r.stdout)
        check_eq(name, f"{sel}._domainkey.sender.example.", f"{alg}: record owner")
        check(rec is not None and "s=" not in rec and rec.startswith("v=DKIM1; k="),
              f"{alg}: record {rec!r}, want v=DKIM1 without s=")
        check(f"dkim_key_file = {key}" in r.stdout, f"{alg}: configuration lines not printed")
        msg = sign(key, alg, sel)
        check(verify(msg, name, rec) is True, f"{alg}: dkimpy does not verify with the printed record")
        # --service-tlsrpt: s=tlsrpt, for strict TLSRPT verifiers
        r2 = subprocess.run([TLSRPTCTL, "-c", conf, "dkim", "record", "--selector", sel,
                             "--key-file", key, "--service-tlsrpt"], capture_output=True, text=True)
        name2, rec2 = record_of(r2.stdout)
        check(rec2 is not None and "s=tlsrpt;" in rec2 and rec2.split("p=")[1] == rec.split("p=")[1],
              f"{alg}: dkim record --service-tlsrpt gave {rec2!r}")
        check(verify(msg, name2, rec2, tlsrpt='strict') is True,
              f"{alg}: strict tlsrpt verify with s=tlsrpt failed")
        # what the README says about the other forms, measured with dkimpy
        check(verify(msg, name, rec, tlsrpt='strict') is False,
              f"{alg}: strict tlsrpt mode accepted a key without s= (README says it does not)")
        colon = rec.replace("v=DKIM1; ", "v=DKIM1; s=email:tlsrpt; ")
        check(verify(msg, name, colon) is False,
              f"{alg}: dkimpy accepted s=email:tlsrpt (README says it rejects it)")
        # an existing key is kept without --force, replaced with it
        before = open(key).read()
        r = subprocess.run([TLSRPTCTL, "-c", conf, "dkim", "generate", "--selector", sel,
                            "--algorithm", alg, "--key-file", key] + group,
                           capture_output=True, text=True)
        check(r.returncode == 74 and "exists: keeping it" in r.stderr and open(key).read() == before,
              f"{alg}: second generate without --force: rc {r.returncode}, {r.stderr!r}")
        r = subprocess.run([TLSRPTCTL, "-c", conf, "dkim", "generate", "--selector", sel,
                            "--algorithm", alg, "--key-file", key, "--force"] + group,
                           capture_output=True, text=True)
        check(r.returncode == 0 and open(key).read() != before,
              f"{alg}: generate --force did not replace the key: {r.stderr!r}")
        check_eq(f"{stat.S_IMODE(os.lstat(key).st_mode):04o}", "0640", f"{alg} replaced key mode")
    r = subprocess.run([TLSRPTCTL, "-c", conf, "dkim", "generate", "--algorithm", "rsa-sha1",
                        "--key-file", os.path.join(kdir, "x.pem")], capture_output=True, text=True)
    check(r.returncode == 64 and "rsa-sha256 or ed25519-sha256" in r.stderr,
          f"bad --algorithm: rc {r.returncode}, {r.stderr!r}")


REC = "v=TLSRPTv1;rua=mailto:tlsrpt@example.com"


def spool_states(conf):
    r = subprocess.run([TLSRPTCTL, "-c", conf, "spool", "list", "--json"], capture_output=True,
                       text=True)
    return r.stdout


def test_bad_key(tmp, unreadable):
    """tlsrpt-report with a key it cannot use: exit 78, nothing marked."""
    what = "unreadable" if unreadable else "missing"
    base = os.path.join(tmp, what)
    state, spool, out = (os.path.join(base, d) for d in ("state", "spool", "out"))
    for d in (base, state, out):
        os.makedirs(d, exist_ok=True)
    r = subprocess.run([MKDAY, "--dir", state, "--day", "2025-05-22"],
                       input=datagram("example.com", REC, [{"type": 9, "domain": "example.com"}]) + b"\n",
                       capture_output=True)
    check(r.returncode == 0, f"mkday: {r.stderr!r}")
    sendmail = os.path.join(base, "sendmail")
    with open(sendmail, "w") as fp:
        fp.write(f"#!/bin/sh\ncat > {out}/$$.eml\n")
    os.chmod(sendmail, 0o755)
    key = os.path.join(base, "key.pem")
    conf = os.path.join(base, "r.conf")
    with open(conf, "w") as fp:
        fp.write(f"state_directory = {state}\nspool_directory = {spool}\n"
                 "organization_name = Sender\ncontact_info = tlsrpt@sender.example\n"
                 f"report_delay = 0\nsendmail_command = {sendmail}\ndelivery_https = no\n"
                 f"dkim_selector = tlsrpt\ndkim_key_file = {key}\n")
    pre = None
    if unreadable:
        subprocess.run([TLSRPTCTL, "-c", conf, "dkim", "generate", "--key-file", key],
                       capture_output=True, check=True)
        os.chmod(key, 0o600)    # root's, and the reporter runs as nobody
        nobody = pwd.getpwnam("nobody")
        for d, _, files in os.walk(base):
            for n in [d] + [os.path.join(d, f) for f in files]:
                if n != key:
                    os.chown(n, nobody.pw_uid, nobody.pw_gid)

        def pre():
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
    r = subprocess.run([REPORT, "-c", conf, "run", "--now", "2025-05-23T12:00:00Z"],
                       capture_output=True, text=True, preexec_fn=pre)
    check(r.returncode == 78 and "DKIM key" in r.stderr and key in r.stderr,
          f"{what} key: rc {r.returncode}, want 78 naming the key: {r.stderr!r}")
    check_eq(os.listdir(out), [], f"{what} key: mail sent")
    states = spool_states(conf)
    check("failed" not in states and "suppressed" not in states and "given-up" not in states,
          f"{what} key: destinations marked: {states}")
    # the key fixed: the next run reports and delivers
    if unreadable:
        os.chown(key, 0, pwd.getpwnam("nobody").pw_gid)
        os.chmod(key, 0o640)
    else:
        subprocess.run([TLSRPTCTL, "-c", conf, "dkim", "generate", "--key-file", key],
                       capture_output=True, check=True)
    r = subprocess.run([REPORT, "-c", conf, "run", "--now", "2025-05-23T12:00:00Z"],
                       capture_output=True, text=True, preexec_fn=pre)
    check_eq(r.returncode, 0, f"{what} key fixed: run ({r.stderr.strip()!r})")
    sent = os.listdir(out)
    check_eq(len(sent), 1, f"{what} key fixed: mails sent")
    if sent:
        with open(os.path.join(out, sent[0]), "rb") as fp:
            check(fp.read().startswith(b"DKIM-Signature:"), f"{what} key fixed: mail not signed")
    check('"delivered"' in spool_states(conf), f"{what} key fixed: {spool_states(conf)}")


def main():
    tmp = tempdir("dkimkey")
    os.chmod(tmp, 0o755)
    try:
        test_generate(tmp)
        test_bad_key(tmp, False)
        if ROOT:
            test_bad_key(tmp, True)
        else:
            print("unreadable key not tested: not root")
    finally:
        cleanup(tmp)
    done("test_dkim_key")


if __name__ == "__main__":
    main()
