#!/usr/bin/env python3
"""Receiving test MX servers: minimal ESMTP with optional STARTTLS.

One process serves several listeners, each with its own host name and
certificate:

    testmx.py --listen ADDR PORT NAME CERT KEY [--listen ...] [--spool DIR]

CERT and KEY are PEM files; CERT "-" means the listener does not offer
STARTTLS (plaintext only). PORT 0 picks a free port. Prints one line
"ready NAME ADDR PORT" per listener, then "ready", on stdout once every
socket listens. Each accepted message is written to DIR/NAME.N.eml when
--spool is given and logged on stderr as "delivered NAME tls=yes|no
rcpt=...".

EHLO reply (exactly, with STARTTLS only where a certificate is set and only
before TLS starts):
    250-NAME testmx
    250-PIPELINING
    250-STARTTLS
    250 8BITMIME
Runs until killed (SIGTERM). Test use only: no limits beyond a line and a
message size cap, loopback addresses only.
"""
import argparse
import itertools
import os
import socket
import ssl
import sys
import threading

MAX_LINE = 4096
MAX_MESSAGE = 10 * 1024 * 1024
counter = itertools.count(1)
out_lock = threading.Lock()


def say(stream, text):
    with out_lock:
        stream.write(text + "\n")
        stream.flush()


class Session:
    def __init__(self, conn, listener, spool):
        self.conn = conn
        self.rfile = conn.makefile("rb")
        self.listener = listener
        self.spool = spool
        self.tls = False

    def send(self, text):
        self.conn.sendall(text.encode() + b"\r\n")

    def readline(self):
        line = self.rfile.readline(MAX_LINE + 1)
        if not line:
            return None
        return line.rstrip(b"\r\n").decode("utf-8", "replace")

    def ehlo_lines(self):
        lines = [self.listener["name"] + " testmx", "PIPELINING"]
        if self.listener["ctx"] is not None and not self.tls:
            lines.append("STARTTLS")
        lines.append("8BITMIME")
        return lines

    def run(self):
        name = self.listener["name"]
        self.send("220 " + name + " ESMTP testmx")
        mail_from, rcpts = None, []
        while True:
            line = self.readline()
            if line is None:
                return
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                lines = self.ehlo_lines()
                for i, text in enumerate(lines):
                    sep = " " if i == len(lines) - 1 else "-"
                    self.send("250" + sep + text)
            elif verb == "HELO":
                self.send("250 " + name)
            elif verb == "STARTTLS" and self.listener["ctx"] is not None and not self.tls:
                self.send("220 2.0.0 ready to start TLS")
                try:
                    self.conn = self.listener["ctx"].wrap_socket(self.conn, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    say(sys.stderr, "tls-failed " + name + " " + str(e))
                    return
                self.rfile = self.conn.makefile("rb")
                self.tls = True
                mail_from, rcpts = None, []
            elif verb == "MAIL":
                mail_from, rcpts = line[5:], []
                self.send("250 2.1.0 ok")
            elif verb == "RCPT":
                if mail_from is None:
                    self.send("503 5.5.1 need MAIL")
                else:
                    rcpts.append(line[5:].strip())
                    self.send("250 2.1.5 ok")
            elif verb == "DATA":
                if not rcpts:
                    self.send("503 5.5.1 need RCPT")
                    continue
                self.send("354 go ahead")
                data, size = [], 0
                while True:
                    raw = self.rfile.readline(MAX_LINE + 1)
                    if not raw:
                        return
                    if raw.rstrip(b"\r\n") == b".":
                        break
                    size += len(raw)
                    if size <= MAX_MESSAGE:
                        data.append(raw)
                n = next(counter)
                if self.spool:
                    path = os.path.join(self.spool, "%s.%d.eml" % (name, n))
                    with open(path, "wb") as fp:
                        fp.write(b"".join(data))
                say(sys.stderr, "delivered %s tls=%s rcpt=%s" %
                    (name, "yes" if self.tls else "no", ",".join(rcpts)))
                self.send("250 2.0.0 queued as %d" % n)
                mail_from, rcpts = None, []
            elif verb == "RSET":
                mail_from, rcpts = None, []
                self.send("250 2.0.0 ok")
            elif verb == "NOOP":
                self.send("250 2.0.0 ok")
            elif verb == "QUIT":
                self.send("221 2.0.0 bye")
                return
            else:
                self.send("502 5.5.2 not implemented")


def serve(sock, listener, spool):
    while True:
        conn, _ = sock.accept()

        def one(c=conn):
            try:
                Session(c, listener, spool).run()
            except (OSError, ssl.SSLError):
                pass
            finally:
                try:
                    c.close()
                except OSError:
                    pass
        threading.Thread(target=one, daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", nargs=5, action="append", required=True,
                    metavar=("ADDR", "PORT", "NAME", "CERT", "KEY"))
    ap.add_argument("--spool")
    args = ap.parse_args()
    threads = []
    for addr, port, name, cert, key in args.listen:
        ctx = None
        if cert != "-":
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((addr, int(port)))
        sock.listen(64)
        listener = {"name": name, "ctx": ctx}
        say(sys.stdout, "ready %s %s %d" % (name, addr, sock.getsockname()[1]))
        t = threading.Thread(target=serve, args=(sock, listener, args.spool), daemon=True)
        threads.append(t)
    for t in threads:
        t.start()
    say(sys.stdout, "ready")
    threading.Event().wait()


if __name__ == "__main__":
    main()
