"""Tests of verb.core.handshake, with the `websockets` library's sans-I/O client as the peer."""

import base64

import httptools
import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.protocol import State
from websockets.uri import parse_uri
from websockets.utils import accept_key as websockets_accept_key

from verb.core.handshake import (
    HandshakeError,
    accept_key,
    build_response,
    check_request,
    is_upgrade_request,
    select_subprotocol,
)
from verb.server.http import Headers, HTTPError, error_response
from verb.server.options import Options

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3


def parse_request(data: bytes):
    """Parse request bytes with httptools as the connection layer does: method, version, headers."""
    fields = []

    class Collector:
        def on_header(self, name, value):
            fields.append((name, value))

    parser = httptools.HttpRequestParser(Collector())
    # httptools stops at the end of an upgrade request's head and says so with this exception.
    with pytest.raises(httptools.HttpParserUpgrade):
        parser.feed_data(data)
    return parser.get_method().decode(), parser.get_http_version(), Headers(fields)


def websockets_client(**kwargs):
    """A websockets client that sent its opening handshake; returns (client, our view of it)."""
    client = ClientProtocol(parse_uri("ws://example.com/chat"), **kwargs)
    client.send_request(client.connect())
    (request_bytes,) = client.data_to_send()
    return client, parse_request(request_bytes)


def request_headers(**overrides):
    """Headers of a valid upgrade request; a value None removes that field."""
    fields = {
        "Host": "example.com",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": RFC_KEY,
        "Sec-WebSocket-Version": "13",
    }
    fields.update(overrides)
    return Headers([(name.encode(), value.encode()) for name, value in fields.items() if value])


def refusal(method="GET", version="1.1", headers=None, options=None) -> HandshakeError:
    with pytest.raises(HandshakeError) as info:
        check_request(method, version, headers or request_headers(), options or Options())
    return info.value


# --- accept key ----------------------------------------------------------------------------------


def test_accept_key_of_the_rfc_example():
    assert accept_key(RFC_KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert accept_key(RFC_KEY.encode()) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@given(st.binary(min_size=16, max_size=16))
def test_accept_key_agrees_with_websockets(nonce):
    key = base64.b64encode(nonce).decode()
    assert accept_key(key) == websockets_accept_key(key)


# --- is_upgrade_request --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")],
        [(b"upgrade", b"WebSocket"), (b"connection", b"keep-alive, Upgrade")],
        [(b"Upgrade", b"h2c, websocket"), (b"Connection", b"  upgrade ,keep-alive ")],
        [(b"Upgrade", b"websocket"), (b"Connection", b"keep-alive"), (b"Connection", b"upgrade")],
        [(b"Upgrade", b"\twebsocket\t"), (b"Connection", b",,Upgrade,")],
    ],
)
def test_is_upgrade_request(fields):
    assert is_upgrade_request(Headers(fields))


