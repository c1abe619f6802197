"""Tests of verb.server.http and verb.core.headers: headers, requests, responses, errors and the shared grammar helpers."""

import httptools
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from verb.core.errors import HTTPError
from verb.core.headers import (
    Headers,
    check_header,
    has_token,
    header_tokens,
    is_token,
    normalize_origin,
    reason_phrase,
    split_tokens,
)
from verb.server.http import Request, Response, decode_path_segment, error_response


def parse_response(data: bytes):
    """Parse response bytes with httptools (an independent parser): (status, headers, body)."""
    result = {"headers": [], "body": b""}

    class Collector:
        def on_header(self, name, value):
            result["headers"].append((name.decode("latin-1"), value.decode("latin-1")))

        def on_body(self, body):
            result["body"] += body

        def on_message_complete(self):
            result["complete"] = True

    parser = httptools.HttpResponseParser(Collector())
    parser.feed_data(data)
    return parser.get_status_code(), result["headers"], result["body"]


def parse_request(data: bytes) -> Request:
    """Build a Request the way the connection layer does, from httptools callbacks."""
    parts = {"headers": [], "body": b""}

    class Collector:
        def on_url(self, url):
            parts["url"] = url

        def on_header(self, name, value):
            parts["headers"].append((name, value))

        def on_body(self, body):
            parts["body"] += body

    parser = httptools.HttpRequestParser(Collector())
    parser.feed_data(data)
    return Request(
        parser.get_method(),
        parts["url"],
        parts["headers"],
        parts["body"],
        remote_address=("127.0.0.1", 50000),
        http_version=parser.get_http_version(),
    )


# --- grammar helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, tokens",
    [
        ("Upgrade", ["Upgrade"]),
        ("keep-alive, Upgrade", ["keep-alive", "Upgrade"]),
        ("  keep-alive ,\tUpgrade\t ", ["keep-alive", "Upgrade"]),
        ("a,,b, ,c,", ["a", "b", "c"]),
        ("", []),
        (" , ,", []),
    ],
)
def test_split_tokens_drops_whitespace_and_empty_elements(value, tokens):
    assert split_tokens(value) == tokens


def test_header_tokens_spans_repeated_fields_in_order():
    headers = Headers([(b"Sec-WebSocket-Protocol", b"a, b"), (b"sec-websocket-protocol", b"c")])
    assert header_tokens(headers, "Sec-WebSocket-Protocol") == ["a", "b", "c"]
    assert header_tokens(headers, "missing") == []


@pytest.mark.parametrize(
    "fields, expected",
    [
        ([(b"Connection", b"Upgrade")], True),
        ([(b"Connection", b"keep-alive, UPGRADE")], True),
        ([(b"Connection", b"keep-alive"), (b"Connection", b"upgrade")], True),
        ([(b"Connection", b"upgraded")], False),
        ([(b"Connection", b"keep-alive")], False),
        ([], False),
    ],
)
def test_has_token_is_case_insensitive_and_exact(fields, expected):
    assert has_token(Headers(fields), "connection", "upgrade") is expected


@pytest.mark.parametrize("name", ["Host", "X-Custom", "a!#$%&'*+-.^_`|~9"])
def test_is_token_accepts_tchars(name):
    assert is_token(name)


@pytest.mark.parametrize("name", ["", "a b", "a:b", "a,b", "a\r\nb", "é", 'a"', None, b"Host"])
def test_is_token_refuses_separators_and_non_str(name):
    assert not is_token(name)


@pytest.mark.parametrize("value", ["a\r\nSet-Cookie: x=1", "a\nb", "a\rb", "a\x00b", "a\x7fb"])
def test_check_header_refuses_control_characters(value):
    with pytest.raises(ValueError, match="control character"):
        check_header("X-Test", value)


def test_check_header_accepts_tab_latin1_and_int():
    assert check_header("X-A", "a\tb café") == ("X-A", "a\tb café")
    assert check_header("X-N", 42) == ("X-N", "42")
    with pytest.raises(ValueError, match="latin-1"):
        check_header("X-A", "日本")
    with pytest.raises(TypeError):
        check_header("X-A", True)
    with pytest.raises(TypeError):
        check_header(b"X-A", "v")
    with pytest.raises(ValueError, match="header name"):
        check_header("X A", "v")


