"""Every limit and option of a verb server, validated once, and the WebSocket handlers.

`Options` is the one place for limits (DESIGN.md, "One place for limits"): sizes, timeouts,
negotiation settings. It is immutable and checks every field when built, so the connection layer
reads plain, trusted attributes. `Options.from_kwargs` accepts the snake_case names and Verb's
camelCase ones and refines a base (server-level options refined by `app.websocket(...)`).

`split_websocket_config` separates what `app.websocket(...)` receives into `Handlers` (the Verb
handler names, each resolved once into a `Handler` with its async-ness and arity) and option
keyword arguments for `Options.from_kwargs`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import math
from collections.abc import Iterable, Mapping
from typing import Any, Callable

from verb.core.headers import check_header, is_token, normalize_origin
from verb.core.limits import (
    DEFAULT_COMPRESSION_THRESHOLD,
    DEFAULT_MAX_PAYLOAD_LENGTH,
    KIB,
    MIB,
    check_max_payload_length,
)

__all__ = [
    "BROKER_SCHEMES",
    "RATE_LIMIT_ACTIONS",
    "REDIS_SCHEMES",
    "HANDLER_ARITY",
    "Handler",
    "HandshakeRate",
    "Handlers",
    "Options",
    "RateLimit",
    "split_websocket_config",
]

# Headers of the 101 response that the handshake writes itself (RFC 6455 §4.2.2): a user header
# with one of these names would contradict or duplicate it.
_HANDSHAKE_HEADERS = frozenset(
    {
        "upgrade",
        "connection",
        "sec-websocket-accept",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
        "content-length",
        "transfer-encoding",
    }
)

_INVALID: Any = object()
_COMPRESSION = {
    False: None,
    None: None,
    True: "shared",
    "shared": "shared",
    "dedicated": "dedicated",
}


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _size(name: str, value: Any, minimum: int = 1) -> int:
    if not _is_int(value):
        raise TypeError(f"{name} must be an int (bytes or a count), got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _body_size(name: str, value: Any) -> int:
    return _size(name, value, minimum=0)


def _seconds(name: str, value: Any, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {_describe(value)}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        allowed = "a finite number >= 0 (0 disables it)" if allow_zero else "a finite number > 0"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return float(value)


def _idle_seconds(name: str, value: Any) -> float:
    return _seconds(name, value, allow_zero=True)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {_describe(value)}")
    return value


def _compression(name: str, value: Any) -> str | None:
    # Look up only None, bools and str: 1 == True and 0 == False would otherwise match.
    if value is None or isinstance(value, (bool, str)):
        normalized = _COMPRESSION.get(value, _INVALID)
        if normalized is not _INVALID:
            return normalized
    raise ValueError(
        f'{name} must be False/None (off), True or "shared" (compressor shared, no context '
        f'takeover) or "dedicated" (a compressor per connection), got {_describe(value)}'
    )


def _window_bits(name: str, value: Any) -> int:
    # RFC 7692 §7.1.2: 8 to 15; zlib cannot make raw deflate streams with 8 (see _deflate.pyx).
    if not _is_int(value):
        raise TypeError(f"{name} must be an int from 9 to 15, got {_describe(value)}")
    if not 9 <= value <= 15:
        raise ValueError(f"{name} must be from 9 to 15 (LZ77 window of 2**bits bytes), "
                         f"got {value!r}")
    return value


def _sequence(name: str, value: Any, example: str) -> list:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list or tuple, e.g. {example}, got {_describe(value)}")
    return list(value)


def _protocols(name: str, value: Any) -> tuple[str, ...]:
    protocols = _sequence(name, value, '("chat", "superchat")')
    for protocol in protocols:
        if not isinstance(protocol, str):
            raise TypeError(f"{name} entries must be str, got {_describe(protocol)}")
        # RFC 6455 §4.1: each subprotocol is a token (RFC 2616 §2.2, now RFC 9110 §5.6.2).
        if not is_token(protocol):
            raise ValueError(
                f"{name} entry {protocol!r} is not a token (no spaces, commas or separators; "
                "RFC 6455 §4.1)"
            )
    if len(set(protocols)) != len(protocols):
        raise ValueError(f"{name} lists a protocol twice: {protocols!r}")
    return tuple(protocols)


def _headers(name: str, value: Any) -> tuple[tuple[str, str], ...]:
    pairs = value.items() if isinstance(value, Mapping) else _sequence(name, value, '[("X", "1")]')
    checked = []
    for pair in pairs:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"{name} entries must be (name, value) pairs, got {_describe(pair)}")
        try:
            header_name, header_value = check_header(pair[0], pair[1])
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{name}: {exc}") from None
        if header_name.lower() in _HANDSHAKE_HEADERS:
            raise ValueError(
                f"{name}: {header_name} is written by the WebSocket handshake itself "
                "(RFC 6455 §4.2.2) and cannot be set"
            )
        checked.append((header_name, header_value))
    return tuple(checked)


def _max_connections(name: str, value: Any) -> int | None:
    return None if value is None else _size(name, value)


# --- rate limits ---------------------------------------------------------------------------------

RATE_LIMIT_ACTIONS = ("close", "drop", "pause")
_RATE_LIMIT_KEYS = ("messages", "per", "burst", "bytes", "burst_bytes", "action")
_HANDSHAKE_RATE_KEYS = ("per_ip", "per", "burst")


@dataclasses.dataclass(frozen=True)
class RateLimit:
    """A per-connection token bucket over data messages, and optionally over their bytes.

    Built from the dict form `{"messages": 100, "per": 1.0, "burst": 200, "bytes": None,
    "burst_bytes": None, "action": "close"}` by `RateLimit.from_dict`, which checks it.

    Attributes:
        messages: Messages allowed per `per` seconds (the refill rate).
        per: The period, in seconds.
        burst: The bucket's capacity in messages (`messages` by default).
        bytes: Payload bytes (after inflation) allowed per `per` seconds; None: not limited.
        burst_bytes: The byte bucket's capacity (`bytes` by default).
        action: What happens to a message over the limit: "close" (1008), "drop" (discarded,
            counted, the `limited` handler told at most once a second) or "pause" (reading
            stops until the bucket refills).
    """

    messages: float
    per: float = 1.0
    burst: float = 0.0
    bytes: float | None = None
    burst_bytes: float | None = None
    action: str = "close"

    @classmethod
    def from_dict(cls, name: str, value: Any) -> RateLimit:
        """Check the dict form (keys as in the class); raise naming `name` and the value."""
        if isinstance(value, RateLimit):
            return value
        messages, per, burst = _bucket_dict(
            name, value, _RATE_LIMIT_KEYS, "messages", '{"messages": 100, "per": 1.0}',
            ", a callable or None")
        nbytes = value.get("bytes")
        nbytes = None if nbytes is None else _positive(f"{name}[bytes]", nbytes)
        burst_bytes = value.get("burst_bytes")
        if burst_bytes is not None:
            if nbytes is None:
                raise ValueError(f'{name}: "burst_bytes" needs "bytes"')
            burst_bytes = _positive(f"{name}[burst_bytes]", burst_bytes, 1.0)
        elif nbytes is not None:
            burst_bytes = nbytes
        action = value.get("action", "close")
        if action not in RATE_LIMIT_ACTIONS:
            raise ValueError(f"{name}[action] must be one of {', '.join(RATE_LIMIT_ACTIONS)}, "
                             f"got {_describe(action)}")
        return cls(messages, per, burst, nbytes, burst_bytes, action)


@dataclasses.dataclass(frozen=True)
class HandshakeRate:
    """Upgrade attempts allowed per client address: `per_ip` per `per` seconds, `burst` at
    once (`per_ip` by default)."""

    per_ip: float
    per: float = 1.0
    burst: float = 0.0


def _positive(name: str, value: Any, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {_describe(value)}")
    if not math.isfinite(value) or value <= 0 or value < minimum:
        bound = f">= {minimum:g}" if minimum else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def _rate_limit(name: str, value: Any) -> RateLimit | Callable[..., Any] | None:
    if value is None:
        return None
    if callable(value) and not isinstance(value, (Mapping, RateLimit)):
        return value  # fn(ws) -> dict | None, called once per connection before `open`
    return RateLimit.from_dict(name, value)


def _handshake_rate(name: str, value: Any) -> HandshakeRate | None:
    if value is None or isinstance(value, HandshakeRate):
        return value
    return HandshakeRate(*_bucket_dict(name, value, _HANDSHAKE_RATE_KEYS, "per_ip",
                                       '{"per_ip": 10, "per": 1.0, "burst": 20}', " or None"))


def _bucket_dict(name: str, value: Any, keys: tuple[str, ...], rate_key: str, example: str,
                 otherwise: str) -> tuple[float, float, float]:
    """The checked (rate, per, burst) of a token bucket's dict form, whose other keys (of
    `keys`) the caller reads; burst defaults to the rate."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict like {example}{otherwise}, "
                        f"got {_describe(value)}")
    for key in value:
        if key not in keys:
            raise TypeError(f"{name}: {_unknown_name(str(key), 'key', keys)}")
    if rate_key not in value:
        raise TypeError(f'{name} needs "{rate_key}" (how many per "per" seconds)')
    rate = _positive(f"{name}[{rate_key}]", value[rate_key])
    per = _positive(f"{name}[per]", value.get("per", 1.0))
    burst = value.get("burst")
    return rate, per, rate if burst is None else _positive(f"{name}[burst]", burst, 1.0)


