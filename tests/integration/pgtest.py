"""A private PostgreSQL for the fleet tests, started by the tests themselves.

    pg = PgServer()                  # initdb into a temporary directory
    pg.start()                       # 127.0.0.1, a free port, waits until ready
    pg.conf_lines(tmp)               # fleet_database + fleet_password_file lines
    pg.psql("SELECT ...")            # as the tlsrpt role, in database tlsrpt
    pg.stop() / pg.kill() / pg.start()   # outages
    pg.cleanup()                     # stops and removes everything

It uses Debian's server binaries (/usr/lib/postgresql/N/bin, package
postgresql, in ./run's package list). The server runs as a child of the test
(not daemonized by pg_ctl), so Meson's timeout kills it together with the
test. initdb refuses to run as root: when the test runs as root, the server
runs as the system user "postgres" (or "nobody") in a directory made for it.
Authentication is scram-sha-256 on 127.0.0.1 only; the unix socket lives in
the temporary directory, never in /var/run/postgresql.
"""
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time

from tlsrpttest import free_port  # noqa: E402


def pg_bindir():
    """The newest installed server's bin directory, or None."""
    found = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        d = os.path.dirname(initdb)
        ver = os.path.basename(os.path.dirname(d))
        if os.path.exists(os.path.join(d, "postgres")) and ver.isdigit():
            found.append((int(ver), d))
    return max(found)[1] if found else None


class PgServer:
    def __init__(self, fsync=False, quiet=True):
        self.bindir = pg_bindir()
        if self.bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found (Debian package postgresql)")
        self.dir = tempfile.mkdtemp(prefix="tlsrpt-pg.")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.password = secrets.token_hex(16)
        self.proc = None
        self.uid = self.gid = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    pw = pwd.getpwnam(name)
                except KeyError:
                    continue
                self.uid, self.gid = pw.pw_uid, pw.pw_gid
                break
            if self.uid is None:
                raise RuntimeError("running as root and no user postgres or nobody to run the server as")
            os.chown(self.dir, self.uid, self.gid)
        su_pw = os.path.join(self.dir, "su.pw")
        with open(su_pw, "w") as fp:
            fp.write(self.password + "\n")
        if self.uid is not None:
            os.chown(su_pw, self.uid, self.gid)
        os.chmod(su_pw, 0o600)
        self._run([os.path.join(self.bindir, "initdb"), "-D", self.data, "-U", "postgres",
                   "-E", "UTF8", "--no-locale", "-A", "scram-sha-256", "--pwfile", su_pw, "-N"])
        os.unlink(su_pw)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as fp:
            fp.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                     f"unix_socket_directories = '{self.dir}'\n"
                     f"fsync = {'on' if fsync else 'off'}\n"
                     "max_connections = 120\nshared_buffers = 64MB\n"
                     f"log_min_messages = {'warning' if quiet else 'info'}\n")
        self.logfile = os.path.join(self.dir, "server.log")

    def _as_server_user(self):
        if self.uid is not None:
            os.setgroups([])
            os.setgid(self.gid)
            os.setuid(self.uid)

    def _run(self, args):
        r = subprocess.run(args, capture_output=True, text=True, preexec_fn=self._as_server_user,
                           cwd=self.dir)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {r.stdout}{r.stderr}")
        return r

    def start(self, timeout=30):
        """Start the server (again) and wait until it accepts connections."""
        if self.proc and self.proc.poll() is None:
            return self
        log = open(self.logfile, "a")
        self.proc = subprocess.Popen([os.path.join(self.bindir, "postgres"), "-D", self.data],
                                     stdout=log, stderr=log, preexec_fn=self._as_server_user,
                                     cwd=self.dir)
        log.close()
        deadline = time.time() + timeout
        while True:
            r = subprocess.run([os.path.join(self.bindir, "pg_isready"), "-q", "-h", "127.0.0.1",
                                "-p", str(self.port)])
            if r.returncode == 0:
                break
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("PostgreSQL did not start: " + self.log())
            time.sleep(0.1)
        if not getattr(self, "_created", False):
            self.psql(f"CREATE ROLE tlsrpt LOGIN PASSWORD '{self.password}'", db="postgres",
                      user="postgres")
            self.psql("CREATE DATABASE tlsrpt OWNER tlsrpt", db="postgres", user="postgres")
            self._created = True
        return self

    def _signal_stop(self, sig, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout)
        self.proc = None

    def stop(self):
        """Fast shutdown: open sessions are cut, their transactions rolled back."""
        self._signal_stop(signal.SIGINT)

    def kill(self):
        """Immediate shutdown (like a crash or power loss of the database host)."""
        self._signal_stop(signal.SIGQUIT)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            with open(self.logfile) as fp:
                return fp.read()[-4000:]
        except OSError:
            return ""

    def env(self, user="tlsrpt"):
        return dict(os.environ, PGPASSWORD=self.password, PGHOST="127.0.0.1",
                    PGPORT=str(self.port), PGUSER=user, PGCONNECT_TIMEOUT="5")

    def psql(self, sql, db="tlsrpt", user="tlsrpt", check=True):
        """Run SQL; rows as lists of strings (tab separated, unaligned)."""
        r = subprocess.run([os.path.join(self.bindir, "psql"), "-X", "-q", "-A", "-t", "-F", "\t",
                            "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
                           capture_output=True, text=True, env=self.env(user))
        if check and r.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {r.stderr}")
        return [line.split("\t") for line in r.stdout.splitlines() if line != ""]

    def session(self, db="tlsrpt", user="tlsrpt"):
        """An interactive psql (stdin pipe) to hold a transaction open."""
        return subprocess.Popen([os.path.join(self.bindir, "psql"), "-X", "-q", "-A", "-t",
                                 "-v", "ON_ERROR_STOP=1", "-d", db],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env(user))

    def write_password_file(self, path):
        with open(path, "w") as fp:
            fp.write(self.password + "\n")
        os.chmod(path, 0o600)
        return path

    def conninfo(self):
        return f"host=127.0.0.1 port={self.port} dbname=tlsrpt user=tlsrpt connect_timeout=5"

    def conf_lines(self, tmp):
        """The fleet lines of a tlsrptd.conf, with a password file in 'tmp'."""
        pw = self.write_password_file(os.path.join(tmp, "db.pw"))
        return f"fleet_database = {self.conninfo()}\nfleet_password_file = {pw}\n"

    def size(self):
        """Bytes of the tlsrpt database."""
        return int(self.psql("SELECT pg_database_size('tlsrpt')")[0][0])

    def cleanup(self):
        try:
            self.stop()
        except Exception:
            self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def require_postgres():
    """Without the server binaries: fail as root or in CI (./run installs
    the Debian package postgresql as root, so there a missing server is a
    broken environment that must not pass as a skip); else skip (exit 77)
    with the reason."""
    if pg_bindir() is not None:
        return
    why = ("PostgreSQL server binaries not found (/usr/lib/postgresql/N/bin): install "
           "the Debian package postgresql (./run does)")
    if os.geteuid() == 0 or os.environ.get("CI"):
        print(f"FAIL: {why}; as root or in CI the fleet tests must run, not be skipped")
        raise SystemExit(1)
    print(f"SKIP: {why}")
    raise SystemExit(77)


def terminate_on_sigterm():
    """Meson's timeout sends SIGTERM: turn it into SystemExit so that
    'finally' blocks stop the server and remove its files."""
    def handler(signum, frame):
        raise SystemExit(1)
    signal.signal(signal.SIGTERM, handler)
