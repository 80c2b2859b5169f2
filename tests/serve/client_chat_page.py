"""The built-in chat page (GET /) in a real browser: Debian's headless Chromium, driven over the
DevTools protocol (headless_chromium.py), against the real server and model on loopback.

  - GET / and HEAD /: the embedded file byte for byte, text/html, a Content-Security-Policy whose
    script and style hashes are those of the page's own elements, no-cache, nosniff; the
    transport's limits apply to it (an oversized header block gets 431);
  - the page without the API key shows the server's 401 (the server runs with --api-key);
  - with the key, a seeded message typed into the page streams into the DOM in several steps, and
    the text equals what the API returns for the same seeded request; a second turn carries the
    conversation (checked the same way, with the whole history);
  - Stop cancels the request on the server (the pool goes idle, the log says client_gone);
  - no uncaught exception and no CSP violation in the page; a screenshot is saved as
    chat_page.png in the working directory (and to $GF_CHAT_PAGE_SCREENSHOT when set).

Skips (77) only when no Chromium is installed (./scripts/setup --browser installs it)."""
import base64
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import time

import serve_common as sc
import headless_chromium as hc

HERE = os.path.dirname(os.path.abspath(__file__))
PAGE_FILE = os.path.join(HERE, "..", "..", "examples", "serve", "chat_page.html")
SYSTEM = "You are a poet."


