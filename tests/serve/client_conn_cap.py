"""The connection caps (issue 20): with --max-connections-per-client 20, the 21st open connection
from one address gets 503 too_many_connections at once and is closed; once the others close, the
address is served again. Idle connections never reached a worker: the engine served a request
while they were open."""
import json
import socket
import time

import serve_common as sc


def run(ctx):
    held = [socket.create_connection(("127.0.0.1", ctx.port), timeout=10) for _ in range(20)]
    time.sleep(0.3)  # accepted and counted
    # The refusal is sent at accept, before any request is read; a client that has sent one may
    # see a reset instead (its unread request is in the closed socket), so this one sends none.
    s = socket.create_connection(("127.0.0.1", ctx.port), timeout=10)
    data = sc.read_to_eof(s)
    s.close()
    assert data.startswith(b"HTTP/1.1 503"), data[:100]
    body = json.loads(data.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "too_many_connections", body
    for h in held[:5]:
        h.close()
    sc.wait_until(lambda: sc.health(ctx)[0] == 200, 5, "/health once connections closed")
    st, _, _, j = sc.request(ctx, "POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 2})
    assert st == 200, j
    for h in held[5:]:
        h.close()
