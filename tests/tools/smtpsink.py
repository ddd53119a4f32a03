#!/usr/bin/env python3
"""A small SMTP server with STARTTLS that stores what it receives (tests only).

    smtpsink.py --port P --cert C --key K --dir OUT [--addr 127.0.0.1]
                [--no-starttls] [--require-tls] [--log FILE]

Prints "ready" on stdout once listening ("ready PORT" when --port 0 picked
a free port). Each accepted message is stored as OUT/msg-N.eml (written to
a temporary name, then renamed, so a reader never sees half a file), with
the envelope in header lines prepended to the data exactly as received
(after dot-unstuffing):

    X-Sink-Mail-From: <sender>
    X-Sink-Rcpt-To: <rcpt>          (one line per recipient)
    X-Sink-TLS: yes|no
    X-Sink-Helo: <the last EHLO/HELO argument>

Reply rules for tests, by the local part's start: a RCPT with "reject5"
gets "550 5.1.1 rejected by smtpsink", "nodomain5" "550 5.1.2 ... no such
domain", "policy5" "550 5.7.1 ... policy", "plain5" "550 rejected" (no
enhanced status code), "reject4" "451 4.3.0 try again later"; a message to
"datacmd5" gets "554 5.5.0" to DATA, to "datareject5" "554 5.6.0 content
rejected" and to "toobig5" "552 5.3.4 message too big" after the message;
MAIL FROM whose local part starts with "reject5" gets 550.
--log FILE: append one line per RCPT, "RCPT <addr> CODE", so a test can count
attempts that were refused (and so never stored). --no-starttls: do not offer STARTTLS. --require-tls: refuse MAIL before
STARTTLS with "530 5.7.0 Must issue a STARTTLS command first".
Runs until killed; loopback use only, lines and messages are size capped.
"""
import argparse
import itertools
import os
import socket
import ssl
import sys
import threading

MAX_LINE = 4096
MAX_MESSAGE = 32 * 1024 * 1024
counter = itertools.count(1)
log_lock = threading.Lock()


