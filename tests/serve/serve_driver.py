#!/usr/bin/env python3
"""Run one gemmaforge-serve test as a fixture around a client script.

Starts the server on a free loopback port (--port 0) with the real model, waits for its
`listening on http://...` line, runs the script's run(ctx), then stops the server with SIGTERM and
checks that it exits 0 and that its log has no error line (handled client errors are `warn:`).

  serve_driver.py --server build/bin/gemmaforge-serve --script client_openai.py -- --max-batch 4

Exit status: 0 pass, 1 fail, 77 skipped (only when the Python package `openai` is missing;
./scripts/setup installs it).
"""
import argparse
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
import traceback

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))


class Ctx:
    """What a client script gets: the server's address, process and log, and an OpenAI client."""

    def __init__(self, proc, log_path, port, api_key):
        self.proc = proc
        self.log_path = log_path
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.base_url = self.url + "/v1"
        self.api_key = api_key

    def client(self, **kw):
        import openai
        kw.setdefault("max_retries", 0)  # a retried 429 or 5xx would hide what the server said
        kw.setdefault("timeout", 120.0)
        return openai.OpenAI(base_url=self.base_url, api_key=self.api_key or "unused", **kw)

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def terminate(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"server did not exit within {timeout} s of SIGTERM")


def load_script(path):
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--script", required=True)
    ap.add_argument("--name", default=None)
    ap.add_argument("server_args", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    server_args = a.server_args[1:] if a.server_args[:1] == ["--"] else a.server_args
    try:
        import openai  # noqa: F401
    except ImportError:
        print("SKIPPED: the Python package 'openai' is not installed (./scripts/setup installs it)")
        return SKIP
    sys.path.insert(0, HERE)

    name = a.name or os.path.splitext(os.path.basename(a.script))[0]
    log_path = os.path.abspath(f"serve_{name}.log")
    api_key = None
    if "--api-key" in server_args:
        api_key = server_args[server_args.index("--api-key") + 1]
    cmd = [a.server, "--host", "127.0.0.1", "--port", "0"] + server_args
    print("server:", " ".join(cmd), flush=True)
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    ok = False
    try:
        port = None
        deadline = time.monotonic() + 120
        while port is None:
            if proc.poll() is not None:
                raise AssertionError(f"server exited with {proc.returncode} before listening")
            if time.monotonic() > deadline:
                raise AssertionError("server did not print `listening on` within 120 s")
            m = re.search(r"^listening on http://127\.0\.0\.1:(\d+)$", open(log_path).read(), re.M)
            if m:
                port = int(m.group(1))
            else:
                time.sleep(0.05)
        ctx = Ctx(proc, log_path, port, api_key)
        t0 = time.monotonic()
        script = a.script if os.path.exists(a.script) else os.path.join(HERE, a.script)
        load_script(script).run(ctx)
        print(f"client script passed in {time.monotonic() - t0:.1f} s", flush=True)

        ctx.terminate()
        rc = ctx.wait_exit(60)
        if rc != 0:
            raise AssertionError(f"server exited with {rc} after SIGTERM (expected 0)")
        text = ctx.log()
        bad = [l for l in text.splitlines() if l.startswith(("error", "gemmaforge-serve:"))]
        if bad:
            raise AssertionError("error lines in the server log:\n  " + "\n  ".join(bad[:20]))
        if "info: stopped" not in text:
            raise AssertionError("the server log does not end with `info: stopped`")
        ok = True
    except Exception:
        traceback.print_exc()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    if not ok:
        lines = open(log_path, encoding="utf-8", errors="replace").read().splitlines()
        print(f"---- server log ({log_path}), last 60 of {len(lines)} lines ----")
        print("\n".join(lines[-60:]))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
