"""machine - a Debian machine booted with real systemd as PID 1, for the
install test (tests/install/test_install.py).

The root file system is a cached debootstrap tree (tests/install/prepare.sh:
systemd, apt, postfix) under an overlay: the cached tree is the read-only
lower layer, every test run writes only to its own upper directory, so each
run starts from the same fresh machine and the cache is never changed.

One boot:
  * a cgroup of our own (on the host's cgroup2 hierarchy: /sys/fs/cgroup, or
    /sys/fs/cgroup/unified on a hybrid host) holds everything the machine
    runs: systemd's tree in <cg>/machine, the commands we run in it in
    <cg>/commands. Teardown writes cgroup.kill: nothing outlives the test.
  * `unshare --pid --mount --net --uts --ipc --cgroup --fork` runs
    inner.sh as PID 1 of the new namespaces: it mounts the overlay, /proc
    (with /proc/sys read-only), a read-only /sys with cgroup2, a small /dev
    with a pty as /dev/console (drained into console.log by us), waits until
    the network is set up from outside, pivots into the root and execs
    /sbin/init (systemd) with the capabilities a container lacks dropped
    (as systemd-nspawn does: no module loading, no raw I/O, no clock).
  * the network namespace gets one veth link to the test's own "world"
    namespace (the test DNS and MX servers); nothing else.
  * commands run with nsenter into all of the machine's namespaces, with a
    clean environment, each in the commands cgroup.
  * halt(): `systemctl halt` and wait until PID 1 is gone; boot() again uses
    the same upper directory: a new boot of the same disk.
The mount namespace dies with its last process, and the overlay with it:
there is nothing to unmount on the host.
"""
import ctypes
import os
import select
import shutil
import signal
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What systemd-nspawn also keeps from a container by default.
DROP_CAPS = ["sys_module", "sys_rawio", "sys_time", "mac_admin", "mac_override",
             "syslog", "wake_alarm", "block_suspend", "sys_pacct", "bpf", "perfmon"]
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


class MachineError(RuntimeError):
    pass


def log(msg):
    import sys
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def become_subreaper():
    """Orphans of the machines (its PID 1 once unshare is gone) are reparented
    to us and reaped, instead of staying zombies of the host's init."""
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def cgroup2_root():
    """The host's cgroup2 mount: pure v2, or the unified part of a hybrid."""
    for d in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if os.path.exists(os.path.join(d, "cgroup.procs")) and \
                os.path.exists(os.path.join(d, "cgroup.subtree_control")):
            return d
    raise MachineError("no cgroup2 hierarchy on this host (neither /sys/fs/cgroup "
                       "nor /sys/fs/cgroup/unified)")


def remove_cgroup(path):
    """Kill everything in the cgroup tree and remove it, deepest first."""
    if not os.path.isdir(path):
        return
    kill = os.path.join(path, "cgroup.kill")
    if os.path.exists(kill):
        try:
            with open(kill, "w") as fp:
                fp.write("1")
        except OSError:
            pass
    deadline = time.monotonic() + 10
    while True:
        reap()
        left = []
        for top, _, _ in os.walk(path, topdown=False):
            try:
                os.rmdir(top)
            except OSError:
                left.append(top)
        if not left:
            return
        if time.monotonic() > deadline:
            raise MachineError("cgroup %s still busy: %s" % (path, left))
        if os.path.exists(kill):
            try:
                with open(kill, "w") as fp:
                    fp.write("1")
            except OSError:
                pass
        time.sleep(0.1)


class Console:
    """A pty whose slave becomes the machine's /dev/console; a thread copies
    what systemd and getty write there into a log file."""

    def __init__(self, path):
        self.master, self.slave = os.openpty()
        self.name = os.ttyname(self.slave)
        self.out = open(path, "ab")
        self.stopped = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopped:
            r, _, _ = select.select([self.master], [], [], 0.2)
            if r:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    time.sleep(0.2)
                    continue
                self.out.write(data)
                self.out.flush()

    def close(self):
        self.stopped = True
        self.thread.join()
        os.close(self.master)
        os.close(self.slave)
        self.out.close()


