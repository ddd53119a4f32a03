"""The privilege layout (README "Privileges"): no process running as root
operates by name in, or follows a link into, a directory another user can
write; daemons started as their user need no drop of their own; tlsrptctl
run as root acts as the owner of the store it writes.

Needs root (it plays the service user 'nobody' against a root daemon);
without root it says so and exits 77 (skipped)."""
import grp
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from tlsrpttest import (TLSRPTD, TLSRPTCTL, BUILD, check, check_eq, done, tempdir, cleanup)  # noqa: E402

NOBODY = pwd.getpwnam("nobody")


def as_nobody():
    os.setgroups([])
    os.setgid(NOBODY.pw_gid)
    os.setuid(NOBODY.pw_uid)


def wait_log(path, text, proc, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(path) as fp:
            if text in fp.read():
                return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


ATTACKER = r"""
import os, sys, time
d, victim = sys.argv[1], sys.argv[2]
deadline = time.time() + 8
while time.time() < deadline:
    for n in os.listdir(d):
        if n.startswith("tlsrpt.sock.") and not n.endswith(".evil"):
            p = os.path.join(d, n)
            try:
                os.symlink(victim, p + ".evil")
                os.rename(p + ".evil", p)     # the bound socket's name is now a link
                print("planted", n, flush=True)
                sys.exit(0)
            except OSError as e:
                print("attack failed:", e, flush=True)
    time.sleep(0.001)
print("no temporary socket seen", flush=True)
"""


def test_socket_link(tmp):
    """The reproduced case: tlsrptd (root) bound its socket in a directory
    the service user could write and then chmod'ed it by name; the user
    replaced the name with a link and a root-owned 0600 file became 0666.
    strace holds tlsrptd for 0.5 s after bind() so that the window is
    certain. Now tlsrptd refuses such a directory as root."""
    if shutil.which("strace") is None:
        check(False, "strace is not installed (./run deps installs it)")
        return
    sockdir = os.path.join(tmp, "sockdir")
    os.mkdir(sockdir, 0o755)
    os.chown(sockdir, NOBODY.pw_uid, NOBODY.pw_gid)     # the service user's directory
    victim = os.path.join(tmp, "victim")
    with open(victim, "w") as fp:
        fp.write("secret\n")
    os.chmod(victim, 0o600)
    conf = os.path.join(tmp, "link.conf")
    with open(conf, "w") as fp:
        fp.write(f"state_directory = {tmp}/state\nsocket_path = {sockdir}/tlsrpt.sock\n"
                 "socket_mode = 0666\nrealtime_priority = 0\n")
    logp = os.path.join(tmp, "link.log")
    attacker = subprocess.Popen([sys.executable, "-c", ATTACKER, sockdir, victim],
                                stdout=subprocess.PIPE, text=True, preexec_fn=as_nobody)
    with open(logp, "w") as log:
        d = subprocess.Popen(["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=bind",
                              "-e", "inject=bind:delay_exit=500000", TLSRPTD, "-f", "-c", conf],
                             stderr=log)
    started = wait_log(logp, "collecting TLS results", d, timeout=5)
    # strace passes SIGTERM on to nobody: stop tlsrptd itself, then strace
    try:
        with open(f"/proc/{d.pid}/task/{d.pid}/children") as fp:
            for pid in fp.read().split():
                os.kill(int(pid), signal.SIGTERM)
    except OSError:
        pass
    try:
        d.wait(10)
    except subprocess.TimeoutExpired:
        d.kill()
        d.wait()
    attacker.kill()
    out = attacker.communicate()[0]
    mode = stat.S_IMODE(os.stat(victim).st_mode)
    check(mode == 0o600, f"victim file mode {mode:04o} after tlsrptd started as root next to "
          f"a link planted by the service user (attacker: {out.strip()!r}), want 0600")
    with open(logp) as fp:
        text = fp.read()
    check(not started and "refusing to create a socket there as root" in text,
          f"tlsrptd as root in a directory the service user owns: started {started}, log {text!r}")


def test_socket_modes(tmp):
    """In a root directory (setgid, group 'nogroup'), as root: the socket is
    created with socket_mode (umask at bind, no chmod) and gets the
    directory's group; in a directory writable by group nogroup it refuses."""
    gid = grp.getgrnam("nogroup").gr_gid
    sockdir = os.path.join(tmp, "sgid")
    os.mkdir(sockdir)
    os.chown(sockdir, 0, gid)
    os.chmod(sockdir, 0o2750)
    conf = os.path.join(tmp, "sgid.conf")
    with open(conf, "w") as fp:
        fp.write(f"state_directory = {tmp}/state2\nsocket_path = {sockdir}/tlsrpt.sock\n"
                 "realtime_priority = 0\n")
    logp = os.path.join(tmp, "sgid.log")
    with open(logp, "w") as log:
        d = subprocess.Popen([TLSRPTD, "-f", "-c", conf], stderr=log)
    if wait_log(logp, "collecting TLS results", d):
        st = os.lstat(os.path.join(sockdir, "tlsrpt.sock"))
        check(stat.S_ISSOCK(st.st_mode), "socket path is not a socket")
        check_eq(f"{stat.S_IMODE(st.st_mode):04o}", "0660", "socket mode (default socket_mode)")
        check_eq(st.st_gid, gid, "socket group (from the setgid directory)")
    else:
        with open(logp) as fp:
            check(False, "tlsrptd did not start in a root setgid directory: " + fp.read())
    if d.poll() is None:
        d.send_signal(signal.SIGTERM)
    check_eq(d.wait(10), 0, "exit status after SIGTERM")
    check(not os.path.lexists(os.path.join(sockdir, "tlsrpt.sock")), "socket removed at exit")
    os.chmod(sockdir, 0o2770)      # group nogroup may write: refused as root
    r = subprocess.run([TLSRPTD, "-f", "-c", conf], capture_output=True, text=True, timeout=10)
    check(r.returncode != 0 and "refusing to create a socket there as root" in r.stderr,
          f"group-writable socket directory: rc {r.returncode}, {r.stderr.strip()!r}")


def test_started_as_user(tmp):
    """Started as its user (systemd User=): 'user' empty or naming that user
    is a no-op; naming another user is a clear error."""
    sockdir = os.path.join(tmp, "userdir")
    os.mkdir(sockdir, 0o755)
    os.chown(sockdir, NOBODY.pw_uid, NOBODY.pw_gid)
    state = os.path.join(tmp, "ustate")
    os.mkdir(state, 0o750)
    os.chown(state, NOBODY.pw_uid, NOBODY.pw_gid)
    for user, ok in (("", True), ("nobody", True), ("daemon", False)):
        conf = os.path.join(tmp, f"user-{user or 'empty'}.conf")
        with open(conf, "w") as fp:
            fp.write(f"state_directory = {state}\nsocket_path = {sockdir}/tlsrpt.sock\n"
                     f"realtime_priority = 0\nuser = {user}\n")
        os.chmod(conf, 0o644)
        logp = os.path.join(tmp, f"user-{user or 'empty'}.log")
        with open(logp, "w") as log:
            d = subprocess.Popen([TLSRPTD, "-f", "-c", conf], stderr=log, preexec_fn=as_nobody)
        started = wait_log(logp, "collecting TLS results", d)
        if d.poll() is None:
            d.send_signal(signal.SIGTERM)
        rc = d.wait(10)
        with open(logp) as fp:
            text = fp.read()
        if ok:
            check(started and rc == 0, f"as nobody with user = {user!r}: started {started}, "
                  f"rc {rc}, log {text!r}")
        else:
            check(not started and rc != 0 and
                  "running as nobody" in text and "but user = daemon" in text,
                  f"as nobody with user = daemon: started {started}, rc {rc}, log {text!r}")


TLSRPT_REPORT = os.path.join(BUILD, "reporter", "tlsrpt-report")

REPORT = """{"organization-name": "Example Reporter", "date-range": {
 "start-datetime": "2026-11-27T00:00:00Z", "end-datetime": "2026-11-27T23:59:59Z"},
 "contact-info": "tlsrpt@reporter.example", "report-id": "2026-11-27.priv@reporter.example",
 "policies": [{"policy": {"policy-type": "no-policy-found", "policy-domain": "example.org"},
 "summary": {"total-successful-session-count": 3, "total-failure-session-count": 0}}]}
"""


def owners(top):
    """(path, uid) of every file and directory below 'top' (and top)."""
    out = [(top, os.lstat(top).st_uid)]
    for d, dirs, files in os.walk(top):
        for n in dirs + files:
            p = os.path.join(d, n)
            out.append((p, os.lstat(p).st_uid))
    return out


def test_ctl_as_owner(tmp):
    """tlsrptctl (spool retry, received import) and tlsrpt-report run as
    root on stores that belong to the service user: every file they leave
    is the user's (before: root's, and the service failed on them)."""
    spool = os.path.join(tmp, "spool")
    store = os.path.join(tmp, "received")
    state = os.path.join(tmp, "cstate")
    for d in (spool, store, state):
        os.mkdir(d, 0o750)
        os.chown(d, NOBODY.pw_uid, NOBODY.pw_gid)
    conf = os.path.join(tmp, "ctl.conf")
    with open(conf, "w") as fp:
        fp.write(f"state_directory = {state}\nspool_directory = {spool}\n"
                 f"received_directory = {store}\norganization_name = Test\n"
                 "contact_info = tlsrpt@example.net\ndkim_sign = no\ndelivery_mail = off\n"
                 "delivery_https = no\n")
    # the operator's file, readable by root only: opened as the caller
    private = os.path.join(tmp, "private")
    os.mkdir(private, 0o700)
    report = os.path.join(private, "report.json")
    with open(report, "w") as fp:
        fp.write(REPORT)
    r = subprocess.run([TLSRPTCTL, "-c", conf, "received", "import", report],
                       capture_output=True, text=True)
    check(r.returncode == 0 and "stored" in r.stdout,
          f"received import as root: rc {r.returncode}, {r.stdout!r} {r.stderr!r}")
    r = subprocess.run([TLSRPTCTL, "-c", conf, "spool", "retry", "20261127-0000000000000000"],
                       capture_output=True, text=True)
    check(r.returncode == 1 and "no report" in r.stderr,
          f"spool retry of an unknown report: rc {r.returncode}, {r.stderr!r}")
    r = subprocess.run([TLSRPT_REPORT, "-c", conf, "run"], capture_output=True, text=True)
    check_eq(r.returncode, 0, f"tlsrpt-report run as root ({r.stderr.strip()!r})")
    for top in (spool, store):
        paths = owners(top)
        check(len(paths) > 2, f"{top}: nothing written ({paths})")
        root_owned = [p for p, uid in paths if uid != NOBODY.pw_uid]
        check(not root_owned, f"files left in the service's store not owned by it: {root_owned}")
    # the service user reads and writes on: a second import as nobody
    r = subprocess.run([TLSRPTCTL, "-c", conf, "received", "summary", "--json"],
                       capture_output=True, text=True, preexec_fn=as_nobody)
    check(r.returncode == 0 and "example.org" in r.stdout,
          f"the service user reads the store after a root import: rc {r.returncode}, {r.stderr!r}")
    # a symlink in place of the store: refused with a clear message, nothing
    # written through it
    victim = os.path.join(tmp, "victim-store")
    os.mkdir(victim, 0o700)
    linked = os.path.join(tmp, "linked-store")
    os.symlink(victim, linked)
    with open(conf.replace("ctl.conf", "ctl-link.conf"), "w") as fp:
        fp.write(f"received_directory = {linked}\n")
    r = subprocess.run([TLSRPTCTL, "-c", conf.replace("ctl.conf", "ctl-link.conf"),
                        "received", "import", report], capture_output=True, text=True)
    check(r.returncode != 0 and "refusing to write it as root" in r.stderr and
          os.listdir(victim) == [],
          f"import into a store that is a symlink, as root: rc {r.returncode}, {r.stderr!r}, "
          f"victim {os.listdir(victim)}")


def main():
    if os.geteuid() != 0:
        print("test_privileges: needs root (plays a service user against root daemons)")
        sys.exit(77)
    tmp = tempdir("privileges")
    os.chmod(tmp, 0o755)
    try:
        test_socket_link(tmp)
        test_socket_modes(tmp)
        test_started_as_user(tmp)
        test_ctl_as_owner(tmp)
    finally:
        cleanup(tmp)
    done("test_privileges")


if __name__ == "__main__":
    main()
