"""D6: SIGTERM ends the process even while a client trickles its request head and a request runs
on past --shutdown-timeout (2 s here; --header-timeout 60 so the head deadline cannot help): the
running request is cancelled, every connection is closed, and the process exits 0."""
import json
import socket
import threading
import time

import serve_common as sc


def run(ctx):
    slow = socket.create_connection(("127.0.0.1", ctx.port), timeout=30)
    slow.sendall(b"GET /health HTTP/1.1\r\n")
    stop = threading.Event()

    def trickle():
        while not stop.is_set():
            try:
                slow.send(b"X")
            except OSError:
                return
            time.sleep(0.5)

    threading.Thread(target=trickle, daemon=True).start()
    t, result = sc.start_long_request(ctx)
    t0 = time.monotonic()
    ctx.terminate()
    rc = ctx.wait_exit(15)
    took = time.monotonic() - t0
    stop.set()
    assert rc == 0, rc
    assert took < 8, f"exit {took:.1f} s after SIGTERM with --shutdown-timeout 2"
    t.join(10)
    status, _, _, j = result["r"]
    assert status == 503 and j["error"]["code"] == "shutting_down", (status, j)
    slow.settimeout(2)
    try:
        assert slow.recv(100) == b"", "the slow connection is still open"
    except ConnectionResetError:
        pass
    print(f"  exit {took:.2f} s after SIGTERM (--shutdown-timeout 2, one slow client, one running request)")
