"""aptrepo - a local apt repository for a machine without network: the
given .debs plus every package they need that the machine does not have,
downloaded on the host with a private apt state for the machine's release.

The host's apt configuration and package state are never used or changed:
sources, lists, archives and preferences are private (cached under
$CACHE/install-apt-<release>, reused between runs under a lock), and the
dependency resolution runs against the machine root's own dpkg status
file, so the repository holds exactly what `apt install` there will want
(Recommends included, as apt's default is). The archive URI is read from
the host's apt sources at run time.
"""
import fcntl
import glob
import os
import re
import shutil
import subprocess
import time

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


class RepoError(RuntimeError):
    pass


def archive_uri():
    """First http(s) URI of a main archive (not -security) in the host's apt
    sources (the same rule as tests/e2e/prepare.sh)."""
    p = "/etc/apt/sources.list.d/debian.sources"
    if os.path.exists(p):
        for line in open(p):
            if line.startswith("URIs:"):
                for u in line.split()[1:]:
                    if "security" not in u:
                        return u
    p = "/etc/apt/sources.list"
    if os.path.exists(p):
        for line in open(p):
            f = line.split()
            if f and f[0] == "deb":
                for u in f[1:]:
                    if re.match(r"https?:", u) and "security" not in u:
                        return u
    raise RepoError("no Debian archive URI in the host's apt sources")


def _run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, **kw)
    if r.returncode != 0:
        raise RepoError("%s: exit %d\n%s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
    return r


class PrivateApt:
    def __init__(self, cache, release, root):
        self.dir = os.path.join(cache, "install-apt-" + release)
        self.release = release
        self.root = root
        for d in ("state/lists/partial", "cache/archives/partial", "etc"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        self.sources = os.path.join(self.dir, "etc", "sources.list")
        with open(self.sources, "w") as fp:
            fp.write("deb [signed-by=%s] %s %s main\n" % (KEYRING, archive_uri(), release))
        self.opts = [
            "-o", "Dir::Etc::SourceList=" + self.sources,
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", "Dir::Etc::Preferences=/dev/null",
            "-o", "Dir::Etc::PreferencesParts=/dev/null",
            "-o", "Dir::State=" + os.path.join(self.dir, "state"),
            "-o", "Dir::State::status=" + os.path.join(root, "var/lib/dpkg/status"),
            "-o", "Dir::Cache=" + os.path.join(self.dir, "cache"),
            "-o", "Debug::NoLocking=1",
            "-o", "APT::Sandbox::User=root",
            "-o", "APT::Install-Recommends=true",
            "-o", "APT::Get::Assume-Yes=true",
        ]
        self.lockfd = None

    def lock(self, timeout=600):
        self.lockfd = os.open(os.path.join(self.dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self.lockfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RepoError("%s/.lock held for %d s" % (self.dir, timeout))
                time.sleep(0.5)

    def unlock(self):
        if self.lockfd is not None:
            os.close(self.lockfd)
            self.lockfd = None

    def update(self, max_age=6 * 3600):
        """apt-get update, unless the lists are younger than max_age."""
        stamp = os.path.join(self.dir, "state", "updated")
        if os.path.exists(stamp) and time.time() - os.path.getmtime(stamp) < max_age:
            return False
        _run(["apt-get"] + self.opts + ["-q", "update"])
        open(stamp, "w").close()
        return True

    def closure(self, debs):
        """The packages that installing debs (paths) on the root needs and
        the root lacks: [(name, version, arch)], the .debs themselves
        excluded. Downloads them into the cache."""
        args = [os.path.abspath(d) for d in debs]
        sim = _run(["apt-get"] + self.opts + ["-s", "install"] + args).stdout
        want = []
        local = {deb_field(d, "Package") for d in debs}
        for line in sim.splitlines():
            m = re.match(r"Inst (\S+) (?:\[\S+\] )?\((\S+) .*\[(\S+)\]\)", line)
            if m and m.group(1).split(":")[0] not in local:
                want.append((m.group(1).split(":")[0], m.group(2), m.group(3)))
        if want:
            _run(["apt-get"] + self.opts + ["-q", "--download-only", "install"] + args)
        return want

    def archive_file(self, name, version, arch):
        fn = "%s_%s_%s.deb" % (name, version.replace(":", "%3a"), arch)
        p = os.path.join(self.dir, "cache", "archives", fn)
        if not os.path.exists(p):
            raise RepoError("apt did not download %s" % fn)
        return p


def deb_field(path, field):
    return _run(["dpkg-deb", "-f", path, field]).stdout.strip()


def build_repo(cache, release, root, debs, out):
    """Make the flat repository 'out' (Packages, the .debs) for installing
    debs on root. Returns (the dependency packages added, whether the apt
    lists were refreshed)."""
    apt = PrivateApt(cache, release, root)
    apt.lock()
    try:
        updated = apt.update()
        deps = apt.closure(debs)
        os.makedirs(out, exist_ok=True)
        for d in debs:
            shutil.copy(d, out)
        for name, version, arch in deps:
            shutil.copy(apt.archive_file(name, version, arch), out)
    finally:
        apt.unlock()
    r = _run(["dpkg-scanpackages", "--multiversion", "."], cwd=out)
    with open(os.path.join(out, "Packages"), "w") as fp:
        fp.write(r.stdout)
    return deps, updated


def make_probe_deb(out_dir, name, depends, version="1.0"):
    """A trivial package (for proving the harness without the project's
    packages): only a control file and a file under /usr/share/doc."""
    tree = os.path.join(out_dir, name + "-tree")
    os.makedirs(os.path.join(tree, "DEBIAN"), exist_ok=True)
    os.makedirs(os.path.join(tree, "usr/share/doc", name), exist_ok=True)
    with open(os.path.join(tree, "usr/share/doc", name, "README"), "w") as fp:
        fp.write("install test probe\n")
    with open(os.path.join(tree, "DEBIAN/control"), "w") as fp:
        fp.write("Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: tlsrptd tests "
                 "<root@localhost>\nDepends: %s\nDescription: install test probe\n"
                 " A package that only exists to prove the test's apt repository.\n"
                 % (name, version, depends))
    deb = os.path.join(out_dir, "%s_%s_all.deb" % (name, version))
    _run(["dpkg-deb", "--root-owner-group", "--build", tree, deb])
    shutil.rmtree(tree)
    return deb


def repo_debs(out):
    return sorted(glob.glob(os.path.join(out, "*.deb")))