@pytest.mark.parametrize(
    "fields",
    [
        [],
        [(b"Upgrade", b"websocket")],
        [(b"Connection", b"Upgrade")],
        [(b"Upgrade", b"websockets"), (b"Connection", b"Upgrade")],
        [(b"Upgrade", b"websocket/13 x"), (b"Connection", b"Upgrade")],
        [(b"Upgrade", b"websocket"), (b"Connection", b"keep-alive")],
        [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade-Insecure")],
    ],
)
def test_is_not_upgrade_request(fields):
    assert not is_upgrade_request(Headers(fields))


# --- check_request -------------------------------------------------------------------------------


def test_check_request_returns_the_key():
    assert check_request("GET", "1.1", request_headers(), Options()) == RFC_KEY
    spaced = request_headers(**{"Sec-WebSocket-Key": f" {RFC_KEY}\t"})
    assert check_request("GET", "1.1", spaced, Options()) == RFC_KEY


def test_check_request_accepts_the_websockets_client():
    _client, (method, version, headers) = websockets_client()
    key = check_request(method, version, headers, Options())
    assert key == headers["Sec-WebSocket-Key"]


def test_handshake_error_is_an_http_error():
    error = refusal(method="POST")
    assert isinstance(error, HTTPError)
    assert b"HTTP/1.1 400 Bad Request" in error_response(error.status, error.message, error.headers)


@pytest.mark.parametrize("method", ["POST", "HEAD", "get", "CONNECT"])
def test_method_other_than_get_is_400(method):
    error = refusal(method=method)
    assert error.status == 400 and "GET" in error.message


@pytest.mark.parametrize("version", ["1.0", "0.9", "", "x"])
def test_http_before_1_1_is_400(version):
    assert refusal(version=version).status == 400


def test_missing_or_repeated_host_is_400():
    assert refusal(headers=request_headers(Host=None)).status == 400
    repeated = Headers([*request_headers().items(), ("Host", "other.example")])
    assert refusal(headers=repeated).status == 400


@pytest.mark.parametrize(
    "overrides",
    [{"Upgrade": None}, {"Connection": None}, {"Upgrade": "h2c"}, {"Connection": "keep-alive"}],
)
def test_not_an_upgrade_is_426_naming_websocket(overrides):
    error = refusal(headers=request_headers(**overrides))
    assert error.status == 426
    assert ("Upgrade", "websocket") in error.headers


@pytest.mark.parametrize("version", [None, "8", "12", "14", "13, 8", "thirteen", ""])
def test_other_versions_are_426_with_version_13(version):
    error = refusal(headers=request_headers(**{"Sec-WebSocket-Version": version}))
    assert error.status == 426
    assert ("Sec-WebSocket-Version", "13") in error.headers
    response = error_response(error.status, error.message, error.headers)
    assert b"\r\nSec-WebSocket-Version: 13\r\n" in response


def test_repeated_version_header_is_426():
    headers = Headers([*request_headers().items(), ("Sec-WebSocket-Version", "13")])
    assert refusal(headers=headers).status == 426


@pytest.mark.parametrize(
    "key",
    [
        None,
        "",
        "dGhlIHNhbXBsZSBub25jZQ",  # no padding
        "dGhlIHNhbXBsZSBub25jZQ==AA",  # too long
        "AAAAAAAAAAAAAAAAAAAAAAAA",  # 18 bytes
        "dGhlIHNhbXBsZSBub25j",  # 15 bytes (20 chars)
        "dGhlIHNhbXBsZSBub25jZ!==",  # not base64
        "dGhlIHNhbXBsZS Bub25jZQ=",  # space inside
        "dGhlIHNhbXBsZSBub25jZQé=",  # non-ASCII
    ],
)
def test_bad_key_is_400(key):
    error = refusal(headers=request_headers(**{"Sec-WebSocket-Key": key}))
    assert error.status == 400 and "Sec-WebSocket-Key" in error.message


def test_repeated_key_is_400():
    headers = Headers([*request_headers().items(), ("Sec-WebSocket-Key", RFC_KEY)])
    assert refusal(headers=headers).status == 400


def test_origin_allowed_by_any_default():
    headers = request_headers(Origin="https://evil.example")
    assert check_request("GET", "1.1", headers, Options()) == RFC_KEY


@pytest.mark.parametrize(
    "origin",
    [
        None,
        "https://example.com",
        "HTTPS://EXAMPLE.COM",
        "http://localhost:3000",
        " https://example.com",
    ],
)
def test_allowed_origins(origin):
    options = Options(origins=["https://example.com", "http://localhost:3000"])
    assert check_request("GET", "1.1", request_headers(Origin=origin), options) == RFC_KEY


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://example.com",  # scheme differs
        "https://example.com:443",  # the port is compared exactly
        "https://example.com.evil.example",
        "null",
        "garbage",
        "https://example.com/path",
    ],
)
def test_other_origins_are_403(origin):
    options = Options(origins=["https://example.com"])
    error = refusal(headers=request_headers(Origin=origin), options=options)
    assert error.status == 403 and "not allowed" in error.message


def test_repeated_origin_is_400_when_origins_are_checked():
    options = Options(origins=["https://example.com"])
    headers = Headers([*request_headers(Origin="https://example.com").items()])
    headers = Headers([*headers.items(), ("Origin", "https://example.com")])
    assert refusal(headers=headers, options=options).status == 400


def test_empty_origin_list_refuses_every_browser():
    error = refusal(
        headers=request_headers(Origin="https://a.example"), options=Options(origins=[])
    )
    assert error.status == 403
    assert check_request("GET", "1.1", request_headers(), Options(origins=[])) == RFC_KEY


# --- select_subprotocol --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "offered, server, chosen",
    [
        (["chat, superchat"], ("superchat", "chat"), "superchat"),  # the server's order decides
        (["chat, superchat"], ("chat", "superchat"), "chat"),
        (["a", "b,  c"], ("c",), "c"),  # several header fields
        (["  x ,, y\t"], ("y",), "y"),
        (["chat"], ("Chat",), None),  # case-sensitive
        (["chat"], ("mqtt",), None),
        ([], ("chat",), None),
        (["chat"], (), None),
    ],
)
def test_select_subprotocol(offered, server, chosen):
    headers = Headers([(b"Sec-WebSocket-Protocol", value.encode()) for value in offered])
    assert select_subprotocol(headers, server) == chosen


