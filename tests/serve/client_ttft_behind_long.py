"""Fair admission (issue 20): time to first token of a 10-token request sent 1 s after a
long prompt ($GF_TTFT_LONG_TOKENS tokens: 1200 in CI, 5000 for the figures in docs/serving.md). Waiting prefills take turns chunk by chunk, so the short request's first token
comes after about one chunk of the long prompt, not after all of it. Run with --max-batch 4 and
the default context (8192). Prints the figures docs/serving.md quotes."""
import os
import threading
import time

import serve_common as sc

LONG = int(os.environ.get("GF_TTFT_LONG_TOKENS", "1200"))
LONG_IDS = [2] + [(i * 7919) % 200000 + 1000 for i in range(LONG - 1)]  # BOS first
SHORT_IDS = [2, 818, 5279, 529, 7001, 563, 496, 3658, 14284, 236764]  # 10 ids


def ttft(ctx, ids):
    """Seconds to the first streamed token, and to the end."""
    t0 = time.monotonic()
    s = sc.open_stream(ctx, "/v1/completions", {"prompt": ids, "max_tokens": 2, "temperature": 0, "stream": True,
                                                "ignore_eos": True})
    buf = bytearray()
    first = None
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
        if first is None and b'"text":"' in buf and b'"text":""' not in buf[buf.find(b"data: "):]:
            first = time.monotonic() - t0
        if b"[DONE]" in buf:
            break
    s.close()
    events = sc.sse_events(sc.split_http(bytes(buf))[2])
    assert events[-1] == "[DONE]", events[-3:]
    return (first if first is not None else time.monotonic() - t0), time.monotonic() - t0


def run(ctx):
    alone, _ = ttft(ctx, SHORT_IDS)
    out = {}

    def long_one():
        out["long"] = ttft(ctx, LONG_IDS)

    t = threading.Thread(target=long_one)
    t.start()
    time.sleep(1.0)
    behind, _ = ttft(ctx, SHORT_IDS)
    t.join(300)
    long_first, long_total = out["long"]
    print(f"  short request alone: first token {alone:.2f} s")
    print(f"  short request 1 s behind a {LONG}-token prompt: first token {behind:.2f} s "
          f"(the long prompt's first token: {long_first:.2f} s)")
    # Taking turns: the short request does not wait for the whole long prefill.
    assert behind < 0.5 * long_first, f"first token {behind:.2f} s behind a prefill of {long_first:.2f} s"
