"""Tests of verb.server.options: Options validation, camelCase names, handler resolution."""

import dataclasses
import functools
import math

import pytest

from verb.server.options import HANDLER_ARITY, Handler, Handlers, Options, split_websocket_config

# --- Options -------------------------------------------------------------------------------------


def test_defaults():
    options = Options()
    assert options.max_payload_length == 16 * 1024 * 1024
    assert options.idle_timeout == 120.0
    assert options.send_pings is True
    assert options.backpressure_limit == 16 * 1024 * 1024
    assert options.close_on_backpressure_limit is False
    assert options.publish_to_self is False
    assert options.compression is None
    assert options.protocols == ()
    assert options.headers == ()
    assert options.max_connections is None
    assert options.origins is None
    assert options.handshake_timeout == 10.0
    assert options.close_timeout == 10.0
    assert options.max_request_line == 8192
    assert options.max_headers == 100
    assert options.max_header_size == 8192
    assert options.max_body == 1024 * 1024
    assert options.stop_timeout == 10.0
    assert options.path is None
    assert options.trust_proxy is False


def test_options_are_immutable_and_hashable():
    options = Options()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.idle_timeout = 5  # type: ignore[misc]
    assert hash(options) == hash(Options())
    assert options == Options()


CAMEL_CASE = {
    "maxPayloadLength": ("max_payload_length", 1024),
    "idleTimeout": ("idle_timeout", 30.0),
    "sendPings": ("send_pings", False),
    "backpressureLimit": ("backpressure_limit", 4096),
    "closeOnBackpressureLimit": ("close_on_backpressure_limit", True),
    "publishToSelf": ("publish_to_self", True),
    "maxConnections": ("max_connections", 10),
    "handshakeTimeout": ("handshake_timeout", 2.0),
    "closeTimeout": ("close_timeout", 3.0),
    "maxRequestLine": ("max_request_line", 100),
    "maxHeaders": ("max_headers", 20),
    "maxHeaderSize": ("max_header_size", 2048),
    "maxBody": ("max_body", 0),
    "stopTimeout": ("stop_timeout", 1.5),
    "trustProxy": ("trust_proxy", True),
}


@pytest.mark.parametrize("camel", sorted(CAMEL_CASE))
def test_camel_case_names(camel):
    field, value = CAMEL_CASE[camel]
    assert getattr(Options.from_kwargs(**{camel: value}), field) == value
    assert getattr(Options.from_kwargs(**{field: value}), field) == value


def test_from_kwargs_refines_a_base():
    server = Options.from_kwargs(maxPayloadLength=1024, idle_timeout=60)
    route = Options.from_kwargs(server, idleTimeout=5)
    assert (route.max_payload_length, route.idle_timeout) == (1024, 5.0)
    assert (server.max_payload_length, server.idle_timeout) == (1024, 60.0)
    assert Options.from_kwargs(server) is server
    with pytest.raises(TypeError, match="base must be Options"):
        Options.from_kwargs({"idle_timeout": 1})


@pytest.mark.parametrize(
    "name, suggestion",
    [
        ("maxPayloadLenght", "maxPayloadLength"),
        ("max_payload", "max_payload_length"),
        ("idletimeout", "idle_timeout"),
        ("IdleTimeout", "idleTimeout"),
        ("idleTimout", "idleTimeout"),
        ("max_payload_lenght", "max_payload_length"),
        ("MAX_BODY", "maxBody"),
        ("compresion", "compression"),
    ],
)
def test_unknown_option_suggests_the_closest_name(name, suggestion):
    with pytest.raises(TypeError, match=f"unknown option '{name}'; did you mean '{suggestion}'"):
        Options.from_kwargs(**{name: 1})


def test_unknown_option_without_close_match():
    with pytest.raises(TypeError, match=r"unknown option 'zzz'$"):
        Options.from_kwargs(zzz=1)


