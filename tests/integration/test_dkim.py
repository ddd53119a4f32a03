#!/usr/bin/env python3
"""DKIM signatures of report mail, verified by dkimpy (python3-dkim).

Keys are made with the openssl CLI in a temporary directory; dkimpy's
dnsfunc hook supplies the key record, so no DNS is used. For rsa-sha256 and
ed25519-sha256: the signature verifies (also in dkimpy's strict TLSRPT mode
with s=tlsrpt; dkimpy 1.1.4 rejects s=email:tlsrpt), carries the required tags, and stops verifying when
the body or a signed header is changed. Misconfigurations give clear errors.
"""
import base64
import os
import re
import subprocess
import sys
import tempfile

try:
    import dkim
except ImportError:  # meson may find a python3 outside Debian's dist-packages
    sys.path.append('/usr/lib/python3/dist-packages')
    import dkim

BUILD = os.environ.get('BUILD_DIR', 'build')
TOOL = os.path.join(BUILD, 'tests', 'deliver_tool')
failures = 0


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print('FAIL: ' + msg, file=sys.stderr)


def openssl(*args, **kw):
    return subprocess.run(['openssl'] + list(args), check=True, capture_output=True, **kw).stdout


def make_key(tmp, alg):
    path = os.path.join(tmp, alg + '.pem')
    if alg == 'rsa':
        openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', path)
        der = openssl('pkey', '-in', path, '-pubout', '-outform', 'DER')
        record = b'v=DKIM1; k=rsa; p=' + base64.b64encode(der)
    else:
        openssl('genpkey', '-algorithm', 'ED25519', '-out', path)
        der = openssl('pkey', '-in', path, '-pubout', '-outform', 'DER')
        # RFC 8463: p= is the raw 32-byte public key (the end of the SPKI)
        record = b'v=DKIM1; k=ed25519; p=' + base64.b64encode(der[-32:])
    return path, record


