"""A headless Chromium driven over the DevTools protocol on a pipe
(--remote-debugging-pipe: JSON messages separated by NUL on fds 3 and 4),
so the tests need no WebSocket library and no network port. Debian's
chromium package; no browser download."""
import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Browser:
    def __init__(self, width=1400, height=1000):
        self.profile = tempfile.mkdtemp(prefix="cdp-profile.")
        # fds 3 (we write) and 4 (we read) in the child
        c_in_r, self.w = os.pipe()
        self.r, c_out_w = os.pipe()
        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-extensions", "--disable-default-apps",
                "--user-data-dir=" + self.profile, "--remote-debugging-pipe",
                f"--window-size={width},{height}", "about:blank"]

        def fds():
            a, b = os.dup(c_in_r), os.dup(c_out_w)   # out of the way of 3 and 4 first
            os.dup2(a, 3)
            os.dup2(b, 4)
        self.proc = subprocess.Popen(args, pass_fds=(3, 4), preexec_fn=fds, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(c_in_r)
        os.close(c_out_w)
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.session = None
        t = self.call("Target.createTarget", {"url": "about:blank"})
        a = self.call("Target.attachToTarget", {"targetId": t["targetId"], "flatten": True})
        self.session = a["sessionId"]
        for dom in ("Page", "Runtime", "Log", "Network"):
            self.call(dom + ".enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def _read(self, timeout):
        end = time.time() + timeout
        while b"\0" not in self.buf:
            left = end - time.time()
            if left <= 0 or not select.select([self.r], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed the pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        while True:
            m = self._read(timeout)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)
                if m["method"] == "Page.javascriptDialogOpening":
                    # never leave a dialog open: it would block the page
                    os.write(self.w, json.dumps({"id": -1, "method": "Page.handleJavaScriptDialog",
                                                 "params": {"accept": True},
                                                 "sessionId": self.session}).encode() + b"\0")

    def pump(self, seconds):
        """Collect events for a while."""
        end = time.time() + seconds
        while time.time() < end:
            try:
                m = self._read(max(0.01, end - time.time()))
            except TimeoutError:
                return
            if "method" in m:
                self.events.append(m)

    def goto(self, url, ready="document.documentElement.dataset.ready === '1'", timeout=30):
        self.call("Page.navigate", {"url": url})
        end = time.time() + timeout
        while time.time() < end:
            try:
                if self.eval(ready):
                    return True
            except RuntimeError:
                pass
            self.pump(0.1)
        return False

    def eval(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                           "awaitPromise": True, "replMode": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr[:60]}...: {r['exceptionDetails'].get('text')} "
                               f"{r['exceptionDetails'].get('exception', {}).get('description', '')}")
        return r["result"].get("value")

    def key(self, key, code=None, shift=False):
        """A key press as the keyboard sends it (Tab, Enter, Space...)."""
        vk = {"Tab": 9, "Enter": 13, " ": 32, "ArrowDown": 40}.get(key, 0)
        p = {"key": key, "code": code or key, "windowsVirtualKeyCode": vk,
             "modifiers": 8 if shift else 0}
        if key == "Enter":
            p["text"] = "\r"
        elif key == " ":
            p["text"] = " "
        self.call("Input.dispatchKeyEvent", dict(p, type="keyDown"))
        self.call("Input.dispatchKeyEvent", dict(p, type="keyUp"))

    def type(self, text):
        self.call("Input.insertText", {"text": text})

    def screenshot(self, path, full=True):
        params = {"format": "png"}
        if full:
            params["captureBeyondViewport"] = True
            m = self.call("Page.getLayoutMetrics")
            size = m.get("cssContentSize") or m["contentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"],
                              "height": min(size["height"], 6000), "scale": 1}
        data = self.call("Page.captureScreenshot", params)["data"]
        with open(path, "wb") as fp:
            fp.write(base64.b64decode(data))

    def errors(self):
        """Console errors, uncaught exceptions and error log entries so far."""
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:300])
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console: " + json.dumps(p.get("args", []))[:300])
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append("log: " + p["entry"].get("text", "")[:300])
        return out

    def dialogs(self):
        return [e for e in self.events if e.get("method") == "Page.javascriptDialogOpening"]

    def requests(self):
        return [e["params"]["request"]["url"] for e in self.events
                if e.get("method") == "Network.requestWillBeSent"]

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self.r, self.w):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)
