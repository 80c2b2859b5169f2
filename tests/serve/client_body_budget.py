"""The transport's body budget: with --max-body-bytes 1 MiB and --max-buffered-body-bytes 2 MiB, two
connections that announce 1 MiB bodies and send them slowly hold the whole budget; a third request
(sized or chunked) gets 503 server_busy with the numbers and Retry-After at once, before its body is
read; once a holder leaves, requests are served again. So the memory that bodies take has one bound
for the whole server, not connections x --max-body-bytes."""
import json
import socket
import time

import serve_common as sc

MIB = 1 << 20


def send_head(ctx, extra):
    s = socket.create_connection(("127.0.0.1", ctx.port), timeout=10)
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + extra + b"\r\n")
    return s


def run(ctx):
    # Two 1 MiB bodies, announced and started (a few bytes each), then stalled.
    holders = []
    for _ in range(2):
        s = send_head(ctx, b"Content-Length: %d\r\n" % MIB)
        s.sendall(b'{"prompt": "')
        holders.append(s)
    time.sleep(0.3)  # both heads read, both reservations taken

    for framing in (b"Content-Length: 40\r\n", b"Transfer-Encoding: chunked\r\n"):
        s = send_head(ctx, framing)
        raw = sc.read_to_eof(s)
        s.close()
        status, headers, body = sc.split_http(raw)
        assert status == 503, raw[:200]
        assert headers.get("retry-after") == "1", headers
        err = json.loads(body)["error"]
        assert err["code"] == "server_busy", err
        assert "2097152" in err["message"] and "--max-buffered-body-bytes" in err["message"], err["message"]

    # Requests without a body (GET) are not limited by the budget.
    assert sc.health(ctx)[0] == 200

    # One holder leaves: its megabyte is free again, and a request with a body is served.
    holders[0].close()
    time.sleep(0.3)
    st, _, _, j = sc.request(ctx, "POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 2})
    assert st == 200, j
    # A chunked body (http.client chunks an iterable) reserves the maximum (1 MiB) while it is
    # read, so it needs a whole free megabyte: beside the other holder and the few bytes of the
    # request above (held while its connection drains) it would not fit. Once the holder leaves,
    # two in a row are served.
    holders[1].close()
    time.sleep(0.3)
    for _ in range(2):
        st, _, _, j = sc.request(ctx, "POST", "/v1/completions", iter([b'{"prompt": "Hi", "max_tokens": 2}']))
        assert st == 200, j
