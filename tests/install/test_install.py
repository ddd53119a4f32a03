#!/usr/bin/python3
"""The install test: the README's "Installing" section done on a fresh
Debian machine booted with real systemd as PID 1 (issue 9, item 7).

    test_install.py --release trixie     Debian 13: systemd 257, Postfix 3.10 (datagrams)
    test_install.py --release bookworm   Debian 12: systemd 252, Postfix 3.7 (log follower)
Options: --debs DIR (the project's .debs for that release; default
$TLSRPT_DEBS/<release>, else <source>/build-deb/<release>), --harness (prove
the machine with a probe package instead: boot, apt from the local
repository, mail out to the test MX and into a local mailbox, restart and
reboot), --keep (keep the run's directory, printed).

The machine (machine.py) is a cached debootstrap root (prepare.sh) under a
throw-away overlay, booted in namespaces of its own; its only network is a
veth link to the test's world (world.py: test DNS, MX servers with good and
bad certificates). apt there installs from a local repository built by the
test (aptrepo.py): the .debs plus every dependency, fetched on the host for
that release. See README.md "Tests" for what the scenario checks.

Exit: 0 passed; 1 failed (also when an input is missing: no root tree, no
.debs, no network to the archive); 77 skipped only when not root.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import aptrepo  # noqa: E402
import mailhost  # noqa: E402
from mailhost import deliver_round, failed_units, mailbox, send, wait_queue_empty  # noqa: E402
import machine as M  # noqa: E402
import world as W  # noqa: E402

CACHE = os.environ.get("TLSRPT_CACHE", "/var/cache/tlsrptd-tests")
SOURCE_DIR = W.SOURCE_DIR
HOSTNAME = mailhost.HOSTNAME
MAILBOX_USER = mailhost.MAILBOX_USER
RUA = "mailto:%s@%s" % (MAILBOX_USER, HOSTNAME)
REPO_IN_MACHINE = mailhost.REPO_IN_MACHINE

failures = []
timings = []


def log(msg):
    M.log(msg)


def fail(msg):
    failures.append(msg)
    log("FAILED: " + msg)


def check(cond, msg):
    if not cond:
        fail(msg)
    return cond


def timed(label, seconds):
    timings.append((label, seconds))
    log("time: %s: %.1f s" % (label, seconds))


def zone():
    lines = ["# tests/install: the world's DNS"]
    for addr, name in W.MX.values():
        lines.append("%s A %s" % (name, addr))
    # good.test: one MX with a good certificate
    lines.append("good.test MX 10 %s" % W.MX["good"][1])
    lines.append('_smtp._tls.good.test TXT "v=TLSRPTv1; rua=%s"' % RUA)
    # self.test: the first MX is self-signed (the 'verify' policy fails
    # there), the second is good: one failed and one successful session
    # per message, and the message leaves the queue
    lines.append("self.test MX 10 %s" % W.MX["self"][1])
    lines.append("self.test MX 20 %s" % W.MX["good"][1])
    lines.append('_smtp._tls.self.test TXT "v=TLSRPTv1; rua=%s"' % RUA)
    # sts.test: an MTA-STS record whose policy host does not resolve: every
    # fetch fails, tlsrpt-policyd answers NOTFOUND (the good MX, at may)
    # and sends the failure to the collector's socket as a datagram (one
    # failed sts session per failed fetch, at most one per 5 minutes)
    lines.append("sts.test MX 10 %s" % W.MX["good"][1])
    lines.append('_smtp._tls.sts.test TXT "v=TLSRPTv1; rua=%s"' % RUA)
    lines.append('_mta-sts.sts.test TXT "v=STSv1; id=20261205"')
    # norecord.test: no TLSRPT record, never counted
    lines.append("norecord.test MX 10 %s" % W.MX["good"][1])
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------- the machine

def setup_machine(m, world):
    """What the operator's mail server already is before tlsrptd: a name,
    DNS, a trusted CA, Postfix delivering mail out and locally, a TLS policy
    table of its own, a local mailbox for the reports. None of this is part
    of the README's steps."""
    m.write("/etc/hostname", HOSTNAME + "\n")
    m.run(["hostname", HOSTNAME])
    m.write("/etc/mailname", HOSTNAME + "\n")
    m.write("/etc/hosts", "127.0.0.1 localhost\n%s %s mail\n" % (W.MACHINE_ADDR, HOSTNAME))
    m.write("/etc/resolv.conf", "nameserver %s\noptions attempts:2 timeout:2\n" % W.DNS_ADDR)
    with open(world.ca) as fp:
        m.write("/usr/local/share/ca-certificates/tlsrptd-test-ca.crt", fp.read())
    m.run(["update-ca-certificates"])
    # the local repository is this machine's only archive
    m.sh("rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*")
    m.write("/etc/apt/sources.list.d/local.list",
            "deb [trusted=yes] file:%s ./\n" % REPO_IN_MACHINE)
    m.run(["apt-get", "-q", "update"])
    m.write("/etc/postfix/tls_policy", "self.test verify\n")
    m.run(["postconf", "-e",
           "myhostname = " + HOSTNAME,
           "mydestination = $myhostname, localhost",
           "inet_protocols = ipv4",
           # smtp(8) is chrooted: the CA bundle is read before the chroot
           "smtp_tls_CAfile = /etc/ssl/certs/ca-certificates.crt",
           "smtp_tls_policy_maps = texthash:/etc/postfix/tls_policy"])
    m.run(["useradd", "--create-home", "--shell", "/bin/bash", MAILBOX_USER])
    # the rua address of the domain's own TLSRPT record (the milter's
    # milter_rua_addresses) delivers to the same mailbox
    m.sh("echo 'tlsrpt: %s' >> /etc/aliases && newaliases" % MAILBOX_USER)
    m.run(["systemctl", "restart", "postfix"])


