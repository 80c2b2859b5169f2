"""The red-team battery (issue 20; ../shared/reviews/server-redteam.md, findings D1-D12): each
repro, bounded, on loopback, with the answer a correct server gives. Run against a server started
with --ctx-size 512 --header-timeout 3 --body-timeout 3 --max-batch 2 (tests.cmake). Everything
here is bounded in time (about a minute on 2 slow cores): no loop waits on the server without a
deadline.

D6 (shutdown with a slow client) needs its own server: client_shutdown_slow.py."""
import json
import socket
import statistics
import threading
import time

import serve_common as sc

COMP = "/v1/completions"


def rss_kb(ctx):
    with open(f"/proc/{ctx.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def raw(ctx, data, timeout=10, shut=False):
    """Send raw bytes, return (status or None, whole response bytes)."""
    s = socket.create_connection(("127.0.0.1", ctx.port), timeout=timeout)
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = bytearray()
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    status = int(out.split(b" ", 2)[1]) if out.startswith(b"HTTP/1.1 ") else None
    return status, bytes(out)


def post_raw(ctx, body, extra=b"", host=True):
    head = b"POST /v1/completions HTTP/1.1\r\n" + (b"Host: x\r\n" if host else b"") + extra
    return raw(ctx, head + b"\r\n" + body)


def health_ms(ctx):
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", ctx.port), timeout=5)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    out = sc.read_to_eof(s)
    s.close()
    assert out.startswith(b"HTTP/1.1 200"), out[:80]
    return (time.perf_counter() - t0) * 1000


def flood(s, block, times, counted=None, stops=(BrokenPipeError, ConnectionResetError, socket.timeout)):
    """Send block on s up to `times` times, until the server stops reading (one of `stops`); then
    close s. Returns (bytes sent, counting `counted` per block (default: all of it), the first bytes of
    the answer: b"" when it was lost to a reset or none came within 5 s)."""
    sent = 0
    try:
        for _ in range(times):
            s.sendall(block)
            sent += len(block) if counted is None else counted
    except stops:
        pass
    s.settimeout(5)
    try:
        data = s.recv(4096)
    except (ConnectionResetError, socket.timeout):
        data = b""
    s.close()
    return sent, data


def concurrent_posts(ctx, body, n=8, timeout=60):
    """n concurrent POSTs of body to /v1/completions: [(status, error code, error message, seconds)]."""
    out = []

    def one():
        t0 = time.monotonic()
        st, _, _, j = sc.request(ctx, "POST", COMP, body, timeout=timeout)
        out.append((st, j["error"]["code"], j["error"]["message"], time.monotonic() - t0))

    ts = [threading.Thread(target=one) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout)
    return out


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.99 * (len(xs) - 1))))]


def err(body):
    return json.loads(body.split(b"\r\n\r\n", 1)[1])["error"]


def check_d1_slow_and_idle(ctx, results):
    """D1: 300 idle sockets + 70 clients trickling a header byte every 0.5 s: /health p99 < 100 ms,
    and the head deadline (3 s) closes the slow ones (408)."""
    idle = [socket.create_connection(("127.0.0.1", ctx.port), timeout=10) for _ in range(300)]
    slow = [socket.create_connection(("127.0.0.1", ctx.port), timeout=10) for _ in range(70)]
    for s in slow:
        s.sendall(b"GET /health HTTP/1.1\r\n")
    lat = []
    t_end = time.monotonic() + 2.5
    closed_by_server = 0
    while time.monotonic() < t_end:
        for s in slow:
            try:
                s.send(b"X")
            except OSError:
                pass
        for _ in range(10):
            lat.append(health_ms(ctx))
            time.sleep(0.04)
    results["D1 health p99 ms (300 idle + 70 slow)"] = round(p99(lat), 1)
    assert p99(lat) < 100, f"/health p99 {p99(lat):.1f} ms with 370 hostile connections open ({len(lat)} probes)"
    # The head deadline: the slow clients are answered 408 and closed within ~3 s of connecting.
    deadline = time.monotonic() + 6
    got408 = 0
    for s in slow + idle:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            data = s.recv(4096)
            if data.startswith(b"HTTP/1.1 408"):
                got408 += 1
            closed_by_server += 1
        except (socket.timeout, ConnectionResetError):
            pass
        s.close()
    assert closed_by_server == 370, f"only {closed_by_server} of 370 slow/idle connections closed by the head deadline"
    assert got408 >= 300, got408
    results["D1 slow/idle connections closed by the deadline"] = closed_by_server


