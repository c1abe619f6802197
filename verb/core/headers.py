"""HTTP/1.1 header grammar shared by every layer: the token-list splitter (`split_tokens`,
`header_tokens`, `has_token`), the token and field-value checks (`is_token`, `check_header`,
`check_extra_headers`), the origin normaliser (`normalize_origin`), status codes and reason
phrases, and `Headers`, the case-insensitive view of a message's header fields.

Sans-I/O and free of the server: the handshake (core), the server's HTTP messages and the client
all read headers through this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from http import HTTPStatus
from typing import Union
from urllib.parse import urlsplit

__all__ = [
    "FORBIDDEN_IN_VALUE",
    "OWS",
    "RESERVED_RESPONSE_HEADERS",
    "Headers",
    "check_extra_headers",
    "check_header",
    "check_status",
    "has_token",
    "header_tokens",
    "is_token",
    "normalize_origin",
    "reason_phrase",
    "split_tokens",
]

HeaderPairs = Iterable[tuple[Union[str, bytes], Union[str, bytes]]]

# RFC 9110 §5.6.2: token = 1*tchar.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5: a field value is VCHAR, obs-text, SP and HTAB; every other control is invalid
# (CR and LF above all: they would end the header and let a value inject new ones).
FORBIDDEN_IN_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# OWS around list elements, RFC 9110 §5.6.1 and §5.6.3.
OWS = " \t"


# --- shared grammar helpers ----------------------------------------------------------------------


def is_token(value: object) -> bool:
    """Tell whether `value` is an HTTP token (RFC 9110 §5.6.2), as header names must be.

    Args:
        value: Anything; only a non-empty `str` of tchar characters is a token.

    Returns:
        True when `value` is a token.
    """
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None


def check_header(name: object, value: object) -> tuple[str, str]:
    """Validate one header field for sending and return it as a `(name, value)` pair of str.

    Args:
        name: The field name; must be an HTTP token (RFC 9110 §5.6.2).
        value: The field value: `str`, or `int` (converted). Must be latin-1 encodable and free of
            control characters other than HTAB, CR and LF above all (RFC 9110 §5.5).

    Returns:
        The pair `(name, value)` with `value` as `str`.

    Raises:
        TypeError: `name` is not a str, or `value` is neither str nor int.
        ValueError: `name` is not a token, or `value` contains a forbidden character.
    """
    if not isinstance(name, str):
        raise TypeError(f"header name must be a str, not {type(name).__name__}: {name!r}")
    if not is_token(name):
        raise ValueError(
            f"invalid header name {name!r}: a name is one or more token characters "
            "(letters, digits and !#$%&'*+-.^_`|~), RFC 9110 §5.6.2"
        )
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    elif not isinstance(value, str):
        raise TypeError(
            f"value of header {name!r} must be a str or int, not {type(value).__name__}: {value!r}"
        )
    if FORBIDDEN_IN_VALUE.search(value):
        raise ValueError(
            f"invalid value for header {name!r}: {value!r} contains a control character "
            "(CR, LF, NUL, ...), RFC 9110 §5.5"
        )
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(
            f"invalid value for header {name!r}: {value!r} has characters outside latin-1; "
            "percent-encode them"
        ) from None
    return name, value


def split_tokens(value: str) -> list[str]:
    """Split a comma-separated header list into its elements (RFC 9110 §5.6.1).

    Whitespace around elements is dropped, and so are empty elements (`"a,, b"` is `["a", "b"]`),
    as the RFC asks recipients to do. Case is kept: callers compare as their field requires.
    Quoted strings are not understood; this is for lists of plain tokens (Connection, Upgrade,
    Sec-WebSocket-Protocol, Sec-WebSocket-Version).

    Args:
        value: One field value.

    Returns:
        The elements, in order.
    """
    if "," not in value:  # the common case: a single element
        element = value.strip(OWS)
        return [element] if element else []
    return [element for element in (part.strip(OWS) for part in value.split(",")) if element]


def header_tokens(headers: Headers, name: str) -> list[str]:
    """All list elements of every `name` field in `headers`, in order (see `split_tokens`).

    Args:
        headers: The request headers.
        name: The field name, any case.

    Returns:
        The elements of all the fields with that name, in order; empty when there are none.
    """
    values = headers.get_all(name)
    if not values:
        return []
    if len(values) == 1:
        return split_tokens(values[0])
    return [token for value in values for token in split_tokens(value)]


def has_token(headers: Headers, name: str, token: str) -> bool:
    """Tell whether a `name` field of `headers` lists `token`, ignoring ASCII case.

    Args:
        headers: The request headers.
        name: The field name, e.g. "Connection".
        token: The element looked for, lower case, e.g. "upgrade".

    Returns:
        True when some element of some `name` field equals `token` case-insensitively.
    """
    for value in headers.get_all(name):
        for element in value.split(","):
            if element.strip(OWS).lower() == token:
                return True
    return False


def normalize_origin(origin: str) -> str:
    """Put a serialized origin ("scheme://host[:port]", RFC 6454 §6.2) in canonical form.

    Scheme and host are lower-cased (they are case-insensitive); the port is kept as written,
    so "https://a.example:443" and "https://a.example" stay different.

    Args:
        origin: An origin as a browser sends it in the Origin header.

    Returns:
        The canonical form, e.g. "https://example.com:8443".

    Raises:
        TypeError: `origin` is not a str.
        ValueError: `origin` is not of the form scheme://host[:port] (the opaque origin "null"
            included: it cannot be allowed by name).
    """
    if not isinstance(origin, str):
        raise TypeError(f"an origin must be a str, not {type(origin).__name__}: {origin!r}")
    try:
        parts = urlsplit(origin)
        parts.port  # noqa: B018 - raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        parts = None
    if (
        parts is None
        or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", parts.scheme)
        or not parts.hostname
        or parts.username is not None
        or parts.path
        or parts.query
        or parts.fragment
        or "?" in origin
        or "#" in origin
        or any(char in origin for char in " \t\r\n")
    ):
        raise ValueError(
            f"invalid origin {origin!r}: expected scheme://host[:port] with nothing after it, "
            'e.g. "https://example.com" (RFC 6454 §6.2)'
        )
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def reason_phrase(status: int) -> str:
    """The standard reason phrase of `status` ("Not Found"), or "" when it has none."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def check_status(status: object) -> int:
    if isinstance(status, bool) or not isinstance(status, int):
        raise TypeError(f"HTTP status must be an int, not {type(status).__name__}: {status!r}")
    if not 100 <= status <= 599:
        raise ValueError(f"HTTP status must be between 100 and 599, not {status}")
    return status