def csp_hash(text):
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def check_http(ctx):
    with open(PAGE_FILE, "rb") as f:
        page = f.read()
    status, h, body, _ = sc.request(ctx, "GET", "/", headers={"Authorization": ""})
    assert status == 200, status
    assert body == page, f"GET / is not chat_page.html byte for byte ({len(body)} vs {len(page)} bytes)"
    assert h["content-type"] == "text/html; charset=utf-8", h["content-type"]
    assert h["cache-control"] == "no-cache", h.get("cache-control")
    assert h["x-content-type-options"] == "nosniff"
    csp = h["content-security-policy"]
    text = page.decode()
    script = re.search(r"<script>(.*?)</script>", text, re.S).group(1)
    style = re.search(r"<style>(.*?)</style>", text, re.S).group(1)
    assert f"script-src '{csp_hash(script)}'" in csp, csp
    assert f"style-src '{csp_hash(style)}'" in csp, csp
    for directive in ("default-src 'none'", "connect-src 'self'", "frame-ancestors 'none'"):
        assert directive in csp, (directive, csp)
    assert "unsafe-inline" not in csp and "http" not in csp, csp
    # Self-contained: nothing the page loads or links comes from another origin.
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", text), "the page references another origin"

    status, h, body, _ = sc.request(ctx, "HEAD", "/")
    assert status == 200 and body == b"" and int(h["content-length"]) == len(page), (status, h)
    # The page is answered by the transport like any route: its limits hold (header block > 64 KiB).
    with socket.create_connection(("127.0.0.1", ctx.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
        head = s.recv(64)
    assert head.startswith(b"HTTP/1.1 431"), head
    print(f"GET /: {len(page)} bytes, CSP {csp[:60]}...")


def api_text(ctx, messages, **params):
    status, _, _, j = sc.request(ctx, "POST", "/v1/chat/completions", {"messages": messages, **params})
    assert status == 200, (status, j)
    return j["choices"][0]["message"]["content"]


def js(s):
    return json.dumps(s)


def set_field(b, element_id, value):
    b.eval(f"(() => {{ const e = document.getElementById({js(element_id)}); e.value = {js(str(value))};"
           " e.dispatchEvent(new Event('change')); })()")


def messages(b):
    return b.eval("[...document.querySelectorAll('#messages .msg')].map(d => ({cls: d.className,"
                  " text: d.querySelector('.text').textContent, meta: d.querySelector('.meta')?.textContent ?? ''}))")


def send(b, text, use_button=False):
    b.eval("document.getElementById('input').focus()")
    b.type_text(text)
    if use_button:
        b.click("#send")
    else:
        b.press_enter()


def wait_turn_done(b, count, timeout=120):
    """Wait until the page shows `count` messages and none is streaming."""
    b.wait_for(f"document.querySelectorAll('#messages .msg').length >= {count} &&"
               " !document.querySelector('.msg.streaming') && !document.getElementById('send').disabled",
               timeout, f"{count} messages, the last one finished")
    return messages(b)


def record_updates(b):
    """Log, in the page, every change of the streaming message's text (the lengths it went through)."""
    b.eval("""(() => {
      window.__lengths = [];
      new MutationObserver(() => {
        const t = document.querySelector('.msg.assistant.streaming .text');
        if (t) window.__lengths.push(t.textContent.length);
      }).observe(document.getElementById('messages'), {subtree: true, childList: true, characterData: true});
    })()""")


def run(ctx):
    check_http(ctx)
    binary = hc.find_chromium()
    if not binary:
        print("SKIPPED: Chromium is not installed (./scripts/setup --browser installs Debian's chromium)")
        sys.exit(77)
    assert ctx.api_key, "this test runs the server with --api-key"
    t0 = time.monotonic()
    b = hc.Chromium(binary, width=1200, height=760)
    print(f"chromium started in {time.monotonic() - t0:.1f} s")
    try:
        run_page(ctx, b)
    except BaseException:
        print("---- chromium log (last lines) ----\n" + b.log_tail())
        try:
            print("---- page messages ----", messages(b))
        except Exception:  # noqa: BLE001 (diagnostics only)
            pass
        raise
    finally:
        b.close()


def run_page(ctx, b):
    b.navigate(ctx.url + "/")
    assert b.eval("document.title") == "gemmaforge chat"
    # The server has --api-key: the page says so (its GET /v1/models got 401).
    b.wait_for("document.getElementById('model').textContent.includes('API key')", 15, "the page to ask for the key")

    # 1. No key: the server's error is shown, the question goes back to the input box.
    send(b, "Hello?")
    msgs = wait_turn_done(b, 2, 30)
    assert msgs[-1]["cls"] == "msg error" and "401" in msgs[-1]["text"] and "API key" in msgs[-1]["text"], msgs
    assert b.eval("document.getElementById('input').value") == "Hello?"
    b.eval("document.getElementById('clear').click()")
    b.eval("document.getElementById('input').value = ''")

    # 2. The key typed in; the model's name appears.
    b.eval("document.getElementById('api-key').focus()")
    b.type_text(ctx.api_key)
    b.eval("document.getElementById('input').focus()")  # blur: the key field's change event
    b.wait_for("document.getElementById('model').textContent.includes('context')", 15, "the model's name")

    # 3. A seeded, sampled turn, streamed; the DOM holds what the API gives for the same request.
    params = {"temperature": 0.7, "top_p": 0.95, "seed": 42, "max_tokens": 32}
    set_field(b, "system", SYSTEM)
    set_field(b, "temperature", params["temperature"])
    set_field(b, "top-p", params["top_p"])
    set_field(b, "seed", params["seed"])
    set_field(b, "max-tokens", params["max_tokens"])
    record_updates(b)
    q1 = "Why is the sky blue?"
    send(b, q1)
    msgs = wait_turn_done(b, 2)
    user, answer = msgs[-2], msgs[-1]
    assert user == {"cls": "msg user", "text": q1, "meta": ""}, user
    assert answer["cls"] == "msg assistant" and answer["text"].strip(), msgs
    assert "tokens/s" in answer["meta"] and "finish:" in answer["meta"], answer
    lengths = b.eval("window.__lengths")
    assert len(set(lengths)) >= 3, f"the text did not arrive in pieces: lengths {lengths}"
    conv = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q1}]
    expected = api_text(ctx, conv, **params)
    assert answer["text"] == expected, f"page {answer['text']!r} != API {expected!r}"
    print(f"turn 1 ({len(set(lengths))} updates): {answer['text']!r} [{answer['meta']}]")

    # 4. A second turn (sent with the button) carries the conversation.
    q2 = "And why is the sea blue?"
    send(b, q2, use_button=True)
    msgs = wait_turn_done(b, 4)
    conv += [{"role": "assistant", "content": answer["text"]}, {"role": "user", "content": q2}]
    expected = api_text(ctx, conv, **params)
    assert msgs[-1]["text"] == expected, f"page {msgs[-1]['text']!r} != API {expected!r}"
    print(f"turn 2: {msgs[-1]['text']!r}")
    b.eval("document.getElementById('input').blur()")
    shot = os.path.abspath("chat_page.png")
    b.screenshot(shot)
    with open(shot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", "the screenshot is not a PNG"
    if os.environ.get("GF_CHAT_PAGE_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["GF_CHAT_PAGE_SCREENSHOT"])
    print("screenshot:", shot)

    # 5. Stop: a long generation cancelled from the page frees its slot on the server.
    set_field(b, "max-tokens", 4000)
    set_field(b, "seed", "")
    send(b, "Tell me a very long story about a lighthouse keeper.")
    b.wait_for("(document.querySelector('.msg.assistant.streaming .text')?.textContent.length ?? 0) > 20", 60,
               "the long answer to start")
    b.click("#stop")
    msgs = wait_turn_done(b, 6, 15)
    assert msgs[-1]["meta"] == "stopped", msgs[-1]
    sc.wait_until(lambda: sc.pool_idle(ctx), 10, "the stopped request to leave the engine")
    sc.wait_until(lambda: "finish=client_gone stream" in ctx.log(), 10, "the server to log the stop")

    problems = b.problems()
    assert not problems, "the page reported:\n  " + "\n  ".join(problems)
