"""Clients that misbehave (issue 8): killed mid-stream, gone while queued, reading slowly.
Run against a server started with --max-batch 2. In every case the KV pool returns to idle
(no block held by a request, every block free or only prefix-cached) and the server keeps serving."""
import socket
import time

import serve_common as sc

COMP = "/v1/completions"


def long_stream(n=2000, prompt="Once upon a time"):
    # ignore_eos: the request cannot end on its own before the client leaves
    return {"prompt": prompt, "max_tokens": n, "temperature": 0, "ignore_eos": True, "stream": True}


def drop(s):
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


def gone_count(ctx):
    return sc.metrics(ctx)['gemmaforge_streams_total{outcome="client_gone"}']


def run(ctx):
    # ---- killed mid-stream: the request is cancelled and its blocks go back
    m0 = sc.metrics(ctx)
    s = sc.open_stream(ctx, COMP, long_stream())
    buf = sc.read_until(s, bytearray(), 4)
    assert buf.startswith(b"HTTP/1.1 200"), bytes(buf[:100])
    status, h = sc.health(ctx)
    assert h["requests_running"] == 1 and h["kv_blocks"]["used"] > 0, h
    drop(s)
    sc.wait_until(lambda: sc.pool_idle(ctx), 10, "the pool to be idle after the client left")
    m1 = sc.metrics(ctx)
    assert m1['gemmaforge_streams_total{outcome="client_gone"}'] == m0['gemmaforge_streams_total{outcome="client_gone"}'] + 1
    made = m1["gemmaforge_generation_tokens_total"] - m0["gemmaforge_generation_tokens_total"]
    assert 3 <= made < 1000, f"{made} tokens generated for a client that left after 3"
    assert m1["gemmaforge_kv_blocks_used"] == 0, m1

    # ---- gone while queued (both batch slots busy): cancelled before it ever takes KV blocks
    a = sc.open_stream(ctx, COMP, long_stream())
    b = sc.open_stream(ctx, COMP, long_stream(prompt="In a galaxy far away"))
    sc.read_until(a, bytearray(), 1)
    sc.read_until(b, bytearray(), 1)
    c = sc.open_stream(ctx, COMP, long_stream(prompt="The recipe for bread"))
    sc.wait_until(lambda: sc.health(ctx)[1]["requests_waiting"] == 1, 10, "the third request to queue")
    before = gone_count(ctx)
    drop(c)
    sc.wait_until(lambda: sc.health(ctx)[1]["requests_waiting"] == 0, 10, "the queued request to be cancelled")
    _, h = sc.health(ctx)
    assert h["requests_running"] == 2, h  # a and b still run; c was never admitted
    assert gone_count(ctx) == before + 1
    drop(a)
    drop(b)
    sc.wait_until(lambda: sc.pool_idle(ctx), 10, "the pool to be idle after all three left")
    lines = [l for l in ctx.log().splitlines() if "finish=client_gone" in l]
    assert len(lines) == 4, lines

    # ---- a slow client: it reads nothing for a while; the engine does not wait for it
    body = {"prompt": "The history of the bicycle", "max_tokens": 120, "temperature": 0, "ignore_eos": True}
    _, _, _, ref = sc.request(ctx, "POST", COMP, body)
    slow = sc.open_stream(ctx, COMP, dict(body, stream=True), rcvbuf=4096)
    time.sleep(0.3)
    t0 = time.monotonic()
    status, _, _, fast = sc.request(ctx, "POST", COMP, {"prompt": "The capital of France is", "max_tokens": 8, "temperature": 0})
    assert status == 200 and fast["usage"]["completion_tokens"] == 8, fast
    fast_s = time.monotonic() - t0
    # All 120 tokens are generated while the client still has read nothing.
    sc.wait_until(lambda: sc.health(ctx)[1]["requests_running"] == 0, 30, "the slow client's request to finish generating")
    raw = sc.read_to_eof(slow)
    slow.close()
    status, headers, payload = sc.split_http(raw)
    assert status == 200 and headers["content-type"] == "text/event-stream", headers
    events = sc.sse_events(payload)
    assert events[-1] == "[DONE]", events[-3:]
    text = "".join(e["choices"][0]["text"] for e in events[:-1])
    assert events[-2]["choices"][0]["finish_reason"] == "length", events[-2]
    assert text == ref["choices"][0]["text"], (text, ref)
    print(f"slow client: a concurrent 8-token request took {fast_s:.2f} s; the slow stream arrived whole "
          f"({len(payload)} bytes, {len(events) - 1} events)")
    sc.wait_until(lambda: sc.pool_idle(ctx), 10, "the pool to be idle")
