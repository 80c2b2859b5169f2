"""A second signal exits at once: with --shutdown-timeout 60 and a long request running, SIGTERM
starts the drain and a second SIGTERM cancels and closes everything; the process exits 0 within
a few seconds, not after the timeout."""
import signal
import time

import serve_common as sc


def run(ctx):
    t, result = sc.start_long_request(ctx)
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
