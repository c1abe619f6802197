"""The WebSocket opening handshake, server side (RFC 6455 §4.2): request checks, 101 response.

Sans-I/O: the connection layer hands over the parsed request line and headers; this module says
whether the request is a valid upgrade (`check_request`), which subprotocol to speak
(`select_subprotocol`) and what bytes to answer with (`build_response`). A refused handshake is a
`HandshakeError` (`verb.core.errors`) carrying the status and headers to answer with.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from binascii import b2a_base64
from collections.abc import Iterable, Sequence
from hashlib import sha1
from typing import Any

from verb.core.errors import HandshakeError
from verb.core.headers import Headers, check_header, has_token, header_tokens, normalize_origin

__all__ = [
    "GUID",
    "HandshakeError",
    "accept_key",
    "build_response",
    "check_request",
    "is_upgrade_request",
    "select_subprotocol",
]

# RFC 6455 §1.3 and §4.2.2, item 5.4: the GUID appended to the client's key.
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

_RESPONSE_HEAD = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: "
)

# RFC 9110 §15.5.22: a 426 response MUST say which protocol to upgrade to.
_UPGRADE_REQUIRED_HEADERS = (("Upgrade", "websocket"),)
# RFC 6455 §4.4: answer an unsupported version with the versions the server speaks.
_VERSION_HEADERS = (("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"))


def is_upgrade_request(headers: Headers) -> bool:
    """Tell whether a request asks for a WebSocket upgrade (RFC 6455 §4.2.1, items 3 and 4).

    Both checks are case-insensitive and read comma-separated lists, so
    `Connection: keep-alive, Upgrade` (what Firefox sends) counts.

    Args:
        headers: The request headers.

    Returns:
        True when `Upgrade` lists `websocket` and `Connection` lists `upgrade`.
    """
    return has_token(headers, "upgrade", "websocket") and has_token(
        headers, "connection", "upgrade"
    )


def accept_key(key: str | bytes) -> str:
    """The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 §4.2.2, item 5.4).

    Args:
        key: The client's key, as sent.

    Returns:
        base64(SHA-1(key + GUID)).
    """
    return _accept(key).decode("ascii")


def _accept(key: str | bytes) -> bytes:
    if isinstance(key, str):
        key = key.encode("latin-1")
    return b2a_base64(sha1(key + GUID).digest(), newline=False)


def check_request(method: str, http_version: str, headers: Headers, options: Any) -> str:
    """Check an upgrade request against RFC 6455 §4.2.1 and the server's options.

    The checks, in order: method GET, HTTP/1.1 or later, exactly one Host, `Upgrade: websocket`
    with `Connection: upgrade`, `Sec-WebSocket-Version: 13`, a key that is the base64 of 16
    bytes, and, when `options.origins` is set, an allowed Origin. A request without Origin is
    allowed: only browsers send it, and non-browser clients can forge it anyway (RFC 6455 §10.2).

    A method other than GET is answered 400, not 405 (considered, and what websockets sends):
    RFC 6455 §4.2.1 makes GET part of a well-formed handshake and answers a handshake that does
    not match its description with "an appropriate error code (such as 400 Bad Request)"; one
    status for every malformed handshake keeps the rule simple.

    Args:
        method: The request method.
        http_version: "1.1", "1.0", ...
        headers: The request headers.
        options: The `verb.server.options.Options` of the route (only `origins` is read).

    Returns:
        The validated Sec-WebSocket-Key, for `build_response`.

    Raises:
        HandshakeError: 400, 403 or 426, with a message and the headers the answer needs.
    """
    # RFC 6455 §4.2.1, item 1: "An HTTP/1.1 or higher GET request".
    if method != "GET":
        raise HandshakeError(400, f"a WebSocket handshake is a GET request, not {method}")
    try:
        major, minor = (int(part) for part in http_version.split("."))
    except ValueError:
        major, minor = 0, 0
    if (major, minor) < (1, 1):
        raise HandshakeError(400, f"a WebSocket handshake needs HTTP/1.1, not HTTP/{http_version}")

    # Item 2: a Host header field. RFC 9112 §3.2: 400 for none or more than one.
    if len(headers.get_all("host")) != 1:
        raise HandshakeError(400, "a request needs exactly one Host header")

    # Items 3 and 4.
    if not is_upgrade_request(headers):
        raise HandshakeError(
            426,
            "this is a WebSocket endpoint: the request needs Upgrade: websocket and "
            "Connection: Upgrade",
            _UPGRADE_REQUIRED_HEADERS,
        )

    # Item 6; §4.4 for the answer to another version.
    versions = header_tokens(headers, "sec-websocket-version")
    if versions != ["13"]:
        raise HandshakeError(
            426,
            f"unsupported Sec-WebSocket-Version {', '.join(versions) or '(none)'}; "
            "this server speaks version 13",
            _VERSION_HEADERS,
        )

    # Item 5: the key is a base64-encoded 16-byte value (24 characters).
    keys = headers.get_all("sec-websocket-key")
    if len(keys) != 1:
        raise HandshakeError(400, "a request needs exactly one Sec-WebSocket-Key header")
    key = keys[0].strip(" \t")
    if len(key) != 24 or not _is_base64_of_16_bytes(key):
        raise HandshakeError(400, f"invalid Sec-WebSocket-Key {key!r}: not base64 of 16 bytes")

    # Item 7 and §10.2: the Origin header, checked when the server lists allowed origins.
    allowed = options.origins
    if allowed is not None:
        origins = headers.get_all("origin")
        if len(origins) > 1:
            raise HandshakeError(400, "a request may carry only one Origin header")
        if origins:
            origin = origins[0].strip(" \t")
            if origin not in allowed:  # allowed is normalised; browsers send that form
                try:
                    origin = normalize_origin(origin)
                except ValueError:
                    origin = None
            if origin not in allowed:
                raise HandshakeError(403, f"origin {origins[0]!r} is not allowed")
    return key


def _is_base64_of_16_bytes(key: str) -> bool:
    try:
        # validate=True refuses characters outside the base64 alphabet instead of skipping them.
        return len(b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):  # ValueError: non-ASCII text
        return False


def select_subprotocol(headers: Headers, server_protocols: Sequence[str]) -> str | None:
    """Choose the subprotocol to speak (RFC 6455 §4.2.2, item 5.4; §1.9).

    The server's preference decides: the first of `server_protocols` that the client offers in
    its `Sec-WebSocket-Protocol` header(s). Names compare case-sensitively.

    Args:
        headers: The request headers.
        server_protocols: The server's subprotocols, most preferred first.

    Returns:
        The chosen subprotocol, or None when they share none (the handshake then proceeds
        without one; the client decides whether to go on).
    """
    if not server_protocols:
        return None
    offered = header_tokens(headers, "sec-websocket-protocol")
    if not offered:
        return None
    for protocol in server_protocols:
        if protocol in offered:
            return protocol
    return None


def _encode_extra_headers(extra_headers: Iterable[tuple[str, str]]) -> bytes:
    """The user's header lines and the blank line ending the response."""
    lines = (check_header(name, value) for name, value in extra_headers)
    return b"".join(f"{n}: {v}\r\n".encode("latin-1") for n, v in lines) + b"\r\n"


