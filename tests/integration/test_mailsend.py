#!/usr/bin/env python3
"""mail_send(): sendmail (fake programs written here) and SMTP (smtpsink.py).

sendmail: argv and the message bytes as the program sees them, exit status
mapping (0 ok, 75 temporary, 67/68 permanent about the destination, 65
permanent about the message), stderr in the detail, a program
that exits without reading, a program that hangs past mail_timeout, a
missing program. SMTP: STARTTLS required/try/off against tests/tools/
smtpsink.py with a test CA, envelope, dot-stuffed lines arriving intact,
5xx at RCPT with 5.1.x about the destination, other 5xx at RCPT, DATA or
after the message about the report, 5xx at MAIL FROM and 451 temporary
(deliver.h's classes), a relay without STARTTLS, an untrusted
certificate. Results are deliver_tool's lines, checked exactly.
"""
import glob
import os
import subprocess
import sys
import tempfile
import time

SOURCE = os.environ.get('SOURCE_DIR', '.')
BUILD = os.environ.get('BUILD_DIR', 'build')
sys.path.insert(0, os.path.join(SOURCE, 'tests', 'tools'))
import testca  # noqa: E402

TOOL = os.path.join(BUILD, 'tests', 'deliver_tool')
SINK = os.path.join(SOURCE, 'tests', 'tools', 'smtpsink.py')
failures = 0
DEST = [None]   # the destination flag of the last result (deliver.h's classes)

MESSAGE = (b'From: tlsrpt-noreply@sender.example\r\nTo: reports@example.com\r\n'
           b'Subject: test\r\n\r\nfirst line\r\n.leading dot\r\n.\r\n..two dots\r\nlast\r\n')


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print('FAIL: ' + msg, file=sys.stderr)


def tool(opts, args, stdin=None):
    cmd = [TOOL]
    for o in opts:
        cmd += ['-o', o]
    t0 = time.monotonic()
    r = subprocess.run(cmd + args, input=stdin, capture_output=True, timeout=40)
    elapsed = time.monotonic() - t0
    head, _, detail = r.stdout.decode().rstrip('\n').partition(' detail=')
    try:
        kv = dict(x.split('=', 1) for x in head.split())
        res = (int(kv['ok']), int(kv['permanent']), int(kv['status']), detail)
        DEST[0] = int(kv['destination'])
    except (ValueError, KeyError):
        res = None
        check(False, 'deliver_tool %r: no result line (stdout %r stderr %r)' % (args, r.stdout, r.stderr))
    return res, elapsed


def script(d, name, body):
    path = os.path.join(d, name)
    with open(path, 'w') as f:
        f.write('#!/bin/sh\n' + body)
    os.chmod(path, 0o755)
    return path


def start_sink(d, cert, key, *extra):
    out = os.path.join(d, 'sink-%d' % len(glob.glob(os.path.join(d, 'sink-*'))))
    cmd = [sys.executable, SINK, '--port', '0', '--dir', out] + list(extra)
    if cert:
        cmd += ['--cert', cert, '--key', key]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    if not line or line[0] != 'ready':
        p.kill()
        raise RuntimeError('smtpsink did not start')
    return p, int(line[1]), out


def stored(out):
    files = sorted(glob.glob(os.path.join(out, 'msg-*.eml')))
    return [open(f, 'rb').read() for f in files]


