"""SIGTERM with requests that would run far past --shutdown-timeout 1: they are cancelled (the
stream ends with an error event, the plain request gets 503), and the server exits 0 promptly."""
import threading
import time

import openai


def run(ctx):
    client = ctx.client()
    started = threading.Event()
    results = {}
    long = dict(model="gemma-3-270m", messages=[{"role": "user", "content": "Count to ten thousand."}], max_tokens=3000,
                temperature=0, extra_body={"ignore_eos": True})

    def streamer():
        try:
            for _ in client.chat.completions.create(stream=True, **long):
                started.set()
            results["stream"] = "completed"
        except openai.APIError as e:
            results["stream"] = e
        started.set()

    def plain():
        try:
            client.chat.completions.create(**long)
            results["plain"] = "completed"
        except openai.APIStatusError as e:
            results["plain"] = e

    threads = [threading.Thread(target=streamer), threading.Thread(target=plain)]
    for t in threads:
        t.start()
    assert started.wait(60)
    time.sleep(0.5)
    t0 = time.monotonic()
    ctx.terminate()
    rc = ctx.wait_exit(20)
    took = time.monotonic() - t0
    for t in threads:
        t.join(30)
    assert rc == 0, rc
    assert took < 8, f"exit took {took:.1f} s with --shutdown-timeout 1"
    s = results["stream"]
    assert isinstance(s, openai.APIError) and "shutting down" in s.message, s
    p = results["plain"]
    assert isinstance(p, openai.APIStatusError) and p.status_code == 503, p
    assert "warn: cancelled 2 requests still running at shutdown" in ctx.log(), ctx.log()[-2000:]
