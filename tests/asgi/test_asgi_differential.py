"""The same ASGI apps under uvicorn (the reference) and under `verb asgi`: what a client
observes must be the same, except for the improvements listed in allowed_differences.py.

Observations are plain data (status, chosen headers, messages, close codes), so a failure
shows both sides. Servers run as subprocesses on free loopback ports, one per app and server
for the module.
"""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.request

import pytest
from allowed_differences import ALLOWED
from support.asgi_servers import AsgiProcess, exchange
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

SERVERS = ("uvicorn", "verb", "uvicorn+verb")  # the reference first
# Response headers that carry the server's identity or the time, not behaviour.
VOLATILE = {"server", "date"}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Both servers serving the FastAPI app, started once for the module."""
    started = {}
    try:
        for name in SERVERS:
            started[name] = AsgiProcess(name, "apps.fastapi_app:app",
                                        tmp_path_factory.mktemp(name)).wait_ready()
        yield started
    finally:
        for server in started.values():
            server.stop()


# -- observing -----------------------------------------------------------------------------------

def http(server, method, path, body=None, headers=None):
    request = urllib.request.Request(server.url + path, data=body, method=method,
                                     headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, head, data = response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        status, head, data = exc.code, exc.headers, exc.read()
    kept = {name.lower(): value for name, value in head.items()
            if name.lower() not in VOLATILE}
    return {"status": status, "headers": kept, "body": data.decode("utf-8", "replace")}


async def websocket_session(server, path, send=(), subprotocols=None, receive=10,
                            close_after=False):
    """Connect, send `send`, collect up to `receive` messages until the close; returns what
    happened: handshake status and chosen subprotocol, messages (type and value), close."""
    seen = {"messages": []}
    try:
        async with connect(server.ws_url + path, subprotocols=subprotocols,
                           open_timeout=10, close_timeout=10) as ws:
            seen["status"] = 101
            seen["subprotocol"] = ws.subprotocol
            seen["x-custom"] = ws.response.headers.get("x-custom")
            for message in send:
                await ws.send(message)
            try:
                for _ in range(receive):
                    message = await asyncio.wait_for(ws.recv(), 10)
                    seen["messages"].append(
                        ["text", message] if isinstance(message, str) else ["bytes", message.hex()])
            except ConnectionClosed:
                pass
            if close_after:
                await ws.close(4100, "client says bye")
            seen["close"] = [ws.close_code, ws.close_reason]
    except InvalidStatus as exc:
        response = exc.response
        seen["status"] = response.status_code
        seen["body"] = response.body.decode("utf-8", "replace")
        seen["headers"] = {name.lower(): value for name, value in response.headers.raw_items()
                           if name.lower() not in VOLATILE}
    return seen


def compare(case, observed, ours=("verb", "uvicorn+verb")):
    """Each of `ours` observed what uvicorn did, or the allowed improvement of it."""
    reference = observed["uvicorn"]
    allowed = ALLOWED.get(case)
    if allowed is not None:
        reference = allowed.expect(reference)
    for name in ours:
        assert observed[name] == reference, \
            f"{case}: {name} differs from uvicorn\n uvicorn: {observed['uvicorn']}\n" \
            f" {name}: {observed[name]}"


def observe_all(servers, fn):
    return {name: fn(server) for name, server in servers.items()}


# -- HTTP ----------------------------------------------------------------------------------------

HTTP_CASES = {
    "http json": ("GET", "/json?q=x%20y", None, None),
    "http stream": ("GET", "/stream", None, None),
    "http state": ("GET", "/state", None, None),
    "http 404": ("GET", "/missing", None, None),
    "http 405": ("POST", "/json", b"", None),
    "http 500": ("GET", "/boom", None, None),
    "http head": ("HEAD", "/json", None, None),
}


@pytest.mark.parametrize("case", sorted(HTTP_CASES))
def test_http(servers, case):
    method, path, body, headers = HTTP_CASES[case]
    compare(case, observe_all(servers, lambda s: http(s, method, path, body, headers)))


def test_http_form_upload(servers):
    boundary = "verbboundary"
    payload = bytes(range(256)) * 40
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nada\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"upload\"; "
            f"filename=\"data.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode() \
        + payload + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    observed = observe_all(servers, lambda s: http(s, "POST", "/form", body, headers))
    compare("http form", observed)
    assert json.loads(observed["verb"]["body"])["size"] == len(payload)


def test_http_scope(servers):
    def scope_of(server):
        seen = http(server, "GET", "/scope?a=1&b=%20", None, {"X-Twice": "1"})
        scope = json.loads(seen["body"])
        scope["headers"] = [h for h in scope["headers"] if h[0] not in ("host",)]
        return scope
    compare("http scope", observe_all(servers, scope_of))


def test_http_scope_behind_a_proxy(servers):
    """X-Forwarded-For/-Proto from a trusted address (127.0.0.1, the default) rewrite the
    scope's client and scheme."""
    def scope_of(server):
        seen = http(server, "GET", "/scope", None,
                    {"X-Forwarded-For": "203.0.113.7, 198.51.100.2",
                     "X-Forwarded-Proto": "https"})
        scope = json.loads(seen["body"])
        return {"client_host": scope["client_host"], "scheme": scope["scheme"]}
    observed = observe_all(servers, scope_of)
    assert observed["uvicorn"] == {"client_host": "198.51.100.2", "scheme": "https"}
    compare("http proxy scope", observed)