def test_sendmail(d):
    base = ['contact_info=tlsrpt@sender.example',
            'from_address=TLS reports <tlsrpt-noreply@sender.example>', 'mail_timeout=2s']
    ok = script(d, 'ok', 'printf "%%s\\n" "$@" > %s/args\ncat > %s/msg\necho queued\n' % (d, d))
    res, _ = tool(base + ['sendmail_command=%s  -i   -oi' % ok], ['send', 'reports@example.com'], MESSAGE)
    check(res == (1, 0, 0, 'handed to %s: queued' % ok), 'sendmail ok: got %r' % (res,))
    args = open(os.path.join(d, 'args')).read().splitlines()
    want = ['-i', '-oi', '-f', 'tlsrpt-noreply@sender.example', '--', 'reports@example.com']
    check(args == want, 'sendmail argv: got %r, want %r' % (args, want))
    got = open(os.path.join(d, 'msg'), 'rb').read()
    check(got == MESSAGE, 'sendmail stdin differs: %r' % got[:80])

    # envelope_sender wins; the whole build + send path
    res, _ = tool(base + ['sendmail_command=' + ok, 'envelope_sender=bounces@sender.example',
                          'dkim_sign=no'], ['mail', 'reports@example.com'])
    check(res is not None and res[0] == 1, 'mail via sendmail: got %r' % (res,))
    args = open(os.path.join(d, 'args')).read().splitlines()
    check(args[-4:] == ['-f', 'bounces@sender.example', '--', 'reports@example.com'],
          'envelope_sender argv: got %r' % args)
    got = open(os.path.join(d, 'msg'), 'rb').read()
    check(got.startswith(b'From: TLS reports <tlsrpt-noreply@sender.example>\r\n') and
          b'\r\nTLS-Report-Domain: example.com\r\n' in got and got.endswith(b'--\r\n'),
          'built message as sendmail got it: %r' % got[:120])

    cases = [
        ('tempfail', 'cat >/dev/null\necho "postdrop: warning: queue full" >&2\nexit 75\n',
         (0, 0, 75, 'sendmail exit 75: postdrop: warning: queue full')),
        ('nouser', 'cat >/dev/null\nprintf "line1\\nline2\\n" >&2\nexit 67\n',
         (0, 1, 67, 'sendmail exit 67: line1 line2')),
        ('nohost', 'cat >/dev/null\nexit 68\n', (0, 1, 68, 'sendmail exit 68: (no output)')),
        ('dataerr', 'cat >/dev/null\nexit 65\n', (0, 1, 65, 'sendmail exit 65: (no output)')),
        ('silent', 'cat >/dev/null\nexit 1\n', (0, 0, 1, 'sendmail exit 1: (no output)')),
        ('noread', 'exit 0\n', None),
        ('hang', 'exec sleep 30\n', (0, 0, 0, 'sendmail: killed after 1s (mail_timeout)')),
        ('signal', 'cat >/dev/null\nkill -9 $$\n', (0, 0, 0, 'sendmail: killed by signal 9')),
    ]
    big = MESSAGE + b'x' * 76 + b'\r\n'
    big = big * 40000  # ~3 MB: more than socket buffers hold
    for name, body, want in cases:
        path = script(d, name, body)
        opts = base + ['sendmail_command=' + path]
        if name == 'hang':
            opts.append('mail_timeout=1s')
        res, elapsed = tool(opts, ['send', 'reports@example.com'], big if name == 'noread' else MESSAGE)
        if want is None:
            check(res is not None and res[:3] == (0, 0, 0) and 'exited 0 after reading' in res[3],
                  '%s: got %r, want "exited 0 after reading"' % (name, res))
        else:
            check(res == want, '%s: got %r, want %r' % (name, res, want))
        # about the destination: EX_NOUSER, EX_NOHOST only (deliver.h)
        check(DEST[0] == (1 if name in ('nouser', 'nohost') else 0),
              '%s: destination flag %r' % (name, DEST[0]))
        if name == 'hang':
            check(elapsed < 4, 'hang: took %.1f s, want about 1 s' % elapsed)
    res, _ = tool(base + ['sendmail_command=/nonexistent/sendmail -i'], ['send', 'reports@example.com'], MESSAGE)
    check(res == (0, 0, 0, 'sendmail: cannot run /nonexistent/sendmail: No such file or directory'),
          'missing program: got %r' % (res,))
    res, _ = tool(base + ['delivery_mail=off'], ['send', 'reports@example.com'], MESSAGE)
    check(res == (0, 1, 0, 'mail delivery is off (delivery_mail = off)'), 'off: got %r' % (res,))
    res, _ = tool(base + ['sendmail_command=' + ok], ['send', '-oQ/tmp/x'], MESSAGE)
    check(res is not None and res[:3] == (0, 1, 0) and 'refused' in res[3],
          'option-like recipient: got %r' % (res,))