# --- build_response, checked by the websockets client --------------------------------------------


def accepted_by_websockets(client: ClientProtocol, response: bytes) -> ClientProtocol:
    client.receive_data(response)
    client.events_received()
    assert client.handshake_exc is None, client.handshake_exc
    assert client.state is State.OPEN
    return client


def test_rfc_example_response():
    assert build_response(RFC_KEY) == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"\r\n"
    )


def test_websockets_client_accepts_our_response():
    client, (method, version, headers) = websockets_client()
    key = check_request(method, version, headers, Options())
    assert accepted_by_websockets(client, build_response(key)).subprotocol is None


def test_websockets_client_accepts_a_subprotocol():
    client, (method, version, headers) = websockets_client(subprotocols=["chat", "superchat"])
    options = Options(protocols=["superchat", "chat"])
    key = check_request(method, version, headers, options)
    chosen = select_subprotocol(headers, options.protocols)
    assert chosen == "superchat"
    assert accepted_by_websockets(client, build_response(key, chosen)).subprotocol == "superchat"


def test_websockets_client_accepts_extensions_and_custom_headers():
    client, (method, version, headers) = websockets_client(
        extensions=[ClientPerMessageDeflateFactory()]
    )
    options = Options(headers={"Server": "verb", "X-Frame-Options": "DENY"})
    key = check_request(method, version, headers, options)
    response = build_response(key, None, "permessage-deflate", options.headers)
    client = accepted_by_websockets(client, response)
    assert [extension.name for extension in client.extensions] == ["permessage-deflate"]
    assert b"\r\nServer: verb\r\nX-Frame-Options: DENY\r\n\r\n" in response


def test_websockets_client_rejects_a_wrong_accept():
    client, _ = websockets_client()
    client.receive_data(build_response(RFC_KEY))
    client.events_received()
    assert client.handshake_exc is not None


def test_websockets_client_sees_our_refusals():
    client, _ = websockets_client()
    client.receive_data(error_response(426, headers={"Sec-WebSocket-Version": "13"}))
    client.events_received()
    assert "426" in str(client.handshake_exc)


def test_build_response_takes_headers_as_any_iterable_and_reuses_tuples():
    from_list = build_response(RFC_KEY, extra_headers=[["X-A", "1"]])
    from_tuple = build_response(RFC_KEY, extra_headers=(("X-A", "1"),))
    assert from_list == from_tuple
    assert from_list.endswith(b"=\r\nX-A: 1\r\n\r\n")
    headers = Options(headers={"X-B": "2"}).headers
    assert build_response(RFC_KEY, extra_headers=headers) == build_response(
        RFC_KEY, extra_headers=headers
    )


def test_build_response_header_order():
    response = build_response(RFC_KEY, "chat", "permessage-deflate", (("X-A", "1"),))
    assert response.split(b"\r\n")[4:] == [
        b"Sec-WebSocket-Protocol: chat",
        b"Sec-WebSocket-Extensions: permessage-deflate",
        b"X-A: 1",
        b"",
        b"",
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"subprotocol": "chat\r\nX-Injected: 1"},
        {"extensions": "permessage-deflate\nX: 1"},
        {"extra_headers": (("X-A", "1\r\n"),)},
        {"extra_headers": (("X A", "1"),)},
    ],
)
def test_build_response_refuses_header_injection(kwargs):
    with pytest.raises(ValueError):
        build_response(RFC_KEY, **kwargs)


# ---------------------------------------------------------------------------------------------
# The connection layer's plain upgrade path (verb.server._server._plain_upgrade_key) answers ordinary
# upgrades without building a Request; anything it accepts, check_request accepts with the same
# key, and anything unusual it leaves to check_request (None).

from verb.server._server import _plain_upgrade_key  # noqa: E402

