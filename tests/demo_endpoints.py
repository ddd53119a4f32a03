#!/usr/bin/env python3
"""Local report destinations for ./run demo, on 127.0.0.1 only: an SMTP
relay with STARTTLS that stores each message (tests/tools/smtpsink.py), an
HTTPS endpoint that stores each POSTed report, a demo CA for both, and a
DKIM key. Writes DIR/endpoints.conf (configuration lines for tlsrptd.conf)
and DIR/https-rua (the endpoint's URL), prints "ready", runs until killed.

usage: demo_endpoints.py DIR"""
import ctypes
import http.server
import os
import signal
import ssl
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "tools"))
import testca  # noqa: E402


class Receiver(http.server.BaseHTTPRequestHandler):
    count = 0

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(min(n, 10 << 20))
        Receiver.count += 1
        name = os.path.join(self.server.outdir, f"post-{Receiver.count:04d}.json.gz")
        with open(name, "wb") as fp:
            fp.write(body)
        ok = self.headers.get("Content-Type") == "application/tlsrpt+gzip" and body[:2] == b"\x1f\x8b"
        self.send_response(201 if ok else 415)
        self.end_headers()

    def log_message(self, *args):
        pass


def die_with_parent():
    """In the SMTP sink (preexec): SIGTERM when this process dies, however."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def stop(signum, frame):
    """SIGTERM (./run demo's cleanup) ends main() through its finally."""
    sys.exit(0)


def main():
    signal.signal(signal.SIGTERM, stop)
    d = os.path.abspath(sys.argv[1])
    pki = os.path.join(d, "pki")
    os.makedirs(pki, exist_ok=True)
    ca = testca.make_ca(pki, "tlsrptd demo CA")
    cert, key = testca.make_cert(pki, ca, "localhost", ["DNS:localhost", "IP:127.0.0.1"])
    dkim = os.path.join(pki, "dkim.key")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", dkim], check=True, capture_output=True)

    mail_dir = os.path.join(d, "delivered-mail")
    post_dir = os.path.join(d, "delivered-https")
    os.makedirs(mail_dir, exist_ok=True)
    os.makedirs(post_dir, exist_ok=True)
    sink = subprocess.Popen([sys.executable, os.path.join(HERE, "tools", "smtpsink.py"), "--port", "0",
                             "--cert", cert, "--key", key, "--dir", mail_dir],
                            stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
    smtp_port = int(sink.stdout.readline().split()[1])

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    httpd.outdir = post_dir
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    with open(os.path.join(d, "https-rua"), "w") as fp:
        fp.write(f"https://127.0.0.1:{httpd.server_address[1]}/tlsrpt/v1\n")
    with open(os.path.join(d, "endpoints.conf"), "w") as fp:
        fp.write(f"""# local report destinations (tests/demo_endpoints.py)
delivery_mail = smtp
smtp_relay = smtp://127.0.0.1:{smtp_port}
smtp_starttls = required
smtp_ca_file = {ca[0]}
https_ca_file = {ca[0]}
allow_loopback_destinations = yes
dkim_selector = demo2026
dkim_key_file = {dkim}
report_delay = 0
""")
    print("ready", flush=True)
    try:
        sink.wait()
    finally:
        sink.terminate()
        sink.wait(10)


if __name__ == "__main__":
    main()
