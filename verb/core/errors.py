"""The errors verb answers with an HTTP status: `HTTPError` and the handshake's `HandshakeError`.

Both sides of a connection share them: the server raises `HandshakeError` for a refused upgrade
(and answers it as an `HTTPError`), the client raises it when a server refuses or answers with a
response that fails the checks of RFC 6455 section 4.1.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from verb.core.headers import check_extra_headers, check_status, reason_phrase

__all__ = ["HTTPError", "HandshakeError"]


class HTTPError(Exception):
    """An error meant for the client: the router answers it with its status, message and headers.

    Raise it from a handler or middleware (`raise HTTPError(401)`), or pass it to `next(...)`.

    Attributes:
        status: The HTTP status code, 100-599 (normally 4xx or 5xx).
        message: The text sent as the response body; the reason phrase by default.
        headers: Extra response headers, a tuple of validated `(name, value)` pairs.
    """

    def __init__(
        self,
        status: int,
        message: str | None = None,
        headers: dict[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> None:
        self.status = check_status(status)
        self.message = reason_phrase(status) if message is None else str(message)
        self.headers = check_extra_headers(headers)
        super().__init__(status, self.message)

    def __str__(self) -> str:
        return f"{self.status} {self.message}"


class HandshakeError(HTTPError):
    """A failed opening handshake (RFC 6455 section 4).

    On the server, a refused upgrade: `status` 400 (malformed request), 403 (origin not
    allowed) or 426 (not an upgrade, or a version other than 13), with the `headers` the answer
    must carry (e.g. `Sec-WebSocket-Version: 13` with a 426); the connection layer answers it as
    any `HTTPError`. On the client, the server refused (its `status`, e.g. 403) or its response
    failed a check (`status` 101), or no complete response head arrived (`status` None); then
    `headers` are the response's headers (a `verb.core.headers.Headers`, or None) and `body` the
    bytes of the body that arrived with the head.

    Attributes:
        status: The HTTP status, or None (client side, no response head).
        message: Why, for the response body and the log.
        headers: As above.
        body: Client side: the start of the response body; b"" on the server.
    """

    body: bytes = b""

    @classmethod
    def from_response(cls, message: str, status: int | None = None, headers: Any = None,
                      body: bytes = b"") -> HandshakeError:
        """The client's error: the server's response, kept as it came (not validated as the
        headers of an answer would be)."""
        error = cls.__new__(cls)
        Exception.__init__(error, status, message)
        error.status, error.message, error.headers, error.body = status, message, headers, body
        return error

    def __str__(self) -> str:
        return self.message if self.status is None else f"{self.status} {self.message}"
