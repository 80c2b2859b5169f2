"""Bad input: each request gets the documented 4xx with an OpenAI error object, and the server
keeps serving. Run against a server started with --ctx-size 256 --max-body-bytes 65536."""
import json

import openai

import serve_common as sc

CTX = 256
BODY_LIMIT = 65536
CHAT = "/v1/chat/completions"
COMP = "/v1/completions"
USER = [{"role": "user", "content": "Hello"}]

# (name, method, path, body, expected status, expected error type, expected param or None,
#  text the message must contain or None)
CASES = [
    ("malformed JSON", "POST", CHAT, b'{"messages": [', 400, "invalid_request_error", None, "not valid JSON"),
    ("body not an object", "POST", CHAT, b"[1, 2]", 400, "invalid_request_error", None, "JSON object"),
    ("empty body", "POST", CHAT, b"", 400, "invalid_request_error", None, "not valid JSON"),
    # nlohmann reports this as out_of_range, not parse_error: it was a 500 until the fuzzer found it.
    ("number beyond double's range", "POST", COMP, b'{"prompt": "a", "max_tokens": 1e400}', 400, "invalid_request_error", None,
     "not valid JSON"),
    ("max_tokens wrong type", "POST", CHAT, {"messages": USER, "max_tokens": "ten"}, 400, "invalid_request_error", "max_tokens", "integer"),
    ("max_tokens float", "POST", COMP, {"prompt": "a", "max_tokens": 1.5}, 400, "invalid_request_error", "max_tokens", "integer"),
    ("temperature wrong type", "POST", CHAT, {"messages": USER, "temperature": "hot"}, 400, "invalid_request_error", "temperature", "number"),
    ("stream wrong type", "POST", CHAT, {"messages": USER, "stream": "yes"}, 400, "invalid_request_error", "stream", "boolean"),
    ("messages not an array", "POST", CHAT, {"messages": "hi"}, 400, "invalid_request_error", "messages", "array"),
    ("message content wrong type", "POST", CHAT, {"messages": [{"role": "user", "content": 5}]}, 400, "invalid_request_error", None, "content"),
    ("unknown model", "POST", CHAT, {"model": "gpt-9", "messages": USER}, 404, "invalid_request_error", "model", "does not exist"),
    ("empty messages", "POST", CHAT, {"messages": []}, 400, "invalid_request_error", "messages", "must not be empty"),
    ("missing messages", "POST", CHAT, {"max_tokens": 3}, 400, "invalid_request_error", "messages", "required"),
    ("missing prompt", "POST", COMP, {"max_tokens": 3}, 400, "invalid_request_error", "prompt", "required"),
    ("empty prompt array", "POST", COMP, {"prompt": []}, 400, "invalid_request_error", "prompt", "must not be empty"),
    ("batched prompts", "POST", COMP, {"prompt": ["a", "b"]}, 400, "invalid_request_error", "prompt", "one prompt per request"),
    ("unknown role", "POST", CHAT, {"messages": [{"role": "wizard", "content": "hi"}]}, 400, "invalid_request_error", "messages", "wizard"),
    ("roles not alternating", "POST", CHAT, {"messages": USER + USER}, 400, "invalid_request_error", "messages", "alternate"),
    ("late system message", "POST", CHAT, {"messages": USER + [{"role": "system", "content": "x"}]}, 400, "invalid_request_error", "messages", "system"),
    ("image content part", "POST", CHAT, {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     400, "invalid_request_error", "messages", "text"),
    ("prompt longer than the context", "POST", COMP, {"prompt": "hello " * 400}, 400, "invalid_request_error", "prompt",
     f"maximum context length is {CTX} tokens"),
    ("messages longer than the context", "POST", CHAT, {"messages": [{"role": "user", "content": "hello " * 400}]}, 400,
     "invalid_request_error", "messages", f"maximum context length is {CTX} tokens"),
    ("huge max_tokens", "POST", CHAT, {"messages": USER, "max_tokens": 100000}, 400, "invalid_request_error", "max_tokens",
     "in the messages, 100000 in the completion"),
    ("max_tokens zero", "POST", COMP, {"prompt": "a", "max_tokens": 0}, 400, "invalid_request_error", "max_tokens", "at least 1"),
    ("max_completion_tokens negative", "POST", CHAT, {"messages": USER, "max_completion_tokens": -3}, 400, "invalid_request_error",
     "max_completion_tokens", "at least 1"),
    ("invalid UTF-8", "POST", CHAT, b'{"messages": [{"role": "user", "content": "caf\xc3\x28 \xff"}]}', 400, "invalid_request_error", None, "UTF-8"),
    ("lone surrogate", "POST", CHAT, b'{"messages": [{"role": "user", "content": "\\ud800"}]}', 400, "invalid_request_error", None, "surrogate"),
    ("negative temperature", "POST", CHAT, {"messages": USER, "temperature": -1}, 400, "invalid_request_error", "temperature", ">= 0"),
    ("top_p zero", "POST", CHAT, {"messages": USER, "top_p": 0}, 400, "invalid_request_error", "top_p", "(0, 1]"),
    ("top_p above one", "POST", COMP, {"prompt": "a", "top_p": 1.5}, 400, "invalid_request_error", "top_p", "(0, 1]"),
    ("min_p one", "POST", COMP, {"prompt": "a", "min_p": 1}, 400, "invalid_request_error", "min_p", "[0, 1)"),
    ("frequency_penalty out of range", "POST", CHAT, {"messages": USER, "frequency_penalty": 3}, 400, "invalid_request_error",
     "frequency_penalty", "[-2, 2]"),
    ("repetition_penalty zero", "POST", CHAT, {"messages": USER, "repetition_penalty": 0}, 400, "invalid_request_error",
     "repetition_penalty", "> 0"),
    ("top_k negative", "POST", COMP, {"prompt": "a", "top_k": -5}, 400, "invalid_request_error", "top_k", ">= 0"),
    ("temperature overflow", "POST", COMP, {"prompt": "a", "temperature": 1e300}, 400, "invalid_request_error", "temperature", ">= 0"),
    ("n = 99", "POST", CHAT, {"messages": USER, "n": 99}, 400, "invalid_request_error", "n", "n must be in [1, 16], got 99"),
    ("token id outside the vocabulary", "POST", COMP, {"prompt": [2, 999999999]}, 400, "invalid_request_error", "prompt", "vocabulary"),
    ("negative token id", "POST", COMP, {"prompt": [2, -4]}, 400, "invalid_request_error", "prompt", "not a token id"),
    ("empty stop string", "POST", COMP, {"prompt": "a", "stop": ""}, 400, "invalid_request_error", "stop", "must not be empty"),
    ("stop wrong type", "POST", COMP, {"prompt": "a", "stop": 7}, 400, "invalid_request_error", "stop", "string"),
    ("too many stop strings", "POST", COMP, {"prompt": "a", "stop": [str(i) for i in range(40)]}, 400, "invalid_request_error", "stop", "at most"),
    ("top_logprobs 21", "POST", CHAT, {"messages": USER, "logprobs": True, "top_logprobs": 21}, 400, "invalid_request_error",
     "top_logprobs", "top_logprobs must be in [0, 20], got 21"),
    ("tools", "POST", CHAT, {"messages": USER, "tools": [{"type": "function"}]}, 400, "invalid_request_error", "tools", "function"),
    ("unsupported schema keyword", "POST", CHAT, {"messages": USER, "response_format": {"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "object", "properties": {"a": {"type": "string", "pattern": "^a"}}}}}}, 400,
     "invalid_request_error", "response_format", "'pattern'"),
    ("unknown response_format", "POST", CHAT, {"messages": USER, "response_format": {"type": "xml"}}, 400, "invalid_request_error",
     "response_format", "json_schema"),
    ("oversized body", "POST", CHAT, b'{"messages": [{"role": "user", "content": "' + b"x" * (BODY_LIMIT + 10) + b'"}]}', 413,
     "invalid_request_error", None, "exceeds the limit of 65536 bytes"),
    ("GET on a POST endpoint", "GET", CHAT, None, 405, "invalid_request_error", None, "POST"),
    ("unknown path", "GET", "/v1/engines", None, 404, "invalid_request_error", None, "no route"),
]


def run(ctx):
    failures = []
    for name, method, path, body, status, etype, param, text in CASES:
        got, headers, raw, j = sc.request(ctx, method, path, body)
        why = []
        if got != status:
            why.append(f"status {got}, expected {status}")
        if not (isinstance(j, dict) and isinstance(j.get("error"), dict)):
            why.append(f"no error object: {raw[:200]!r}")
        else:
            e = j["error"]
            if set(e) != {"message", "type", "param", "code"}:
                why.append(f"error fields {sorted(e)}")
            if e.get("type") != etype:
                why.append(f"type {e.get('type')!r}, expected {etype!r}")
            if param is not None and e.get("param") != param:
                why.append(f"param {e.get('param')!r}, expected {param!r}")
            if text is not None and text not in str(e.get("message")):
                why.append(f"message {e.get('message')!r} lacks {text!r}")
        if headers.get("content-type", "").split(";")[0] != "application/json":
            why.append(f"content-type {headers.get('content-type')!r}")
        if why:
            failures.append(f"{name}: " + "; ".join(why))
    assert not failures, "bad-input cases failed:\n  " + "\n  ".join(failures)

    # The official client maps them to its exception types.
    client = ctx.client()
    for kw, exc in [(dict(n=99), openai.BadRequestError), (dict(model="nope"), openai.NotFoundError),
                    (dict(max_tokens=10 ** 6), openai.BadRequestError)]:
        args = dict(model="gemma-3-270m", messages=USER, max_tokens=4)
        args.update(kw)
        try:
            client.chat.completions.create(**args)
            raise AssertionError(f"{kw} was accepted")
        except exc as e:
            assert e.body and e.body.get("message"), e

    # Every one was a client error: logged as a warning, none as an error (the driver checks that).
    warns = [l for l in ctx.log().splitlines() if l.startswith("warn:")]
    assert len(warns) >= len(CASES), f"{len(warns)} warn lines for {len(CASES)} bad requests"

    # Still serving.
    status, _, _, j = sc.request(ctx, "POST", CHAT, {"messages": USER, "max_tokens": 5, "temperature": 0})
    assert status == 200 and j["choices"][0]["message"]["content"] is not None, (status, j)
    m = sc.metrics(ctx)
    assert m['gemmaforge_http_requests_total{endpoint="/v1/chat/completions",status="400"}'] >= 10, m
    assert m['gemmaforge_http_requests_total{endpoint="/v1/chat/completions",status="413"}'] == 1, m
    # /health reads the engine's end-of-step snapshot: the answer may arrive just before it.
    sc.wait_until(lambda: sc.pool_idle(ctx), 5, "the pool to be idle")
    json.dumps(m)  # well-formed numbers
