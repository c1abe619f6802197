"""HTTP/1.1 messages of the server: request and response objects and their serialization.

Sans-I/O: the connection layer parses the request (httptools), builds a `Request` from the
method, target, header pairs and body, lets the router fill a `Response`, and writes
`Response.to_bytes()`. Nothing here touches a socket or an event loop. The header grammar and
`Headers` live in `verb.core.headers`, `HTTPError` in `verb.core.errors`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Union
from urllib.parse import parse_qsl, quote, unquote

import orjson

from verb.core.errors import HTTPError
from verb.core.headers import (
    FORBIDDEN_IN_VALUE,
    OWS,
    RESERVED_RESPONSE_HEADERS,
    Headers,
    check_extra_headers,
    check_header,
    check_status,
    header_tokens,
    is_token,
    reason_phrase,
)

__all__ = [
    "HTTPError",
    "Headers",
    "Request",
    "Response",
    "decode_path_segment",
    "error_response",
    "status_line",
]

HeaderPairs = Iterable[tuple[Union[str, bytes], Union[str, bytes]]]

_STATUS_LINES: dict[int, bytes] = {}


def status_line(status: int) -> bytes:
    """`HTTP/1.1 <status> <reason>\\r\\n`, encoded once per status."""
    line = _STATUS_LINES.get(status)
    if line is None:
        line = f"HTTP/1.1 {status} {reason_phrase(status)}\r\n".encode("latin-1")
        _STATUS_LINES[status] = line
    return line



def error_response(
    status: int,
    message: str | None = None,
    headers: dict[str, str] | Iterable[tuple[str, str]] | None = None,
    keep_alive: bool = False,
) -> bytes:
    """A small text/plain HTTP/1.1 response, for errors the connection layer answers itself.

    Used for 400, 403, 404, 414, 426, 431, 500, 503 and the like, before or instead of routing.

    Args:
        status: The status code.
        message: The body text (UTF-8); the reason phrase by default. A newline is appended.
        headers: Extra headers, e.g. `{"Sec-WebSocket-Version": "13"}` with a 426.
        keep_alive: False adds `Connection: close` (the caller then closes the connection).

    Returns:
        The complete response bytes.
    """
    status = check_status(status)
    body = ((reason_phrase(status) if message is None else str(message)) + "\n").encode("utf-8")
    lines = [status_line(status)]
    for name, value in check_extra_headers(headers):
        lines.append(f"{name}: {value}\r\n".encode("latin-1"))
    lines.append(b"Content-Type: text/plain; charset=utf-8\r\n")
    lines.append(b"Content-Length: %d\r\n" % len(body))
    if not keep_alive:
        lines.append(b"Connection: close\r\n")
    lines.append(b"\r\n")
    lines.append(body)
    return b"".join(lines)


# --- headers -------------------------------------------------------------------------------------


# --- request -------------------------------------------------------------------------------------


def _split_target(target: str) -> tuple[str, str]:
    """Split a request target (RFC 9112 §3.2) into its still-encoded path and its query."""
    path, _, query = target.partition("?")
    path = path.partition("#")[0]
    query = query.partition("#")[0]
    if not path.startswith("/") and "://" in path:
        # absolute-form, RFC 9112 §3.2.2: a server MUST accept it; the path follows the authority.
        rest = path.split("://", 1)[1]
        slash = rest.find("/")
        path = rest[slash:] if slash >= 0 else "/"
    return path, query


def decode_path_segment(segment: str) -> str:
    """Percent-decode one path segment as UTF-8 (RFC 3986 §2.1).

    Args:
        segment: A segment of a request path, still percent-encoded. `+` is kept: it means a space
            only in query strings.

    Returns:
        The decoded text. A `%` not followed by two hex digits is kept as is.

    Raises:
        HTTPError: 400 when the decoded bytes are not valid UTF-8.
    """
    if "%" not in segment:
        return segment
    try:
        return unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise HTTPError(400, f"malformed percent-encoding in path: {segment!r}") from None


class Request:
    """An HTTP request as route handlers and middleware see it (Express/Verb style).

    Everything derived from the raw parts is computed on first use and cached.

    Attributes:
        method: The method, upper case ("GET").
        url: The request target exactly as sent ("/search?q=a%20b").
        headers: The header fields (`Headers`).
        body: The body bytes (b"" when there is none).
        params: Route parameters, filled in by the router (`{"id": "42"}`).
        http_version: "1.1" or "1.0".
    """

    __slots__ = (
        "_cookies",
        "_path",
        "_query",
        "_query_all",
        "_raw_path",
        "_raw_query",
        "body",
        "headers",
        "http_version",
        "method",
        "params",
        "remote_address",
        "trust_proxy",
        "url",
    )

    def __init__(
        self,
        method: str | bytes,
        url: str | bytes,
        headers: Headers | HeaderPairs | None,
        body: bytes = b"",
        remote_address: str | tuple[Any, ...] | None = None,
        http_version: str = "1.1",
        trust_proxy: bool = False,
    ) -> None:
        """Build a request from what the parser delivered.

        Args:
            method: The method, any case; bytes are decoded as ASCII.
            url: The request target, str or bytes (latin-1, byte for byte).
            headers: A `Headers`, or the raw `(name, value)` pairs.
            body: The body.
            remote_address: The peer's address: a host string, or the `peername` tuple of the
                transport (its first item is used).
            http_version: "1.1" or "1.0".
            trust_proxy: Let `ip` take the last X-Forwarded-For entry: the address that the
                reverse proxy in front of us (one, that you control) appended.
        """
        if isinstance(method, (bytes, bytearray)):
            method = method.decode("ascii", "replace")
        self.method = method.upper()
        self.url = url.decode("latin-1") if isinstance(url, (bytes, bytearray)) else url
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = bytes(body) if not isinstance(body, bytes) else body
        self.params: dict[str, str] = {}
        self.http_version = http_version
        if isinstance(remote_address, tuple):
            remote_address = remote_address[0] if remote_address else None
        self.remote_address = remote_address
        self.trust_proxy = trust_proxy
        self._raw_path: str | None = None
        self._raw_query = ""
        self._path: str | None = None
        self._query_all: dict[str, list[str]] | None = None
        self._query: dict[str, str] | None = None
        self._cookies: dict[str, str] | None = None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"

    @property
    def raw_path(self) -> str:
        """The path of the target without the query, still percent-encoded (what routing splits).

        An absolute-form target ("http://host/a?b", RFC 9112 §3.2.2) gives "/a".
        """
        if self._raw_path is None:
            self._raw_path, self._raw_query = _split_target(self.url)
        return self._raw_path

    @property
    def path(self) -> str:
        """The percent-decoded path without the query ("/caf%C3%A9" -> "/café"; "+" stays "+").

        Raises:
            HTTPError: 400 when a percent-encoded sequence is not UTF-8.
        """
        if self._path is None:
            raw = self.raw_path
            self._path = "/".join(decode_path_segment(part) for part in raw.split("/"))
        return self._path

    @property
    def query_all(self) -> dict[str, list[str]]:
        """Every query parameter with all its values, in order: "?a=1&a=2" -> {"a": ["1", "2"]}.

        `+` is a space, percent-escapes are UTF-8 (invalid ones become U+FFFD), a name without
        "=" has the value "" (HTML URL-encoded form rules).
        """
        if self._query_all is None:
            self.raw_path  # noqa: B018 - splits the target
            query_all: dict[str, list[str]] = {}
            for name, value in parse_qsl(self._raw_query, keep_blank_values=True):
                query_all.setdefault(name, []).append(value)
            self._query_all = query_all
        return self._query_all

    @property
    def query(self) -> dict[str, str]:
        """Query parameters, one value each: the FIRST when a name repeats ("?a=1&a=2" -> "1").

        First-value semantics match `URLSearchParams.get` (what Verb code on Bun sees) and
        werkzeug; `query_all` has every value.
        """
        if self._query is None:
            self._query = {name: values[0] for name, values in self.query_all.items()}
        return self._query

    @property
    def cookies(self) -> dict[str, str]:
        """Cookies from the Cookie header(s), leniently: pairs without "=" are skipped, double
        quotes around a value are removed, values are percent-decoded, and the first of two
        cookies with one name wins (RFC 6265 §5.4 lists the more specific path first)."""
        if self._cookies is None:
            cookies: dict[str, str] = {}
            for header in self.headers.get_all("cookie"):
                for pair in header.split(";"):
                    name, equals, value = pair.partition("=")
                    name = name.strip()
                    if not equals or not name or name in cookies:
                        continue
                    value = value.strip()
                    if len(value) >= 2 and value[0] == value[-1] == '"':
                        value = value[1:-1]
                    cookies[name] = unquote(value) if "%" in value else value
            self._cookies = cookies
        return self._cookies

    @property
    def ip(self) -> str | None:
        """The client's address: the peer's, or with `trust_proxy` the last X-Forwarded-For
        entry when there is one.

        The last entry is the one the proxy in front of us appended (nginx's
        `$proxy_add_x_forwarded_for`) for the address it saw; entries before it are whatever
        the client sent, so they are never trusted. One proxy hop is trusted.
        """
        if self.trust_proxy:
            forwarded = self.headers.get_all("x-forwarded-for")
            if forwarded:
                last = forwarded[-1].rsplit(",", 1)[-1].strip(OWS)
                if last:
                    return last
        return self.remote_address

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may serve another request (RFC 9112 §9.3): in HTTP/1.1 unless
        the client sent `Connection: close`; in HTTP/1.0 only with `Connection: keep-alive`."""
        options = {token.lower() for token in header_tokens(self.headers, "connection")}
        if "close" in options:
            return False
        if self.http_version == "1.0":
            return "keep-alive" in options
        return True

    def _charset(self) -> str:
        content_type = self.headers.get("content-type") or ""
        for parameter in content_type.split(";")[1:]:
            name, _, value = parameter.partition("=")
            if name.strip(OWS).lower() == "charset":
                return value.strip(OWS).strip('"') or "utf-8"
        return "utf-8"

    def text(self) -> str:
        """The body decoded with the Content-Type charset (UTF-8 when none is given).

        Raises:
            HTTPError: 415 for an unknown charset, 400 when the body does not decode.
        """
        charset = self._charset()
        try:
            return self.body.decode(charset)
        except LookupError:
            raise HTTPError(415, f"unsupported charset {charset!r}") from None
        except UnicodeDecodeError as exc:
            raise HTTPError(400, f"request body is not valid {charset}: {exc.reason}") from None

    def json(self) -> Any:
        """The body parsed as JSON (RFC 8259, UTF-8).

        Raises:
            HTTPError: 400 when the body is not valid JSON (an empty body included).
        """
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise HTTPError(400, f"invalid JSON body: {exc}") from None


