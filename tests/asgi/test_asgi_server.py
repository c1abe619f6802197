"""`verb asgi` as a process: lifespan outcomes, graceful stop, HTTP edge cases and hostile
input, each beside uvicorn where uvicorn defines the behaviour."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time

import pytest
from support.asgi_servers import AsgiProcess, exchange
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


@pytest.mark.parametrize("name", ["uvicorn", "verb"])
def test_failed_lifespan_startup_exits_with_status_3(tmp_path, name):
    server = AsgiProcess(name, "apps.lifespan_apps:startup_fails", tmp_path)
    try:
        assert server.proc.wait(timeout=30) == 3, server.log()
    finally:
        server.stop()
    assert "no database" in server.log()


def test_unsupported_lifespan_is_skipped_in_auto_mode_and_fatal_when_on(tmp_path):
    with AsgiProcess("verb", "apps.lifespan_apps:no_lifespan", tmp_path) as server:
        assert exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").startswith(
            b"HTTP/1.1 204 ")
    strict = AsgiProcess("verb", "apps.lifespan_apps:no_lifespan", tmp_path, ["--lifespan", "on"])
    try:
        assert strict.proc.wait(timeout=30) == 3, strict.log()
    finally:
        strict.stop()


@pytest.mark.parametrize("name", ["uvicorn", "verb", "uvicorn+verb"])
def test_sigterm_closes_websockets_with_1012_then_reraises(tmp_path, name):
    server = AsgiProcess(name, "apps.raw_app:app", tmp_path).wait_ready()

    async def hold_then_stop():
        async with connect(server.ws_url + "/ws", open_timeout=10) as ws:
            await ws.send("ping")
            assert await ws.recv() == "ping"
            server.proc.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 15)
            return ws.close_code

    try:
        assert asyncio.run(hold_then_stop()) == 1012
        assert server.proc.wait(timeout=20) == -signal.SIGTERM
    finally:
        server.stop()


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    with AsgiProcess("verb", "apps.raw_app:app", tmp_path_factory.mktemp("raw"),
                     ["--max-body", "65536", "--timeout-keep-alive", "2"]) as server:
        yield server


def test_lifespan_state_reaches_every_scope(raw):
    reply = exchange(raw.port, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n", until=b"hello")
    assert reply.endswith(b"GET /x 0 hello"), reply


def test_chunked_request_and_streamed_response(raw):
    body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    reply = exchange(raw.port, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"\r\n" + body, until=b"hello")
    assert reply.endswith(b"POST /echo 11 hello"), reply
    reply = exchange(raw.port, b"GET /chunks HTTP/1.1\r\nHost: x\r\n\r\n", until=b"0\r\n\r\n")
    head, _, chunks = reply.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert chunks == b"7\r\npart 0\n\r\n7\r\npart 1\n\r\n7\r\npart 2\n\r\n0\r\n\r\n"


def test_expect_100_continue_is_answered_before_the_body(raw):
    with socket.create_connection(("127.0.0.1", raw.port), timeout=10) as sock:
        sock.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"data")
        reply = b""
        while b"hello" not in reply:
            chunk = sock.recv(4096)
            assert chunk, reply
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"POST /up 4 hello")


def test_head_has_the_length_but_no_body(raw):
    reply = exchange(raw.port, b"HEAD /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     until=b"\r\n\r\n!")
    head, _, rest = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and rest == b""


@pytest.mark.parametrize("request_bytes, status", [
    (b"GARBAGE\r\n\r\n", b"400"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n" + b"x" * 70000, b"413"),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", b"431"),
])
def test_bad_requests_get_their_status(raw, request_bytes, status):
    reply = exchange(raw.port, request_bytes)
    assert reply.split(b" ", 2)[1] == status, reply[:200]


def test_oversized_message_closes_1009_and_others_carry_on(tmp_path):
    with AsgiProcess("verb", "apps.raw_app:app", tmp_path, ["--ws-max-size", "1024"]) as server:
        async def run():
            async with connect(server.ws_url + "/ws") as bystander, \
                    connect(server.ws_url + "/ws", max_size=None) as big:
                await big.send(b"x" * 2048)
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(big.recv(), 10)
                await bystander.send("still here")
                return big.close_code, await asyncio.wait_for(bystander.recv(), 10)
        assert asyncio.run(run()) == (1009, "still here")


def test_slow_handshake_is_dropped_by_the_server(raw):
    """A request that never ends (slowloris) is closed by the server (--timeout-keep-alive 2
    bounds it); the socket's 15 s timeout would fail the test if it were not."""
    with socket.create_connection(("127.0.0.1", raw.port), timeout=15) as sock:
        sock.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n")   # and never the rest
        assert sock.recv(4096) == b""