@pytest.fixture(scope="module")
def rooted(tmp_path_factory):
    """Both servers with --root-path /api."""
    started = {}
    try:
        for name in ("uvicorn", "verb"):
            started[name] = AsgiProcess(name, "apps.fastapi_app:app",
                                        tmp_path_factory.mktemp(name + "-root"),
                                        ["--root-path", "/api"]).wait_ready()
        yield started
    finally:
        for server in started.values():
            server.stop()


def test_root_path_is_prepended_to_the_path(rooted):
    def observe(server):
        seen = http(server, "GET", "/scope", None)
        ws = asyncio.run(websocket_session(server, "/ws/scope", [], None, 5, False))
        return {"status": seen["status"], "scope": json.loads(seen["body"]) if
                seen["status"] == 200 else seen["body"], "ws": ws}
    observed = observe_all(rooted, observe)
    for side in observed.values():
        if isinstance(side["scope"], dict):
            side["scope"]["headers"] = [h for h in side["scope"]["headers"] if h[0] != "host"]
    compare("root path", observed, ours=("verb",))


def test_http_pipelined_keep_alive(servers):
    """Three requests in one write: three responses, in order, on one connection."""
    def pipelined(server):
        request = b"GET /json?q=%d HTTP/1.1\r\nHost: x\r\n\r\n"
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"".join(request % i for i in range(3)))
            data = b""
            while data.count(b'"q":"') < 3:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        return [part.split(b'"q":"')[1][:1].decode() for part in data.split(b"HTTP/1.1 ")[1:]]
    observed = observe_all(servers, pipelined)
    assert observed["verb"] == ["0", "1", "2"]
    compare("http pipelined", observed)


# -- WebSocket -----------------------------------------------------------------------------------

WS_CASES = {
    "ws echo": ("/ws/echo", ["hello", b"\x00\xffbytes", "é unicode"], None, 3, True),
    "ws subprotocol": ("/ws/sub", [], ["one", "two"], 5, False),
    "ws no subprotocol": ("/ws/sub", [], None, 5, False),
    "ws json": ("/ws/json", ['{"a": [1, 2]}'], None, 5, False),
    "ws close code": ("/ws/close", [], None, 5, False),
    "ws deny": ("/ws/deny", [], None, 5, False),
    "ws denial response": ("/ws/denial", [], None, 5, False),
    "ws raise before accept": ("/ws/raise-before", [], None, 5, False),
    "ws raise after accept": ("/ws/raise-after", [], None, 5, False),
    "ws missing route": ("/ws/nowhere", [], None, 5, False),
    "ws scope": ("/ws/scope?x=1", [], ["p1"], 5, False),
}


@pytest.mark.parametrize("case", sorted(WS_CASES))
def test_websocket(servers, case):
    path, send, subprotocols, receive, close_after = WS_CASES[case]
    compare(case, observe_all(servers, lambda s: asyncio.run(
        websocket_session(s, path, send, subprotocols, receive, close_after))))


def test_websocket_client_close_reaches_the_app(servers):
    """The client's close code and reason arrive in the app's websocket.disconnect."""
    def observe(server):
        asyncio.run(websocket_session(server, "/ws/echo", ["x"], None, 1, True))
        for _ in range(50):
            seen = json.loads(http(server, "GET", "/last-disconnect")["body"])
            if seen["disconnects"]:
                return seen
        return seen
    compare("ws client close", observe_all(servers, observe))


def test_websocket_send_after_close_raises_oserror(servers):
    def observe(server):
        asyncio.run(websocket_session(server, "/ws/after-close", [], None, 2, False))
        for _ in range(50):
            seen = json.loads(http(server, "GET", "/last-disconnect")["body"])
            if seen["disconnects"] and seen["disconnects"][0][0] == "send after close":
                return seen
        return seen
    compare("ws send after close", observe_all(servers, observe))


def test_bad_websocket_version(servers):
    def observe(server):
        head = exchange(server.port, b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        b"Sec-WebSocket-Version: 8\r\n\r\n")
        lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        return {"status": int(lines[0].split()[1]),
                "version": {k.lower(): v for k, v in headers.items()}.get("sec-websocket-version")}
    compare("ws bad version", observe_all(servers, observe))