def build(opts, extra=()):
    cmd = [TOOL]
    for o in opts:
        cmd += ['-o', o]
    cmd += ['build', 'reports@example.com'] + list(extra)
    return subprocess.run(cmd, capture_output=True)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        keys = {'rsa-sha256': make_key(tmp, 'rsa'), 'ed25519-sha256': make_key(tmp, 'ed25519')}
        cases = [
            # algorithm, dkim_domain setting, expected d=
            ('rsa-sha256', '', 'sender.example'),
            ('ed25519-sha256', '', 'sender.example'),
            ('rsa-sha256', 'signing.example', 'signing.example'),
        ]
        for alg, ddom, want_d in cases:
            key, record = keys[alg]
            lookups = []

            def dnsfunc(name, timeout=5, record=record, want_d=want_d, lookups=lookups):
                lookups.append(name)
                if name == ('tlsrpt2025._domainkey.%s.' % want_d).encode():
                    return record
                return None

            opts = ['contact_info=tlsrpt@sender.example', 'dkim_sign=yes',
                    'dkim_key_file=' + key, 'dkim_selector=tlsrpt2025', 'dkim_algorithm=' + alg]
            if ddom:
                opts.append('dkim_domain=' + ddom)
            r = build(opts)
            check(r.returncode == 0, '%s: deliver_tool build exit %d: %s' % (alg, r.returncode, r.stderr))
            msg = r.stdout
            check(msg.startswith(b'DKIM-Signature: '), '%s: message does not start with DKIM-Signature' % alg)
            sig = msg.split(b'\r\n\r\n', 1)[0].split(b'\r\nFrom:', 1)[0].decode()
            tags = dict((k.strip(), re.sub(r'\s+', '', v)) for k, v in
                        (t.split('=', 1) for t in sig.split(':', 1)[1].split(';') if '=' in t))
            check(tags.get('a') == alg, '%s: a= got %r' % (alg, tags.get('a')))
            check(tags.get('c') == 'relaxed/relaxed', '%s: c= got %r' % (alg, tags.get('c')))
            check(tags.get('d') == want_d, '%s: d= got %r, want %r' % (alg, tags.get('d'), want_d))
            check(tags.get('s') == 'tlsrpt2025', '%s: s= got %r' % (alg, tags.get('s')))
            check('l' not in tags, '%s: l= present' % alg)
            check(tags.get('t') == '1747970262', '%s: t= got %r' % (alg, tags.get('t')))
            want_h = ('from:to:subject:date:message-id:tls-report-domain:tls-report-submitter:'
                      'tls-required:mime-version:content-type:auto-submitted')
            check(tags.get('h') == want_h, '%s: h= got %r, want %r' % (alg, tags.get('h'), want_h))
            for line in msg.split(b'\r\n')[:12]:
                check(len(line) <= 78, '%s: signature line of %d columns' % (alg, len(line)))

            ok = dkim.verify(msg, dnsfunc=dnsfunc)
            check(ok is True, '%s: dkimpy verify got %r, want True' % (alg, ok))
            check(lookups[:1] == [('tlsrpt2025._domainkey.%s.' % want_d).encode()],
                  '%s: key lookups %r' % (alg, lookups))
            # strict TLSRPT mode wants s=tlsrpt in the key record (dkimpy
            # 1.1.4 refuses the colon list s=email:tlsrpt as "unknown service")
            ok = dkim.verify(msg, dnsfunc=lambda name, timeout=5, r=record:
                             r.replace(b'v=DKIM1;', b'v=DKIM1; s=tlsrpt;'), tlsrpt='strict')
            check(ok is True, '%s: dkimpy strict tlsrpt verify got %r, want True' % (alg, ok))

            # also with LF line endings, as Postfix's sendmail queues it
            ok = dkim.verify(msg.replace(b'\r\n', b'\n'), dnsfunc=dnsfunc)
            check(ok is True, '%s: LF-only copy verify got %r, want True' % (alg, ok))

            # tampering must break it
            body_at = msg.index(b'H4sI')
            tampered = msg[:body_at] + b'X' + msg[body_at + 1:]
            ok = dkim.verify(tampered, dnsfunc=dnsfunc)
            check(ok is False, '%s: modified body verify got %r, want False' % (alg, ok))
            tampered = msg.replace(b'TLS-Report-Domain: example.com', b'TLS-Report-Domain: example.org')
            check(tampered != msg, '%s: TLS-Report-Domain header not found' % alg)
            ok = dkim.verify(tampered, dnsfunc=dnsfunc)
            check(ok is False, '%s: modified TLS-Report-Domain verify got %r, want False' % (alg, ok))
            # relaxed canonicalization tolerates whitespace changes in headers
            relaxed = msg.replace(b'TLS-Required: No', b'TLS-Required:   No  ')
            ok = dkim.verify(relaxed, dnsfunc=dnsfunc)
            check(ok is True, '%s: whitespace-changed header verify got %r, want True' % (alg, ok))

        # misconfigurations: the exact refusal
        base = ['contact_info=tlsrpt@sender.example', 'dkim_sign=yes', 'dkim_selector=s1']
        bad = [
            (base + ['dkim_key_file=' + keys['ed25519-sha256'][0], 'dkim_algorithm=rsa-sha256'],
             'not an RSA key (dkim_algorithm = rsa-sha256)'),
            (base + ['dkim_key_file=' + keys['rsa-sha256'][0], 'dkim_algorithm=ed25519-sha256'],
             'not an Ed25519 key (dkim_algorithm = ed25519-sha256)'),
            (base + ['dkim_key_file=' + os.path.join(tmp, 'missing.pem')], 'missing.pem'),
            (['contact_info=tlsrpt@sender.example', 'dkim_sign=yes',
              'dkim_key_file=' + keys['rsa-sha256'][0]], 'dkim_sign = yes needs dkim_selector'),
            (base + ['dkim_key_file=' + keys['rsa-sha256'][0], 'dkim_algorithm=rsa-sha1'],
             '-o dkim_algorithm: "rsa-sha1" is not one of: rsa-sha256, ed25519-sha256'),
        ]
        small = os.path.join(tmp, 'small.pem')
        openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:512', '-out', small)
        bad.append((base + ['dkim_key_file=' + small], 'RSA key of 512 bits'))
        for opts, want in bad:
            r = build(opts)
            check(r.returncode == 2 and want.encode() in r.stderr and not r.stdout,
                  'misconfig %r: exit %d stderr %r, want exit 2 and %r' %
                  (opts[-1], r.returncode, r.stderr, want))

    if failures:
        print('%d failures' % failures)
        return 1
    print('dkim: ok')
    return 0


if __name__ == '__main__':
    sys.exit(main())