def test_same_option_twice_is_an_error():
    with pytest.raises(TypeError, match="given twice"):
        Options.from_kwargs(idle_timeout=1, idleTimeout=2)


@pytest.mark.parametrize(
    "name",
    [
        "max_payload_length",
        "backpressure_limit",
        "max_request_line",
        "max_headers",
        "max_header_size",
    ],
)
@pytest.mark.parametrize(
    "value, error",
    [(-1, ValueError), (0, ValueError), (True, TypeError), (1.5, TypeError), ("1", TypeError)],
)
def test_sizes_are_positive_ints(name, value, error):
    with pytest.raises(error, match=name):
        Options.from_kwargs(**{name: value})


def test_max_body_may_be_zero_but_not_negative():
    assert Options(max_body=0).max_body == 0
    with pytest.raises(ValueError, match="maxBody must be an integer >= 0, got -1"):
        Options.from_kwargs(maxBody=-1)


@pytest.mark.parametrize("name", ["handshake_timeout", "close_timeout", "stop_timeout"])
@pytest.mark.parametrize(
    "value, error",
    [
        (0, ValueError),
        (-1, ValueError),
        (math.inf, ValueError),
        (math.nan, ValueError),
        (True, TypeError),
        ("1", TypeError),
        (None, TypeError),
    ],
)
def test_timeouts_are_positive_finite_numbers(name, value, error):
    with pytest.raises(error, match=name):
        Options.from_kwargs(**{name: value})


def test_idle_timeout_zero_disables():
    assert Options(idle_timeout=0).idle_timeout == 0.0
    assert isinstance(Options(idle_timeout=3).idle_timeout, float)
    with pytest.raises(ValueError, match=r"idleTimeout must be a finite number >= 0 \(0 disables"):
        Options.from_kwargs(idleTimeout=-0.5)


@pytest.mark.parametrize(
    "name", ["send_pings", "close_on_backpressure_limit", "publish_to_self", "trust_proxy"]
)
@pytest.mark.parametrize("value", [1, 0, "yes", None])
def test_flags_are_bools(name, value):
    with pytest.raises(TypeError, match=f"{name} must be True or False"):
        Options.from_kwargs(**{name: value})


@pytest.mark.parametrize(
    "value, normalized",
    [
        (None, None),
        (False, None),
        (True, "shared"),
        ("shared", "shared"),
        ("dedicated", "dedicated"),
    ],
)
def test_compression_is_normalised(value, normalized):
    assert Options(compression=value).compression == normalized


@pytest.mark.parametrize("value", ["yes", "SHARED", 1, 0, [], "deflate"])
def test_compression_refuses_anything_else(value):
    with pytest.raises(ValueError, match="compression must be"):
        Options(compression=value)


def test_protocols():
    assert Options(protocols=["chat", "superchat"]).protocols == ("chat", "superchat")
    assert Options(protocols=("graphql-ws",)).protocols == ("graphql-ws",)
    with pytest.raises(TypeError, match="list or tuple"):
        Options(protocols="chat")
    with pytest.raises(TypeError, match="entries must be str"):
        Options(protocols=["chat", 1])
    with pytest.raises(ValueError, match="not a token"):
        Options(protocols=["chat, superchat"])
    with pytest.raises(ValueError, match="not a token"):
        Options(protocols=[""])
    with pytest.raises(ValueError, match="twice"):
        Options(protocols=["a", "a"])


def test_headers_from_pairs_or_dict():
    assert Options(headers={"X-A": "1"}).headers == (("X-A", "1"),)
    assert Options(headers=[["X-A", "1"], ("X-B", 2)]).headers == (("X-A", "1"), ("X-B", "2"))


