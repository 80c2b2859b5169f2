"""A full queue: past --max-queue, requests get 429 with Retry-After (never dropped silently),
and the server serves again once the queue drains. Run with --max-batch 1 --max-queue 1."""
import openai

import serve_common as sc
from client_disconnect import drop, long_stream

COMP = "/v1/completions"


def run(ctx):
    running = sc.open_stream(ctx, COMP, long_stream())
    sc.read_until(running, bytearray(), 1)                       # admitted: holds the only batch slot
    queued = sc.open_stream(ctx, COMP, long_stream(prompt="Another story"))
    sc.wait_until(lambda: sc.health(ctx)[1]["requests_waiting"] == 1, 10, "the second request to queue")

    status, headers, _, j = sc.request(ctx, "POST", COMP, {"prompt": "one more", "max_tokens": 4})
    assert status == 429, (status, j)
    assert headers.get("retry-after") == "1", headers
    assert j["error"]["type"] == "rate_limit_error" and j["error"]["code"] == "queue_full", j
    assert "queue is full" in j["error"]["message"], j
    try:
        ctx.client().chat.completions.create(model="gemma-3-270m", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
        raise AssertionError("a request past the queue bound was accepted")
    except openai.RateLimitError as e:
        assert e.status_code == 429
    assert sc.metrics(ctx)["gemmaforge_requests_rejected_total"] == 2

    # The queued request was not dropped: it runs as soon as the slot frees.
    drop(running)
    buf = sc.read_until(queued, bytearray(), 2)
    assert buf.startswith(b"HTTP/1.1 200"), bytes(buf[:80])
    drop(queued)
    sc.wait_until(lambda: sc.pool_idle(ctx), 10, "the pool to be idle")

    status, _, _, j = sc.request(ctx, "POST", COMP, {"prompt": "The capital of France is", "max_tokens": 4, "temperature": 0})
    assert status == 200 and j["usage"]["completion_tokens"] == 4, j
    warn429 = [l for l in ctx.log().splitlines() if l.startswith("warn:") and " 429 " in l]
    assert len(warn429) == 2, warn429
