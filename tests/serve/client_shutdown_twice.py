"""A second signal exits at once: with --shutdown-timeout 60 and a long request running, SIGTERM
starts the drain and a second SIGTERM cancels and closes everything; the process exits 0 within
a few seconds, not after the timeout."""
import signal
import threading
import time

import serve_common as sc


def run(ctx):
    result = {}

    def long_request():
        result["r"] = sc.request(ctx, "POST", "/v1/completions",
                                 {"prompt": "Essay:", "max_tokens": 3000, "ignore_eos": True, "temperature": 0}, timeout=60)

    t = threading.Thread(target=long_request)
    t.start()
    sc.wait_until(lambda: sc.health(ctx)[1]["requests_running"] == 1, 30, "the long request to run")
    ctx.terminate()
    sc.wait_until(lambda: "shutting down" in ctx.log(), 10, "the server to see SIGTERM")
    time.sleep(0.5)
    assert ctx.proc.poll() is None, "exited before the second signal"
    t0 = time.monotonic()
    ctx.terminate(signal.SIGINT)
    rc = ctx.wait_exit(10)
    took = time.monotonic() - t0
    assert rc == 0, rc
    assert took < 4, f"exit {took:.1f} s after the second signal"
    t.join(10)
    assert "second signal" in ctx.log()
    print(f"  exit {took:.2f} s after the second signal (--shutdown-timeout 60)")
