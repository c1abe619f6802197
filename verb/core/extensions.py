"""permessage-deflate negotiation (RFC 7692 section 7.1), pure Python, sans-I/O.

Server side: `negotiate(header_values, settings)` reads every offer in the request's
`Sec-WebSocket-Extensions` header(s), accepts the first permessage-deflate offer it can honour and
returns the response header value and the agreed parameters (`DeflateParameters`), or None.

Client side: `ClientOffer` builds an offer and checks the server's response against it.

Header grammar (RFC 6455 section 9.1): a comma-separated list of extensions, each a token followed
by `;`-separated parameters, each a token with an optional `=` value that is a token or a
quoted-string (which must unquote to a token). Whitespace around separators is allowed, empty list
elements are skipped (RFC 7230 section 7), extension and parameter names are compared
case-insensitively. A malformed element is an offer declined, not an error: the other offers are
still considered.

The server declines an offer (and tries the next one) that has an unknown or duplicate parameter,
an invalid value (window bits other than the integers 8-15 written without leading zeros, a value
on a *_no_context_takeover flag, server_max_window_bits without a value), or
server_max_window_bits=8: zlib cannot compress raw DEFLATE with a 256-byte window (see
verb._deflate), and the response may not exceed what the client offered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional, Union

__all__ = [
    "EXTENSION_NAME",
    "ClientOffer",
    "DeflateParameters",
    "DeflateSettings",
    "NegotiationError",
    "negotiate",
    "parse_extensions",
]

EXTENSION_NAME = "permessage-deflate"

SHARED = "shared"
DEDICATED = "dedicated"

_SERVER_NO_CONTEXT_TAKEOVER = "server_no_context_takeover"
_CLIENT_NO_CONTEXT_TAKEOVER = "client_no_context_takeover"
_SERVER_MAX_WINDOW_BITS = "server_max_window_bits"
_CLIENT_MAX_WINDOW_BITS = "client_max_window_bits"
_PARAMETERS = (
    _SERVER_NO_CONTEXT_TAKEOVER,
    _CLIENT_NO_CONTEXT_TAKEOVER,
    _SERVER_MAX_WINDOW_BITS,
    _CLIENT_MAX_WINDOW_BITS,
)
# RFC 7692 section 7.1.2.1: "a decimal integer value without leading zeroes between 8 to 15".
_WINDOW_BITS_VALUES = {str(bits): bits for bits in range(8, 16)}

# RFC 7230 section 3.2.6.
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_OWS = " \t"

Parameter = tuple[str, Optional[str]]
Extension = tuple[str, list[Parameter]]
HeaderValues = Union[str, bytes, Iterable[Union[str, bytes]]]


class NegotiationError(ValueError):
    """A server's response the client must not accept (RFC 7692: _Fail the WebSocket
    Connection_), or settings that cannot be used."""


@dataclass(frozen=True)
class DeflateParameters:
    """Agreed permessage-deflate parameters, as effective values.

    Attributes:
        server_no_context_takeover: the server resets its compressor after each message.
        client_no_context_takeover: the client resets its compressor after each message.
        server_max_window_bits: window the server compresses with (9-15; the client's
            decompressor may use this size).
        client_max_window_bits: window the client compresses with at most (8-15; the server's
            decompressor uses this size).
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15

    @property
    def shared(self) -> bool:
        """True when neither side takes context over: the server may then use one compressor
        and one decompressor for all such connections of an event loop."""
        return self.server_no_context_takeover and self.client_no_context_takeover


def _check_bits(name: str, value: object, low: int) -> None:
    if type(value) is not int or not low <= value <= 15:
        raise NegotiationError(f"{name} must be an integer between {low} and 15, got {value!r}")


