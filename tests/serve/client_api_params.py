"""Issue 17's OpenAI parameters through the official client (raw HTTP for the errors): n (choices with
their own index, finish reason and stream chunks), best_of, logprobs in both endpoints (streamed too),
echo, logit_bias (a banned token never appears), /tokenize and /detokenize, usage everywhere, the
bounded prompt encoding (issue 20), and the determinism rule: a seeded request with n choices gives
the same choices alone and beside 8 concurrent requests.

Server: --ctx-size 512 --max-batch 8 --kv-blocks 96 (16-token blocks: a pool of 1536 tokens)."""
import math
import threading
import time

import openai

import serve_common as sc

CTX = 512
POOL_BLOCKS = 96
CHAT = "/v1/chat/completions"
COMP = "/v1/completions"
USER = [{"role": "user", "content": "Write one sentence about the sea."}]


def post(ctx, path, body):
    st, _, raw, j = sc.request(ctx, "POST", path, body)
    return st, j, raw


def expect_400(ctx, path, body, param, *fragments):
    st, j, raw = post(ctx, path, body)
    assert st == 400, (st, raw[:300])
    err = j["error"]
    assert err["type"] == "invalid_request_error", err
    assert err["param"] == param, (err, param)
    for f in fragments:
        assert f in err["message"], (f, err["message"])
    return err["message"]


def tokenize(ctx, text, **kw):
    st, j, raw = post(ctx, "/tokenize", {"content": text, **kw})
    assert st == 200, raw
    return j["tokens"]


def check_tokenize(ctx):
    text = "Hello world, caf\u00e9 \u65e5\u672c\n  two spaces"
    ids = tokenize(ctx, text)
    assert ids and all(isinstance(i, int) for i in ids), ids
    with_bos = tokenize(ctx, text, add_special=True)
    assert with_bos == [2] + ids, (with_bos, ids)
    st, j, raw = post(ctx, "/detokenize", {"tokens": ids})
    assert st == 200 and j == {"content": text}, raw
    pieces = tokenize(ctx, text, with_pieces=True)
    assert [p["id"] for p in pieces] == ids, pieces
    assert "".join(p["piece"] for p in pieces if isinstance(p["piece"], str)) == text, pieces
    expect_400(ctx, "/detokenize", {"tokens": [5, -1]}, "tokens", "tokens[1]")
    expect_400(ctx, "/detokenize", {"tokens": [262144]}, "tokens", "not a token id of this model")
    expect_400(ctx, "/tokenize", {"content": 5}, "content", "must be a string")
    expect_400(ctx, "/tokenize", {"content": "hello " * 3000}, "content", f"more than {CTX} tokens")
    st, _, _, _ = sc.request(ctx, "GET", "/tokenize")
    assert st == 405, st


def check_n_chat(ctx, client, model):
    r = client.chat.completions.create(model=model, messages=USER, n=3, max_tokens=16, temperature=1.0, seed=7)
    assert [c.index for c in r.choices] == [0, 1, 2], r.choices
    for c in r.choices:
        assert c.finish_reason in ("stop", "length") and c.message.role == "assistant", c
    texts = [c.message.content for c in r.choices]
    assert len(set(texts)) >= 2, texts
    assert r.usage.prompt_tokens > 5 and 3 <= r.usage.completion_tokens <= 48, r.usage
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens

    # Streamed: a role chunk and one finish per index; the deltas give the same texts (same seed).
    chunks = list(client.chat.completions.create(model=model, messages=USER, n=3, max_tokens=16, temperature=1.0, seed=7,
                                                 stream=True, stream_options={"include_usage": True}))
    by_index = {0: "", 1: "", 2: ""}
    roles, finishes = [], {}
    for ch in chunks:
        for c in ch.choices:
            if c.delta.role:
                roles.append(c.index)
            by_index[c.index] += c.delta.content or ""
            if c.finish_reason:
                assert c.index not in finishes, ("two finish chunks", c.index)
                finishes[c.index] = c.finish_reason
    assert sorted(roles) == [0, 1, 2], roles
    assert finishes == {c.index: c.finish_reason for c in r.choices}, (finishes, r.choices)
    assert [by_index[i] for i in range(3)] == texts, (by_index, texts)
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == r.usage.completion_tokens, chunks[-1]
    return texts


