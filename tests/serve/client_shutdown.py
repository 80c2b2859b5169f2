"""SIGTERM with a streamed request in flight: the server stops taking requests (503), lets the
stream finish, and exits 0. Run with the default --shutdown-timeout (10 s)."""
import threading

import serve_common as sc


def run(ctx):
    client = ctx.client()
    first = threading.Event()
    result = {}

    def reader():
        try:
            stream = client.chat.completions.create(
                model="gemma-3-270m", messages=[{"role": "user", "content": "Write a long poem."}], max_tokens=40,
                temperature=0, stream=True, stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
            chunks = []
            for ch in stream:
                chunks.append(ch)
                first.set()
            result["chunks"] = chunks
        except Exception as e:  # reported below
            result["error"] = e
            first.set()

    t = threading.Thread(target=reader)
    t.start()
    assert first.wait(60), "no first chunk"
    ctx.terminate()
    sc.wait_until(lambda: "shutting down" in ctx.log(), 10, "the server to see SIGTERM")
    status, h = sc.health(ctx)
    assert status == 503 and h["status"] == "shutting_down", (status, h)
    status, _, _, j = sc.request(ctx, "POST", "/v1/completions", {"prompt": "late", "max_tokens": 2})
    assert status == 503 and j["error"]["code"] == "shutting_down", (status, j)
    t.join(60)
    assert "error" not in result, result.get("error")
    chunks = result["chunks"]
    assert chunks[-1].usage.completion_tokens == 40, chunks[-1]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    assert ctx.wait_exit(30) == 0
    assert "SIGTERM: shutting down; 1 requests in flight" in ctx.log(), ctx.log()[-2000:]
    assert "cancelled" not in ctx.log()
