#!/usr/bin/env python3
"""A throwaway certificate authority for tests, made with the openssl CLI.

    import testca
    ca = testca.make_ca(DIR)                 # DIR/ca.pem, DIR/ca.key
    cert, key = testca.make_cert(DIR, ca, 'good', ['DNS:localhost', 'IP:127.0.0.1'])
    cert, key = testca.make_cert(DIR, None, 'selfsigned', ['IP:127.0.0.1'])

make_cert with ca None makes a self-signed certificate (not trusted by the
test CA). Keys are P-256; certificates are valid for two days.
"""
import os
import subprocess


def _openssl(*args):
    subprocess.run(['openssl'] + list(args), check=True, capture_output=True)


def make_ca(d, name='tlsrptd test CA'):
    ca, key = os.path.join(d, 'ca.pem'), os.path.join(d, 'ca.key')
    _openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
             '-nodes', '-keyout', key, '-out', ca, '-days', '2', '-subj', '/CN=' + name,
             '-addext', 'basicConstraints=critical,CA:TRUE',
             '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
    return (ca, key)


def make_cert(d, ca, name, sans):
    cert, key = os.path.join(d, name + '.pem'), os.path.join(d, name + '.key')
    san = 'subjectAltName=' + ','.join(sans)
    if ca is None:
        _openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
                 '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=' + name,
                 '-addext', san)
        return cert, key
    csr, ext = os.path.join(d, name + '.csr'), os.path.join(d, name + '.ext')
    with open(ext, 'w') as f:
        f.write(san + '\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n')
    _openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
             '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=' + name)
    _openssl('x509', '-req', '-in', csr, '-CA', ca[0], '-CAkey', ca[1], '-CAcreateserial',
             '-out', cert, '-days', '2', '-extfile', ext)
    return cert, key