def copy_repo_into(m, repo):
    """The repository goes onto the machine's disk (the overlay's upper
    layer, written before the first boot): it survives reboots."""
    dest = os.path.join(m.upper, REPO_IN_MACHINE.lstrip("/"))
    shutil.copytree(repo, dest)


def check_no_failed_units(m, when):
    f = failed_units(m)
    check(not f, "%s: systemctl --failed lists %s" % (when, f))


# -------------------------------------------------------------- harness

def run_harness(m, world, release):
    """The machine itself, with a probe package: apt from the local
    repository, mail out and in, restart and reboot."""
    # (the README's Postfix lines set this; Debian 13's postfix leaves
    # main.cf without TLS settings when ssl-cert is not installed)
    m.run(["postconf", "-e", "smtp_tls_security_level = may"])
    m.run(["postfix", "reload"])
    m.run(["apt-get", "install", "-y", "tlsrptd-install-probe"],
          env={"DEBIAN_FRONTEND": "noninteractive"})
    check(m.run(["dpkg-query", "-W", "-f", "${Status}", "bsd-mailx"]).stdout ==
          "install ok installed", "apt did not install the probe's dependency")
    got = deliver_round(m, world, ["a@good.test", "b@self.test"], "harness")
    check(len(got) == 2 and all("tls=yes" in g for g in got),
          "deliveries to the test MX over TLS: %r" % got)
    send(m, "%s@%s" % (MAILBOX_USER, HOSTNAME), "local probe")
    wait_queue_empty(m)
    check("Subject: local probe" in mailbox(m), "local delivery to the rua mailbox")
    check_no_failed_units(m, "after the probe install")
    if release == "trixie":
        timed("soft-reboot", m.soft_reboot())
    else:
        timed("halt", m.halt())
        timed("second boot", m.boot())
    check("Subject: local probe" in mailbox(m), "mailbox survives the reboot")
    got = deliver_round(m, world, ["c@good.test"], "harness after reboot")
    check(len(got) == 1, "delivery after the reboot: %r" % got)
    check_no_failed_units(m, "after the reboot")
    m.run(["apt-get", "purge", "-y", "tlsrptd-install-probe"],
          env={"DEBIAN_FRONTEND": "noninteractive"})
    check(m.run(["dpkg-query", "-W", "-f", "${Status}", "tlsrptd-install-probe"],
                check=False).stdout.strip() in ("", "unknown ok not-installed"),
          "the probe is purged")


# ----------------------------------------------------------------- main

def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def remove_stale():
    """What an earlier run killed with SIGKILL could not remove (its netns
    name, cgroup and directory carry its PID): gone before this run."""
    r = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, universal_newlines=True)
    for line in r.stdout.splitlines():
        m = re.match(r"tlsrptd-install-(\d+)\b", line)
        if m and not pid_alive(int(m.group(1))):
            subprocess.run(["ip", "netns", "del", m.group(0)])
    cg = M.cgroup2_root()
    for d in os.listdir(cg):
        m = re.match(r"tlsrptd-install-\w+-(\d+)$", d)
        if m and not pid_alive(int(m.group(1))):
            M.remove_cgroup(os.path.join(cg, d))
    for d in os.listdir("/var/tmp"):
        m = re.match(r"tlsrptd-install-\w+-(\d+)-", d)
        if m and not pid_alive(int(m.group(1))):
            shutil.rmtree(os.path.join("/var/tmp", d), ignore_errors=True)


