"""The official OpenAI Python client against gemmaforge-serve (started with --api-key):
models list, chat, streamed chat, completions (text and token ids), streamed completions with
usage, stop strings, seed determinism, usage counts, system-prompt caching, authentication."""
import openai

import serve_common as sc

SYSTEM = ("You are a helpful assistant for a small bakery. Answer in one short sentence, politely, "
          "and never invent prices or opening hours that you were not told about.")


def run(ctx):
    client = ctx.client()

    # ---- models
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert ids == ["gemma-3-270m"], ids
    model = ids[0]

    # ---- chat completion: shape, usage, finish_reason
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Do you sell bread?"}]
    r = client.chat.completions.create(model=model, messages=msgs, max_tokens=12, temperature=0)
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-") and r.model == model, r
    assert len(r.choices) == 1 and r.choices[0].index == 0
    c = r.choices[0]
    assert c.message.role == "assistant" and isinstance(c.message.content, str) and c.message.content, c
    assert c.finish_reason in ("stop", "length"), c.finish_reason
    u = r.usage
    assert u.prompt_tokens > 20 and 1 <= u.completion_tokens <= 12, u
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens, u
    if c.finish_reason == "length":
        assert u.completion_tokens == 12, u
    greedy_chat = c.message.content

    # ---- the same system prompt again: its blocks come from the prefix cache
    msgs2 = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is your best cake?"}]
    r2 = client.chat.completions.create(model=model, messages=msgs2, max_tokens=4, temperature=0)
    cached = r2.usage.prompt_tokens_details.cached_tokens
    assert cached >= 16, f"system prompt not reused: cached_tokens={cached}"

    # ---- streamed chat: role first, deltas concatenate to the non-streamed greedy text
    stream = client.chat.completions.create(model=model, messages=msgs, max_tokens=12, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant", chunks[0]
    assert all(ch.object == "chat.completion.chunk" and ch.id == chunks[0].id for ch in chunks)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == greedy_chat, (text, greedy_chat)
    finals = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert finals == [c.finish_reason], finals
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == u.completion_tokens, chunks[-1]

    # ---- completions: text prompt, greedy
    prompt = "The capital of France is"
    r = client.completions.create(model=model, prompt=prompt, max_tokens=16, temperature=0)
    assert r.object == "text_completion" and r.id.startswith("cmpl-"), r
    full = r.choices[0].text
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 16, r
    assert r.usage.prompt_tokens == 6, r.usage  # <bos> + 5 pieces

    # ---- streamed completion: same text
    parts = list(client.completions.create(model=model, prompt=prompt, max_tokens=16, temperature=0, stream=True))
    assert "".join(p.choices[0].text for p in parts) == full
    assert parts[-1].choices[0].finish_reason == "length"

    # ---- token-id prompt: used as given
    r = client.completions.create(model=model, prompt=[2, 651, 6037, 529, 7001, 563], max_tokens=4, temperature=0)
    assert r.usage.prompt_tokens == 6 and r.choices[0].text, r

    # ---- stop strings: the text ends before the first occurrence, finish_reason stop
    words = full.split()
    assert len(words) >= 4, full
    stop = " " + words[2]
    r = client.completions.create(model=model, prompt=prompt, max_tokens=16, temperature=0, stop=[stop, "@@never@@"])
    assert r.choices[0].finish_reason == "stop", r
    assert r.choices[0].text == full[:full.index(stop)], (r.choices[0].text, full, stop)
    parts = list(client.completions.create(model=model, prompt=prompt, max_tokens=16, temperature=0, stop=stop, stream=True))
    assert "".join(p.choices[0].text for p in parts) == full[:full.index(stop)]

    # ---- seeds: same seed and temperature > 0 -> same text; different seeds differ somewhere
    kw = dict(model=model, messages=[{"role": "user", "content": "Tell me a story about a cat."}], max_tokens=24,
              temperature=1.0, top_p=0.95)
    a = client.chat.completions.create(seed=1234, **kw).choices[0].message.content
    b = client.chat.completions.create(seed=1234, **kw).choices[0].message.content
    assert a == b, (a, b)
    others = {client.chat.completions.create(seed=s, **kw).choices[0].message.content for s in (1, 2, 3)}
    assert len(others | {a}) >= 2, others

    # ---- sampling extensions are accepted
    r = client.chat.completions.create(model=model, messages=msgs, max_tokens=4, temperature=0.7, seed=5,
                                       frequency_penalty=0.5, presence_penalty=0.5,
                                       extra_body={"top_k": 20, "min_p": 0.05, "repetition_penalty": 1.1})
    assert r.usage.completion_tokens >= 1

    # ---- authentication
    bad = openai.OpenAI(base_url=ctx.base_url, api_key="wrong", max_retries=0)
    try:
        bad.models.list()
        raise AssertionError("a wrong API key was accepted")
    except openai.AuthenticationError as e:
        assert e.status_code == 401 and e.body["code"] == "invalid_api_key", e.body
    status, _, _, j = sc.request(ctx, "POST", "/v1/chat/completions", {"messages": msgs}, headers={"Authorization": ""})
    assert status == 401 and j["error"]["type"] == "invalid_request_error", (status, j)
    # /health and /metrics stay open (load balancers, scrapers)
    assert sc.health(ctx)[0] == 200
    assert sc.metrics(ctx)['gemmaforge_http_requests_total{endpoint="/v1/chat/completions",status="200"}'] >= 5
    assert sc.wait_until(lambda: sc.pool_idle(ctx), 10, "pool idle")
