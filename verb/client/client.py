"""The asyncio WebSocket client: `verb.connect` and `verb.reconnecting`.

    import verb

    async with verb.connect("ws://127.0.0.1:3000/chat") as ws:
        ws.send("hello")
        async for message in ws:        # str for text, bytes for binary
            print(message)

    async for ws in verb.reconnecting("ws://127.0.0.1:3000/feed", backoff_max=30):
        try:
            async for message in ws:
                ...
        except verb.ConnectionClosed:
            continue                    # lost: the helper reconnects with backoff

The per-message work (reading into a shared buffer, parsing in place, masking, batching writes)
is compiled, in `verb.client._client`, on the same frame core as the server. This module opens the
connection: URL, TCP/TLS, the opening request (RFC 6455 section 4.1), and the check of the
server's response (status 101, Upgrade/Connection, Sec-WebSocket-Accept, the subprotocol and
permessage-deflate parameters, RFC 7692 section 7.1). A refused or invalid response raises
`HandshakeError`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import random
import ssl as ssl_module
import urllib.parse
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Union

from verb.client._client import (
    ClientWebSocketBase,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
)
from verb.core._deflate import Deflater, Inflater
from verb.core._frame import CLOSED, CLOSING, CONNECTING, OPEN
from verb.core.errors import HandshakeError
from verb.core.extensions import EXTENSION_NAME, ClientOffer, NegotiationError
from verb.core.handshake import accept_key
from verb.core.headers import Headers, check_header, has_token, header_tokens
from verb.core.limits import (
    DEFAULT_CLIENT_MAX_QUEUE,
    DEFAULT_CLIENT_WRITE_LIMIT,
    DEFAULT_COMPRESSION_THRESHOLD,
    DEFAULT_MAX_PAYLOAD_LENGTH,
    check_max_payload_length,
)

__all__ = [
    "CLOSED",
    "CLOSING",
    "CONNECTING",
    "OPEN",
    "ClientWebSocket",
    "Connect",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "HandshakeError",
    "connect",
    "reconnecting",
]

log = logging.getLogger("verb.client")

USER_AGENT = "verb"

HeadersLike = Union[Mapping[str, str], Iterable[tuple[str, str]]]


class ClientWebSocket(ClientWebSocketBase, asyncio.BufferedProtocol):
    """A client connection (see `verb.connect`). The compiled base does the work; asyncio's
    BufferedProtocol as a second base makes uvloop and asyncio read into its buffer.

    Attributes:
        subprotocol: the subprotocol the server chose, or None.
        extensions: names of the negotiated extensions (("permessage-deflate",) or ()).
        deflate_parameters: the agreed permessage-deflate parameters, or None.
        response_headers: the headers of the server's 101 response (`verb.core.headers.Headers`).
        close_code, close_reason: how the connection closed (None while it is open).
        remote_address, local_address: the socket addresses.
    """

    __slots__ = ()


# ---------------------------------------------------------------------------------------------
# URL and request


class _Target:
    __slots__ = ("secure", "host", "port", "resource", "host_header", "user", "password")

    def __init__(self, url: str) -> None:
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"invalid WebSocket URL {url!r}: {exc}") from None
        if parts.scheme not in ("ws", "wss"):
            raise ValueError(f"a WebSocket URL starts with ws:// or wss://, got {url!r}")
        if not parts.hostname:
            raise ValueError(f"the WebSocket URL {url!r} has no host")
        if parts.fragment:
            raise ValueError(f"a WebSocket URL has no fragment (RFC 6455 section 3), got {url!r}")
        self.secure = parts.scheme == "wss"
        self.host = parts.hostname
        default_port = 443 if self.secure else 80
        self.port = port if port is not None else default_port
        self.resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if self.port == default_port else f"{host}:{self.port}"
        self.user = urllib.parse.unquote(parts.username) if parts.username is not None else None
        self.password = urllib.parse.unquote(parts.password or "")


def _header_pairs(headers: HeadersLike | None) -> list[tuple[str, str]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [check_header(name, value) for name, value in items]


def _build_request(target: _Target, key: str, subprotocols: Sequence[str] | None,
                   offer: ClientOffer | None, extra: list[tuple[str, str]]) -> bytes:
    """The opening handshake request (RFC 6455 section 4.1)."""
    lines = [
        f"GET {target.resource} HTTP/1.1",
        f"Host: {target.host_header}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    names = {name.lower() for name, _ in extra}
    if subprotocols:
        lines.append(f"Sec-WebSocket-Protocol: {', '.join(subprotocols)}")
    if offer is not None:
        lines.append(f"Sec-WebSocket-Extensions: {offer.header()}")
    if target.user is not None and "authorization" not in names:
        credentials = f"{target.user}:{target.password}".encode()
        lines.append(f"Authorization: Basic {base64.b64encode(credentials).decode('ascii')}")
    if "user-agent" not in names:
        lines.append(f"User-Agent: {USER_AGENT}")
    lines.extend(f"{name}: {value}" for name, value in extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_RESERVED_HEADERS = frozenset((
    "host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
    "sec-websocket-protocol", "sec-websocket-extensions", "content-length",
    "transfer-encoding",
))


# ---------------------------------------------------------------------------------------------
# Response


def _parse_head(head: bytes) -> tuple[int, str, Headers]:
    """Status line and header fields of a response head (ending with the blank line)."""
    lines = head[:-4].split(b"\r\n")
    status_line = lines[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit() or \
            len(parts[1]) != 3:
        raise HandshakeError.from_response(f"invalid HTTP status line {status_line!r}")
    pairs = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise HandshakeError.from_response(f"invalid HTTP header line {line!r}", int(parts[1]))
        pairs.append((name, value.strip(b" \t")))
    return int(parts[1]), parts[2] if len(parts) > 2 else "", Headers(pairs)


class _ResponseCheck:
    """Checks the server's response (RFC 6455 section 4.1, items 1-6 of the client's
    requirements) and sets up the connection; called by the protocol with the response head."""

    __slots__ = ("key", "subprotocols", "offer", "compression_threshold")

    def __init__(self, key, subprotocols, offer, compression_threshold):
        self.key = key
        self.subprotocols = subprotocols
        self.offer = offer
        self.compression_threshold = compression_threshold

    def __call__(self, ws: ClientWebSocket, head: bytes, rest: bytes) -> None:
        status, reason, headers = _parse_head(head)
        if status != 101:
            text = f"server rejected the WebSocket handshake: HTTP {status}"
            if reason:
                text += f" {reason}"
            raise HandshakeError.from_response(text, status, headers, rest)

        def invalid(message: str) -> HandshakeError:
            return HandshakeError.from_response(
                f"invalid WebSocket handshake response: {message}", status, headers)

        if not has_token(headers, "upgrade", "websocket"):
            raise invalid("no 'Upgrade: websocket' header")
        if not has_token(headers, "connection", "upgrade"):
            raise invalid("no 'Connection: Upgrade' header")
        accepts = headers.get_all("sec-websocket-accept")
        if len(accepts) != 1:
            raise invalid(f"{len(accepts)} Sec-WebSocket-Accept headers, expected one")
        if accepts[0].strip(" \t") != accept_key(self.key):
            raise invalid(f"wrong Sec-WebSocket-Accept {accepts[0]!r}")

        # Section 4.1, item 6: a subprotocol we did not offer fails the connection.
        protocols = header_tokens(headers, "sec-websocket-protocol")
        if protocols:
            if len(protocols) > 1:
                raise invalid(f"more than one subprotocol selected: {', '.join(protocols)}")
            if not self.subprotocols or protocols[0] not in self.subprotocols:
                raise invalid(f"subprotocol {protocols[0]!r} was not offered")
            ws.subprotocol = protocols[0]

        # Section 4.1, item 5, and RFC 7692 section 7.1.
        extensions = headers.get_all("sec-websocket-extensions")
        params = None
        if extensions:
            if self.offer is None:
                if any(value.strip(" \t,") for value in extensions):
                    raise invalid(f"extension {', '.join(extensions)!r} was not offered")
            else:
                try:
                    params = self.offer.accept(extensions)
                except NegotiationError as exc:
                    raise invalid(str(exc)) from None
        if params is not None:
            ws._use_deflate(
                Deflater(window_bits=params.client_max_window_bits,
                         no_context_takeover=params.client_no_context_takeover),
                # No max_size: the parser sets the limit before it inflates a message.
                Inflater(window_bits=max(9, params.server_max_window_bits),
                         no_context_takeover=params.server_no_context_takeover),
                self.compression_threshold)
            ws.deflate_parameters = params
            ws.extensions = (EXTENSION_NAME,)
        ws.response_headers = headers


# ---------------------------------------------------------------------------------------------
# connect


def _deflate_offer(compression, client_max_window_bits, server_max_window_bits,
                   no_context_takeover) -> ClientOffer | None:
    if compression is None:
        return None
    if isinstance(compression, ClientOffer):
        return compression
    if compression != "deflate":
        raise ValueError(f"compression must be None, 'deflate' or a ClientOffer, got "
                         f"{compression!r}")
    return ClientOffer(
        server_no_context_takeover=no_context_takeover,
        client_no_context_takeover=no_context_takeover,
        server_max_window_bits=server_max_window_bits,
        client_max_window_bits=True if client_max_window_bits is None
        else client_max_window_bits)


def _ssl_context(target: _Target, ssl: Any) -> ssl_module.SSLContext | None:
    if ssl is None or ssl is False:
        if target.secure and ssl is None:
            return ssl_module.create_default_context()
        if target.secure:
            raise ValueError("a wss:// URL needs TLS: leave ssl=None or pass an SSLContext")
        return None
    if not target.secure:
        raise ValueError("ssl= is for wss:// URLs; this one is ws://")
    if ssl is True:
        return ssl_module.create_default_context()
    if isinstance(ssl, ssl_module.SSLContext):
        return ssl
    raise TypeError(f"ssl must be None, True or an ssl.SSLContext, got {type(ssl).__name__}")


class Connect:
    """What `connect` returns: await it for a `ClientWebSocket`, or use it as an async context
    manager that closes the connection (code 1000) on the way out."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self._options = options
        self._ws: ClientWebSocket | None = None
        # Fail early (before any await) on bad arguments.
        self._prepare()

    def _prepare(self):
        o = self._options
        target = _Target(self.url)
        ssl = _ssl_context(target, o["ssl"])
        offer = _deflate_offer(o["compression"], o["client_max_window_bits"],
                               o["server_max_window_bits"], o["no_context_takeover"])
        subprotocols = list(o["subprotocols"] or ())
        for protocol in subprotocols:
            check_header("Sec-WebSocket-Protocol", protocol)
        extra = _header_pairs(o["headers"])
        for name, _ in extra:
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by the client itself")
        for name in ("open_timeout", "close_timeout"):
            value = o[name]
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 or None, got {value!r}")
        check_max_payload_length("max_payload_length", o["max_payload_length"])
        if o["max_queue"] < 1:
            raise ValueError(f"max_queue must be >= 1, got {o['max_queue']!r}")
        if o["write_limit"] < 1:
            raise ValueError(f"write_limit must be >= 1, got {o['write_limit']!r}")
        return target, ssl, offer, subprotocols, extra

    def __await__(self):
        return self._open().__await__()

    async def __aenter__(self) -> ClientWebSocket:
        self._ws = await self._open()
        return self._ws

    async def __aexit__(self, *exc_info: Any) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def _open(self) -> ClientWebSocket:
        timeout = self._options["open_timeout"]
        if timeout is None:
            return await self._open_now()
        return await asyncio.wait_for(self._open_now(), timeout)

    async def _open_now(self) -> ClientWebSocket:
        o = self._options
        target, ssl, offer, subprotocols, extra = self._prepare()
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        request = _build_request(target, key, subprotocols, offer, extra)
        check = _ResponseCheck(key, subprotocols, offer, o["compression_threshold"])
        loop = asyncio.get_running_loop()

        def factory() -> ClientWebSocket:
            return ClientWebSocket(
                loop, request, check, max_payload_length=o["max_payload_length"],
                max_queue=o["max_queue"], write_limit=o["write_limit"],
                close_timeout=o["close_timeout"] or 1e9, ping_interval=o["ping_interval"],
                ping_timeout=o["ping_timeout"])

        kwargs: dict[str, Any] = {}
        if ssl is not None:
            kwargs["ssl"] = ssl
            kwargs["server_hostname"] = o["server_hostname"] or target.host
        sock = o["sock"]
        if sock is not None:
            _, ws = await loop.create_connection(factory, sock=sock, **kwargs)
        else:
            _, ws = await loop.create_connection(factory, target.host, target.port, **kwargs)
        try:
            await ws._wait_open()
        except BaseException:
            ws._abort()
            raise
        return ws