@pytest.mark.parametrize(
    "origin, normalized",
    [
        ("https://example.com", "https://example.com"),
        ("HTTPS://Example.COM", "https://example.com"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        ("chrome-extension://abcdef", "chrome-extension://abcdef"),
    ],
)
def test_normalize_origin(origin, normalized):
    assert normalize_origin(origin) == normalized


@pytest.mark.parametrize(
    "origin",
    [
        "null",
        "example.com",
        "https://example.com/",
        "https://example.com/path",
        "https://example.com?q",
        "https://user@example.com",
        "https://example.com:port",
        "https://",
        " https://example.com",
    ],
)
def test_normalize_origin_refuses_non_origins(origin):
    with pytest.raises(ValueError, match="invalid origin"):
        normalize_origin(origin)


def test_reason_phrase():
    assert reason_phrase(404) == "Not Found"
    assert reason_phrase(599) == ""


@pytest.mark.parametrize(
    "segment, decoded",
    [("plain", "plain"), ("caf%C3%A9", "café"), ("a%2Fb", "a/b"), ("a+b", "a+b"), ("%zz", "%zz")],
)
def test_decode_path_segment(segment, decoded):
    assert decode_path_segment(segment) == decoded


def test_decode_path_segment_refuses_invalid_utf8_with_400():
    with pytest.raises(HTTPError) as info:
        decode_path_segment("%ff")
    assert info.value.status == 400


# --- Headers -------------------------------------------------------------------------------------


def test_headers_are_case_insensitive_and_multi_valued():
    headers = Headers([(b"Host", b"example.com"), (b"X-A", b"1"), (b"x-a", b"2")])
    assert headers["HOST"] == "example.com"
    assert headers.get("x-A") == "1, 2"
    assert headers.get_all("X-A") == ["1", "2"]
    assert "host" in headers and "X-B" not in headers and 3 not in headers
    assert headers.get("X-B") is None and headers.get("X-B", "d") == "d"
    with pytest.raises(KeyError):
        headers["X-B"]


def test_headers_sequence_view_keeps_every_field_in_order():
    raw = [(b"Host", b"h"), (b"X-A", b"1"), (b"x-a", b"2")]
    headers = Headers(raw)
    assert len(headers) == 3
    assert list(headers) == ["Host", "X-A", "x-a"]
    assert headers.items() == [("Host", "h"), ("X-A", "1"), ("x-a", "2")]
    assert headers.to_dict() == {"host": "h", "x-a": "1, 2"}


def test_headers_combine_cookie_fields_with_semicolons():
    headers = Headers([(b"Cookie", b"a=1"), (b"Cookie", b"b=2")])
    assert headers["cookie"] == "a=1; b=2"


def test_headers_decode_latin1_so_bytes_round_trip():
    headers = Headers([(b"X-Name", "café".encode())])
    assert headers["x-name"] == "cafÃ©"
    assert headers["x-name"].encode("latin-1").decode("utf-8") == "café"


def test_headers_accept_str_pairs_and_empty():
    assert Headers([("Host", "h")])["host"] == "h"
    assert len(Headers()) == 0 and Headers().to_dict() == {}


# --- Request -------------------------------------------------------------------------------------


def test_request_from_httptools():
    req = parse_request(
        b"POST /users/caf%C3%A9?x=1+2&y=%20&z HTTP/1.1\r\nHost: example.com\r\n"
        b'Content-Type: application/json\r\nContent-Length: 8\r\n\r\n{"a": 1}'
    )
    assert req.method == "POST"
    assert req.url == "/users/caf%C3%A9?x=1+2&y=%20&z"
    assert req.path == "/users/café"
    assert req.raw_path == "/users/caf%C3%A9"
    assert req.query == {"x": "1 2", "y": " ", "z": ""}
    assert req.json() == {"a": 1}
    assert req.http_version == "1.1"
    assert req.ip == "127.0.0.1"
    assert req.headers["host"] == "example.com"


def test_request_method_and_url_accept_bytes_and_any_case():
    req = Request(b"get", b"/a?b=c", [])
    assert req.method == "GET" and req.url == "/a?b=c"
    assert repr(req) == "<Request GET /a?b=c>"


@pytest.mark.parametrize(
    "url, path",
    [
        ("/", "/"),
        ("/a%20b", "/a b"),
        ("/a+b", "/a+b"),
        ("/a%2Fb", "/a/b"),
        ("/%E6%97%A5", "/日"),
        ("/a?x=/b", "/a"),
        ("/a#frag", "/a"),
        ("http://example.com/x/y?q=1", "/x/y"),
        ("http://example.com", "/"),
    ],
)
def test_request_path_is_decoded_without_query(url, path):
    assert Request("GET", url, []).path == path


def test_request_path_with_invalid_utf8_is_a_400():
    with pytest.raises(HTTPError) as info:
        Request("GET", "/%ff%fe", []).path  # noqa: B018
    assert info.value.status == 400


def test_query_keeps_first_value_and_query_all_keeps_every_value():
    req = Request("GET", "/?a=1&a=2&b=&c&=x&d=%E2%9C%93&e=%ff", [])
    assert req.query == {"a": "1", "b": "", "c": "", "": "x", "d": "✓", "e": "\ufffd"}
    assert req.query_all["a"] == ["1", "2"]
    assert req.query is req.query  # computed once
    assert Request("GET", "/", []).query == {}
    assert Request("GET", "/?", []).query_all == {}


def test_query_plus_is_space_but_encoded_plus_is_plus():
    assert Request("GET", "/?q=a+b%2Bc", []).query == {"q": "a b+c"}


def test_params_start_empty():
    assert Request("GET", "/", []).params == {}


@pytest.mark.parametrize(
    "content_type, body, text",
    [
        (None, "héllo".encode(), "héllo"),
        ("text/plain; charset=utf-8", "héllo".encode(), "héllo"),
        ("text/plain; charset=ISO-8859-1", "héllo".encode("latin-1"), "héllo"),
        ('text/plain; format=x; charset="utf-16"', "hé".encode("utf-16"), "hé"),
    ],
)
def test_text_uses_the_declared_charset(content_type, body, text):
    headers = [("Content-Type", content_type)] if content_type else []
    assert Request("POST", "/", headers, body).text() == text


def test_text_errors_are_client_errors():
    with pytest.raises(HTTPError) as info:
        Request("POST", "/", [], b"\xff").text()
    assert info.value.status == 400
    with pytest.raises(HTTPError) as info:
        Request("POST", "/", [("Content-Type", "text/plain; charset=nope")], b"x").text()
    assert info.value.status == 415


@pytest.mark.parametrize("body", [b"", b"{", b"{'a': 1}", b"\xff", b"[1,]"])
def test_json_invalid_is_400(body):
    with pytest.raises(HTTPError) as info:
        Request("POST", "/", [], body).json()
    assert info.value.status == 400
    assert "invalid JSON" in info.value.message


def test_body_is_bytes():
    assert Request("POST", "/", [], bytearray(b"ab")).body == b"ab"
    assert Request("POST", "/", []).body == b""


def test_ip_ignores_forwarded_for_unless_trusted():
    headers = [("X-Forwarded-For", " 203.0.113.7 , 10.0.0.1"), ("X-Forwarded-For", "10.0.0.2")]
    assert Request("GET", "/", headers, remote_address="10.0.0.9").ip == "10.0.0.9"
    # Trusted: the last entry, which the proxy appended; earlier ones are the client's words.
    trusted = Request("GET", "/", headers, remote_address="10.0.0.9", trust_proxy=True)
    assert trusted.ip == "10.0.0.2"
    spoofed = [("X-Forwarded-For", "1.2.3.4, 203.0.113.7 ")]
    assert Request("GET", "/", spoofed, remote_address="10.0.0.9",
                   trust_proxy=True).ip == "203.0.113.7"
    empty = [("X-Forwarded-For", "")]
    assert Request("GET", "/", empty, remote_address="10.0.0.9", trust_proxy=True).ip == \
        "10.0.0.9"
    bare = Request("GET", "/", [], remote_address=("::1", 1, 0, 0), trust_proxy=True)
    assert bare.ip == "::1"
    assert Request("GET", "/", []).ip is None


def test_cookies_are_parsed_leniently():
    headers = [("Cookie", 'a=1; b="two"; junk; =x; c=%E2%9C%93;d=; a=shadowed'), ("Cookie", "e=5")]
    assert Request("GET", "/", headers).cookies == {
        "a": "1",
        "b": "two",
        "c": "✓",
        "d": "",
        "e": "5",
    }
    assert Request("GET", "/", []).cookies == {}


@pytest.mark.parametrize(
    "version, connection, keep_alive",
    [
        ("1.1", None, True),
        ("1.1", "close", False),
        ("1.1", "keep-alive, Close", False),
        ("1.1", "Upgrade", True),
        ("1.0", None, False),
        ("1.0", "Keep-Alive", True),
        ("1.0", "keep-alive, close", False),
    ],
)
def test_keep_alive(version, connection, keep_alive):
    headers = [("Connection", connection)] if connection else []
    assert Request("GET", "/", headers, http_version=version).keep_alive is keep_alive


# --- Response ------------------------------------------------------------------------------------


def test_default_response_is_empty_200():
    res = Response()
    assert (res.status_code, res.sent, res.body, res.status_set) == (200, False, b"", False)
    assert parse_response(res.to_bytes()) == (200, [("Content-Length", "0")], b"")


def test_json_response_parses_back():
    res = Response().status(201).json({"ok": True, "n": [1, 2]})
    status, headers, body = parse_response(res.to_bytes())
    assert status == 201
    assert ("Content-Type", "application/json") in headers
    assert ("Content-Length", str(len(body))) in headers
    assert orjson.loads(body) == {"ok": True, "n": [1, 2]}


@pytest.mark.parametrize(
    "send, content_type, body",
    [
        (lambda r: r.html("<b>é</b>"), "text/html; charset=utf-8", "<b>é</b>".encode()),
        (lambda r: r.text("é"), "text/plain; charset=utf-8", "é".encode()),
        (lambda r: r.send("<p>"), "text/html; charset=utf-8", b"<p>"),
        (lambda r: r.send(b"\x00\x01"), "application/octet-stream", b"\x00\x01"),
        (lambda r: r.send(memoryview(b"ab")), "application/octet-stream", b"ab"),
        (lambda r: r.send([1]), "application/json", b"[1]"),
        (lambda r: r.send({"a": None}), "application/json", b'{"a":null}'),
        (lambda r: r.send(None), None, b""),
        (lambda r: r.send(), None, b""),
    ],
)
def test_send_picks_the_content_type(send, content_type, body):
    res = Response()
    assert send(res) is res and res.sent
    _status, headers, received = parse_response(res.to_bytes())
    assert received == body
    assert dict(headers).get("Content-Type") == content_type


def test_send_refuses_other_types():
    with pytest.raises(TypeError, match="cannot send a int"):
        Response().send(3)
    with pytest.raises(TypeError, match="JSON-serializable"):
        Response().json({"a": object()})


def test_second_send_raises():
    res = Response().text("a")
    with pytest.raises(RuntimeError, match="already sent"):
        res.json([])


def test_user_content_type_wins_and_headers_can_follow_the_send():
    res = Response().header("Content-Type", "application/vnd.x+json").json({})
    res.header("X-After", "1")
    _status, headers, _body = parse_response(res.to_bytes())
    assert [v for n, v in headers if n.lower() == "content-type"] == ["application/vnd.x+json"]
    assert ("X-After", "1") in headers


def test_header_replaces_case_insensitively_but_set_cookie_accumulates():
    res = Response().header("X-A", "1").header("x-a", "2").cookie("a", "1").cookie("b", "2")
    assert res.headers == [("x-a", "2"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
    assert res.get_header("X-A") == "2" and res.get_header("nope") is None


@pytest.mark.parametrize("name", ["Content-Length", "transfer-encoding", "Connection"])
def test_server_owned_headers_are_refused(name):
    with pytest.raises(ValueError, match="set by the server"):
        Response().header(name, "1")


@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\nb", "a\rb"])
def test_header_injection_is_refused(value):
    with pytest.raises(ValueError):
        Response().header("X-A", value)
    with pytest.raises(ValueError):
        Response().redirect("/next" + value)


@pytest.mark.parametrize("code", [99, 600, -1])
def test_status_range(code):
    with pytest.raises(ValueError):
        Response().status(code)


@pytest.mark.parametrize("code", ["200", 200.0, True, None])
def test_status_type(code):
    with pytest.raises(TypeError):
        Response().status(code)


def test_status_line_has_reason_phrase_or_none():
    assert Response().status(418).to_bytes().startswith(b"HTTP/1.1 418 I'm a Teapot\r\n")
    assert Response().status(599).to_bytes().startswith(b"HTTP/1.1 599 \r\n")
    assert parse_response(Response().status(599).to_bytes())[0] == 599


def test_head_response_has_length_but_no_body():
    res = Response().text("hello")
    data = res.to_bytes(head_request=True)
    assert data.endswith(b"\r\n\r\n") and b"hello" not in data
    assert b"Content-Length: 5\r\n" in data


def test_connection_close_when_not_keep_alive():
    assert b"Connection: close\r\n" in Response().to_bytes(keep_alive=False)
    assert b"Connection" not in Response().to_bytes()


@pytest.mark.parametrize("code", [204, 304, 101])
def test_no_body_statuses_have_neither_body_nor_length(code):
    res = Response().status(code).text("ignored")
    data = res.to_bytes()
    assert data.endswith(b"\r\n\r\n")
    assert b"Content-Length" not in data and b"ignored" not in data


def test_redirect():
    res = Response().redirect("/login")
    assert (res.status_code, res.get_header("Location"), res.sent) == (302, "/login", True)
    assert Response().redirect("https://x.example/", 308).status_code == 308
    location = Response().redirect("/café menu?q=a%20b&r=ü#top").get_header("Location")
    assert location == "/caf%C3%A9%20menu?q=a%20b&r=%C3%BC#top"
    with pytest.raises(ValueError, match="3xx"):
        Response().redirect("/", 200)


def test_cookie_attributes():
    res = Response().cookie(
        "sid",
        "a b;c",
        path="/",
        max_age=60,
        secure=True,
        http_only=True,
        same_site="Lax",
        domain=None,
    )
    assert (
        res.get_header("set-cookie")
        == "sid=a%20b%3Bc; Path=/; Max-Age=60; Secure; HttpOnly; SameSite=Lax"
    )
    camel = Response().cookie("a", "1", maxAge=5, httpOnly=False, sameSite="Strict")
    assert camel.get_header("set-cookie") == "a=1; Max-Age=5; SameSite=Strict"
    with pytest.raises(TypeError, match="unknown cookie attribute"):
        Response().cookie("a", "1", colour="red")
    with pytest.raises(ValueError):
        Response().cookie("a b", "1")
    with pytest.raises(ValueError):
        Response().cookie("a", "1", path="/;x")


def test_reset_forgets_everything():
    res = Response().status(201).header("X-A", "1").text("x")
    res.reset()
    assert (res.status_code, res.headers, res.body, res.sent) == (200, [], b"", False)


# --- errors --------------------------------------------------------------------------------------


def test_http_error_defaults_and_headers():
    error = HTTPError(404)
    assert (error.status, error.message, error.headers) == (404, "Not Found", ())
    assert str(error) == "404 Not Found"
    error = HTTPError(401, "log in", {"WWW-Authenticate": "Basic"})
    assert error.headers == (("WWW-Authenticate", "Basic"),)
    assert HTTPError(405, headers=[("Allow", "GET")]).headers == (("Allow", "GET"),)
    with pytest.raises(ValueError):
        HTTPError(400, headers={"X": "a\nb"})
    with pytest.raises(ValueError, match="set by the server"):
        HTTPError(400, headers={"Content-Length": "1"})
    with pytest.raises(ValueError):
        HTTPError(1000)


def test_error_response_parses_back():
    data = error_response(426, headers={"Sec-WebSocket-Version": "13"})
    status, headers, body = parse_response(data)
    assert status == 426
    assert ("Sec-WebSocket-Version", "13") in headers
    assert ("Connection", "close") in headers
    assert ("Content-Type", "text/plain; charset=utf-8") in headers
    assert body == b"Upgrade Required\n"


@pytest.mark.parametrize("status", [400, 403, 404, 413, 414, 426, 431, 500, 503])
def test_error_response_statuses(status):
    data = error_response(status, "why: é", keep_alive=True)
    parsed_status, headers, body = parse_response(data)
    assert parsed_status == status
    assert body == "why: é\n".encode()
    assert ("Content-Length", str(len(body))) in headers
    assert all(name != "Connection" for name, _ in headers)


# --- properties ----------------------------------------------------------------------------------

_tokens = st.text(alphabet="abcXYZ-_.!~019", min_size=1, max_size=8)


@given(st.lists(_tokens, max_size=6), st.lists(st.sampled_from([" ", "\t", ""]), min_size=2))
def test_split_tokens_inverts_a_join_with_any_whitespace(tokens, spaces):
    left, right = spaces[0], spaces[1]
    assert split_tokens(",".join(left + token + right for token in tokens)) == tokens


@given(st.binary(max_size=40), st.binary(max_size=40))
def test_header_bytes_survive_latin1_decoding(name, value):
    headers = Headers([(name, value)])
    assert [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers.items()] == [
        (name, value)
    ]


@given(st.text(max_size=30))
def test_any_text_body_round_trips_through_text_and_to_bytes(text):
    _status, headers, body = parse_response(Response().text(text).to_bytes())
    assert Request("POST", "/", headers, body).text() == text