@dataclass(frozen=True)
class DeflateSettings:
    """Server configuration of permessage-deflate.

    Attributes:
        mode: "shared": every connection that agrees to it uses the event loop's one
            compressor and one decompressor, so the server always responds with
            server_no_context_takeover and client_no_context_takeover (no per-connection zlib
            memory; each message compressed on its own). "dedicated": a compressor and a
            decompressor per connection, with context takeover (better ratio for similar
            messages, ~150-300 KiB of zlib state per connection), unless the client asks for
            server_no_context_takeover.
        server_max_window_bits: largest window the server compresses with, 9-15 (8 is not
            possible with zlib). Smaller saves memory: 1 << (bits + 2) bytes per compressor.
        client_max_window_bits: largest window asked of a client that supports the parameter,
            9-15; saves 1 << bits bytes per decompressor. A client that does not offer
            client_max_window_bits compresses with up to 15 regardless.
    """

    mode: str = SHARED
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15

    def __post_init__(self) -> None:
        if self.mode not in (SHARED, DEDICATED):
            raise NegotiationError(f"mode must be 'shared' or 'dedicated', got {self.mode!r}")
        _check_bits("server_max_window_bits", self.server_max_window_bits, 9)
        _check_bits("client_max_window_bits", self.client_max_window_bits, 9)


# ---------------------------------------------------------------------------------------------
# Header parsing


class _Malformed(Exception):
    pass


def _header_values(values: HeaderValues) -> list[str]:
    if isinstance(values, (str, bytes)):
        values = [values]
    return [v.decode("latin-1") if isinstance(v, bytes) else v for v in values]


def _split_elements(value: str) -> list[str]:
    """Split a header value at the commas that are not inside a quoted-string."""
    elements = []
    start = 0
    quoted = False
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == ",":
            elements.append(value[start:i])
            start = i + 1
        i += 1
    elements.append(value[start:])
    return elements