_BASE_FIELDS = [("Host", "127.0.0.1:3000"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", RFC_KEY), ("Sec-WebSocket-Version", "13")]
# Per field: spellings of its name and values around the boundary of what is valid.
_VARIANTS = {
    "Host": (["Host", "host", "HOST"], ["127.0.0.1:3000", "example.com", ""]),
    "Upgrade": (["Upgrade", "upgrade"], ["websocket", "WebSocket", " websocket\t", "h2c",
                                         "websocket, h2c", ""]),
    "Connection": (["Connection", "connection"], ["Upgrade", "upgrade", "keep-alive, Upgrade",
                                                  "upgrade,", " UPGRADE ", "close", ""]),
    "Sec-WebSocket-Key": (["Sec-WebSocket-Key", "sec-websocket-key"], [
        RFC_KEY, " " + RFC_KEY, "AAAAAAAAAAAAAAAAAAAAAA==", "dGhlIHNhbXBsZSBub25jZR==",
        "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZ!==", "dGhlIHNhbXBsZSBub25jZQ===", ""]),
    "Sec-WebSocket-Version": (["Sec-WebSocket-Version", "sec-websocket-version"],
                              ["13", " 13 ", "8", "13, 8", ""]),
    "Sec-WebSocket-Protocol": (["Sec-WebSocket-Protocol"], ["chat", ""]),
    "Sec-WebSocket-Extensions": (["Sec-WebSocket-Extensions"], ["permessage-deflate", ""]),
    "Origin": (["Origin"], ["http://example.com"]),
}
# How often each field appears: the required ones mostly once (mostly with a valid value, the
# first listed), so that both sides of the boundary are explored.
_COUNTS = {name: st.sampled_from([1] * 12 + [0, 2]) for name, _ in _BASE_FIELDS}
_COUNTS.update({name: st.sampled_from([0, 0, 1, 2]) for name in
                ("Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions", "Origin")})


@st.composite
def _upgrade_fields(draw):
    fields = []
    for field, count in _COUNTS.items():
        names, values = _VARIANTS[field]
        for _ in range(draw(count)):
            value = draw(st.one_of(st.just(values[0]), st.just(values[0]),
                                   st.sampled_from(values)))
            fields.append((draw(st.sampled_from(names)), value))
    return draw(st.permutations(fields))


def _plain(method, version, fields, protocols=False, extensions=False):
    raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in fields]
    return _plain_upgrade_key(method.encode("ascii"), version, raw, protocols, extensions)


@given(
    fields=_upgrade_fields(),
    method=st.sampled_from(["GET"] * 9 + ["POST"]),
    version=st.sampled_from(["1.1"] * 9 + ["1.0"]),
    protocols=st.booleans(),
    extensions=st.booleans(),
)
def test_plain_upgrade_path_accepts_only_what_check_request_accepts(
        fields, method, version, protocols, extensions):
    key = _plain(method, version, fields, protocols, extensions)
    if key is None:
        return
    headers = Headers([(n.encode(), v.encode()) for n, v in fields])
    assert is_upgrade_request(headers)
    assert check_request(method, version, headers, Options()) == key
    if protocols:
        assert not headers.get_all("sec-websocket-protocol")
    if extensions:
        assert not headers.get_all("sec-websocket-extensions")


@pytest.mark.parametrize("extra", [
    [],
    [("Connection", "keep-alive, Upgrade")],  # Firefox (replaces the plain one below)
    [("Origin", "http://example.com"), ("Sec-WebSocket-Extensions",
                                        "permessage-deflate; client_max_window_bits")],
    [("sec-websocket-protocol", "chat")],
])
def test_plain_upgrade_path_takes_ordinary_requests(extra):
    fields = [f for f in _BASE_FIELDS if not (extra and extra[0][0] == f[0])] + extra
    assert _plain("GET", "1.1", fields) == RFC_KEY


@pytest.mark.parametrize("fields, protocols, extensions", [
    (_BASE_FIELDS + [("Sec-WebSocket-Protocol", "chat")], True, False),  # negotiation needed
    (_BASE_FIELDS + [("Sec-WebSocket-Extensions", "permessage-deflate")], False, True),
    (_BASE_FIELDS[1:], False, False),  # no Host: check_request answers 400
    (_BASE_FIELDS + [("Sec-WebSocket-Key", RFC_KEY)], False, False),  # two keys: 400
    ([f if f[0] != "Sec-WebSocket-Key" else (f[0], "dGhlIHNhbXBsZSBub25jZR==")
      for f in _BASE_FIELDS], False, False),  # nonzero trailing bits: check_request decides
])
def test_plain_upgrade_path_leaves_the_rest_to_check_request(fields, protocols, extensions):
    assert _plain("GET", "1.1", fields, protocols, extensions) is None
