"""Helpers for the gemmaforge-serve client scripts: raw HTTP (for what the OpenAI client hides:
status codes, headers, malformed bodies, dropped connections), SSE parsing, /health, /metrics."""
import http.client
import json
import re
import socket
import threading
import time


def request(ctx, method, path, body=None, headers=None, timeout=120):
    """One HTTP request; body may be a dict (sent as JSON), str or bytes.
    Returns (status, headers with lower-case names, body bytes, parsed JSON or None)."""
    h = {"Content-Type": "application/json"}
    if ctx.api_key:
        h["Authorization"] = f"Bearer {ctx.api_key}"
    h.update(headers or {})
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection("127.0.0.1", ctx.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()
    try:
        parsed = json.loads(data) if data else None
    except ValueError:
        parsed = None
    return r.status, hdrs, data, parsed


def sse_events(body):
    """The data payloads of a server-sent-event stream, in order ('[DONE]' kept as a string)."""
    text = body.decode() if isinstance(body, bytes) else body
    out = []
    for block in text.split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                payload = line[len("data: "):]
                out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def health(ctx):
    status, _, _, j = request(ctx, "GET", "/health")
    return status, j


def metrics(ctx):
    """/metrics as {'name{labels}': value}."""
    status, _, body, _ = request(ctx, "GET", "/metrics")
    assert status == 200, status
    out = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^(\S+)\s+(\S+)$", line)
        assert m, f"malformed metrics line: {line!r}"
        out[m.group(1)] = float(m.group(2))
    return out


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for: {what}")
        time.sleep(0.05)


def start_long_request(ctx):
    """Start a 3000-token greedy completion on a thread and wait until it runs (a request for a
    shutdown to cut short). Returns (thread, result): result["r"] is request()'s answer once done."""
    result = {}

    def long_request():
        result["r"] = request(ctx, "POST", "/v1/completions",
                              {"prompt": "Essay:", "max_tokens": 3000, "ignore_eos": True, "temperature": 0}, timeout=60)

    t = threading.Thread(target=long_request)
    t.start()
    wait_until(lambda: health(ctx)[1]["requests_running"] == 1, 30, "the long request to run")
    return t, result


def pool_idle(ctx):
    """True when no request holds KV blocks or waits, and every block is free or only cached."""
    status, h = health(ctx)
    kv = h["kv_blocks"]
    return (status == 200 and h["requests_running"] == 0 and h["requests_waiting"] == 0 and kv["used"] == 0
            and kv["reserved"] == 0 and kv["free"] + kv["cached"] == kv["total"])


def open_stream(ctx, path, body, rcvbuf=None):
    """Send a request on a raw socket (Connection: close) and return the socket, unread."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: caps the window
    s.settimeout(120)
    s.connect(("127.0.0.1", ctx.port))
    data = json.dumps(body).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n")
    if ctx.api_key:
        head += f"Authorization: Bearer {ctx.api_key}\r\n"
    s.sendall(head.encode() + b"\r\n" + data)
    return s


def read_until(sock, buf, marker_count, marker=b"data: "):
    """Read from sock into buf (a bytearray) until marker appears marker_count times."""
    while buf.count(marker) < marker_count:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed after {buf.count(marker)} events")
        buf += chunk
    return buf


def read_to_eof(sock, buf=None):
    buf = bytearray() if buf is None else buf
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return bytes(buf)
        buf += chunk


def split_http(raw):
    """(status, headers, body) of a whole HTTP/1.1 response, chunked transfer decoded."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
    if headers.get("transfer-encoding") != "chunked":
        return status, headers, rest
    body = bytearray()
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        n = int(size_line, 16)
        if n == 0:
            break
        body += rest[:n]
        assert rest[n:n + 2] == b"\r\n", "malformed chunk"
        rest = rest[n + 2:]
    return status, headers, bytes(body)