def _origins(name: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    origins = _sequence(name, value, '("https://example.com",)')
    try:
        return tuple(dict.fromkeys(normalize_origin(origin) for origin in origins))
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from None


# The broker URLs verb.cluster.pubsub.broker_from_url understands: Redis, and the in-process one.
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
BROKER_SCHEMES = (*REDIS_SCHEMES, "memory://")
# What a broker object must offer (the interface of verb.cluster.pubsub.Broker), checked here
# without importing the cluster layer above this one.
_BROKER_METHODS = ("start", "subscribe", "unsubscribe", "publish", "close")


def _broker(name: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        if not value.lower().startswith(BROKER_SCHEMES):
            raise ValueError(
                f"{name} must be None (this process only), a Redis URL like "
                f'"redis://127.0.0.1:6379/0" (or rediss://, unix://) or "memory://", '
                f"got {value!r}"
            )
        return value
    if all(callable(getattr(value, method, None)) for method in _BROKER_METHODS):
        return value
    raise TypeError(f"{name} must be None, a broker URL (str) or a verb.pubsub.Broker, "
                    f"got {_describe(value)}")


def _path(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f'{name} must be None or a path like "/ws", got {_describe(value)}')
    if not value.startswith("/") or any(char in value for char in "?# \t\r\n"):
        raise ValueError(
            f'{name} must start with "/" and hold no query, fragment or whitespace, got {value!r}'
        )
    return value


@dataclasses.dataclass(frozen=True)
class Options:
    """Limits and settings of a server and its WebSocket route, checked when built.

    Sizes are in bytes, timeouts in seconds. Build with keywords (`Options(idle_timeout=30)`) or
    with `Options.from_kwargs`, which also takes Verb's camelCase names. Invalid values raise
    TypeError (wrong type; `True` is not an int here) or ValueError (out of range), naming the
    option, the value and what is allowed.

    Attributes:
        max_payload_length: Largest message accepted (RFC 6455 §10.4); bigger closes with 1009.
            None for no limit.
        idle_timeout: Close a connection silent this long; 0 disables.
        send_pings: Ping an idle peer before `idle_timeout` closes it.
        backpressure_limit: Bytes buffered for one connection beyond which sends are dropped.
        close_on_backpressure_limit: Close (1008) instead of dropping past the limit.
        publish_to_self: Whether `ws.publish` also reaches the publishing connection.
        compression: permessage-deflate (RFC 7692): None (off), "shared" or "dedicated"; True
            means "shared".
        compression_threshold: Messages smaller than this many bytes are sent uncompressed
            (below ~128 B deflate saves nothing worth its CPU; see the deflate benchmarks).
        server_max_window_bits: LZ77 window (bits) of our compressor in "dedicated" mode.
        client_max_window_bits: Window (bits) asked of the client's compressor in "dedicated"
            mode, when the client allows choosing it.
        protocols: Subprotocols the server speaks, in order of preference (RFC 6455 §1.9).
        headers: Extra `(name, value)` headers of the 101 response.
        max_connections: Refuse (503) connections beyond this many; None for no limit.
        rate_limit: A per-connection limit on data messages (`RateLimit`, from its dict form),
            or a callable `fn(ws) -> dict | None` picking one per connection (called once,
            after `upgrade` and before `open`); None (the default): off.
        max_connections_per_ip: Open WebSockets and upgrades in progress allowed from one
            address (`ws.remote_address`); beyond, HTTP 429 with Retry-After. None: off.
        handshake_rate: Upgrade attempts allowed per address (`HandshakeRate`, from its dict
            form); beyond, HTTP 429 with Retry-After. None: off.
        origins: Allowed browser origins ("https://example.com"); None allows any. Requests
            without Origin (non-browser clients) are always allowed.
        handshake_timeout: Time allowed for a client to send its complete upgrade request.
        close_timeout: Time to wait for the peer's close frame before dropping the connection.
        max_request_line: Longest request line (414 beyond).
        max_headers: Most header fields in a request (431 beyond).
        max_header_size: Largest total size of the header fields (431 beyond).
        max_body: Largest HTTP request body (413 beyond); 0 refuses any body.
        stop_timeout: Time `stop()` gives connections to close before dropping them.
        path: The WebSocket route ("/ws"); None accepts upgrades on any path.
        trust_proxy: Behind one reverse proxy you control: take the client address
            (`ws.remote_address`, `req.ip`) from the last X-Forwarded-For entry, the one that
            proxy added. Off, the header is ignored (any client can write it).
        broker: Where publishes go beyond this process (see `verb.pubsub`): None for this
            process only; a Redis URL ("redis://127.0.0.1:6379/0") for every process
            connected to that Redis; or a `verb.pubsub.Broker`. The VERB_BROKER environment
            variable (`verb run --broker`) overrides it in `app.listen`.
        broker_required: When the broker cannot be reached at start: True fails the start
            (`verb.pubsub.BrokerUnavailable`); False starts anyway, publishes staying local
            until it can be reached.
    """

    max_payload_length: int | None = DEFAULT_MAX_PAYLOAD_LENGTH
    idle_timeout: float = 120.0
    send_pings: bool = True
    backpressure_limit: int = 16 * MIB
    close_on_backpressure_limit: bool = False
    publish_to_self: bool = False
    compression: str | None = None
    compression_threshold: int = DEFAULT_COMPRESSION_THRESHOLD
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15
    protocols: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    max_connections: int | None = None
    rate_limit: Any = None
    max_connections_per_ip: int | None = None
    handshake_rate: HandshakeRate | None = None
    origins: tuple[str, ...] | None = None
    handshake_timeout: float = 10.0
    close_timeout: float = 10.0
    max_request_line: int = 8 * KIB
    max_headers: int = 100
    max_header_size: int = 8 * KIB
    max_body: int = MIB
    stop_timeout: float = 10.0
    path: str | None = None
    trust_proxy: bool = False
    broker: Any = None
    broker_required: bool = True

    def __post_init__(self) -> None:
        for name, check in _VALIDATORS.items():
            object.__setattr__(self, name, check(name, getattr(self, name)))

    @classmethod
    def from_kwargs(cls, base: Options | None = None, **kwargs: Any) -> Options:
        """Build options from keywords, snake_case or Verb's camelCase, on top of `base`.

        Args:
            base: Options to refine (e.g. the server's, refined by `app.websocket(...)`); the
                defaults when None.
            **kwargs: Option values, e.g. `maxPayloadLength=1 << 20` or `idle_timeout=30`.

        Returns:
            New options: `base` with the given fields replaced, all checked.

        Raises:
            TypeError: An unknown option (with the closest known name), a name given twice
                (snake_case and camelCase), or a value of the wrong type.
            ValueError: A value out of range.
        """
        if base is None:
            base = cls()
        elif not isinstance(base, Options):
            raise TypeError(f"base must be Options or None, got {_describe(base)}")
        changes: dict[str, Any] = {}
        for given_name, value in kwargs.items():
            field = _canonical_option(given_name)
            if field is None:
                raise TypeError(_unknown_name(given_name, "option", _OPTION_SPELLINGS))
            if field in changes:
                raise TypeError(f"option {field} given twice (as snake_case and camelCase)")
            # Checked here as well, so that an error names the option as the caller spelled it.
            changes[field] = _VALIDATORS[field](given_name, value)
        return dataclasses.replace(base, **changes) if changes else base


_VALIDATORS: dict[str, Callable[[str, Any], Any]] = {
    "max_payload_length": check_max_payload_length,
    "idle_timeout": _idle_seconds,
    "send_pings": _flag,
    "backpressure_limit": _size,
    "close_on_backpressure_limit": _flag,
    "publish_to_self": _flag,
    "compression": _compression,
    "compression_threshold": _body_size,
    "server_max_window_bits": _window_bits,
    "client_max_window_bits": _window_bits,
    "protocols": _protocols,
    "headers": _headers,
    "max_connections": _max_connections,
    "rate_limit": _rate_limit,
    "max_connections_per_ip": _max_connections,
    "handshake_rate": _handshake_rate,
    "origins": _origins,
    "handshake_timeout": _seconds,
    "close_timeout": _seconds,
    "max_request_line": _size,
    "max_headers": _size,
    "max_header_size": _size,
    "max_body": _body_size,
    "stop_timeout": _seconds,
    "path": _path,
    "trust_proxy": _flag,
    "broker": _broker,
    "broker_required": _flag,
}
assert set(_VALIDATORS) == {field.name for field in dataclasses.fields(Options)}


def _camel_case(snake: str) -> str:
    first, *rest = snake.split("_")
    return first + "".join(word.capitalize() for word in rest)


# Every accepted spelling -> field name. Verb's camelCase names are the fields' camelCase forms.
_OPTION_SPELLINGS: dict[str, str] = {}
for _field in _VALIDATORS:
    _OPTION_SPELLINGS[_field] = _field
    _OPTION_SPELLINGS[_camel_case(_field)] = _field
del _field


def _canonical_option(name: str) -> str | None:
    return _OPTION_SPELLINGS.get(name)


def _loose(name: str) -> str:
    return name.replace("_", "").lower()


def _unknown_name(name: str, kind: str, known: Iterable[str]) -> str:
    """The error message for an unknown name, suggesting the closest known one (difflib),
    compared without case and underscores and spelled in the caller's style (camel or snake)."""
    spellings: dict[str, list[str]] = {}
    for spelling in known:
        spellings.setdefault(_loose(spelling), []).append(spelling)
    close = difflib.get_close_matches(_loose(name), list(spellings), n=1, cutoff=0.6)
    if not close:
        return f"unknown {kind} {name!r}"
    camel = name != name.lower()
    candidates = spellings[close[0]]
    suggestion = next((s for s in candidates if (s != s.lower()) == camel), candidates[0])
    return f"unknown {kind} {name!r}; did you mean {suggestion!r}?"


# --- handlers ------------------------------------------------------------------------------------

# What verb passes to each Verb handler (positional), in this order.
HANDLER_ARITY: dict[str, int] = {
    "open": 1,  # open(ws)
    "message": 2,  # message(ws, message)
    "close": 3,  # close(ws, code, reason)
    "error": 2,  # error(ws, exc)
    "drain": 1,  # drain(ws)
    "ping": 2,  # ping(ws, data)
    "pong": 2,  # pong(ws, data)
    "upgrade": 1,  # upgrade(req)
    "limited": 2,  # limited(ws, message): a message dropped by rate_limit (verb's own)
}


def _is_async_callable(fn: Any) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    # A callable object whose class defines `async def __call__`.
    return inspect.iscoroutinefunction(getattr(type(fn), "__call__", None))  # noqa: B004


def _label(name: str) -> str:
    """How errors call a callback: "message handler", or the router's "route handler"."""
    return f"{name} handler" if name in HANDLER_ARITY else name


def _positional_arity(fn: Any, name: str, offered: int) -> int:
    """How many of the `offered` positional arguments `fn` takes (all when unknowable)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins and C callables have no signature
        return offered
    accepted = required = 0
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            accepted += 1
            if parameter.default is parameter.empty:
                required += 1
        elif parameter.kind is parameter.VAR_POSITIONAL:
            accepted = offered
        elif parameter.kind is parameter.KEYWORD_ONLY and parameter.default is parameter.empty:
            raise TypeError(
                f"{_label(name)} {fn!r} has a required keyword-only parameter "
                f"{parameter.name!r}; verb passes positional arguments only"
            )
    if required > offered:
        raise TypeError(
            f"{_label(name)} {fn!r} requires {required} positional arguments, but verb passes "
            f"at most {offered}"
        )
    return min(accepted, offered)


class Handler:
    """A user callback resolved once: the callable, whether it is async, and its arity.

    The connection layer reads `fn` and `arity` on the hot path and calls `fn` with exactly
    `arity` arguments; `call` does the same generically, off the hot path.

    Attributes:
        name: What the callback is for: a Verb handler name ("message"), or the router's
            "route handler" and "middleware".
        fn: The callable.
        is_async: Calling it returns an awaitable: an `async def` function, method, callable
            object with an `async def __call__`, or a `functools.partial` of one. (A plain
            function that returns an awaitable is not detected; callers that care check the
            result.)
        arity: How many of the offered positional arguments it takes (its positional
            parameters, `*args` meaning all, capped at what is offered).
    """

    __slots__ = ("arity", "fn", "is_async", "name")

    def __init__(self, fn: Callable[..., Any], name: str, offered: int) -> None:
        """Resolve `fn` as the `name` callback, to which verb offers `offered` arguments.

        Raises:
            TypeError: `fn` is not callable, or cannot be called with at most `offered`
                positional arguments.
        """
        if not callable(fn):
            raise TypeError(f"{_label(name)} must be callable, got {_describe(fn)}")
        self.name = name
        self.fn = fn
        self.is_async = _is_async_callable(fn)
        self.arity = _positional_arity(fn, name, offered)

    def call(self, *offered_args: Any) -> Any:
        """Call `fn` with the first `arity` of `offered_args`; returns what it returns."""
        return self.fn(*offered_args[: self.arity])

    def __repr__(self) -> str:
        kind = "async " if self.is_async else ""
        return f"<Handler {self.name}: {kind}{self.fn!r}, arity {self.arity}>"


class Handlers:
    """The WebSocket handlers of a route, each None or a `Handler` (see `HANDLER_ARITY`)."""

    __slots__ = tuple(HANDLER_ARITY)

    def __init__(self, **callables: Callable[..., Any] | None) -> None:
        """Resolve each given callable; None, or a name left out, means no handler.

        Raises:
            TypeError: An unknown handler name or a callable that cannot take its arguments.
        """
        for name in HANDLER_ARITY:
            object.__setattr__(self, name, None)
        for name, fn in callables.items():
            offered = HANDLER_ARITY.get(name)
            if offered is None:
                raise TypeError(_unknown_name(name, "handler", HANDLER_ARITY))
            if fn is not None:
                object.__setattr__(self, name, Handler(fn, name, offered))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Handlers are read-only")

    def __repr__(self) -> str:
        present = [name for name in HANDLER_ARITY if getattr(self, name) is not None]
        return f"<Handlers {', '.join(present) or 'none'}>"


def split_websocket_config(
    config: Mapping[str, Any] | None = None, **kwargs: Any
) -> tuple[Handlers, dict[str, Any]]:
    """Split `app.websocket(...)` arguments into handlers and option keywords.

    Args:
        config: One dict as Verb programs pass it, handlers and options mixed, camelCase keys
            allowed: `{"message": on_message, "maxPayloadLength": 1024}`.
        **kwargs: The same as keywords; may be combined with `config` but not repeat a key.

    Returns:
        `(handlers, options_kwargs)`: the resolved `Handlers`, and the remaining entries,
        unchanged, for `Options.from_kwargs` (their names are already known to be options).

    Raises:
        TypeError: `config` is not a mapping, a key is given twice, a name is neither a handler
            nor an option (with the closest known name), or a handler is not callable.
    """
    if config is None:
        config = {}
    elif not isinstance(config, Mapping):
        raise TypeError(f"websocket config must be a dict, got {_describe(config)}")
    handlers: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for source in (config, kwargs):
        for key, value in source.items():
            if not isinstance(key, str):
                raise TypeError(f"websocket config keys must be str, got {_describe(key)}")
            if key in handlers or key in options:
                raise TypeError(f"websocket config: {key!r} given twice")
            if key in HANDLER_ARITY:
                handlers[key] = value
            elif _canonical_option(key) is not None:
                options[key] = value
            else:
                known = [*HANDLER_ARITY, *_OPTION_SPELLINGS]
                raise TypeError(_unknown_name(key, "handler or option", known))
    return Handlers(**handlers), options