def check_n_completions(ctx, client, model):
    prompt = "Once upon a time"
    r = client.completions.create(model=model, prompt=prompt, n=4, max_tokens=12, temperature=1.0, seed=11, logprobs=0)
    assert [c.index for c in r.choices] == [0, 1, 2, 3]
    sums = [sum(c.logprobs.token_logprobs) for c in r.choices]
    # best_of 4, n 2: the two with the highest cumulative logprob, best first.
    b = client.completions.create(model=model, prompt=prompt, n=2, best_of=4, max_tokens=12, temperature=1.0, seed=11, logprobs=0)
    assert [c.index for c in b.choices] == [0, 1]
    ranked = sorted(range(4), key=lambda i: -sums[i])
    assert [c.text for c in b.choices] == [r.choices[i].text for i in ranked[:2]], (b.choices, sums)
    # Every generated token counts, the discarded choices' too.
    assert b.usage.completion_tokens == r.usage.completion_tokens, (b.usage, r.usage)
    assert b.usage.prompt_tokens == r.usage.prompt_tokens, (b.usage, r.usage)
    # Streamed completions: chunks per index.
    seen = {}
    for ch in client.completions.create(model=model, prompt=prompt, n=2, max_tokens=6, temperature=1.0, seed=3, stream=True):
        for c in ch.choices:
            seen.setdefault(c.index, []).append(c.finish_reason)
    assert sorted(seen) == [0, 1] and all(f[-1] in ("stop", "length") for f in seen.values()), seen


def check_logprobs(ctx, client, model):
    # Chat, greedy: the chosen token is the most likely alternative; values are log-probabilities.
    r = client.chat.completions.create(model=model, messages=USER, max_tokens=12, temperature=0, logprobs=True, top_logprobs=5)
    c = r.choices[0]
    content = c.logprobs.content
    assert len(content) == r.usage.completion_tokens, (len(content), r.usage)
    for e in content:
        assert e.logprob <= 0 and len(e.top_logprobs) == 5, e
        assert e.top_logprobs[0].token == e.token and math.isclose(e.top_logprobs[0].logprob, e.logprob, abs_tol=1e-6), e
        assert all(a.logprob >= b.logprob for a, b in zip(e.top_logprobs, e.top_logprobs[1:])), e
        assert sum(math.exp(t.logprob) for t in e.top_logprobs) <= 1.0 + 1e-5
        assert bytes(e.bytes).decode("utf-8", "replace") == e.token or "\ufffd" in e.token, e
    text = b"".join(bytes(e.bytes) for e in content).decode("utf-8", "replace")
    assert text.startswith(c.message.content), (text, c.message.content)

    # Streamed: the same entries, spread over the chunks.
    streamed = []
    for ch in client.chat.completions.create(model=model, messages=USER, max_tokens=12, temperature=0, logprobs=True, top_logprobs=5,
                                             stream=True):
        for cc in ch.choices:
            if cc.logprobs and cc.logprobs.content:
                streamed += cc.logprobs.content
    assert [(e.token, round(e.logprob, 4)) for e in streamed] == [(e.token, round(e.logprob, 4)) for e in content], streamed

    # Completions: OpenAI's legacy shape.
    prompt = "The capital of France is"
    r = client.completions.create(model=model, prompt=prompt, max_tokens=8, temperature=0, logprobs=3)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == r.usage.completion_tokens
    shown = lp.tokens[:-1] if r.choices[0].finish_reason == "stop" else lp.tokens  # a stop token has no text
    assert "".join(shown) == r.choices[0].text, (lp.tokens, r.choices[0].text)
    for tok, v, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        assert len(top) == 3 and math.isclose(max(top.values()), v, abs_tol=1e-6) and top[tok] == v, (tok, v, top)
    assert lp.text_offset == sorted(lp.text_offset) and lp.text_offset[0] == 0, lp.text_offset
    # Streamed completions carry their tokens' logprobs too.
    toks = []
    for ch in client.completions.create(model=model, prompt=prompt, max_tokens=8, temperature=0, logprobs=3, stream=True):
        for cc in ch.choices:
            if cc.logprobs:
                toks += cc.logprobs.tokens
    assert toks == lp.tokens, (toks, lp.tokens)

    # Echo: the prompt first; with logprobs the prompt's tokens too (the first one predicted by BOS).
    e = client.completions.create(model=model, prompt=prompt, max_tokens=4, temperature=0, echo=True)
    assert e.choices[0].text.startswith(prompt) and e.choices[0].text[len(prompt):] == r.choices[0].text[: len(e.choices[0].text) - len(prompt)]
    e = client.completions.create(model=model, prompt=prompt, max_tokens=4, temperature=0, echo=True, logprobs=2)
    elp = e.choices[0].logprobs
    assert len(elp.tokens) == e.usage.prompt_tokens - 1 + e.usage.completion_tokens, (elp.tokens, e.usage)
    assert "".join(elp.tokens) == e.choices[0].text, (elp.tokens, e.choices[0].text)
    assert all(isinstance(v, float) and v <= 0 for v in elp.token_logprobs), elp.token_logprobs
    # The generated part: what the run without echo gave (the prompt's logits came in other chunks:
    # equal within float rounding).
    gen = elp.token_logprobs[e.usage.prompt_tokens - 1:]
    assert all(math.isclose(a, b, abs_tol=1e-3) for a, b in zip(gen, lp.token_logprobs[:4])), (gen, lp.token_logprobs)
    # A token-id prompt (no BOS added): its first token has nothing predicting it: null.
    ids = tokenize(ctx, prompt, add_special=True)
    st, j, raw = post(ctx, COMP, {"prompt": ids, "max_tokens": 2, "temperature": 0, "echo": True, "logprobs": 1})
    assert st == 200, raw
    assert j["choices"][0]["logprobs"]["token_logprobs"][0] is None and j["choices"][0]["logprobs"]["top_logprobs"][0] is None, j
    # Echo streamed: the prompt comes first.
    first = next(iter(client.completions.create(model=model, prompt=prompt, max_tokens=3, temperature=0, echo=True, stream=True)))
    assert first.choices[0].text == prompt, first