class Session:
    def __init__(self, conn, args, ctx):
        self.conn = conn
        self.args = args
        self.ctx = ctx
        self.tls = False
        self.helo = ''
        self.rfile = conn.makefile('rb')

    def send(self, line):
        self.conn.sendall(line.encode() + b'\r\n')

    def log_rcpt(self, addr, reply):
        if self.args.log:
            with log_lock, open(self.args.log, 'a') as f:
                f.write('RCPT %s %s\n' % (addr, reply[:3]))

    def readline(self):
        line = self.rfile.readline(MAX_LINE + 1)
        if not line:
            return None
        return line.rstrip(b'\r\n').decode('utf-8', 'replace')

    def run(self):
        self.send('220 smtpsink ESMTP')
        mail_from, rcpts = None, []
        while True:
            line = self.readline()
            if line is None:
                return
            verb = line[:4].upper()
            arg = line[5:] if len(line) > 5 else ''
            if verb in ('EHLO', 'HELO'):
                mail_from, rcpts = None, []
                self.helo = arg
                if verb == 'HELO':
                    self.send('250 smtpsink')
                    continue
                ext = ['smtpsink', 'PIPELINING', '8BITMIME', 'SIZE %d' % MAX_MESSAGE]
                if self.ctx and not self.tls and not self.args.no_starttls:
                    ext.append('STARTTLS')
                for e in ext[:-1]:
                    self.send('250-' + e)
                self.send('250 ' + ext[-1])
            elif line.upper() == 'STARTTLS':
                if not self.ctx or self.tls or self.args.no_starttls:
                    self.send('502 5.5.1 STARTTLS not available')
                    continue
                self.send('220 2.0.0 go ahead')
                self.conn = self.ctx.wrap_socket(self.conn, server_side=True)
                self.rfile = self.conn.makefile('rb')
                self.tls = True
                mail_from, rcpts = None, []
            elif verb == 'MAIL':
                if self.args.require_tls and not self.tls:
                    self.send('530 5.7.0 Must issue a STARTTLS command first')
                    continue
                addr = arg.partition(':')[2].strip().split(' ')[0]
                if addr.lstrip('<').startswith('reject5'):
                    self.send('550 5.7.1 sender rejected by smtpsink')
                    continue
                mail_from, rcpts = addr, []
                self.send('250 2.1.0 ok')
            elif verb == 'RCPT':
                if mail_from is None:
                    self.send('503 5.5.1 MAIL first')
                    continue
                addr = arg.partition(':')[2].strip().split(' ')[0]
                local = addr.lstrip('<')
                if local.startswith('reject5'):
                    reply = '550 5.1.1 rejected by smtpsink'
                elif local.startswith('nodomain5'):
                    reply = '550 5.1.2 bad destination system: no such domain'
                elif local.startswith('policy5'):
                    reply = '550 5.7.1 recipient rejected by policy'
                elif local.startswith('plain5'):
                    reply = '550 rejected'
                elif local.startswith('reject4'):
                    reply = '451 4.3.0 try again later'
                else:
                    rcpts.append(addr)
                    reply = '250 2.1.5 ok'
                self.log_rcpt(addr, reply)
                self.send(reply)
            elif line.upper() == 'DATA':
                if not rcpts:
                    self.send('503 5.5.1 RCPT first')
                    continue
                locals_ = [r.lstrip('<') for r in rcpts]
                if any(x.startswith('datacmd5') for x in locals_):
                    self.send('554 5.5.0 transaction refused')
                    mail_from, rcpts = None, []
                    continue
                self.send('354 end with .')
                data, size = [], 0
                while True:
                    raw = self.rfile.readline(MAX_LINE + 2)
                    if not raw:
                        return
                    if raw in (b'.\r\n', b'.\n'):
                        break
                    if raw.startswith(b'.'):
                        raw = raw[1:]
                    size += len(raw)
                    if size <= MAX_MESSAGE:
                        data.append(raw)
                if size > MAX_MESSAGE or any(x.startswith('toobig5') for x in locals_):
                    self.send('552 5.3.4 message too big')
                elif any(x.startswith('datareject5') for x in locals_):
                    self.send('554 5.6.0 content rejected')
                else:
                    self.store(mail_from, rcpts, b''.join(data))
                    self.send('250 2.0.0 stored')
                mail_from, rcpts = None, []
            elif line.upper() == 'RSET':
                mail_from, rcpts = None, []
                self.send('250 ok')
            elif line.upper() == 'NOOP':
                self.send('250 ok')
            elif line.upper() == 'QUIT':
                self.send('221 bye')
                return
            else:
                self.send('500 5.5.2 unknown command')

    def store(self, mail_from, rcpts, data):
        head = 'X-Sink-Mail-From: %s\r\n' % mail_from
        for r in rcpts:
            head += 'X-Sink-Rcpt-To: %s\r\n' % r
        head += 'X-Sink-TLS: %s\r\n' % ('yes' if self.tls else 'no')
        head += 'X-Sink-Helo: %s\r\n' % self.helo
        n = next(counter)
        tmp = os.path.join(self.args.dir, '.tmp-%d' % n)
        with open(tmp, 'wb') as f:
            f.write(head.encode() + data)
        os.rename(tmp, os.path.join(self.args.dir, 'msg-%d.eml' % n))


def serve(conn, args, ctx):
    try:
        Session(conn, args, ctx).run()
    except (OSError, ssl.SSLError):
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser(description='SMTP sink with STARTTLS (tests)')
    ap.add_argument('--addr', default='127.0.0.1')
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--cert')
    ap.add_argument('--key')
    ap.add_argument('--dir', required=True)
    ap.add_argument('--no-starttls', action='store_true')
    ap.add_argument('--require-tls', action='store_true')
    ap.add_argument('--log')
    args = ap.parse_args()
    ctx = None
    if args.cert and args.key:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
    os.makedirs(args.dir, exist_ok=True)
    family = socket.AF_INET6 if ':' in args.addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((args.addr, args.port))
    s.listen(64)
    print('ready' if args.port else 'ready %d' % s.getsockname()[1], flush=True)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn, args, ctx), daemon=True).start()


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