def connect(
    url: str,
    *,
    subprotocols: Sequence[str] | None = None,
    headers: HeadersLike | None = None,
    compression: str | ClientOffer | None = None,
    client_max_window_bits: int | None = None,
    server_max_window_bits: int | None = None,
    no_context_takeover: bool = False,
    compression_threshold: int = DEFAULT_COMPRESSION_THRESHOLD,
    ssl: ssl_module.SSLContext | bool | None = None,
    server_hostname: str | None = None,
    sock: Any = None,
    max_payload_length: int | None = DEFAULT_MAX_PAYLOAD_LENGTH,
    max_queue: int = DEFAULT_CLIENT_MAX_QUEUE,
    write_limit: int = DEFAULT_CLIENT_WRITE_LIMIT,
    open_timeout: float | None = 10.0,
    close_timeout: float | None = 10.0,
    ping_interval: float | None = None,
    ping_timeout: float | None = None,
) -> Connect:
    """Open a WebSocket connection: `ws = await connect(url)` or `async with connect(url) as ws`.

    Args:
        url: ws:// or wss:// URL; user:password@ in it is sent as Basic authorization.
        subprotocols: subprotocols to offer, most preferred first; `ws.subprotocol` is the
            server's choice (or None).
        headers: extra request headers (a mapping or (name, value) pairs), e.g. Origin,
            Authorization, Cookie.
        compression: None (off), "deflate" to offer permessage-deflate (RFC 7692), or an
            `verb.core.extensions.ClientOffer` for every parameter.
        client_max_window_bits: with "deflate": our compressor's window (9-15) announced to
            the server; None offers the parameter without a value (the server may choose).
        server_max_window_bits: with "deflate": ask the server for a window of at most this.
        no_context_takeover: with "deflate": both sides reset their compressor per message
            (less memory, worse ratio on similar messages).
        compression_threshold: messages shorter than this many bytes are sent uncompressed.
        ssl: an ssl.SSLContext, or True for the default context; wss:// URLs get the default
            context when None.
        server_hostname: the TLS server name (default: the URL's host).
        sock: an already connected socket to use instead of connecting to the URL's host.
        max_payload_length: largest message accepted (after reassembly and inflation); a
            larger one fails the connection with 1009. None for no limit.
        max_queue: received messages held before reading pauses (backpressure to the server);
            reading resumes once a quarter of that is left.
        write_limit: bytes buffered in the transport above which `drain()` waits (it returns
            once a quarter is left).
        open_timeout: seconds for TCP, TLS and the opening handshake together (None: no limit).
        close_timeout: seconds the closing handshake may take before the connection is
            dropped.
        ping_interval: send a keepalive ping every this many seconds (None: no keepalive).
        ping_timeout: fail the connection (1011) when a keepalive ping gets no pong within
            this many seconds (default: ping_interval).

    Raises (when awaited):
        HandshakeError: the server refused the upgrade (`.status`, e.g. 403) or answered with
            an invalid response (bad Sec-WebSocket-Accept, no Upgrade header, an extension or
            subprotocol not offered).
        OSError: the TCP connection failed (refused, reset, unreachable) or was closed during
            the handshake (ConnectionResetError).
        asyncio.TimeoutError: open_timeout elapsed.
        ssl.SSLError: the TLS handshake failed.
    """
    return Connect(
        url, subprotocols=subprotocols, headers=headers, compression=compression,
        client_max_window_bits=client_max_window_bits,
        server_max_window_bits=server_max_window_bits,
        no_context_takeover=no_context_takeover, compression_threshold=compression_threshold,
        ssl=ssl, server_hostname=server_hostname, sock=sock,
        max_payload_length=max_payload_length, max_queue=max_queue, write_limit=write_limit,
        open_timeout=open_timeout, close_timeout=close_timeout, ping_interval=ping_interval,
        ping_timeout=ping_timeout)