def find_debs(args):
    d = args.debs or os.path.join(os.environ.get("TLSRPT_DEBS") or
                                  os.path.join(SOURCE_DIR, "build-deb"), args.release)
    debs = sorted(os.path.join(d, f) for f in os.listdir(d)
                  if f.endswith(".deb") and "-dbgsym_" not in f) if os.path.isdir(d) else []
    if not debs:
        log("*** FAILED: no .deb files in %s: build them with ./run deb %s ***" % (d, args.release))
        sys.exit(1)
    return debs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--release", choices=("trixie", "bookworm"), required=True)
    ap.add_argument("--debs")
    ap.add_argument("--harness", action="store_true")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.stderr.write("\n*** SKIPPED: the install test needs root (namespaces, "
                         "mounts, debootstrap) ***\n\n")
        sys.exit(77)
    for tool in ("unshare", "nsenter", "ip", "dpkg-scanpackages", "apt-get", "setpriv"):
        if not shutil.which(tool):
            log("*** FAILED: %s is missing (./run deps installs it) ***" % tool)
            sys.exit(1)
    root = os.path.join(CACHE, "install-" + args.release)
    if not os.path.isfile(os.path.join(root, ".tlsrptd-root-ok")):
        log("no cached %s root: building it (tests/install/prepare.sh)" % args.release)
        if subprocess.call(["sh", os.path.join(HERE, "prepare.sh"), args.release]) != 0:
            log("*** FAILED: could not build the %s root ***" % args.release)
            sys.exit(1)
    with open(os.path.join(root, ".tlsrptd-root-ok")) as fp:
        log("root: %s (%s)" % (root, fp.read().strip()))
    debs = None if args.harness else find_debs(args)

    M.become_subreaper()
    # meson's timeout sends SIGTERM: tear down as on any failure
    def on_term(sig, frame):
        raise M.MachineError("stopped by signal %d" % sig)
    signal.signal(signal.SIGTERM, on_term)
    remove_stale()
    tmp = tempfile.mkdtemp(prefix="tlsrptd-install-%s-%d-" % (args.release, os.getpid()),
                           dir="/var/tmp")
    world = m = None
    try:
        t0 = time.monotonic()
        if args.harness:
            debs = [aptrepo.make_probe_deb(tmp, "tlsrptd-install-probe", "bsd-mailx")]
        repo = os.path.join(tmp, "repo")
        deps, updated = aptrepo.build_repo(CACHE, args.release, root, debs, repo)
        log("local repository: %d package(s) + %d dependencies: %s" % (
            len(debs), len(deps), " ".join(n for n, _, _ in deps)))
        timed("local repository (apt lists %s)" % ("refreshed" if updated else "cached"),
              time.monotonic() - t0)
        world = W.World(tmp)
        world.start(zone())
        m = M.Machine(args.release, root, os.path.join(tmp, "machine"), HOSTNAME, world.connect)
        copy_repo_into(m, repo)
        timed("first boot", m.boot())
        setup_machine(m, world)
        check_no_failed_units(m, "fresh machine")
        if args.harness:
            run_harness(m, world, args.release)
        else:
            import scenario
            scenario.run(m, world, args.release, debs, check, fail, timed)
    except (M.MachineError, aptrepo.RepoError, RuntimeError, OSError) as e:
        # (readme.ReadmeError is a RuntimeError)
        fail("%s: %s" % (type(e).__name__, e))
    except Exception as e:          # a bug of the test itself: still tear down
        traceback.print_exc()
        fail("%s: %s" % (type(e).__name__, e))
    finally:
        if m is not None:
            m.kill()
        if world is not None:
            world.stop()
        if args.keep:
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    for label, s in timings:
        print("timing %s %s: %.1f s" % (args.release, label, s))
    if failures:
        log("%d check(s) failed:\n  %s" % (len(failures), "\n  ".join(failures)))
        sys.exit(1)
    log("all checks passed")


if __name__ == "__main__":
    main()
