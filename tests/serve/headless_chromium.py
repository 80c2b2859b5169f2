"""A headless Chromium driven over the DevTools protocol through a pipe (--remote-debugging-pipe):
the browser reads JSON commands on its fd 3 and writes replies and events on its fd 4, each message
ended by a NUL byte. Nothing beyond Debian's `chromium` and the Python standard library: no
WebDriver, no websocket client. Every wait is bounded."""
import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time


def find_chromium():
    for name in (os.environ.get("GF_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class Chromium:
    def __init__(self, binary, width=1200, height=800, timeout=60):
        self.timeout = timeout
        self.events = []            # every event received, in order: (sessionId, method, params)
        self._next_id = 0
        self._buf = b""
        self._profile = tempfile.mkdtemp(prefix="gf-chromium-")
        fd, self.log_path = tempfile.mkstemp(prefix="gf-chromium-", suffix=".log")
        self._log = os.fdopen(fd, "wb")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def child_fds():
            # The protocol's fixed descriptors: 3 = commands in, 4 = replies out. Duplicate first
            # to free numbers so that neither dup2 overwrites the other's source.
            a, b = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [binary, "--headless=new", "--remote-debugging-pipe", f"--user-data-dir={self._profile}",
                # root in a container has no usable sandbox (the page under test is our own)
                "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--mute-audio", "--hide-scrollbars",
                f"--window-size={width},{height}", "about:blank"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     preexec_fn=child_fds, pass_fds=(3, 4))  # kept open past close_fds
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.session = None
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next((t for t in targets if t["type"] == "page"), None)
        target = page["targetId"] if page else self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        for domain in ("Page", "Runtime", "Log"):
            self.call(domain + ".enable")

    # ---- the protocol ----------------------------------------------------------------------
    def _read_message(self, deadline):
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("Chromium did not answer in time")
            r, _, _ = select.select([self._from_browser], [], [], left)
            if not r:
                continue
            data = os.read(self._from_browser, 1 << 20)
            if not data:
                raise AssertionError(f"Chromium closed its pipe (exit {self.proc.poll()}); see {self.log_path}")
            self._buf += data
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, timeout=None, **params):
        """Send one command to the page's session (the browser's before attaching); return its result."""
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self._next_id:
                if "error" in m:
                    raise AssertionError(f"{method} failed: {m['error']}")
                return m.get("result", {})
            if "method" in m:
                self.events.append((m.get("sessionId"), m["method"], m.get("params", {})))

    def pump(self, seconds):
        """Collect the events that arrive within `seconds`."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                m = self._read_message(deadline)
                if "method" in m:
                    self.events.append((m.get("sessionId"), m["method"], m.get("params", {})))
        except AssertionError:
            if self.proc.poll() is not None:
                raise

    # ---- what a test does with a page ------------------------------------------------------
    def navigate(self, url, timeout=30):
        seen = len(self.events)
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not any(e[1] == "Page.loadEventFired" for e in self.events[seen:]):
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not load within {timeout} s")
            self.pump(0.1)

    def eval(self, expression):
        """The value of a JavaScript expression in the page (promises awaited)."""
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError(f"page script failed: {expression!r}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expression, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            v = self.eval(expression)
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for: {what}")
            time.sleep(0.05)

    def type_text(self, text):
        """Text typed into the focused element, as a keyboard would (input events included)."""
        self.call("Input.insertText", text=text)

    def press_enter(self):
        common = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13}
        self.call("Input.dispatchKeyEvent", type="keyDown", text="\r", **common)
        self.call("Input.dispatchKeyEvent", type="keyUp", **common)

    def click(self, selector):
        """A real mouse click in the middle of the element."""
        box = self.eval(f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                        " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def problems(self):
        """Uncaught exceptions and Content-Security-Policy violations the page reported."""
        out = []
        for _, method, p in self.events:
            if method == "Runtime.exceptionThrown":
                out.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:500])
            elif method == "Log.entryAdded":
                e = p.get("entry", {})
                if e.get("source") in ("security", "violation") or "Content Security Policy" in e.get("text", ""):
                    out.append(f"{e.get('source')}: {e.get('text')}")
        return out

    def log_tail(self, n=40):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return "\n".join(f.read().splitlines()[-n:])

    def close(self):
        try:
            if self.proc.poll() is None:
                try:
                    self.session = None
                    self.call("Browser.close", timeout=5)
                except (AssertionError, OSError):
                    pass
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            for fd in (self._to_browser, self._from_browser):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._log.close()
            shutil.rmtree(self._profile, ignore_errors=True)
            os.unlink(self.log_path)