def test_smtp(d):
    ca = testca.make_ca(d)
    cert, key = testca.make_cert(d, ca, 'relay', ['DNS:localhost', 'IP:127.0.0.1'])
    sinks = []
    try:
        p, port, out = start_sink(d, cert, key)
        sinks.append(p)
        base = ['delivery_mail=smtp', 'smtp_relay=smtp://127.0.0.1:%d' % port,
                'smtp_ca_file=' + ca[0], 'contact_info=tlsrpt@sender.example',
                'envelope_sender=bounces@sender.example', 'mail_timeout=5s']
        res, _ = tool(base, ['send', 'reports@example.com'], MESSAGE)
        check(res == (1, 0, 250, 'relay accepted (250)'), 'smtp ok: got %r' % (res,))
        msgs = stored(out)
        check(len(msgs) == 1, 'sink stored %d messages, want 1' % len(msgs))
        if msgs:
            want = (b'X-Sink-Mail-From: <bounces@sender.example>\r\n'
                    b'X-Sink-Rcpt-To: <reports@example.com>\r\nX-Sink-TLS: yes\r\n'
                    b'X-Sink-Helo: sender.example\r\n' + MESSAGE)
            check(msgs[0] == want, 'stored message: got %r, want %r' % (msgs[0], want))

        # where a refusal comes decides what it is about (deliver.h):
        # (ok, permanent, status), destination, the server's reply in the detail
        cases = [
            ('reject5@example.com', (0, 1, 550), 1, '550 5.1.1 rejected by smtpsink'),
            ('nodomain5@example.com', (0, 1, 550), 1, '550 5.1.2 bad destination system'),
            ('policy5@example.com', (0, 1, 550), 0, '550 5.7.1 recipient rejected by policy'),
            ('plain5@example.com', (0, 1, 550), 0, '550 rejected'),
            ('datacmd5@example.com', (0, 1, 554), 0, '554 5.5.0 transaction refused'),
            ('datareject5@example.com', (0, 1, 554), 0, '554 5.6.0 content rejected'),
            ('toobig5@example.com', (0, 1, 552), 0, '552 5.3.4 message too big'),
            ('reject4@example.com', (0, 0, 451), 0, '451 4.3.0 try again later'),
        ]
        for rcpt, want, dest, reply in cases:
            res, _ = tool(base, ['send', rcpt], MESSAGE)
            check(res is not None and res[:3] == want and '(reply %d)' % want[2] in res[3] and reply in res[3],
                  'smtp %s: got %r, want %r with %r' % (rcpt, res, want, reply))
            check(DEST[0] == dest, 'smtp %s: destination flag %r, want %d' % (rcpt, DEST[0], dest))
        # a 5xx to MAIL FROM is about our sender: retried, the destination is not blamed
        res, _ = tool([o for o in base if not o.startswith('envelope_sender')] +
                      ['envelope_sender=reject5@sender.example'], ['send', 'reports@example.com'], MESSAGE)
        check(res is not None and res[:3] == (0, 0, 550) and DEST[0] == 0,
              'smtp MAIL FROM 550: got %r destination %r, want temporary' % (res, DEST[0]))
        check(len(stored(out)) == 1, 'rejected mail was stored')

        # untrusted relay certificate (system store only)
        res, _ = tool([o for o in base if not o.startswith('smtp_ca_file')], ['send', 'reports@example.com'], MESSAGE)
        check(res is not None and res[:2] == (0, 0), 'untrusted relay: got %r, want temporary failure' % (res,))

        # relay without STARTTLS: required fails, try and off deliver in plaintext
        p2, port2, out2 = start_sink(d, None, None, '--no-starttls')
        sinks.append(p2)
        plain = [o if not o.startswith('smtp_relay') else 'smtp_relay=smtp://127.0.0.1:%d' % port2 for o in base]
        res, _ = tool(plain, ['send', 'reports@example.com'], MESSAGE)
        check(res is not None and res[:2] == (0, 0) and 'STARTTLS required' in res[3],
              'no STARTTLS, required: got %r' % (res,))
        check(stored(out2) == [], 'plaintext message stored although STARTTLS required')
        for mode in ('try', 'off'):
            res, _ = tool(plain + ['smtp_starttls=' + mode], ['send', 'reports@example.com'], MESSAGE)
            check(res == (1, 0, 250, 'relay accepted (250)'), 'no STARTTLS, %s: got %r' % (mode, res))
        # an EHLO name given in the URL path
        res, _ = tool(plain[:1] + ['smtp_relay=smtp://127.0.0.1:%d/mx.sender.example' % port2,
                                   'smtp_starttls=off'] + plain[2:], ['send', 'reports@example.com'], MESSAGE)
        check(res == (1, 0, 250, 'relay accepted (250)'), 'EHLO from URL: got %r' % (res,))
        msgs = stored(out2)
        check(len(msgs) == 3 and b'X-Sink-Helo: mx.sender.example\r\n' in msgs[-1],
              'EHLO name from URL path: %r' % (msgs[-1][:200] if msgs else None))
        msgs = msgs[:2]
        check(len(msgs) == 2 and all(b'X-Sink-TLS: no\r\n' in m for m in msgs),
              'plaintext sink: %d messages' % len(msgs))
        res, _ = tool(base + ['smtp_relay=http://127.0.0.1:1'], ['send', 'reports@example.com'], MESSAGE)
        check(res == (0, 0, 0, 'smtp_relay must be smtp://host:port or smtps://host:port'),
              'bad relay URL: got %r' % (res,))
    finally:
        for p in sinks:
            p.kill()
            p.wait()


def main():
    with tempfile.TemporaryDirectory() as d:
        test_sendmail(d)
        test_smtp(d)
    if failures:
        print('%d failures' % failures)
        return 1
    print('mailsend: ok')
    return 0


if __name__ == '__main__':
    sys.exit(main())