# Framing and connection headers the server writes itself: never given as extra headers.
RESERVED_RESPONSE_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})

def check_extra_headers(
    headers: dict[str, str] | Iterable[tuple[str, str]] | None,
) -> tuple[tuple[str, str], ...]:
    """Validated `(name, value)` pairs of extra response headers (a dict or pairs; None: none)."""
    if not headers:
        return ()
    pairs = headers.items() if isinstance(headers, dict) else headers
    checked = tuple(check_header(name, value) for name, value in pairs)
    for name, _ in checked:
        if name.lower() in RESERVED_RESPONSE_HEADERS:
            raise ValueError(f"{name} is set by the server and cannot be given as an extra header")
    return checked


def _latin1(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else value


class Headers:
    """Request header fields: case-insensitive names, several fields per name allowed.

    Built from the `(name, value)` pairs as httptools delivers them (bytes; str works too) and
    decoded as latin-1 only when first read (RFC 9110 §5.5: bytes above 0x7F are obs-text, so a
    UTF-8 value reads as its latin-1 mojibake; `value.encode("latin-1")` recovers the bytes).

    The object is a sequence of fields: `len()`, iteration and `items()` see every field in
    arrival order, duplicates included. `get()`/`[]` combine duplicates with ", " as RFC 9110 §5.3
    allows (Cookie with "; ", RFC 6265 §5.4); `get_all()` keeps them apart; `to_dict()` is the
    combined view keyed by lower-case name.
    """

    __slots__ = ("_fields", "_index", "_raw")

    def __init__(self, raw: HeaderPairs | None = None) -> None:
        """Wrap `raw`, a list of `(name, value)` pairs (bytes or str); nothing is decoded yet."""
        self._raw = list(raw) if raw is not None else []
        self._fields: list[tuple[str, str]] | None = None
        self._index: dict[str, list[str]] | None = None

    def _decode(self) -> dict[str, list[str]]:
        fields = [(_latin1(name), _latin1(value)) for name, value in self._raw]
        index: dict[str, list[str]] = {}
        for name, value in fields:
            key = name.lower()
            values = index.get(key)
            if values is None:
                index[key] = [value]
            else:
                values.append(value)
        self._fields = fields
        self._index = index
        return index

    def get_all(self, name: str) -> list[str]:
        """Every value of the fields called `name` (any case), in order; [] when there are none."""
        index = self._index if self._index is not None else self._decode()
        return list(index.get(name.lower(), ()))

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of field `name` (any case), duplicates combined; `default` when absent."""
        index = self._index if self._index is not None else self._decode()
        values = index.get(name.lower())
        if values is None:
            return default
        if len(values) == 1:
            return values[0]
        return ("; " if name.lower() == "cookie" else ", ").join(values)

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        index = self._index if self._index is not None else self._decode()
        return name.lower() in index

    def items(self) -> list[tuple[str, str]]:
        """Every field as a `(name, value)` pair, names as received, in arrival order."""
        if self._fields is None:
            self._decode()
        return list(self._fields)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._raw)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self.items())

    def to_dict(self) -> dict[str, str]:
        """The combined view: lower-case name -> value (duplicates joined as by `get`)."""
        index = self._index if self._index is not None else self._decode()
        return {name: self.get(name) for name in index}  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"


