"""Fuzz the HTTP side of an upgrade: httptools -> verb.server.http -> verb.core.handshake -> extensions.

The request goes through what the connection layer does with it (verb/server/connection.pxi: httptools'
HttpRequestParser, then `Request`/`Headers`), then through every check of the opening handshake
and permessage-deflate negotiation, and the client's check of a response; the connection
layer's plain upgrade path must agree with check_request on every request it accepts. Inputs are either
raw bytes or a valid upgrade request with fuzzed header values (to get past httptools).

Allowed exceptions: httptools.HttpParserError (and subclasses) and HttpParserUpgrade (not one),
verb.core.errors.HTTPError (HandshakeError is one), verb.core.extensions.NegotiationError. Anything else is
a bug: a client's bytes must never crash the server.

Usage: python tests/fuzz/fuzz_handshake.py [libFuzzer flags] [corpus dirs]
"""

import types

from _common import fuzz, instrumented_imports, pick

with instrumented_imports():
    import httptools
    from verb.core import extensions
    from verb.core import handshake
    from verb.server._server import _plain_upgrade_key
    from verb.server.http import Headers, HTTPError, Request, error_response

ALLOWED = (httptools.HttpParserError, httptools.HttpParserUpgrade, HTTPError,
           extensions.NegotiationError)

ORIGINS = [None, (), ("https://example.com",), ("http://localhost:8000", "null")]
SUBPROTOCOLS = [(), ("chat",), ("v2.json", "chat"), ("",)]
SETTINGS = [
    extensions.DeflateSettings(),
    extensions.DeflateSettings(mode="dedicated"),
    extensions.DeflateSettings(mode="dedicated", server_max_window_bits=9,
                               client_max_window_bits=12),
]
HEADER_NAMES = [b"Host", b"Upgrade", b"Connection", b"Sec-WebSocket-Key",
                b"Sec-WebSocket-Version", b"Sec-WebSocket-Protocol", b"Sec-WebSocket-Extensions",
                b"Origin", b"Cookie", b"Content-Type", b"X-Forwarded-For", b"Content-Length",
                b"Transfer-Encoding"]
VALID_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


class Collector:
    """What verb/server/connection.pxi collects from httptools' callbacks."""

    def __init__(self):
        self.parser = None
        self.requests = []
        self.url = b""
        self.headers = []
        self.body = []

    def on_message_begin(self):
        self.url, self.headers, self.body = b"", [], []

    def on_url(self, url):
        self.url += url

    def on_header(self, name, value):
        self.headers.append((name, value))

    def on_body(self, body):
        self.body.append(body)

    def on_message_complete(self):
        self.requests.append((self.parser.get_method().decode("ascii"),
                              self.parser.get_http_version(), self.url, self.headers,
                              b"".join(self.body)))


def structured_request(fdp):
    lines = [b"GET " + pick(fdp, [b"/", b"/ws", b"/a%20b?x=1&y", b"http://h/p?q#f"]) +
             b" HTTP/1." + pick(fdp, [b"1", b"0", b"1"]),
             b"Host: example.com", b"Upgrade: websocket", b"Connection: Upgrade",
             b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Key: " + VALID_KEY]
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        if fdp.ConsumeIntInRange(0, 3) == 0 and len(lines) > 1:
            del lines[fdp.ConsumeIntInRange(1, len(lines) - 1)]
        name = pick(fdp, HEADER_NAMES)
        value = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 60)).replace(b"\r", b"").replace(
            b"\n", b"")
        lines.append(name + b": " + value)
    return b"\r\n".join(lines) + b"\r\n\r\n" + fdp.ConsumeBytes(fdp.remaining_bytes())


def exercise(method, http_version, url, raw_headers, body, fdp):
    request = Request(method, url, Headers(raw_headers), body, ("127.0.0.1", 1234),
                      http_version, trust_proxy=fdp.ConsumeBool())
    headers = request.headers
    repr(request), repr(headers), len(headers), list(headers), headers.to_dict()
    for name in ("host", "cookie", "Sec-WebSocket-Key", "missing"):
        headers.get(name), headers.get_all(name), name in headers
    request.raw_path, request.query, request.query_all, request.cookies, request.ip
    request.keep_alive
    for call in (lambda: request.path, request.text, request.json):
        try:
            call()
        except HTTPError:
            pass
    handshake.is_upgrade_request(headers)
    options = types.SimpleNamespace(origins=pick(fdp, ORIGINS))
    key = None
    try:
        key = handshake.check_request(request.method, http_version, headers, options)
    except handshake.HandshakeError as exc:
        assert exc.status in (400, 403, 426), exc.status
        error_response(exc.status, exc.message, exc.headers)
    # The connection layer's plain path: what it accepts, check_request accepts, same key.
    plain = _plain_upgrade_key(method.encode("ascii"), http_version, raw_headers,
                               fdp.ConsumeBool(), fdp.ConsumeBool())
    if plain is not None and options.origins is None:
        assert plain == key, (plain, key, raw_headers)
    subprotocol = handshake.select_subprotocol(headers, pick(fdp, SUBPROTOCOLS))
    agreed = extensions.negotiate(headers.get_all("sec-websocket-extensions"),
                                  pick(fdp, SETTINGS))
    if key is not None:
        response = handshake.build_response(
            key, subprotocol, agreed[0] if agreed else None)
        assert response.startswith(b"HTTP/1.1 101 ") and response.endswith(b"\r\n\r\n")
    if agreed is not None:
        # Our own answer must satisfy a client that made such an offer.
        try:
            extensions.ClientOffer(client_max_window_bits=True).accept(agreed[0])
        except extensions.NegotiationError as exc:
            offers = headers.get_all("sec-websocket-extensions")
            raise AssertionError(f"server answered {offers!r} with {agreed[0]!r}, which a client "
                                 f"offering client_max_window_bits rejects: {exc}") from exc
    # The client's side: any response header value.
    try:
        extensions.ClientOffer().accept(headers.get_all("sec-websocket-extensions"))
    except extensions.NegotiationError:
        pass


def test_one_input(data):
    fdp = atheris.FuzzedDataProvider(data)
    raw = fdp.ConsumeBytes(fdp.remaining_bytes()) if fdp.ConsumeBool() else structured_request(fdp)
    collector = Collector()
    parser = collector.parser = httptools.HttpRequestParser(collector)
    try:
        parser.feed_data(raw)
    except (httptools.HttpParserError, httptools.HttpParserUpgrade):
        pass  # after an upgrade (or an error) what follows is not HTTP
    for request in collector.requests[:3]:
        try:
            exercise(*request, fdp)
        except ALLOWED:
            pass


import atheris  # noqa: E402

if __name__ == "__main__":
    fuzz(test_one_input)
