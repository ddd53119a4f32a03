"""Shared pieces of the reporter fault tests (test_report_outcomes,
test_crash_window, test_clock): day files made with tests/mkday, the real
tlsrpt-report and tlsrptctl, an HTTPS endpoint with behaviours chosen by
path, the SMTP sink, and a fake sendmail that logs each message."""
import http.server
import os
import re
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

from tlsrpttest import BUILD, SOURCE, check

sys.path.insert(0, os.path.join(SOURCE, "tests", "tools"))
import testca  # noqa: E402

REPORT = os.path.join(BUILD, "reporter", "tlsrpt-report")
CTL = os.path.join(BUILD, "reporter", "tlsrptctl")
MKDAY = os.path.join(BUILD, "tests", "mkday")
SINK = os.path.join(SOURCE, "tests", "tools", "smtpsink.py")


def mkday(state, day, dgrams):
    r = subprocess.run([MKDAY, "--dir", state, "--day", day], input=b"\n".join(dgrams) + b"\n",
                       capture_output=True)
    check(r.returncode == 0, f"mkday {day}: {r.stderr.decode()}")


def run(conf, *args, timeout=120):
    r = subprocess.run([REPORT, "-c", conf, "run"] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def spool_list(conf):
    import json
    r = subprocess.run([CTL, "-c", conf, "spool", "list", "--json"], capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else []


def spool_show(conf, rid):
    r = subprocess.run([CTL, "-c", conf, "spool", "show", rid], capture_output=True, text=True)
    return r.stdout


def dest_states(conf):
    """{(policy-domain, uri): state} from `tlsrptctl spool show` of every report."""
    out = {}
    for e in spool_list(conf):
        r = subprocess.run([CTL, "-c", conf, "spool", "show", e["id"]], capture_output=True, text=True)
        for m in re.finditer(r"^  (\S+): ([a-z-]+)", r.stdout, re.M):
            out[(e["policy-domain"], m.group(1))] = m.group(2)
    return out


class Endpoint:
    """HTTPS receiver on 127.0.0.1 with a test CA. Every POST is recorded
    (path, body); the answer depends on the path's first segment:
      /ok*     200                  /410*  410 Gone
      /413*    413                  /404*  404
      /503*    503                  /rst201*  201, then the connection is reset
      /hang*   waits until release() (then 200)
      /flaky*  503 while .flaky_fails is true, then 200
    """

    def __init__(self, tmp):
        ca = testca.make_ca(tmp, "reporter test CA")
        cert, key = testca.make_cert(tmp, ca, "endpoint", ["DNS:localhost", "IP:127.0.0.1"])
        self.ca = ca[0]
        self.posts = []
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.flaky_fails = True
        self.answers = []       # (path, code) of every answer given
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with outer.lock:
                    outer.posts.append((self.path, body))
                p = self.path
                if p.startswith("/hang"):
                    outer.released.wait()
                    return self.reply(200)
                if p.startswith("/rst201"):
                    self.close_connection = True
                    self.send_response(201)
                    self.end_headers()          # no Content-Length: the body ends at close
                    self.wfile.write(b"stored")
                    self.wfile.flush()
                    time.sleep(0.2)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    os.close(self.connection.detach())
                    return None
                if p.startswith("/flaky"):
                    return self.reply(503 if outer.flaky_fails else 200)
                for prefix, code in (("/ok", 200), ("/410", 410), ("/413", 413), ("/404", 404),
                                     ("/503", 503)):
                    if p.startswith(prefix):
                        return self.reply(code)
                return self.reply(400)

            def reply(self, code):
                with outer.lock:
                    outer.answers.append((self.path, code))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.base = f"https://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def count(self, path):
        with self.lock:
            return sum(1 for p, _ in self.posts if p == path)

    def accepted(self, path):
        """How many POSTs to 'path' were answered with a 2xx."""
        with self.lock:
            return sum(1 for p, c in self.answers if p == path and 200 <= c < 300)

    def release(self):
        self.released.set()

    def stop(self):
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class Sink:
    """tests/tools/smtpsink.py on a free port, logging every RCPT."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "sink")
        self.log = os.path.join(tmp, "sink.log")
        self.proc = subprocess.Popen([sys.executable, SINK, "--port", "0", "--dir", self.dir,
                                      "--log", self.log], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "ready":
            self.proc.kill()
            raise RuntimeError("smtpsink did not start")
        self.port = int(line[1])

    def rcpts(self, addr):
        """How many times RCPT TO:<addr> was tried."""
        if not os.path.exists(self.log):
            return 0
        with open(self.log) as fp:
            return sum(1 for line in fp if line.split()[1:2] == [f"<{addr}>"])

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def fake_sendmail(tmp, name="sendmail", hang_after=None):
    """A sendmail that appends the recipient to TMP/NAME.log (before it
    reads the message, so an attempt is counted even if it is killed) and
    stores the message. With hang_after=N, the (N+1)-th and later calls
    hang (sleep) after logging: a handover that never finishes."""
    path = os.path.join(tmp, name)
    log = path + ".log"
    hang = ""
    if hang_after is not None:
        hang = (f'n=$(wc -l < "{log}")\n'
                f'if [ "$n" -gt {hang_after} ]; then exec sleep 600; fi\n')
    with open(path, "w") as fp:
        fp.write('#!/bin/sh\nfor a; do last="$a"; done\n'
                 f'echo "$last" >> "{log}"\n' + hang +
                 'cat > /dev/null\n')
    os.chmod(path, 0o755)
    return path, log


def sendmail_count(log, rcpt=None):
    if not os.path.exists(log):
        return 0
    with open(log) as fp:
        lines = [x.strip() for x in fp]
    return len(lines) if rcpt is None else lines.count(rcpt)