# --- response ------------------------------------------------------------------------------------

# Framing and connection management belong to the serializer and the connection layer.
# RFC 9110 §6.4.1: no content in 1xx, 204 and 304 responses; §8.6: no Content-Length in 1xx/204.
_NO_BODY_STATUSES = frozenset({204, 304})

_HTML = "text/html; charset=utf-8"
_TEXT = "text/plain; charset=utf-8"
_JSON = "application/json"
_OCTETS = "application/octet-stream"

_COOKIE_ATTRIBUTES = {
    "path": "Path",
    "domain": "Domain",
    "max_age": "Max-Age",
    "maxAge": "Max-Age",
    "expires": "Expires",
    "secure": "Secure",
    "http_only": "HttpOnly",
    "httpOnly": "HttpOnly",
    "same_site": "SameSite",
    "sameSite": "SameSite",
}


class Response:
    """The response a route handler fills in; chainable like Express's `res`.

    `status()` and `header()` may be called any time before the router finishes (even after a
    send: a middleware may add headers once `await next()` returns). One send per response:
    `html`, `json`, `text`, `send` and `redirect` set the body and mark the response `sent`; a
    second send raises RuntimeError. A Content-Type set with `header()` wins over the one a send
    method picks.

    Attributes:
        status_code: The status code (200 until `status()` is called).
        status_set: Whether `status()` was called (the router's default for an unsent response
            depends on it).
        body: The body bytes.
        sent: Whether a send method was called.
    """

    __slots__ = ("_content_type", "_headers", "body", "sent", "status_code", "status_set")

    def __init__(self) -> None:
        """An empty 200 response, not sent."""
        self.reset()

    def reset(self) -> None:
        """Forget status, headers and body: used when an error replaces a half-built response."""
        self.status_code = 200
        self.status_set = False
        self.body = b""
        self.sent = False
        self._headers: list[tuple[str, str]] = []
        self._content_type: str | None = None

    def __repr__(self) -> str:
        return f"<Response {self.status_code} sent={self.sent} {len(self.body)} bytes>"

    @property
    def headers(self) -> list[tuple[str, str]]:
        """A copy of the headers set so far, as `(name, value)` pairs."""
        return list(self._headers)

    def get_header(self, name: str) -> str | None:
        """The value of header `name` (any case) as set so far, or None."""
        key = name.lower()
        for existing, value in self._headers:
            if existing.lower() == key:
                return value
        return None

    def status(self, code: int) -> Response:
        """Set the status code (100-599) and return the response."""
        self.status_code = check_status(code)
        self.status_set = True
        return self

    def header(self, name: str, value: str | int) -> Response:
        """Set header `name`, replacing an earlier one of that name (Set-Cookie adds another).

        Raises:
            ValueError: Invalid name or value (CR/LF, ...), or a header the server owns
                (Content-Length, Transfer-Encoding, Connection).
        """
        name, value = check_header(name, value)
        key = name.lower()
        if key in RESERVED_RESPONSE_HEADERS:
            raise ValueError(
                f"{name} is set by the server (from the body and the connection state); "
                "it cannot be set by a handler"
            )
        if key != "set-cookie":
            self._headers = [pair for pair in self._headers if pair[0].lower() != key]
        self._headers.append((name, value))
        return self

    def _send(self, body: bytes, content_type: str | None) -> Response:
        if self.sent:
            raise RuntimeError("response already sent: a handler may send once")
        self.body = body
        self._content_type = content_type
        self.sent = True
        return self

    def html(self, html: str) -> Response:
        """Send `html` as text/html, UTF-8."""
        return self._send(str(html).encode("utf-8"), _HTML)

    def text(self, text: str) -> Response:
        """Send `text` as text/plain, UTF-8."""
        return self._send(str(text).encode("utf-8"), _TEXT)

    def json(self, obj: Any) -> Response:
        """Send `obj` serialized by orjson as application/json.

        Raises:
            TypeError: `obj` is not JSON-serializable.
        """
        try:
            body = orjson.dumps(obj)
        except orjson.JSONEncodeError as exc:
            raise TypeError(f"response is not JSON-serializable: {exc}") from None
        return self._send(body, _JSON)

    def send(self, data: Any = None) -> Response:
        """Send `data`, typed by what it is: str -> text/html (as Express does), bytes-like ->
        application/octet-stream, dict or list -> JSON, None -> an empty body.

        Raises:
            TypeError: Any other type.
        """
        if data is None:
            return self._send(b"", None)
        if isinstance(data, str):
            return self.html(data)
        if isinstance(data, (bytes, bytearray, memoryview)):
            return self._send(bytes(data), _OCTETS)
        if isinstance(data, (dict, list)):
            return self.json(data)
        raise TypeError(
            f"cannot send a {type(data).__name__}: send str, bytes, dict, list or None "
            "(or use json() for other JSON values)"
        )

    def redirect(self, url: str, status: int = 302) -> Response:
        """Redirect to `url` with a 3xx `status` (Location header, empty body).

        Characters a URL cannot hold as they are (non-ASCII, spaces) are percent-encoded as
        UTF-8 (RFC 3986 §2.1); existing escapes and URL delimiters are kept.

        Raises:
            ValueError: `status` is not 3xx, or `url` contains control characters (CR, LF, ...).
        """
        if check_status(status) // 100 != 3:
            raise ValueError(f"a redirect status is 3xx, not {status}")
        if FORBIDDEN_IN_VALUE.search(url):
            raise ValueError(f"redirect URL {url!r} contains a control character (CR, LF, ...)")
        self.status(status).header("Location", quote(url, safe="!#$%&'()*+,/:;=?@[]~"))
        return self._send(b"", None)

    def cookie(self, name: str, value: str, **attributes: Any) -> Response:
        """Add a Set-Cookie header (RFC 6265 §4.1); the value is percent-encoded.

        Args:
            name: The cookie name, a token.
            value: The cookie value.
            **attributes: `path`, `domain`, `max_age` (seconds), `expires` (a preformatted
                HTTP date string), `secure`, `http_only` (bools), `same_site` ("Strict", "Lax",
                "None"); Verb's camelCase spellings `maxAge`, `httpOnly`, `sameSite` work too.

        Raises:
            TypeError: An unknown attribute.
            ValueError: An invalid name or attribute value.
        """
        if not is_token(name):
            raise ValueError(f"invalid cookie name {name!r}: a cookie name is a token")
        parts = [f"{name}={quote(str(value), safe='')}"]
        for key, attribute_value in attributes.items():
            attribute = _COOKIE_ATTRIBUTES.get(key)
            if attribute is None:
                raise TypeError(
                    f"unknown cookie attribute {key!r}; known: path, domain, max_age, expires, "
                    "secure, http_only, same_site"
                )
            if attribute in ("Secure", "HttpOnly"):
                if attribute_value:
                    parts.append(attribute)
            elif attribute_value is not None:
                if attribute == "Max-Age":
                    attribute_value = int(attribute_value)
                text = str(attribute_value)
                if ";" in text:
                    raise ValueError(f"cookie attribute {key} must not contain ';': {text!r}")
                parts.append(f"{attribute}={text}")
        return self.header("Set-Cookie", "; ".join(parts))

    def to_bytes(self, head_request: bool = False, keep_alive: bool = True) -> bytes:
        """Serialize as an HTTP/1.1 response (RFC 9112 §4, §6).

        Args:
            head_request: Answer to a HEAD request: the same headers, Content-Length of the body
                that a GET would have had, and no body (RFC 9110 §9.3.2).
            keep_alive: False adds `Connection: close`.

        Returns:
            Status line, headers, blank line and body.
        """
        status = self.status_code
        lines = [status_line(status)]
        for name, value in self._headers:
            lines.append(f"{name}: {value}\r\n".encode("latin-1"))
        has_body = status >= 200 and status not in _NO_BODY_STATUSES
        if has_body:
            if self._content_type is not None and self.get_header("content-type") is None:
                lines.append(f"Content-Type: {self._content_type}\r\n".encode("latin-1"))
            lines.append(b"Content-Length: %d\r\n" % len(self.body))
        if not keep_alive:
            lines.append(b"Connection: close\r\n")
        lines.append(b"\r\n")
        if has_body and not head_request:
            lines.append(self.body)
        return b"".join(lines)