# id(headers tuple) -> (the tuple, its encoding). Holding the tuple keeps its id from being
# reused; options.headers is one tuple per route, so a handful of entries in practice.
_encoded_extra_headers: dict[int, tuple[tuple[tuple[str, str], ...], bytes]] = {}


def _extra_headers_tail(extra_headers: Iterable[tuple[str, str]]) -> bytes:
    entry = _encoded_extra_headers.get(id(extra_headers))
    if entry is not None and entry[0] is extra_headers:
        return entry[1]
    tail = _encode_extra_headers(extra_headers)
    if (
        type(extra_headers) is tuple
        and all(type(pair) is tuple for pair in extra_headers)
        and len(_encoded_extra_headers) < 64
    ):
        _encoded_extra_headers[id(extra_headers)] = (extra_headers, tail)
    return tail


# Encoded Sec-WebSocket-Protocol / -Extensions lines by value: servers choose among few values.
_protocol_lines: dict[str, bytes] = {}
_extension_lines: dict[str, bytes] = {}


def _header_line(cache: dict[str, bytes], name: str, value: str) -> bytes:
    line = cache.get(value)
    if line is None:
        name, value = check_header(name, value)
        line = f"{name}: {value}\r\n".encode("latin-1")
        if len(cache) < 256:
            cache[value] = line
    return line


def build_response(
    key: str | bytes,
    subprotocol: str | None = None,
    extensions: str | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """The `101 Switching Protocols` response accepting a handshake (RFC 6455 §4.2.2, item 5).

    Runs once per connection, so the constant part is precomputed and the user's headers are
    encoded once per distinct tuple; what is left is the SHA-1 and base64 of the accept value.

    Args:
        key: The client's Sec-WebSocket-Key, as returned by `check_request`.
        subprotocol: The chosen subprotocol (`select_subprotocol`), or None.
        extensions: The Sec-WebSocket-Extensions value of the accepted extensions (RFC 7692
            §5), or None.
        extra_headers: The user's headers, normally `options.headers`. A tuple of tuples is
            validated and encoded once and the bytes reused; other iterables every call.

    Returns:
        The complete response bytes, ending with the blank line.

    Raises:
        ValueError: A header value with CR or LF, or an invalid extra header.
    """
    accept = _accept(key)
    tail = _extra_headers_tail(extra_headers) if extra_headers else b"\r\n"
    if subprotocol is None and extensions is None:
        return b"".join((_RESPONSE_HEAD, accept, b"\r\n", tail))
    negotiated = b""
    if subprotocol is not None:
        negotiated = _header_line(_protocol_lines, "Sec-WebSocket-Protocol", subprotocol)
    if extensions is not None:
        negotiated += _header_line(_extension_lines, "Sec-WebSocket-Extensions", extensions)
    return b"".join((_RESPONSE_HEAD, accept, b"\r\n", negotiated, tail))