def check_d1_slow_body(ctx, results):
    """D1 (body): full head, then a body byte every 0.5 s: 408 at the body deadline (3 s)."""
    ss = []
    for _ in range(70):
        s = socket.create_connection(("127.0.0.1", ctx.port), timeout=10)
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        ss.append(s)
    lat = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.5:
        for s in ss:
            try:
                s.send(b" ")
            except OSError:
                pass
        for _ in range(5):
            lat.append(health_ms(ctx))
            time.sleep(0.05)
    assert p99(lat) < 100, f"/health p99 {p99(lat):.1f} ms with 70 slow bodies"
    n408 = 0
    for s in ss:
        s.settimeout(6)
        try:
            if s.recv(4096).startswith(b"HTTP/1.1 408"):
                n408 += 1
        except (socket.timeout, ConnectionResetError):
            pass
        s.close()
    assert n408 == 70, f"{n408} of 70 slow bodies got 408"
    results["D1 slow bodies -> 408"] = n408


def check_d2_chunked(ctx, results):
    """D2: a chunked body over --max-body-bytes (1 MiB here) gets 413 before it is read in full."""
    s = socket.create_connection(("127.0.0.1", ctx.port), timeout=10)
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n" % 65536 + b"a" * 65536 + b"\r\n"
    sent, data = flood(s, chunk, 16 * 64, counted=65536)  # up to 64 MiB of body
    # What the server read (1 MiB, then 1 MiB drained after the 413) plus what the kernel buffers.
    assert sent < 16 * 1024 * 1024, f"the server read {sent} bytes of a chunked body past its 1 MiB limit"
    # The 413 may be lost to a reset when the client keeps sending; the bound on what was read is
    # the point. When it arrives it must be a 413.
    assert not data or data.startswith(b"HTTP/1.1 413"), data[:100]
    # A sized body over the limit: 413 at once, from the head alone.
    st, body = raw(ctx, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n")
    assert st == 413 and err(body)["code"] == "request_too_large", body[:300]
    assert b"50000000" in body
    results["D2 chunked 64 MiB: bytes accepted by the socket before the close"] = sent


def check_d3_long_prompt(ctx, results):
    """D3: 8 concurrent 1 MB prompts (the body limit here) far past the context are refused before
    they are tokenized (the review's 4 MB ones cost 5 s and 720 MB each)."""
    body = json.dumps({"prompt": "1234567890" * 100000, "max_tokens": 1}).encode()
    out = concurrent_posts(ctx, body)
    assert len(out) == 8 and all(o[0] == 400 and o[1] == "context_length_exceeded" for o in out), out
    worst = max(o[3] for o in out)
    assert worst < 5, f"a 1 MB prompt took {worst:.2f} s to refuse"
    results["D3 8 x 1 MB prompts: slowest refusal s"] = round(worst, 2)

    # Under the byte bound but far over the context in tokens (42 KB of "hello "): tokenized only
    # until it passes ctx + 1 tokens (the bounded encoding), then the 400 with the numbers.
    body = json.dumps({"prompt": "hello " * 7000, "max_tokens": 1}).encode()
    out = concurrent_posts(ctx, body)
    assert len(out) == 8 and all(o[0] == 400 and o[1] == "context_length_exceeded" for o in out), out
    assert all("resulted in more than 512 tokens" in o[2] for o in out), out[0]
    worst = max(o[3] for o in out)
    assert worst < 5, f"a 7000-token prompt took {worst:.2f} s to refuse"
    results["D3 8 x 7000-token prompts (bounded encoding): slowest refusal s"] = round(worst, 2)


def check_d4_headers(ctx, results):
    """D4: a header flood to /health: 431 once the head passes 64 KiB, connection closed."""
    s = socket.create_connection(("127.0.0.1", ctx.port), timeout=10)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    blk = b"".join(b"X-h%07d: vvvv\r\n" % i for i in range(10000))  # 200 KB
    sent, data = flood(s, blk, 320, stops=(BrokenPipeError, ConnectionResetError))  # up to 64 MB
    assert sent < 16 * 1024 * 1024, f"{sent} bytes of headers read"
    assert not data or data.startswith(b"HTTP/1.1 431"), data[:100]
    st, body = raw(ctx, b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-a: " + b"b" * 70000 + b"\r\n\r\n")
    assert st == 431, body[:200]
    results["D4 header flood -> status"] = st


def check_d5_nesting(ctx, results):
    """D5: nesting past 64 levels is refused as it is parsed; 64 levels are fine."""
    deep = ("{\"prompt\":" + "[" * 500000 + "]" * 500000 + "}").encode()
    t0 = time.monotonic()
    st, _, _, j = sc.request(ctx, "POST", COMP, deep)
    assert st == 400 and "nested deeper than 64" in j["error"]["message"], (st, j)
    results["D5 500k levels (1 MB) -> 400 in s"] = round(time.monotonic() - t0, 2)
    ok = {"prompt": "Hi", "max_tokens": 1, "x": json.loads("[" * 63 + "]" * 63)}
    st, _, _, j = sc.request(ctx, "POST", COMP, ok)
    assert st == 200, (st, j)
    too = {"prompt": "Hi", "max_tokens": 1, "x": json.loads("[" * 64 + "]" * 64)}
    st, _, _, j = sc.request(ctx, "POST", COMP, too)
    assert st == 400, (st, j)


def check_d7_nonstream_disconnect(ctx, results):
    """D7: a non-streamed request whose client leaves is cancelled."""
    body = json.dumps({"prompt": "Essay:", "max_tokens": 400, "ignore_eos": True, "temperature": 0}).encode()
    s = socket.create_connection(("127.0.0.1", ctx.port), timeout=10)
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    sc.wait_until(lambda: sc.health(ctx)[1]["kv_blocks"]["used"] > 0, 20, "the request to run")
    # The model-server protocol's gauges (Gateway API Inference Extension), under vLLM's names.
    m = sc.metrics(ctx)
    assert m["vllm:num_requests_running"] == m["gemmaforge_requests_running"] == 1, m
    assert m["vllm:num_requests_waiting"] == m["gemmaforge_requests_waiting"], m
    assert 0 < m["vllm:gpu_cache_usage_perc"] == m["gemmaforge_kv_cache_usage_ratio"] <= 1, m
    assert m["vllm:gpu_cache_usage_perc"] == m["gemmaforge_kv_blocks_used"] / m["gemmaforge_kv_blocks_total"], m
    t0 = time.monotonic()
    s.close()
    sc.wait_until(lambda: sc.pool_idle(ctx), 10, "the abandoned request to be cancelled")
    results["D7 abandoned non-streamed request cancelled in s"] = round(time.monotonic() - t0, 2)
    sc.wait_until(lambda: "finish=client_gone" in ctx.log(), 5, "the access log line")


def check_queued_streams(ctx, results):
    """Row 36 of the review: streams waiting in the engine's queue held every HTTP thread and
    /health took 6.7 s. Now a queued request holds no thread: 64 streams (--max-batch 2, so ~62
    queued) and /health still answers at once; every stream completes."""
    ss = [sc.open_stream(ctx, COMP, {"prompt": f"Count {i}:", "max_tokens": 2, "temperature": 0, "stream": True,
                                     "ignore_eos": True}) for i in range(64)]
    sc.wait_until(lambda: sc.health(ctx)[1]["requests_waiting"] > 10, 20, "streams to queue")
    lat = [health_ms(ctx) for _ in range(10)]
    # The engine keeps both cores busy meanwhile: a looser bound than the idle-attack one.
    assert max(lat) < 500, f"/health took {max(lat):.0f} ms with 64 streams queued"
    results["/health max ms with 64 streams queued"] = round(max(lat), 1)
    for s in ss:
        s.settimeout(120)
        body = sc.split_http(sc.read_to_eof(s))[2]
        s.close()
        assert sc.sse_events(body)[-1] == "[DONE]", body[-200:]


def check_small_defects(ctx, results):
    # D8: curl -d (form-urlencoded) with a 9 KB body: read as JSON, not a false 413.
    body = json.dumps({"prompt": "hi", "max_tokens": 1, "user": "u" * 9000}).encode()
    st, _, _, j = sc.request(ctx, "POST", COMP, body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert st == 200, (st, j)
    results["D8 9 KB form-urlencoded JSON"] = st
    # D9: max_tokens near INT64_MAX: context_length_exceeded naming max_tokens.
    st, _, _, j = sc.request(ctx, "POST", COMP, '{"prompt":"Hi","max_tokens":9223372036854775807}')
    assert st == 400 and j["error"]["param"] == "max_tokens" and j["error"]["code"] == "context_length_exceeded", j
    results["D9 max_tokens 2^63-1"] = f'{st} {j["error"]["code"]}'
    # D10: seeds outside int64 -> 400; the range's ends are accepted.
    for seed in ("9223372036854775808", "18446744073709551615"):
        st, _, _, j = sc.request(ctx, "POST", COMP, '{"prompt":"Hi","max_tokens":1,"seed":%s}' % seed)
        assert st == 400 and j["error"]["param"] == "seed", (seed, j)
    for seed in ("9223372036854775807", "-9223372036854775808", "-1"):
        st, _, _, j = sc.request(ctx, "POST", COMP, '{"prompt":"Hi","max_tokens":1,"seed":%s}' % seed)
        assert st == 200, (seed, j)
    results["D10 seed 2^63"] = 400
    # D11: a raw NUL, with garbage after it.
    st, _, _, j = sc.request(ctx, "POST", COMP, b'{"prompt":"a","max_tokens":2}\x00garbage')
    assert st == 400 and j["error"]["code"] == "invalid_json", j
    results["D11 raw NUL"] = st
    # D12: RFC 9112 framing.
    b = b'{"prompt":"Hi","max_tokens":2}'
    cases = {
        "two Content-Lengths": b"Content-Length: %d\r\nContent-Length: 5\r\n" % len(b),
        "Content-Length: +31": b"Content-Length: +%d\r\n" % len(b),
        "Content-Length: -1": b"Content-Length: -1\r\n",
        "Content-Length and chunked": b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(b),
    }
    for name, extra in cases.items():
        t0 = time.monotonic()
        st, out = post_raw(ctx, b, extra)
        assert st == 400 and time.monotonic() - t0 < 2, (name, st, out[:200])
    st, out = post_raw(ctx, b, b"Content-Length: %d\r\n" % len(b), host=False)
    assert st == 400 and b"Host" in out, out[:300]
    # Two equal Content-Lengths are the same framing (RFC 9112 allows folding them); still refused
    # here, which is allowed too: a server may reject any repeated Content-Length.
    results["D12 framing errors"] = 400
    # HTTP/1.0 without Host is fine; HEAD answers without a body.
    st, out = raw(ctx, b"GET /health HTTP/1.0\r\n\r\n")
    assert st == 200, out[:200]
    st, out = raw(ctx, b"HEAD /livez HTTP/1.1\r\nHost: x\r\n\r\n")
    assert st == 200 and out.endswith(b"\r\n\r\n"), out


def check_rss_returns(ctx, idle_kb, results):
    sc.wait_until(lambda: rss_kb(ctx) <= idle_kb * 1.10, 8, f"RSS back within 10% of idle ({idle_kb} kB); now {rss_kb(ctx)} kB")
    results["RSS idle -> after attacks kB"] = f"{idle_kb} -> {rss_kb(ctx)}"


def run(ctx):
    results = {}
    # Warm up: a few ordinary requests, so the idle RSS includes what serving costs anyway.
    for i in range(3):
        st, _, _, j = sc.request(ctx, "POST", COMP, {"prompt": "Hello there", "max_tokens": 4})
        assert st == 200, j
    time.sleep(1.5)
    idle = rss_kb(ctx)
    t0 = time.monotonic()
    check_d1_slow_and_idle(ctx, results)
    check_d1_slow_body(ctx, results)
    check_d2_chunked(ctx, results)
    check_d3_long_prompt(ctx, results)
    check_d4_headers(ctx, results)
    check_d5_nesting(ctx, results)
    check_d7_nonstream_disconnect(ctx, results)
    check_queued_streams(ctx, results)
    check_small_defects(ctx, results)
    check_rss_returns(ctx, idle, results)
    assert sc.health(ctx)[0] == 200
    results["battery seconds"] = round(time.monotonic() - t0, 1)
    for k, v in results.items():
        print(f"  {k}: {v}")
