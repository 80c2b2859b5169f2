"""Bounded load: 256 streamed chat requests, 64 at a time, through continuous batching
(--max-batch 8). Every response is well formed, each greedy text equals that of the same prompt
run alone, and the pool is idle afterwards. Prints requests/s and tokens/s (docs/benchmarks.md)."""
import concurrent.futures as cf
import os
import time

import serve_common as sc

SYSTEM = "You are a concise assistant. Reply with a single sentence and no lists."
TOPICS = ["bread", "rivers", "the moon", "chess", "bicycles", "volcanoes", "tea", "owls", "rain", "trains", "glass",
          "maps", "bees", "winter", "clocks", "salt", "whales", "paper", "music", "bridges", "coffee", "stars",
          "gardens", "ice", "copper", "kites", "lighthouses", "deserts", "honey", "wolves", "violins", "tides"]
TOTAL = int(os.environ.get("GF_SERVE_LOAD_TOTAL", "256"))
CONCURRENCY = int(os.environ.get("GF_SERVE_LOAD_CONCURRENCY", "64"))
MAX_TOKENS = 12


def messages(i):
    user = {"role": "user", "content": f"Tell me one fact about {TOPICS[i % len(TOPICS)]}."}
    return [{"role": "system", "content": SYSTEM}, user] if i % 2 == 0 else [user]


def stream_one(client, i):
    t0 = time.monotonic()
    chunks = list(client.chat.completions.create(model="gemma-3-270m", messages=messages(i), max_tokens=MAX_TOKENS,
                                                 temperature=0, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant", chunks[0]
    assert len({c.id for c in chunks}) == 1
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0] in ("stop", "length"), finals
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and 1 <= usage.completion_tokens <= MAX_TOKENS, chunks[-1]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, usage.completion_tokens, time.monotonic() - t0


def run(ctx):
    client = ctx.client(timeout=300.0)
    alone = {}
    for i in range(len(TOPICS)):
        alone[i], _, _ = stream_one(client, i)
    client.close()
    sc.wait_until(lambda: sc.pool_idle(ctx), 10, "the pool to be idle")

    client = ctx.client(timeout=300.0)
    t0 = time.monotonic()
    with cf.ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(lambda i: (i, stream_one(client, i)), range(TOTAL)))
    wall = time.monotonic() - t0
    client.close()

    mismatch = [(i, text, alone[i % len(TOPICS)]) for i, (text, _, _) in results if text != alone[i % len(TOPICS)]]
    assert not mismatch, f"{len(mismatch)} greedy outputs differ from the same prompt run alone, e.g. {mismatch[:3]}"
    tokens = sum(n for _, (_, n, _) in results)
    lat = sorted(t for _, (_, _, t) in results)
    sc.wait_until(lambda: sc.pool_idle(ctx), 10, "the pool to be idle after the load")
    m = sc.metrics(ctx)
    assert m['gemmaforge_http_requests_total{endpoint="/v1/chat/completions",status="200"}'] == TOTAL + len(TOPICS), m
    assert m["gemmaforge_requests_failed_total"] == 0 and m["gemmaforge_requests_rejected_total"] == 0, m
    assert m["gemmaforge_kv_blocks_used"] == 0 and m["gemmaforge_kv_blocks_reserved"] == 0, m
    assert m["gemmaforge_kv_blocks_free"] + m["gemmaforge_kv_blocks_cached"] == m["gemmaforge_kv_blocks_total"], m
    print(f"LOAD: {TOTAL} streamed chat requests, {CONCURRENCY} concurrent, max_tokens {MAX_TOKENS}: "
          f"{wall:.1f} s, {TOTAL / wall:.2f} requests/s, {tokens / wall:.1f} generated tokens/s "
          f"({tokens} tokens), latency p50 {lat[len(lat) // 2]:.2f} s p95 {lat[int(len(lat) * 0.95)]:.2f} s; "
          f"prompt tokens cached {m['gemmaforge_prompt_tokens_cached_total']:.0f} of {m['gemmaforge_prompt_tokens_total']:.0f}")