@pytest.mark.parametrize(
    "headers, error, match",
    [
        ([("X-A", "a\r\nX-B: b")], ValueError, "control character"),
        ([("X A", "1")], ValueError, "invalid header name"),
        ([("X-A",)], TypeError, "pairs"),
        ("X-A: 1", TypeError, "list or tuple"),
        ([("Sec-WebSocket-Accept", "x")], ValueError, "handshake itself"),
        ({"connection": "close"}, ValueError, "handshake itself"),
        ([("X-A", None)], TypeError, "must be a str"),
    ],
)
def test_headers_are_validated(headers, error, match):
    with pytest.raises(error, match=match):
        Options(headers=headers)


def test_max_connections():
    assert Options(max_connections=5).max_connections == 5
    for value, error in [(0, ValueError), (-3, ValueError), (True, TypeError), (2.0, TypeError)]:
        with pytest.raises(error, match="max_connections"):
            Options(max_connections=value)


def test_origins_are_normalised_and_deduplicated():
    options = Options(origins=["HTTPS://Example.com", "https://example.com", "http://a:8080"])
    assert options.origins == ("https://example.com", "http://a:8080")
    assert Options(origins=[]).origins == ()
    with pytest.raises(ValueError, match="origins: invalid origin 'example.com'"):
        Options(origins=["example.com"])
    with pytest.raises(TypeError, match="list or tuple"):
        Options(origins="https://example.com")


def test_path():
    assert Options(path="/ws").path == "/ws"
    for value in ["ws", "/ws?x", "/w s", ""]:
        with pytest.raises(ValueError, match="path"):
            Options(path=value)
    with pytest.raises(TypeError, match="path"):
        Options(path=b"/ws")


def test_errors_name_the_option_as_spelled_and_the_value():
    with pytest.raises(ValueError) as info:
        Options.from_kwargs(maxPayloadLength=-5)
    assert "maxPayloadLength" in str(info.value) and "-5" in str(info.value)
    with pytest.raises(TypeError) as info:
        Options.from_kwargs(max_payload_length=True)
    assert "max_payload_length" in str(info.value) and "True (bool)" in str(info.value)


# --- handlers ------------------------------------------------------------------------------------


def test_handler_of_a_plain_function():
    def message(ws, data):
        return (ws, data)

    handler = Handler(message, "message", 2)
    assert (handler.fn, handler.is_async, handler.arity) == (message, False, 2)
    assert handler.call("ws", "hi") == ("ws", "hi")


def test_handler_arity_is_capped_and_call_passes_only_what_fits():
    handler = Handler(lambda ws: ws, "close", 3)
    assert handler.arity == 1
    assert handler.call("ws", 1000, "bye") == "ws"
    assert Handler(lambda: 7, "open", 1).call("ws") == 7


def test_handler_arity_counts_defaults_and_star_args():
    def with_default(ws, code, reason="", extra=None):
        return reason

    assert Handler(with_default, "close", 3).arity == 3
    assert Handler(lambda *args: args, "close", 3).arity == 3
    assert Handler(lambda ws, *rest: rest, "close", 3).call(1, 2, 3) == (2, 3)
    assert Handler(lambda ws, *, flag=False: flag, "message", 2).arity == 1


def test_handler_arity_of_bound_methods_partials_and_callable_objects():
    class Chat:
        def on_message(self, ws, data):
            return data

        def __call__(self, ws):
            return ws

    chat = Chat()
    assert Handler(chat.on_message, "message", 2).arity == 2
    assert Handler(chat, "open", 1).arity == 1
    partial = functools.partial(lambda prefix, ws, data: prefix + data, ">")
    handler = Handler(partial, "message", 2)
    assert handler.arity == 2 and handler.call("ws", "x") == ">x"


def test_handler_builtins_without_signature_get_full_arity():
    handler = Handler(print, "close", 3)
    assert handler.arity == 3 and not handler.is_async
    assert Handler(dict, "message", 2).arity == 2


def test_handler_is_async_false_for_sync_callables():
    class Callable:
        def __call__(self, ws):
            return ws

    for fn in (lambda ws: None, print, Callable(), functools.partial(print, "x")):
        assert not Handler(fn, "open", 1).is_async


