"""Helpers for testing verb apps with pytest (the Verb guide's "Testing" section).

    from verb import create_server, ServerProtocol
    from verb.testing import serve, connect

    def test_echo():
        app = create_server(ServerProtocol.WEBSOCKET)
        app.websocket(message=lambda ws, message: ws.send(f"Echo: {message}"))
        with serve(app) as server, connect(server) as ws:
            ws.send("test")
            assert ws.recv(timeout=5) == "Echo: test"

`serve` runs the app on 127.0.0.1 on a free port in a background thread and stops it
gracefully afterwards. `connect` opens a client with the `websockets` library (a test
dependency: `pip install verb-ws[test]`), an independent implementation of the protocol.
"""

from __future__ import annotations

import contextlib
import http.client
import json as _json


@contextlib.contextmanager
def serve(app, port: int = 0, host: str = "127.0.0.1"):
    """Serve `app` in a background thread for the duration of the block; yields the Server."""
    with app.run_in_thread(port=port, host=host) as server:
        yield server


def connect(server, path: str = "/", **kwargs):
    """A synchronous WebSocket client connected to `server` (websockets.sync.client)."""
    try:
        from websockets.sync.client import connect as ws_connect
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("verb.testing.connect needs the `websockets` package "
                           "(pip install verb-ws[test])") from exc
    kwargs.setdefault("proxy", None)
    kwargs.setdefault("open_timeout", 5)
    return ws_connect(server.ws_url + path, **kwargs)


class HTTPResult:
    """Status, headers and body of an HTTP response; `.json()` and `.text` for convenience."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self):
        return _json.loads(self.body)


def request(server, method: str = "GET", path: str = "/", body=None, headers=None) -> HTTPResult:
    """Make one HTTP request to `server` and return the whole response."""
    if isinstance(body, (dict, list)):
        body = _json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return HTTPResult(response.status, dict(response.getheaders()), response.read())
    finally:
        conn.close()
