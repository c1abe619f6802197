"""Per-connection cost of the opening handshake: request checks and the 101 response.

Run: .venv/bin/python -m pytest benchmarks/test_handshake_bench.py --benchmark-only

`build_response` runs once per accepted connection; SHA-1 of the key is about half of its time.
`check_request` is measured on headers already decoded (the first read of a `Headers` decodes
them once), with the websockets library's `accept_key` as a reference point.
"""

import pytest
from websockets.utils import accept_key as websockets_accept_key

from verb.core.handshake import accept_key, build_response, check_request, select_subprotocol
from verb.server.http import Headers
from verb.server.options import Options

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
OPTIONS = Options(
    protocols=("graphql-transport-ws", "chat"),
    headers=(("Server", "verb"),),
    origins=("https://example.com",),
)
HEADERS = Headers(
    [
        (b"Host", b"example.com"),
        (b"Connection", b"keep-alive, Upgrade"),
        (b"Upgrade", b"websocket"),
        (b"Origin", b"https://example.com"),
        (b"Sec-WebSocket-Version", b"13"),
        (b"Sec-WebSocket-Key", KEY.encode()),
        (b"Sec-WebSocket-Protocol", b"chat, superchat"),
    ]
)
HEADERS.get("host")  # decode once, as a connection does before the checks


@pytest.mark.benchmark(group="handshake")
def test_build_response_plain(benchmark):
    benchmark(build_response, KEY)


@pytest.mark.benchmark(group="handshake")
def test_build_response_subprotocol_and_headers(benchmark):
    benchmark(build_response, KEY, "chat", None, OPTIONS.headers)


@pytest.mark.benchmark(group="handshake")
def test_check_request(benchmark):
    benchmark(check_request, "GET", "1.1", HEADERS, OPTIONS)


@pytest.mark.benchmark(group="handshake")
def test_select_subprotocol(benchmark):
    benchmark(select_subprotocol, HEADERS, OPTIONS.protocols)


@pytest.mark.benchmark(group="accept key")
def test_accept_key(benchmark):
    benchmark(accept_key, KEY)


@pytest.mark.benchmark(group="accept key")
def test_accept_key_websockets(benchmark):
    benchmark(websockets_accept_key, KEY)