def test_handler_detects_async_in_every_form():
    async def message(ws, data):
        return data

    class Room:
        async def on_message(self, ws, data):
            return data

        async def __call__(self, ws, data):
            return data

    room = Room()
    assert Handler(message, "message", 2).is_async
    assert Handler(room.on_message, "message", 2).is_async
    assert Handler(room, "message", 2).is_async
    assert Handler(functools.partial(message), "message", 2).is_async
    assert Handler(functools.partial(functools.partial(room), "ws"), "message", 2).is_async


def test_handler_not_callable():
    with pytest.raises(TypeError, match="message handler must be callable, got 'hi' \\(str\\)"):
        Handler("hi", "message", 2)


def test_handler_needing_more_arguments_than_offered():
    with pytest.raises(TypeError, match="open handler .* requires 2 positional arguments"):
        Handler(lambda ws, extra: None, "open", 1)


def test_handler_with_required_keyword_only_parameter():
    with pytest.raises(TypeError, match="keyword-only parameter 'flag'"):
        Handler(lambda ws, *, flag: None, "open", 1)


def test_handlers_resolve_each_name_once():
    def on_open(ws):
        return None

    handlers = Handlers(open=on_open, close=None)
    assert isinstance(handlers.open, Handler) and handlers.open.fn is on_open
    assert handlers.close is None and handlers.message is None
    assert "open" in repr(handlers)
    with pytest.raises(AttributeError):
        handlers.open = None
    with pytest.raises(TypeError, match="unknown handler 'mesage'; did you mean 'message'"):
        Handlers(mesage=on_open)


def test_handler_arity_table_matches_verb():
    assert HANDLER_ARITY == {
        "open": 1,
        "message": 2,
        "close": 3,
        "error": 2,
        "drain": 1,
        "ping": 2,
        "pong": 2,
        "upgrade": 1,
        "limited": 2,  # verb's own: a message dropped by rate_limit (Verb has none)
    }


# --- split_websocket_config ----------------------------------------------------------------------


def test_split_a_verb_style_dict():
    def message(ws, data):
        return None

    async def close(ws, code, reason):
        return None

    handlers, options = split_websocket_config(
        {"message": message, "close": close, "maxPayloadLength": 1024, "idleTimeout": 30}
    )
    assert handlers.message.fn is message and handlers.message.arity == 2
    assert handlers.close.is_async and handlers.close.arity == 3
    assert options == {"maxPayloadLength": 1024, "idleTimeout": 30}
    assert Options.from_kwargs(**options).max_payload_length == 1024


def test_split_keywords_and_dict_together():
    handlers, options = split_websocket_config({"open": print}, message=print, max_body=0)
    assert handlers.open.fn is print and handlers.message.fn is print
    assert options == {"max_body": 0}
    assert split_websocket_config()[1] == {}


def test_split_refuses_repeats_unknown_names_and_bad_handlers():
    with pytest.raises(TypeError, match="'open' given twice"):
        split_websocket_config({"open": print}, open=print)
    with pytest.raises(TypeError, match="'idleTimeout' given twice"):
        split_websocket_config({"idleTimeout": 1}, idleTimeout=2)
    with pytest.raises(
        TypeError, match="unknown handler or option 'mesage'; did you mean 'message'"
    ):
        split_websocket_config(mesage=print)
    with pytest.raises(TypeError, match="did you mean 'maxPayloadLength'"):
        split_websocket_config({"maxPayloadLenght": 1})
    with pytest.raises(TypeError, match="message handler must be callable"):
        split_websocket_config(message="not a function")
    with pytest.raises(TypeError, match="must be a dict"):
        split_websocket_config([("open", print)])
    with pytest.raises(TypeError, match="keys must be str"):
        split_websocket_config({1: print})