class Machine:
    def __init__(self, name, lower, workdir, hostname, setup_net):
        """name: short label (cgroup name, logs); lower: the cached root;
        workdir: this run's directory (upper layer, logs); setup_net(pid):
        called with the host PID of the machine's PID 1 before it boots, to
        put links into its network namespace."""
        self.name = name
        self.lower = lower
        self.workdir = workdir
        self.upper = os.path.join(workdir, "upper")
        self.ovl_work = os.path.join(workdir, "ovlwork")
        self.mnt = os.path.join(workdir, "mnt")
        for d in (self.upper, self.ovl_work, self.mnt):
            os.makedirs(d, exist_ok=True)
        self.hostname = hostname
        self.setup_net = setup_net
        self.proc = None
        self.pid = None
        self.console = None
        self.boots = 0
        self.cg = None

    # ---------------------------------------------------------------- boot

    def boot(self, timeout=120):
        """Start a new boot of the machine and wait until systemd says the
        system is up (running or degraded; which one is for the test to
        check). Returns the seconds it took."""
        t0 = time.monotonic()
        self.boots += 1
        self.cg = os.path.join(cgroup2_root(), "tlsrptd-install-%s-%d" % (self.name, os.getpid()))
        remove_cgroup(self.cg)
        for sub in ("", "machine", "commands"):
            os.makedirs(os.path.join(self.cg, sub), exist_ok=True)
        self.console = Console(os.path.join(self.workdir, "console.log"))
        procs = os.path.join(self.cg, "machine", "cgroup.procs")

        def pre():
            os.setsid()
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            with open(procs, "w") as fp:
                fp.write(str(os.getpid()))

        cmd = ["unshare", "--pid", "--mount", "--net", "--uts", "--ipc", "--cgroup",
               "--fork", "--kill-child",
               "sh", os.path.join(HERE, "inner.sh"), self.lower, self.upper, self.ovl_work,
               self.mnt, self.console.name, self.hostname, ",".join("-" + c for c in DROP_CAPS)]
        err = open(os.path.join(self.workdir, "unshare.log"), "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=err, stderr=err,
                                     preexec_fn=pre, close_fds=True)
        err.close()
        # the host PID of the namespace's PID 1: unshare's only child
        deadline = time.monotonic() + 10
        self.pid = None
        while self.pid is None:
            try:
                with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as fp:
                    kids = fp.read().split()
                if kids:
                    self.pid = int(kids[0])
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise MachineError("unshare exited %d before the machine started: %s" % (
                    self.proc.returncode, self.read_file_host("unshare.log")))
            if time.monotonic() > deadline:
                raise MachineError("no PID 1 in the machine after 10 s")
            time.sleep(0.01)
        self.setup_net(self.pid)
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.close()
        # wait for systemd to answer, then for the boot to finish
        if self.proc.poll() is not None:
            raise MachineError("the machine's PID 1 exited (%d) during boot; console:\n%s\n%s" % (
                self.proc.returncode, self.read_file_host("console.log")[-3000:],
                self.read_file_host("unshare.log")))
        state = self.wait_up(timeout)
        took = time.monotonic() - t0
        log("%s: boot %d: %s after %.1f s" % (self.name, self.boots, state, took))
        return took

    def read_file_host(self, name):
        try:
            with open(os.path.join(self.workdir, name), "rb") as fp:
                return fp.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # ------------------------------------------------------------ commands

    def run(self, cmd, check=True, input=None, timeout=300, env=None, shell=False):
        """Run cmd (a list, or a shell string with shell=True) inside the
        machine as root, like an administrator's shell: all its namespaces,
        its root, a clean environment."""
        if self.pid is None:
            raise MachineError("the machine is not running")
        if shell:
            cmd = ["/bin/sh", "-c", cmd]
        e = ["PATH=" + PATH, "LANG=C.UTF-8", "HOME=/root", "TERM=dumb"]
        for k, v in (env or {}).items():
            e.append("%s=%s" % (k, v))
        procs = os.path.join(self.cg, "commands", "cgroup.procs")

        def pre():
            with open(procs, "w") as fp:
                fp.write(str(os.getpid()))

        full = ["nsenter", "-t", str(self.pid), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w",
                "env", "-i"] + e + list(cmd)
        try:
            r = subprocess.run(full, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True, timeout=timeout, preexec_fn=pre)
        except subprocess.TimeoutExpired as ex:
            raise MachineError("timed out after %d s: %s\n%s%s" % (
                timeout, " ".join(cmd), ex.stdout or "", ex.stderr or ""))
        if check and r.returncode != 0:
            raise MachineError("in the machine: %s: exit %d\n%s%s" % (
                " ".join(cmd), r.returncode, r.stdout, r.stderr))
        return r

    def sh(self, script, **kw):
        return self.run(script, shell=True, **kw)

    def read(self, path):
        return self.run(["cat", path]).stdout

    def write(self, path, text, mode="0644"):
        self.run(["sh", "-c", 'cat > "$1" && chmod %s "$1"' % mode, "-", path], input=text)

    # ------------------------------------------------------------ shutdown

    def wait_gone(self, timeout=120):
        """Wait until PID 1 has exited (after a halt); return its status."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise MachineError("the machine did not stop within %d s; console:\n%s" % (
                timeout, self.read_file_host("console.log")[-3000:]))
        self.pid = None
        self._release()
        return rc

    def halt(self, timeout=120):
        """`systemctl halt`: systemd stops every unit, unmounts and exits;
        the namespaces are gone afterwards. Returns the seconds it took."""
        t0 = time.monotonic()
        self.run(["systemctl", "halt"], check=False, timeout=30)
        self.wait_gone(timeout)
        return time.monotonic() - t0

    def wait_up(self, timeout=120, what="boot"):
        """Poll until systemd answers and says running or degraded."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            r = self.run(["systemctl", "is-system-running", "--wait"], check=False,
                         timeout=max(1, deadline - time.monotonic()))
            state = r.stdout.strip()
            if state in ("running", "degraded"):
                return state
            time.sleep(0.2)
        raise MachineError("%s did not finish within %d s (state %r); console:\n%s" % (
            what, timeout, state, self.read_file_host("console.log")[-3000:]))

    def soft_reboot(self, timeout=120):
        """`systemctl soft-reboot` (systemd 254+): every unit is stopped and
        user space starts again on the same kernel and namespaces. Returns
        the seconds until the system is up again."""
        def count():
            # while PID 1 goes down and comes back, systemctl may refuse or
            # hang (seen once: "Failed to connect to system scope bus",
            # then no exit within 10 s): not back yet, ask again until the
            # deadline below
            try:
                r = self.run(["systemctl", "show", "-P", "SoftRebootsCount"], check=False,
                             timeout=10)
            except MachineError:
                return None
            return r.stdout.strip() if r.returncode == 0 else None
        before = count()
        if not before:
            raise MachineError("this systemd has no soft-reboot (no SoftRebootsCount)")
        t0 = time.monotonic()
        self.run(["systemctl", "soft-reboot"], timeout=30)
        deadline = t0 + timeout
        while True:
            c = count()
            if c is not None and c != before:
                break
            if self.proc.poll() is not None:
                raise MachineError("PID 1 exited (%d) in soft-reboot" % self.proc.returncode)
            if time.monotonic() > deadline:
                raise MachineError("soft-reboot: systemd did not come back within %d s" % timeout)
            time.sleep(0.2)
        self.wait_up(max(1, deadline - time.monotonic()), "soft-reboot")
        took = time.monotonic() - t0
        log("%s: soft-reboot %s -> %s: up after %.1f s" % (self.name, before, c, took))
        return took

    def _release(self):
        if self.cg:
            remove_cgroup(self.cg)
            self.cg = None
        if self.console:
            self.console.close()
            self.console = None
        reap()

    def kill(self):
        """Teardown whatever state the machine is in: kill every process of
        its cgroup (PID 1 first: that ends the pid namespace) and remove the
        cgroup. Safe to call more than once."""
        if self.proc and self.proc.poll() is None:
            if self.pid:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                self.proc.kill()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.pid = None
        self._release()

    def remove(self):
        """Remove this run's disk (upper layer). Only when nothing runs."""
        shutil.rmtree(self.workdir, ignore_errors=True)
