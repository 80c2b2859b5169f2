"""Scale-out on existing infrastructure (issue 20): nginx (Debian's package) in front of two
replicas on loopback. The driver's server is replica A; this script starts replica B and nginx,
runs a bounded load through nginx, kills B (SIGKILL) in the middle of it, and checks that
  - requests in flight on B end with a clean error (an HTTP error status from nginx, never a hang)
    or are retried on A by nginx (proxy_next_upstream), and
  - every request sent after the kill succeeds (on A).
Skips (77) when nginx is not installed (scripts/setup installs it)."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import serve_common as sc

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
{user}
events {{ worker_connections 256; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  upstream gemmaforge {{
    # Passive health checks: a replica that refuses or resets a connection is out for 30 s.
    server 127.0.0.1:{a} max_fails=1 fail_timeout=30s;
    server 127.0.0.1:{b} max_fails=1 fail_timeout=30s;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://gemmaforge;
      proxy_http_version 1.1;
      proxy_buffering off;            # SSE goes through as it is made
      proxy_read_timeout 60s;
      # A replica that fails before answering: try the other one, POSTs included (a generation
      # that never started is safe to repeat). 503 covers a draining replica.
      proxy_next_upstream error timeout http_502 http_503 non_idempotent;
      proxy_next_upstream_tries 2;
    }}
  }}
}}
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_replica(ctx, d):
    log = open(os.path.join(d, "replica_b.log"), "w")
    cmd = [ctx.proc.args[0], "--host", "127.0.0.1", "--port", "0", "--max-batch", "4"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = re.search(r"^listening on http://127\.0\.0\.1:(\d+)$", open(log.name).read(), re.M)
        if m:
            return proc, int(m.group(1))
        assert proc.poll() is None, "replica B exited"
        time.sleep(0.05)
    raise AssertionError("replica B did not start")


class Via:
    """A ctx look-alike for serve_common.request, pointing at nginx."""

    def __init__(self, port):
        self.port = port
        self.api_key = None


def run(ctx):
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not nginx:
        print("SKIPPED: nginx is not installed (scripts/setup installs it)")
        sys.exit(77)
    d = tempfile.mkdtemp(prefix="gf_nginx_")
    os.chmod(d, 0o777)
    b_proc, b_port = start_replica(ctx, d)
    port = free_port()
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF.format(d=d, a=ctx.port, b=b_port, port=port, user="user root;" if os.getuid() == 0 else ""))
    ng = subprocess.Popen([nginx, "-p", d, "-c", os.path.join(d, "nginx.conf")], stdout=subprocess.DEVNULL,
                          stderr=open(os.path.join(d, "nginx.stderr"), "w"))
    via = Via(port)
    try:
        sc.wait_until(lambda: _ok(via), 20, "nginx to answer /health")
        # Both replicas serve: their own logs show requests.
        results = []  # (t_start, t_end, status or exception)
        lock = threading.Lock()
        stop_at = time.monotonic() + 12
        kill_at = [None]

        def client(i):
            n = 0
            while time.monotonic() < stop_at:
                t0 = time.monotonic()
                try:
                    st, _, _, j = sc.request(via, "POST", "/v1/completions",
                                             {"prompt": f"Client {i} request {n}:", "max_tokens": 24, "temperature": 0,
                                              "ignore_eos": True}, timeout=60)
                    res = st if st != 200 or j["choices"][0]["text"] is not None else "bad body"
                except Exception as e:  # a hang or a broken response: reported below
                    res = repr(e)
                with lock:
                    results.append((t0, time.monotonic(), res))
                n += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        # Kill B once it is mid-request.
        sc.wait_until(lambda: "POST /v1/completions 200" in open(os.path.join(d, "replica_b.log")).read(), 20,
                      "replica B to serve a request")
        time.sleep(1.0)
        kill_at[0] = time.monotonic()
        b_proc.send_signal(signal.SIGKILL)
        b_proc.wait(10)
        for t in threads:
            t.join(90)
        assert not any(t.is_alive() for t in threads), "a client hung"
        before = [r for r in results if r[0] < kill_at[0]]
        after = [r for r in results if r[0] >= kill_at[0]]
        in_flight = [r for r in before if r[1] >= kill_at[0]]
        bad_after = [r for r in after if r[2] != 200]
        bad_flight = [r for r in in_flight if r[2] != 200]
        assert len(after) >= 4, f"only {len(after)} requests after the kill"
        assert not bad_after, f"requests after the kill failed: {bad_after[:5]}"
        # In flight on B: nginx retried it on A (200) or answered a clean HTTP error (502/504).
        assert all(isinstance(r[2], int) and r[2] in (200, 502, 503, 504) for r in bad_flight), bad_flight
        assert all(r[2] == 200 for r in before if r[1] < kill_at[0]), "failures before the kill"
        print(f"  {len(results)} requests through nginx; {len(in_flight)} in flight at the kill "
              f"({len(bad_flight)} ended with an HTTP error, the rest retried on A); {len(after)} after it, all 200")
    finally:
        if b_proc.poll() is None:
            b_proc.kill()
            b_proc.wait()
        ng.send_signal(signal.SIGQUIT)
        try:
            ng.wait(10)
        except subprocess.TimeoutExpired:
            ng.kill()
            ng.wait()
        shutil.rmtree(d, ignore_errors=True)


def _ok(via):
    try:
        return sc.request(via, "GET", "/health", timeout=2)[0] == 200
    except OSError:
        return False