def test_metrics_path_is_answered_by_verb_with_the_hub_figures(tmp_path):
    with AsgiProcess("verb", "apps.raw_app:app", tmp_path, ["--metrics", "/metrics"]) as server:
        async def talk():
            async with connect(server.ws_url + "/ws") as ws:
                for text in ("a", "b", "c"):
                    await ws.send(text)
                    assert await ws.recv() == text
                return exchange(server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
                                b"Connection: close\r\n\r\n", until=b"verb_event_loop_lag_seconds_count")
        reply = asyncio.run(talk())
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and b"text/plain" in head
        figures = {line.split(b" ")[0]: float(line.split(b" ")[1]) for line in body.splitlines()
                   if line and not line.startswith(b"#") and b"{" not in line}
        assert figures[b"verb_websockets"] == 1
        assert figures[b"verb_messages_received_total"] == 3
        # Every other path still reaches the app.
        assert exchange(server.port, b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n",
                        until=b"hello").endswith(b"GET /other 0 hello")


def test_workers_share_the_port_and_stop_together(tmp_path):
    """--workers 2: connections reach both processes (SO_REUSEPORT); SIGTERM stops them all."""
    from support.cluster import alive, children
    server = AsgiProcess("verb", "apps.raw_app:app", tmp_path, ["--workers", "2"]).wait_ready()
    try:
        pids = set()
        deadline = time.monotonic() + 20
        while len(pids) < 2 and time.monotonic() < deadline:
            reply = exchange(server.port, b"GET /pid HTTP/1.1\r\nHost: x\r\n"
                             b"Connection: close\r\n\r\n", until=b"\r\n\r\n!")
            if reply.startswith(b"HTTP/1.1 200 "):
                pids.add(int(reply.partition(b"\r\n\r\n")[2]))
        workers = children(server.proc.pid)
        assert len(pids) == 2 and pids <= workers, (pids, workers, server.log())
    finally:
        server.stop()
    assert not any(alive(pid) for pid in pids)


def test_reload_restarts_the_server_when_the_app_changes(tmp_path):
    import subprocess
    import sys

    from support.cluster import alive, children, free_port, stop_process_tree

    source = '''async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"%s"})
'''
    module = tmp_path / "reloadme.py"
    module.write_text(source % "v1")
    port = free_port()
    log = open(tmp_path / "reload.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "verb", "asgi", "reloadme:app", "--reload",
                             "--app-dir", str(tmp_path), "--port", str(port), "--lifespan",
                             "off"], stdout=log, stderr=subprocess.STDOUT)

    def body():
        try:
            reply = exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                             until=b"\r\n\r\nv", timeout=2)
        except OSError:
            return None
        return reply.partition(b"\r\n\r\n")[2] or None

    def wait_for(expected):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if body() == expected:
                return True
            time.sleep(0.1)
        return False

    try:
        assert wait_for(b"v1"), (tmp_path / "reload.log").read_text()
        first = children(proc.pid)
        module.write_text(source % "v2")
        later = module.stat().st_mtime + 5   # a new mtime, even on coarse file systems
        os.utime(module, (later, later))
        assert wait_for(b"v2"), (tmp_path / "reload.log").read_text()
        assert children(proc.pid).isdisjoint(first)   # a new server process
    finally:
        stop_process_tree(proc)
        log.close()
    assert proc.returncode == 0 and not any(alive(pid) for pid in first)