def check_logit_bias(ctx, client, model):
    base = client.chat.completions.create(model=model, messages=USER, max_tokens=10, temperature=0, logprobs=True)
    first = base.choices[0].logprobs.content[0].token
    ids = tokenize(ctx, first)
    assert len(ids) == 1, (first, ids)
    banned = ids[0]
    # Banned at -100: never produced, greedy or sampled.
    for temperature in (0, 1.0):
        r = client.chat.completions.create(model=model, messages=USER, max_tokens=24, temperature=temperature, seed=5, n=2,
                                           logprobs=True, logit_bias={str(banned): -100})
        for c in r.choices:
            assert all(e.token != first for e in c.logprobs.content), (first, [e.token for e in c.logprobs.content])
            assert all(t.token != first for e in c.logprobs.content for t in e.top_logprobs)
    # +100 makes one token win every greedy step.
    forced = tokenize(ctx, " banana")
    assert len(forced) == 1, forced
    r = client.completions.create(model=model, prompt="Hello", max_tokens=5, temperature=0, logit_bias={str(forced[0]): 100},
                                  logprobs=1)
    assert r.choices[0].logprobs.tokens == [" banana"] * 5, r.choices[0].logprobs.tokens


def check_errors(ctx):
    expect_400(ctx, CHAT, {"messages": USER, "logprobs": True, "top_logprobs": 21}, "top_logprobs", "[0, 20], got 21")
    expect_400(ctx, COMP, {"prompt": "a", "logprobs": 6}, "logprobs", "[0, 5]")
    expect_400(ctx, COMP, {"prompt": "a", "logit_bias": {"999999": 5}}, "logit_bias", "999999", "outside the vocabulary (262144 tokens)")
    expect_400(ctx, COMP, {"prompt": "a", "logit_bias": {"17": 150}}, "logit_bias", "[-100, 100]")
    expect_400(ctx, COMP, {"prompt": "a", "logit_bias": {"x": 1}}, "logit_bias", "not a token id")
    # n x (prompt + max_tokens) larger than the pool: refused at once with the numbers.
    long_prompt = "The sea is wide and blue. " * 50  # about 350 tokens
    msg = expect_400(ctx, COMP, {"prompt": long_prompt, "max_tokens": 100, "n": 8}, "n", "n = 8 sequences", "KV blocks",
                     f"the pool has {POOL_BLOCKS}")
    print("n x prompt > pool:", msg)
    # The same prompt with n = 2 fits.
    st, j, raw = post(ctx, COMP, {"prompt": long_prompt, "max_tokens": 4, "n": 2, "temperature": 0})
    assert st == 200 and len(j["choices"]) == 2, raw[:300]
    # Bounded prompt encoding (issue 20): under the byte bound, over the context in tokens: the
    # tokenizer stops at ctx + 1 tokens and the request gets its 400 with the numbers.
    expect_400(ctx, COMP, {"prompt": "hello " * 3000, "max_tokens": 1}, "prompt", f"maximum context length is {CTX} tokens",
               f"resulted in more than {CTX} tokens")
    expect_400(ctx, CHAT, {"messages": [{"role": "user", "content": "hello " * 3000}]}, "messages",
               f"resulted in more than {CTX} tokens")