# ---------------------------------------------------------------------------------------------
# reconnecting


def _retryable(exc: BaseException) -> bool:
    """Worth another attempt: the network or the server may recover (refused, reset,
    timeout, a 5xx or 429 answer). A 4xx answer or an invalid response will not."""
    if isinstance(exc, HandshakeError):
        return exc.status is not None and (exc.status >= 500 or exc.status == 429)
    return isinstance(exc, (OSError, asyncio.TimeoutError))


async def reconnecting(
    url: str,
    *,
    backoff_initial: float = 1.0,
    backoff_max: float = 60.0,
    backoff_factor: float = 2.0,
    jitter: float = 0.5,
    max_attempts: int | None = None,
    **options: Any,
) -> AsyncIterator[ClientWebSocket]:
    """Yield a connection, and a new one each time it is lost: `async for ws in reconnecting(url)`.

    Failed attempts (refused, reset, timed out, HTTP 5xx/429) are retried after a delay that
    starts at `backoff_initial` seconds and grows by `backoff_factor` up to `backoff_max`; each
    delay is shortened by a random fraction of at most `jitter` (0: none, 1: "full jitter"), so
    that many clients do not come back at once. A successful connection resets the delay; after
    it is lost the next attempt waits `backoff_initial` (jittered).

    Iteration moves on to a new connection when the body of your loop is done with this one
    and it is closed: by the server (whatever the code) or by the network. Your loop body
    normally reads until the connection ends, e.g. `async for message in ws`.
    Iteration stops when you close the connection yourself (`await ws.close()`), or when you
    leave the loop (`break`, return, an exception): the current connection is then closed when
    the iterator is finalized; `contextlib.aclosing(reconnecting(...))` makes that immediate.

    Args:
        url, **options: as for `connect`.
        backoff_initial, backoff_max, backoff_factor, jitter: the retry delays (seconds).
        max_attempts: consecutive failed attempts after which the last error is raised
            (None: retry forever). Errors that are not worth a retry (HTTP 4xx, an invalid
            handshake response, a bad URL) are raised at once.
    """
    if not 0 <= jitter <= 1:
        raise ValueError(f"jitter must be between 0 and 1, got {jitter!r}")
    if backoff_initial <= 0 or backoff_max < backoff_initial or backoff_factor < 1:
        raise ValueError("need 0 < backoff_initial <= backoff_max and backoff_factor >= 1")
    if max_attempts is not None and max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1 or None, got {max_attempts!r}")
    delay = backoff_initial
    failures = 0
    wait_first = False
    while True:
        if wait_first:
            await asyncio.sleep(delay * (1 - jitter * random.random()))
        try:
            ws = await connect(url, **options)
        except Exception as exc:
            if not _retryable(exc):
                raise
            failures += 1
            if max_attempts is not None and failures >= max_attempts:
                raise
            log.info("verb: connecting to %s failed (%s: %s); retrying", url,
                     type(exc).__name__, exc)
            if wait_first:
                delay = min(delay * backoff_factor, backoff_max)
            wait_first = True
            continue
        failures = 0
        delay = backoff_initial
        wait_first = True
        try:
            yield ws
            await ws.wait_closed()
        finally:
            if not ws.closed:
                await ws.close()
        if ws.close_code is not None and _closed_by_user(ws):
            return


def _closed_by_user(ws: ClientWebSocket) -> bool:
    return bool(ws._closed_by_us())
