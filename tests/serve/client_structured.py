"""Structured output and tool calls through the official OpenAI client: response_format json_schema
(greedy, seeded sampling, streamed, on chat and completions) and json_object, every output parsed
and validated with the jsonschema package; tools with tool_choice required / named / none / auto,
streamed tool calls, a tool result sent back in the history; raw HTTP for the 400s (an
unsupported schema keyword named in the message)."""
import json

import jsonschema

import serve_common as sc

PERSON = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "age", "city", "hobbies"],
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "city": {"enum": ["Paris", "London", "Rome", "other"]},
        "hobbies": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "email": {"type": ["string", "null"]},
    },
}
TEXT = "Alice is 30 years old and lives in Paris. She likes chess and tennis."


def function_tool(name, description, properties):
    """An OpenAI function tool whose arguments are a closed object that requires every property."""
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "additionalProperties": False, "required": list(properties),
                           "properties": properties},
        },
    }


WEATHER = function_tool("get_weather", "Current weather in a city",
                        {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}})
ADD = function_tool("add", "Add two integers", {"a": {"type": "integer"}, "b": {"type": "integer"}})


def schema_format(schema, name="person"):
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def check(text, schema):
    value = json.loads(text)
    jsonschema.validate(value, schema)
    return value


def run(ctx):
    client = ctx.client()
    model = client.models.list().data[0].id
    msgs = [{"role": "user", "content": "Extract the person as JSON: " + TEXT}]

    # ---- json_schema, greedy: parses, validates, ends by itself
    r = client.chat.completions.create(model=model, messages=msgs, max_tokens=300, temperature=0,
                                       response_format=schema_format(PERSON))
    c = r.choices[0]
    assert c.finish_reason == "stop", (c.finish_reason, c.message.content)
    greedy = check(c.message.content, PERSON)
    print("greedy:", c.message.content)

    # ---- sampled with a seed: valid every time, and the same seed repeats exactly
    outs = []
    for seed in (1, 2, 3, 1):
        r = client.chat.completions.create(model=model, messages=msgs, max_tokens=300, temperature=0.9, seed=seed,
                                           response_format=schema_format(PERSON))
        assert r.choices[0].finish_reason == "stop", r.choices[0]
        check(r.choices[0].message.content, PERSON)
        outs.append(r.choices[0].message.content)
    assert outs[0] == outs[3], outs

    # ---- streamed: the deltas concatenate to the greedy output
    stream = client.chat.completions.create(model=model, messages=msgs, max_tokens=300, temperature=0, stream=True,
                                            response_format=schema_format(PERSON))
    chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert json.loads(text) == greedy, (text, greedy)
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason] == ["stop"]

    # ---- nested $defs/$ref and anyOf
    nested = {"$defs": {"item": {"type": "object", "additionalProperties": False, "required": ["name", "qty"],
                                 "properties": {"name": {"type": "string"}, "qty": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}}},
              "type": "object", "additionalProperties": False, "required": ["items"],
              "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/item"}, "minItems": 1, "maxItems": 3}}}
    r = client.chat.completions.create(model=model, max_tokens=300, temperature=0.7, seed=11, response_format=schema_format(nested, "order"),
                                       messages=[{"role": "user", "content": "List as JSON: 2 apples and 3 pears."}])
    assert r.choices[0].finish_reason == "stop", r.choices[0]
    check(r.choices[0].message.content, nested)

    # ---- completions endpoint takes response_format too
    r = client.completions.create(model=model, prompt="Alice, 30, Paris, chess. As JSON:", max_tokens=300, temperature=0,
                                  extra_body={"response_format": schema_format(PERSON)})
    assert r.choices[0].finish_reason == "stop", r.choices[0]
    check(r.choices[0].text, PERSON)

    # ---- json_object: any object
    for temperature in (0, 1.0):
        r = client.chat.completions.create(model=model, max_tokens=300, temperature=temperature, seed=5,
                                           response_format={"type": "json_object"},
                                           messages=[{"role": "user", "content": "Give a JSON object with a key 'color'."}])
        if r.choices[0].finish_reason == "stop":
            assert isinstance(json.loads(r.choices[0].message.content), dict), r.choices[0].message.content
        else:  # a long string may run into max_tokens; it is still a valid prefix of an object
            assert r.choices[0].message.content.lstrip().startswith("{"), r.choices[0]

    # ---- tools: required -> a call, validated against the function's parameters
    weather_msgs = [{"role": "user", "content": "What is the weather in Paris, in celsius?"}]
    r = client.chat.completions.create(model=model, messages=weather_msgs, tools=[WEATHER, ADD], tool_choice="required",
                                       max_tokens=200, temperature=0)
    c = r.choices[0]
    assert c.finish_reason == "tool_calls", c
    assert len(c.message.tool_calls) == 1, c.message
    call = c.message.tool_calls[0]
    assert call.type == "function" and call.id.startswith("call_"), call
    fn = {"get_weather": WEATHER, "add": ADD}[call.function.name]
    check(call.function.arguments, fn["function"]["parameters"])
    print("required call:", call.function.name, call.function.arguments)

    # ---- round trip: the call and its result in the history, then an answer in text
    history = weather_msgs + [
        {"role": "assistant", "content": None, "tool_calls": [{"id": call.id, "type": "function",
                                                                "function": {"name": call.function.name,
                                                                             "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 21, "sky": "sunny"})},
    ]
    r = client.chat.completions.create(model=model, messages=history, tools=[WEATHER, ADD], tool_choice="none",
                                       max_tokens=40, temperature=0)
    c = r.choices[0]
    assert c.finish_reason in ("stop", "length") and not c.message.tool_calls and c.message.content, c
    print("after the tool result:", c.message.content)

    # ---- a named function is the one called
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "What is 2 plus 40?"}],
                                       tools=[WEATHER, ADD], tool_choice={"type": "function", "function": {"name": "add"}},
                                       max_tokens=100, temperature=0.8, seed=3)
    c = r.choices[0]
    assert c.finish_reason == "tool_calls" and c.message.tool_calls[0].function.name == "add", c
    check(c.message.tool_calls[0].function.arguments, ADD["function"]["parameters"])

    # ---- none: plain text, no calls
    r = client.chat.completions.create(model=model, messages=weather_msgs, tools=[WEATHER], tool_choice="none",
                                       max_tokens=20, temperature=0)
    assert not r.choices[0].message.tool_calls and r.choices[0].finish_reason in ("stop", "length"), r.choices[0]

    # ---- auto: either text or a valid call
    r = client.chat.completions.create(model=model, messages=weather_msgs, tools=[WEATHER], max_tokens=120, temperature=0)
    c = r.choices[0]
    if c.message.tool_calls:
        assert c.finish_reason == "tool_calls"
        check(c.message.tool_calls[0].function.arguments, WEATHER["function"]["parameters"])
    else:
        assert c.message.content is not None
    print("auto:", c.finish_reason, c.message.content, c.message.tool_calls)

    # ---- a streamed call, as OpenAI streams it: id and name first, then argument fragments
    stream = client.chat.completions.create(model=model, messages=weather_msgs, tools=[WEATHER], tool_choice="required",
                                            max_tokens=200, temperature=0, stream=True)
    chunks = list(stream)
    deltas = [d for ch in chunks if ch.choices for d in (ch.choices[0].delta.tool_calls or [])]
    assert deltas and deltas[0].id and deltas[0].id.startswith("call_") and deltas[0].function.name == "get_weather", deltas
    assert all(d.index == 0 for d in deltas)
    args = "".join(d.function.arguments or "" for d in deltas)
    check(args, WEATHER["function"]["parameters"])
    finals = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert finals == ["tool_calls"], finals
    assert not "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices), "a forced call streamed text"

    # ---- raw HTTP: what the server refuses, with the field and the keyword named
    def refused(body, param, needle, path="/v1/chat/completions"):
        status, _, _, j = sc.request(ctx, "POST", path, body)
        assert status == 400 and j["error"]["param"] == param and needle in j["error"]["message"], (status, j)
        return j["error"]

    e = refused({"messages": msgs, "response_format": schema_format({"type": "object", "properties": {
        "when": {"type": "string", "format": "date-time"}}})}, "response_format", "'format'")
    assert e["code"] == "unsupported_schema_keyword", e
    refused({"messages": msgs, "response_format": schema_format({"type": "integer", "minimum": 3})}, "response_format", "'minimum'")
    refused({"messages": msgs, "response_format": {"type": "json_schema"}}, "response_format", "json_schema")
    bad_tool = json.loads(json.dumps(WEATHER))
    bad_tool["function"]["parameters"]["properties"]["city"]["pattern"] = "^[A-Z]"
    refused({"messages": msgs, "tools": [bad_tool]}, "tools", "'pattern'")
    refused({"messages": msgs, "tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice", "nope")
    refused({"prompt": "x", "tools": [WEATHER]}, "tools", "chat", path="/v1/completions")
    refused({"messages": [{"role": "tool", "content": "x"}]}, "messages", "tool_call_id")
    assert sc.wait_until(lambda: sc.pool_idle(ctx), 10, "pool idle")