def check_determinism(ctx, client, model, alone):
    """The seeded n = 3 request gives the same choices beside 8 concurrent streams."""
    errors = []

    def noise(i):
        try:
            c = ctx.client()
            for _ in c.chat.completions.create(model=model, max_tokens=24, temperature=0.8, stream=True,
                                               messages=[{"role": "user", "content": f"Count to {i + 3} in words."}]):
                pass
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=noise, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    time.sleep(0.3)
    r = client.chat.completions.create(model=model, messages=USER, n=3, max_tokens=16, temperature=1.0, seed=7)
    for t in ts:
        t.join(300)
    assert not errors, errors
    assert [c.message.content for c in r.choices] == alone, ([c.message.content for c in r.choices], alone)
    r = client.chat.completions.create(model=model, messages=USER, n=3, max_tokens=16, temperature=1.0, seed=7)
    assert [c.message.content for c in r.choices] == alone


def measure_n4(ctx, client, model):
    """n = 4 in one request against four separate requests (same prompt, concurrent), same run."""
    # Distinct prompts of one length (a marker first), so nothing comes from the prefix cache but
    # what n shares within its own request.
    def one(marker, **kw):
        prompt = f"Story {marker}: " + "The sea is wide and blue. " * 40  # ~290 tokens
        return sc.request(ctx, "POST", COMP, {"prompt": prompt, "max_tokens": 32, "temperature": 1.0, "ignore_eos": True, **kw})
    one(1000, seed=1)  # warm
    rows = []
    for rnd in range(2):
        t0 = time.monotonic()
        st, _, _, j = one(2000 + rnd, n=4, seed=2)
        t_n = time.monotonic() - t0
        assert st == 200 and j["usage"]["completion_tokens"] == 128, j
        out = []
        t0 = time.monotonic()
        ts = [threading.Thread(target=lambda s=s: out.append(one(3000 + 10 * rnd + s, seed=100 + s))) for s in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(300)
        t_sep = time.monotonic() - t0
        assert all(o[0] == 200 for o in out)
        rows.append((t_n, t_sep))
    t_n = min(r[0] for r in rows)
    t_sep = min(r[1] for r in rows)
    print(f"n=4 throughput: one request {128 / t_n:.1f} tok/s ({t_n:.2f} s), four requests {128 / t_sep:.1f} tok/s ({t_sep:.2f} s)")


def run(ctx):
    client = ctx.client()
    model = client.models.list().data[0].id
    check_tokenize(ctx)
    alone = check_n_chat(ctx, client, model)
    check_n_completions(ctx, client, model)
    check_logprobs(ctx, client, model)
    check_logit_bias(ctx, client, model)
    check_errors(ctx)
    check_determinism(ctx, client, model, alone)
    measure_n4(ctx, client, model)