def _skip_ows(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _OWS:
        pos += 1
    return pos


def _token(text: str, pos: int) -> tuple[str, int]:
    end = pos
    while end < len(text) and text[end] in _TCHAR:
        end += 1
    if end == pos:
        raise _Malformed(f"expected a token at {pos}")
    return text[pos:end], end


def _quoted_string(text: str, pos: int) -> tuple[str, int]:
    """RFC 7230 section 3.2.6 quoted-string starting at text[pos] == '"'; returns it unquoted."""
    out = []
    pos += 1
    while pos < len(text):
        c = text[pos]
        if c == '"':
            return "".join(out), pos + 1
        if c == "\\":
            pos += 1
            if pos == len(text):
                break
            c = text[pos]
        if c != "\t" and not " " <= c <= "~" and not "\x80" <= c <= "\xff":
            raise _Malformed("control character in a quoted-string")
        out.append(c)
        pos += 1
    raise _Malformed("unterminated quoted-string")


def _parse_element(text: str) -> Extension | None:
    """One list element: `name *(OWS ";" OWS param)`. None for an empty element."""
    pos = _skip_ows(text, 0)
    if pos == len(text):
        return None
    name, pos = _token(text, pos)
    params: list[Parameter] = []
    pos = _skip_ows(text, pos)
    while pos < len(text):
        if text[pos] != ";":
            raise _Malformed(f"expected ';' at {pos}")
        pos = _skip_ows(text, pos + 1)
        pname, pos = _token(text, pos)
        pos = _skip_ows(text, pos)
        value = None
        if pos < len(text) and text[pos] == "=":
            pos = _skip_ows(text, pos + 1)
            if pos < len(text) and text[pos] == '"':
                value, pos = _quoted_string(text, pos)
                # RFC 6455 section 9.1: once unquoted, the value must be a token.
                if not value or not all(c in _TCHAR for c in value):
                    raise _Malformed("quoted value is not a token")
            else:
                value, pos = _token(text, pos)
            pos = _skip_ows(text, pos)
        params.append((pname.lower(), value))
    return name.lower(), params


def parse_extensions(header_values: HeaderValues) -> list[Extension | None]:
    """Parse Sec-WebSocket-Extensions header values into their list elements, in order.

    Args:
        header_values: one header value, or the values of all the header's lines (str or
            bytes, as received).

    Returns:
        One item per non-empty element: `(name, [(param, value or None), ...])` with names
        lowercased and quoted values unquoted, or None for a malformed element.
    """
    result: list[Extension | None] = []
    for value in _header_values(header_values):
        for element in _split_elements(value):
            try:
                parsed = _parse_element(element)
            except _Malformed:
                result.append(None)
                continue
            if parsed is not None:
                result.append(parsed)
    return result


def _read_parameters(
    params: list[Parameter], *, offer: bool
) -> tuple[bool, bool, int | None, None | bool | int]:
    """Validate permessage-deflate parameters (RFC 7692 section 7.1).

    Returns (server_no_context_takeover, client_no_context_takeover, server_max_window_bits or
    None, client_max_window_bits or None, or True for "supported, no value", which only an
    offer may send). Raises NegotiationError for an unknown or duplicate parameter or a bad
    value.
    """
    seen = set()
    values: dict = {}
    for name, value in params:
        if name not in _PARAMETERS:
            raise NegotiationError(f"unknown parameter {name!r}")
        if name in seen:
            raise NegotiationError(f"duplicate parameter {name!r}")
        seen.add(name)
        if name in (_SERVER_NO_CONTEXT_TAKEOVER, _CLIENT_NO_CONTEXT_TAKEOVER):
            if value is not None:
                raise NegotiationError(f"{name} takes no value, got {value!r}")
            values[name] = True
        elif value is None:
            if name == _CLIENT_MAX_WINDOW_BITS and offer:
                values[name] = True
            else:
                raise NegotiationError(f"{name} needs a value")
        elif value in _WINDOW_BITS_VALUES:
            values[name] = _WINDOW_BITS_VALUES[value]
        else:
            raise NegotiationError(f"invalid {name} value {value!r}")
    return (
        values.get(_SERVER_NO_CONTEXT_TAKEOVER, False),
        values.get(_CLIENT_NO_CONTEXT_TAKEOVER, False),
        values.get(_SERVER_MAX_WINDOW_BITS),
        values.get(_CLIENT_MAX_WINDOW_BITS),
    )


def _build(params: list[Parameter]) -> str:
    return "; ".join([EXTENSION_NAME] + [n if v is None else f"{n}={v}" for n, v in params])


# ---------------------------------------------------------------------------------------------
# Server


def _accept(
    params: list[Parameter], settings: DeflateSettings
) -> tuple[str, DeflateParameters] | None:
    """The response to one permessage-deflate offer, or None to decline it."""
    try:
        snct, cnct, smwb, cmwb = _read_parameters(params, offer=True)
    except NegotiationError:
        return None
    if smwb == 8:
        return None
    response: list[Parameter] = []

    # server_no_context_takeover (7.1.1.1): a request the server must honour; the server may
    # also declare it unasked. client_no_context_takeover (7.1.1.2): the server may ask it;
    # when the client offers it (a hint that it will reset anyway) it is echoed.
    if settings.mode == SHARED:
        snct = cnct = True
    if snct:
        response.append((_SERVER_NO_CONTEXT_TAKEOVER, None))
    if cnct:
        response.append((_CLIENT_NO_CONTEXT_TAKEOVER, None))

    # server_max_window_bits (7.1.2.1): an offered limit must be answered with a value no
    # larger; unasked, the server may declare a smaller window.
    server_bits = settings.server_max_window_bits
    if smwb is not None and smwb < server_bits:
        server_bits = smwb
    if smwb is not None or server_bits < 15:
        response.append((_SERVER_MAX_WINDOW_BITS, str(server_bits)))

    # client_max_window_bits (7.1.2.2): only if offered. Without a value the client supports
    # any limit we set; with one, it will use no more than that and we may lower it.
    if cmwb is None:
        client_bits = 15
    elif cmwb is True:
        client_bits = settings.client_max_window_bits
        if client_bits < 15:
            response.append((_CLIENT_MAX_WINDOW_BITS, str(client_bits)))
    else:
        client_bits = min(cmwb, settings.client_max_window_bits)
        response.append((_CLIENT_MAX_WINDOW_BITS, str(client_bits)))

    return _build(response), DeflateParameters(snct, cnct, server_bits, client_bits)


def negotiate(
    header_values: HeaderValues, settings: DeflateSettings | None = None
) -> tuple[str, DeflateParameters] | None:
    """Choose permessage-deflate parameters for a client's offers (server side).

    Args:
        header_values: the request's Sec-WebSocket-Extensions value(s): one str/bytes, or one
            per header line.
        settings: the server's DeflateSettings (default: shared mode, 15-bit windows).

    Returns:
        `(response, parameters)` for the first acceptable permessage-deflate offer: `response`
        is the Sec-WebSocket-Extensions value to send back, `parameters` the agreed
        DeflateParameters. None if no offer is acceptable (then no extension is used).
    """
    if settings is None:
        settings = DeflateSettings()
    for element in parse_extensions(header_values):
        if element is None or element[0] != EXTENSION_NAME:
            continue
        accepted = _accept(element[1], settings)
        if accepted is not None:
            return accepted
    return None


# ---------------------------------------------------------------------------------------------
# Client


@dataclass(frozen=True)
class ClientOffer:
    """A client's permessage-deflate offer, and the check of the server's response.

    Attributes:
        server_no_context_takeover: ask the server to reset its compressor per message.
        client_no_context_takeover: tell the server the client resets its compressor.
        server_max_window_bits: ask the server for a window of at most this (8-15), or None.
        client_max_window_bits: True to offer the parameter without a value (the server may
            then set our window), an int 9-15 to announce our window, or False to leave it
            out. 8 is not offered: zlib cannot compress with it.
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: bool | int = True

    def __post_init__(self) -> None:
        if self.server_max_window_bits is not None:
            _check_bits("server_max_window_bits", self.server_max_window_bits, 8)
        if type(self.client_max_window_bits) is not bool:
            _check_bits("client_max_window_bits", self.client_max_window_bits, 9)

    def header(self) -> str:
        """The offer as a Sec-WebSocket-Extensions value. The default offer is
        "permessage-deflate; client_max_window_bits", as browsers and websockets send."""
        params: list[Parameter] = []
        if self.server_no_context_takeover:
            params.append((_SERVER_NO_CONTEXT_TAKEOVER, None))
        if self.client_no_context_takeover:
            params.append((_CLIENT_NO_CONTEXT_TAKEOVER, None))
        if self.server_max_window_bits is not None:
            params.append((_SERVER_MAX_WINDOW_BITS, str(self.server_max_window_bits)))
        if self.client_max_window_bits is True:
            params.append((_CLIENT_MAX_WINDOW_BITS, None))
        elif self.client_max_window_bits is not False:
            params.append((_CLIENT_MAX_WINDOW_BITS, str(self.client_max_window_bits)))
        return _build(params)

    def accept(self, header_values: HeaderValues) -> DeflateParameters | None:
        """Check the server's Sec-WebSocket-Extensions response against this offer.

        Args:
            header_values: the response's header value(s); an empty list if it had none.

        Returns:
            The agreed DeflateParameters, or None if the server did not accept the extension.

        Raises:
            NegotiationError: the response is malformed, names an extension other than
                permessage-deflate or names it twice, has an unknown, duplicate or invalid
                parameter, or parameters this offer does not allow (RFC 7692 section 7.1: the
                client must then fail the connection).
        """
        elements = parse_extensions(header_values)
        if not elements:
            return None
        if any(element is None for element in elements):
            raise NegotiationError("malformed Sec-WebSocket-Extensions response")
        if len(elements) > 1:
            raise NegotiationError("the response accepts more than the one extension offered")
        name, params = elements[0]
        if name != EXTENSION_NAME:
            raise NegotiationError(f"the response accepts {name!r}, which was not offered")
        snct, cnct, smwb, cmwb = _read_parameters(params, offer=False)

        # 7.1.1.1: asked for, server_no_context_takeover must be in the response.
        if self.server_no_context_takeover and not snct:
            raise NegotiationError("server_no_context_takeover was asked and not accepted")
        # 7.1.1.2: offered, client_no_context_takeover holds whether or not it is echoed.
        cnct = cnct or self.client_no_context_takeover

        # 7.1.2.1: asked for, server_max_window_bits must come back no larger.
        if self.server_max_window_bits is not None:
            if smwb is None:
                raise NegotiationError("server_max_window_bits was asked and not accepted")
            if smwb > self.server_max_window_bits:
                raise NegotiationError(
                    f"server_max_window_bits={smwb} exceeds the {self.server_max_window_bits} asked"
                )

        # 7.1.2.2: client_max_window_bits only in response to an offer of it, no larger.
        if cmwb is not None:
            if self.client_max_window_bits is False:
                raise NegotiationError("client_max_window_bits in the response was not offered")
            if self.client_max_window_bits is not True and cmwb > self.client_max_window_bits:
                raise NegotiationError(
                    f"client_max_window_bits={cmwb} exceeds the {self.client_max_window_bits} offered"
                )
            if cmwb == 8:
                raise NegotiationError("client_max_window_bits=8 cannot be honoured with zlib")
        elif type(self.client_max_window_bits) is not bool:
            cmwb = self.client_max_window_bits

        return DeflateParameters(snct, cnct, smwb or 15, cmwb or 15)
