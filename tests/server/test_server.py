"""End-to-end tests of the server over loopback, driven by the independent `websockets` client.

Each test starts its own server on 127.0.0.1 with a free port (in a background thread with its
own event loop) and stops it.
"""

import asyncio
import contextlib
import http.client
import json
import os
import socket
import ssl
import threading
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

import verb
from verb import HTTPError, ServerProtocol, create_server


@pytest.fixture(params=["uvloop", "asyncio"])
def loop_kind(request):
    return request.param


def ws_connect(server, path="/", **kwargs):
    kwargs.setdefault("proxy", None)
    kwargs.setdefault("open_timeout", 5)
    kwargs.setdefault("compression", None)
    return connect(server.ws_url + path, **kwargs)


def http_get(server, path="/", method="GET", headers=None, body=None):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def raw_request(server, data, read_until_close=True, timeout=5):
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if not read_until_close:
                break
        return b"".join(chunks)


def upgrade_request(path="/", **overrides):
    headers = {
        "Host": "127.0.0.1",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
    }
    method = overrides.pop("method", "GET")
    for name, value in overrides.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_of(response):
    return int(response.split(b" ", 2)[1])


def echo_app(**options):
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, message: ws.send(message), **options)
    return app


# ---------------------------------------------------------------------------------------------
# Echo, both event loops


def test_echo_text_and_binary(loop_kind):
    app = echo_app()
    with app.run_in_thread(use_uvloop=loop_kind == "uvloop") as server:
        with ws_connect(server) as ws:
            ws.send("hello ✓")
            assert ws.recv(timeout=5) == "hello ✓"
            ws.send(b"\x00\x01\xff")
            assert ws.recv(timeout=5) == b"\x00\x01\xff"
            big = "x" * 200_000
            ws.send(big)
            assert ws.recv(timeout=5) == big


def test_plain_protocol_data_received_path(loop_kind):
    # Both loops read through get_buffer/buffer_updated; data_received (the plain Protocol path)
    # must still feed the parser, in parts when the data exceeds the shared read buffer.
    from support import oracle

    opened = []
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(open=opened.append, message=lambda ws, m: ws.send(m))
    big = bytes(range(256)) * 1200  # 300 KiB: more than the 256 KiB read buffer
    frames = oracle.build_frame(0x2, b"one", key=b"abcd") + \
        oracle.build_frame(0x2, big, key=b"wxyz")
    with app.run_in_thread(use_uvloop=loop_kind == "uvloop") as server:
        with ws_connect(server, max_size=None) as ws:
            ws.send("warm")
            assert ws.recv(timeout=5) == "warm"
            server.hub.loop.call_soon_threadsafe(opened[0].data_received, frames)
            assert ws.recv(timeout=5) == b"one"
            assert ws.recv(timeout=5) == big


def test_large_binary_sends_are_not_affected_by_later_changes_to_the_data():
    # bytes from 64 KiB on are written after their own header without a copy (immutable);
    # other bytes-likes are copied when sent, so changing them afterwards changes nothing.
    statuses = []

    def on_message(ws, message):
        data = bytearray(b"a" * 100_000)
        statuses.append(ws.send(data))
        data[:] = b"b" * 100_000
        statuses.append(ws.send(bytes(message)))
        statuses.append(ws.send_binary(memoryview(b"c" * 70_000)))

    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=on_message)
    with app.run_in_thread() as server:
        with ws_connect(server, max_size=None) as ws:
            big = os.urandom(300_000)
            ws.send(big)
            assert ws.recv(timeout=5) == b"a" * 100_000
            assert ws.recv(timeout=5) == big
            assert ws.recv(timeout=5) == b"c" * 70_000
    # Frame sizes: payload plus a 10-byte header (64-bit length form above 65,535 bytes).
    assert statuses == [100_010, 300_010, 70_010]


def test_guide_basic_echo_with_welcome_and_close_handler():
    closed = []
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(
        open=lambda ws: ws.send("Welcome"),
        message=lambda ws, message: ws.send(f"Echo: {message}"),
        close=lambda ws, code, reason: closed.append((code, reason)),
    )
    with app.run_in_thread() as server:
        with ws_connect(server) as ws:
            assert ws.recv(timeout=5) == "Welcome"
            ws.send("hi")
            assert ws.recv(timeout=5) == "Echo: hi"
            ws.close(1000, "bye")
        deadline = time.monotonic() + 5
        while not closed and time.monotonic() < deadline:
            time.sleep(0.01)
    assert closed == [(1000, "bye")]


def test_handlers_with_fewer_parameters():
    seen = []
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(open=lambda: seen.append("open"), message=lambda ws: ws.send("got one"),
                  close=lambda ws: seen.append("close"))
    with app.run_in_thread() as server:
        with ws_connect(server) as ws:
            ws.send("x")
            assert ws.recv(timeout=5) == "got one"
        _wait_for(lambda: "close" in seen)
    assert seen == ["open", "close"]


def _wait_for(predicate, timeout=5):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


# ---------------------------------------------------------------------------------------------
# HTTP beside WebSocket on one port


def test_http_routes_beside_websocket():
    app = echo_app()
    app.get("/", lambda req, res: res.html("<h1>hi</h1>"))

    @app.get("/users/:id")
    def user(req, res):
        res.json({"id": req.params["id"], "q": req.query.get("q")})

    @app.post("/echo")
    def echo(req, res):
        res.json(req.json())

    @app.get("/boom")
    def boom(req, res):
        raise RuntimeError("handler failure")

    with app.run_in_thread() as server:
        status, headers, body = http_get(server, "/")
        assert status == 200 and body == b"<h1>hi</h1>"
        assert headers["Content-Type"].startswith("text/html")
        status, _, body = http_get(server, "/users/42?q=x")
        assert status == 200 and json.loads(body) == {"id": "42", "q": "x"}
        status, _, body = http_get(server, "/echo", "POST", {"Content-Type": "application/json"},
                                   b'{"a": [1, 2]}')
        assert status == 200 and json.loads(body) == {"a": [1, 2]}
        assert http_get(server, "/nope")[0] == 404
        assert http_get(server, "/boom")[0] == 500
        assert http_get(server, "/")[0] == 200  # the server lives on
        with ws_connect(server) as ws:
            ws.send("still echoing")
            assert ws.recv(timeout=5) == "still echoing"


def test_async_http_handler_and_keep_alive_pipelining():
    app = create_server()

    @app.get("/slow")
    async def slow(req, res):
        await asyncio.sleep(0.05)
        res.text("slow")

    app.get("/fast", lambda req, res: res.text("fast"))
    with app.run_in_thread() as server:
        request = (b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET /fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        response = raw_request(server, request)
        assert response.count(b"HTTP/1.1 200") == 2
        assert response.index(b"slow") < response.index(b"fast")


# ---------------------------------------------------------------------------------------------
# Handshake (RFC 6455 section 4.2), one status per case


def test_handshake_statuses():
    app = echo_app(origins=["https://good.example"])
    with app.run_in_thread() as server:
        ok = raw_request(server, upgrade_request(), read_until_close=False)
        assert status_of(ok) == 101
        assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in ok
        response = raw_request(server, upgrade_request(Sec_WebSocket_Version="8"))
        assert status_of(response) == 426 and b"Sec-WebSocket-Version: 13" in response
        assert status_of(raw_request(server, upgrade_request(Sec_WebSocket_Key="short"))) == 400
        assert status_of(raw_request(server, upgrade_request(Sec_WebSocket_Key=None))) == 400
        assert status_of(raw_request(server, upgrade_request(method="POST"))) == 400
        assert status_of(raw_request(server, upgrade_request(Origin="https://evil.example"))) \
            == 403
        good = raw_request(server, upgrade_request(Origin="https://good.example"),
                           read_until_close=False)
        assert status_of(good) == 101


def test_request_limits():
    app = echo_app()
    with app.run_in_thread() as server:
        long_line = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        assert status_of(raw_request(server, long_line)) == 414
        many = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(101)) + b"\r\n"
        assert status_of(raw_request(server, many)) == 431
        huge = b"GET / HTTP/1.1\r\nX-Big: " + b"y" * 9000 + b"\r\n\r\n"
        assert status_of(raw_request(server, huge)) == 431


def test_subprotocol_and_custom_headers():
    app = echo_app(protocols=["chat", "superchat"], headers={"X-WebSocket-Server": "Verb"})
    with app.run_in_thread() as server:
        with ws_connect(server, subprotocols=["superchat", "chat"]) as ws:
            assert ws.subprotocol == "chat"  # the first server-listed protocol offered
            assert ws.response.headers["X-WebSocket-Server"] == "Verb"
        with ws_connect(server, subprotocols=["other"]) as ws:
            assert ws.subprotocol is None


def test_upgrade_handler_authenticates_before_101():
    app = create_server(ServerProtocol.WEBSOCKET)

    def upgrade(req):
        token = req.query.get("token")
        if token == "secret":
            return {"user": "ann"}
        if token == "expired":
            raise HTTPError(401, "token expired")
        return False

    app.websocket(upgrade=upgrade, message=lambda ws, message: ws.send(ws.data["user"]))
    with app.run_in_thread() as server:
        with ws_connect(server, "/?token=secret") as ws:
            ws.send("who")
            assert ws.recv(timeout=5) == "ann"
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(server, "/?token=wrong")
        assert refused.value.response.status_code == 403
        with pytest.raises(InvalidStatus) as expired:
            ws_connect(server, "/?token=expired")
        assert expired.value.response.status_code == 401


def test_async_upgrade_handler():
    app = create_server(ServerProtocol.WEBSOCKET)

    async def upgrade(req):
        await asyncio.sleep(0.01)
        return {"n": 7}

    app.websocket(upgrade=upgrade, message=lambda ws, message: ws.send(str(ws.data["n"])))
    with app.run_in_thread() as server:
        with ws_connect(server) as ws:
            ws.send("?")
            assert ws.recv(timeout=5) == "7"


def test_path_option_restricts_upgrades():
    app = echo_app(path="/ws")
    with app.run_in_thread() as server:
        with ws_connect(server, "/ws") as ws:
            ws.send("a")
            assert ws.recv(timeout=5) == "a"
        with pytest.raises(InvalidStatus) as other:
            ws_connect(server, "/elsewhere")
        assert other.value.response.status_code == 404


# Both upgrade paths: the compiled plain one, and the full one (a `path` option forces it).
@pytest.mark.parametrize("path_option, plain", [({}, True), ({"path": "/"}, False)],
                         ids=["plain-upgrade", "full-upgrade"])
def test_max_connections_refuses_with_503(path_option, plain):
    app = echo_app(max_connections=2, **path_option)
    with app.run_in_thread() as server:
        assert server.hub.plain_upgrades == plain
        with ws_connect(server), ws_connect(server):
            with pytest.raises(InvalidStatus) as refused:
                ws_connect(server)
            assert refused.value.response.status_code == 503
        _wait_for(lambda: server.hub.stats()["websockets"] == 0)
        with ws_connect(server) as ws:
            ws.send("room again")
            assert ws.recv(timeout=5) == "room again"


def test_handshake_timeout_drops_a_silent_client():
    app = echo_app(handshake_timeout=0.3)
    with app.run_in_thread() as server:
        with socket.create_connection((server.host, server.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n")  # and never the rest
            started = time.monotonic()
            assert sock.recv(100) == b""
            assert time.monotonic() - started < 3


# ---------------------------------------------------------------------------------------------
# Messages, limits, closing


def test_max_payload_length_closes_1009():
    app = echo_app(max_payload_length=1000)
    with app.run_in_thread() as server:
        with ws_connect(server) as ws:
            ws.send("x" * 1000)
            assert ws.recv(timeout=5) == "x" * 1000
            ws.send("x" * 1001)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
            assert closed.value.rcvd.code == 1009


def test_server_close_and_terminate():
    app = create_server(ServerProtocol.WEBSOCKET)

    def message(ws, message):
        if message == "close":
            ws.close(4000, "asked to")
        elif message == "terminate":
            ws.terminate()

    app.websocket(message=message)
    with app.run_in_thread() as server:
        with ws_connect(server) as ws:
            ws.send("close")
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4000, "asked to")
        with ws_connect(server) as ws:
            ws.send("terminate")
            with pytest.raises(ConnectionClosed) as dropped:
                ws.recv(timeout=5)
            assert dropped.value.rcvd is None  # no close frame: the TCP connection was cut


def test_error_handler_keeps_connection_open():
    app = create_server(ServerProtocol.WEBSOCKET)

    def message(ws, message):
        raise ValueError(f"bad {message}")

    app.websocket(message=message, error=lambda ws, exc: ws.send(f"error: {exc}"))
    with app.run_in_thread() as server:
        with ws_connect(server) as ws:
            ws.send("one")
            assert ws.recv(timeout=5) == "error: bad one"
            ws.send("two")
            assert ws.recv(timeout=5) == "error: bad two"


def test_without_error_handler_a_raising_handler_closes_1011(caplog):
    app = create_server(ServerProtocol.WEBSOCKET)

    def message(ws, message):
        if message == "boom":
            raise RuntimeError("boom")
        ws.send(message)

    app.websocket(message=message)
    with app.run_in_thread() as server:
        with ws_connect(server) as other:
            with ws_connect(server) as ws:
                ws.send("boom")
                with pytest.raises(ConnectionClosed) as closed:
                    ws.recv(timeout=5)
                assert closed.value.rcvd.code == 1011
            other.send("unaffected")
            assert other.recv(timeout=5) == "unaffected"
    assert "boom" in caplog.text


def test_async_handlers_run_in_order_per_connection():
    app = create_server(ServerProtocol.WEBSOCKET)

    async def message(ws, message):
        await asyncio.sleep(0.02 if message == "first" else 0)
        ws.send(message)

    app.websocket(message=message)
    with app.run_in_thread() as server:
        with ws_connect(server) as ws:
            for word in ("first", "second", "third"):
                ws.send(word)
            assert [ws.recv(timeout=5) for _ in range(3)] == ["first", "second", "third"]


def test_idle_timeout_pings_then_closes_a_silent_peer():
    app = echo_app(idle_timeout=0.6)
    with app.run_in_thread() as server:
        # websockets answers pings by itself: the connection survives past the timeout.
        with ws_connect(server, ping_interval=None) as ws:
            time.sleep(1.5)
            ws.send("alive")
            assert ws.recv(timeout=5) == "alive"
        # A raw peer that answers nothing is closed with 1001.
        with socket.create_connection((server.host, server.port), timeout=5) as sock:
            sock.sendall(upgrade_request())
            data = b""
            deadline = time.monotonic() + 5
            while b"\x88" not in data and time.monotonic() < deadline:
                data += sock.recv(4096)
            assert b"\x89\x00" in data  # the ping came first
            assert b"\x88" in data and b"\x03\xe9" in data[data.index(b"\x88"):]


def test_ping_and_pong_handlers_and_auto_pong():
    seen = []
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(ping=lambda ws, data: seen.append(("ping", data)),
                  message=lambda ws, message: ws.ping(b"srv"),
                  pong=lambda ws, data: seen.append(("pong", data)))
    with app.run_in_thread() as server:
        with ws_connect(server) as ws:
            ws.ping(b"cli").wait(5)  # our automatic pong answers it
            ws.send("ping me")
            _wait_for(lambda: ("pong", b"srv") in seen)
    assert ("ping", b"cli") in seen


def test_pong_listeners_take_the_data_or_nothing():
    # The guide's `ws.on("pong", () => { ws.isAlive = true })`: a listener without parameters
    # must not fail (it used to be called with the data and close the connection with 1011).
    seen = []

    def open_(ws):
        ws.on("pong", lambda: seen.append("no args"))
        ws.on("pong", lambda data: seen.append(data))
        with pytest.raises(TypeError, match="pong listener"):
            ws.on("pong", lambda a, b: None)
        ws.ping(b"hb")

    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(open=open_, message=lambda ws, message: ws.send(message))
    with app.run_in_thread() as server:
        with ws_connect(server) as ws:
            _wait_for(lambda: len(seen) == 2)
            ws.send("still open")
            assert ws.recv(timeout=5) == "still open"
    assert seen == ["no args", b"hb"]


# ---------------------------------------------------------------------------------------------
# Topics


def test_publish_subscribe():
    app = create_server(ServerProtocol.WEBSOCKET)

    def message(ws, message):
        command, _, arg = message.partition(" ")
        if command == "join":
            ws.subscribe(arg)
            ws.send(f"joined {arg} {ws.is_subscribed(arg)} {ws.subscriptions}")
        elif command == "leave":
            ws.unsubscribe(arg)
            ws.send(f"left {arg}")
        elif command == "say":
            room, _, text = arg.partition(" ")
            ws.publish(room, text)

    app.websocket(message=message)
    with app.run_in_thread() as server:
        with ws_connect(server) as a, ws_connect(server) as b, ws_connect(server) as c:
            for ws in (a, b):
                ws.send("join room")
                assert ws.recv(timeout=5) == "joined room True ['room']"
            assert app.subscriber_count("room") == 2
            a.send("say room hello")
            assert b.recv(timeout=5) == "hello"
            with pytest.raises(TimeoutError):
                a.recv(timeout=0.2)  # publish_to_self is off
            assert app.publish("room", b"from the app") == 2
            assert a.recv(timeout=5) == b"from the app" and b.recv(timeout=5) == b"from the app"
            b.send("leave room")
            assert b.recv(timeout=5) == "left room"
            assert app.subscriber_count("room") == 1
            c.send("say room nobody sees c")
            assert a.recv(timeout=5) == "nobody sees c"


def test_publishes_interleaved_with_sends_keep_each_subscribers_order():
    # Within one read, subscribers with nothing else queued share one run of published frames;
    # a send, a missed publish (other topic, excluded publisher) or a close frame in between
    # must keep every connection's own order.
    app = create_server(ServerProtocol.WEBSOCKET)
    names = {}

    def message(ws, message):
        if message.startswith("name "):
            names[message[5:]] = ws
            for topic in {"a": ["t", "u"], "b": ["t"], "c": ["t"], "d": ["t"]}[message[5:]]:
                ws.subscribe(topic)
            ws.send("ok")
            return
        app.publish("t", "p1")
        app.publish("t", b"p2")
        names["a"].send("direct to a")
        app.publish("t", "p3")
        app.publish("u", "u1")
        app.publish("t", "p4")
        ws.publish("t", "p5")  # from c: everyone else
        names["d"].close(4000, "bye")
        app.publish("t", "p6")  # d is closing: not for d

    app.websocket(message=message)
    with app.run_in_thread() as server, contextlib.ExitStack() as stack:
        clients = {name: stack.enter_context(ws_connect(server)) for name in "abcd"}
        for name, ws in clients.items():
            ws.send(f"name {name}")
            assert ws.recv(timeout=5) == "ok"
        clients["c"].send("go")
        expected = {
            "a": ["p1", b"p2", "direct to a", "p3", "u1", "p4", "p5", "p6"],
            "b": ["p1", b"p2", "p3", "p4", "p5", "p6"],
            "c": ["p1", b"p2", "p3", "p4", "p6"],
            "d": ["p1", b"p2", "p3", "p4", "p5"],
        }
        for name, messages in expected.items():
            assert [clients[name].recv(timeout=5) for _ in messages] == messages, name
        with pytest.raises(ConnectionClosed) as closed:
            clients["d"].recv(timeout=5)
        assert closed.value.rcvd.code == 4000


# ---------------------------------------------------------------------------------------------
# Lifecycle, TLS, timers


def test_graceful_stop_closes_websockets_with_1001():
    app = echo_app()
    running = app.run_in_thread()
    server = running.__enter__()
    with ws_connect(server) as ws:
        running.__exit__(None, None, None)  # stop while the client is connected
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd.code == 1001


def test_listen_inside_running_loop_returns_server():
    async def main():
        app = echo_app()
        server = app.listen(0, host="127.0.0.1")
        assert server.port > 0
        await asyncio.sleep(0.05)
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(upgrade_request())
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        writer.close()
        await server.stop()

    asyncio.run(main())


def test_wss_with_throwaway_ca():
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    with pytest.raises(ValueError, match="tls="):
        create_server(ServerProtocol.WEBSOCKETS)
    app = create_server(ServerProtocol.WEBSOCKETS, tls={
        "cert": cert.cert_chain_pems[0].bytes().decode(),
        "key": cert.private_key_pem.bytes().decode()})
    app.websocket(message=lambda ws, message: ws.send(message))
    app.get("/", lambda req, res: res.text("secure"))
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with app.run_in_thread() as server:
        assert server.ws_url.startswith("wss://")
        with connect(server.ws_url, ssl=client_context, proxy=None, compression=None) as ws:
            ws.send("over tls")
            assert ws.recv(timeout=5) == "over tls"
        conn = http.client.HTTPSConnection(server.host, server.port, context=client_context)
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"secure"
        conn.close()


def test_timers_before_and_inside_the_loop():
    ticks = []
    interval = verb.set_interval(lambda: ticks.append("tick"), 20)
    once = verb.set_timeout(lambda: ticks.append("once"), 10)
    cancelled = verb.set_timeout(lambda: ticks.append("never"), 10)
    verb.clear_timeout(cancelled)
    app = echo_app()
    with app.run_in_thread():
        _wait_for(lambda: ticks.count("tick") >= 3)
        verb.clear_interval(interval)
    assert "once" in ticks and "never" not in ticks


def test_server_protocol_values():
    assert ServerProtocol("websocket") is ServerProtocol.WEBSOCKET
    with pytest.raises(ValueError, match="HTTP, HTTPS, WEBSOCKET, WEBSOCKETS"):
        ServerProtocol("grpc")
    assert verb.WebSocket.OPEN == 1 and verb.createServer is verb.create_server


def test_stats_count_messages():
    app = echo_app()
    with app.run_in_thread() as server:
        with ws_connect(server) as ws:
            for i in range(10):
                ws.send(str(i))
                ws.recv(timeout=5)
            stats = app.stats()
    assert stats["messages_in"] == 10 and stats["messages_out"] == 10
    assert stats["connections_total"] >= 1


def test_ws_object_attributes_and_identity():
    seen = {}
    app = create_server(ServerProtocol.WEBSOCKET)

    def open_(ws):
        ws.is_alive = True
        seen["set"] = {ws}
        seen["state"] = (ws.ready_state, ws.readyState, verb.WebSocket.OPEN)
        seen["addr"] = ws.remote_address
        seen["path"] = ws.request.path

    app.websocket(open=open_, message=lambda ws, m: ws.send(str(ws.is_alive and ws in seen["set"])))
    with app.run_in_thread() as server:
        with ws_connect(server, "/room?x=1") as ws:
            ws.send("?")
            assert ws.recv(timeout=5) == "True"
    assert seen["state"] == (1, 1, 1) and seen["addr"] == "127.0.0.1" and seen["path"] == "/room"


def test_ws_request_is_rebuilt_from_the_handshake_after_open():
    # The upgrade request is kept packed; reading ws.request later (here in `message`, long
    # after the handshake) gives back the method, target, query, peer and every header field,
    # duplicates and odd bytes included. The handshake is written by hand so that the bytes on
    # the wire are known (client libraries differ in how they encode non-ASCII header values).
    from support import oracle

    seen = {}
    app = create_server(ServerProtocol.WEBSOCKET)

    def message(ws, _):
        request = ws.request
        seen.update(method=request.method, path=request.path, query=request.query,
                    peer=request.remote_address, version=request.http_version,
                    tags=request.headers.get_all("x-tag"), odd=request.headers.get("x-odd"),
                    fresh=ws.request is not request)
        ws.send("ok")

    app.websocket(message=message)
    with app.run_in_thread() as server:
        with socket.create_connection((server.host, server.port), timeout=5) as sock:
            sock.sendall(b"GET /feed?room=a%20b&x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         b"Sec-WebSocket-Version: 13\r\nX-Tag: one\r\nX-Tag: two: three\r\n"
                         b"X-Odd: caf\xc3\xa9 ;,\t=\r\n\r\n")
            response = b""
            while not response.endswith(b"\r\n\r\n"):
                response += sock.recv(1)
            assert response.startswith(b"HTTP/1.1 101 ")
            sock.sendall(oracle.build_frame(1, b"?", key=b"abcd"))
            assert sock.recv(16) == b"\x81\x02ok"
    # Header bytes read as latin-1 (RFC 9110 section 5.5): UTF-8 comes back byte for byte.
    assert seen.pop("odd").encode("latin-1") == "caf\u00e9 ;,\t=".encode("utf-8")
    assert seen == {"method": "GET", "path": "/feed", "query": {"room": "a b", "x": "1"},
                    "peer": "127.0.0.1", "version": "1.1", "tags": ["one", "two: three"],
                    "fresh": True}


def test_send_json_is_a_text_frame():
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, m: ws.send_json({"type": "pong", "n": [1, 2]}))
    with app.run_in_thread() as server:
        with ws_connect(server) as ws:
            ws.send("x")
            reply = ws.recv(timeout=5)
    assert isinstance(reply, str) and json.loads(reply) == {"type": "pong", "n": [1, 2]}


def test_backpressure_limit_drops_and_drain_fires():
    results = {"statuses": [], "drains": 0}
    release = threading.Event()
    app = create_server(ServerProtocol.WEBSOCKET)
    chunk = b"x" * 65536

    def message(ws, message):
        for _ in range(200):  # 12.5 MiB against a 1 MiB limit, to a client not reading
            results["statuses"].append(ws.send(chunk))

    def drain(ws):
        results["drains"] += 1

    app.websocket(message=message, drain=drain, backpressure_limit=1 << 20)
    with app.run_in_thread() as server:
        with ws_connect(server, max_size=None, max_queue=None) as ws:
            ws.send("flood")
            _wait_for(lambda: len(results["statuses"]) == 200)
            statuses = results["statuses"]
            assert statuses[0] == len(chunk) + 10  # frame size: header + payload
            assert 0 in statuses  # over the limit: dropped
            accepted = [s for s in statuses if s != 0]
            assert len(accepted) * len(chunk) <= (1 << 20) + 2 * len(chunk)
            received = 0
            while received < len(accepted):
                ws.recv(timeout=5)
                received += 1
            _wait_for(lambda: results["drains"] >= 1)
    release.set()


# ---------------------------------------------------------------------------------------------
# More of the API


def test_dict_config_with_camel_case_options():
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket({"message": lambda ws, m: ws.sendText(m.upper()), "maxPayloadLength": 10,
                   "idleTimeout": 60, "sendPings": False, "publishToSelf": True})
    assert app.config.max_payload_length == 10 and app.config.publish_to_self
    with app.run_in_thread() as server:
        with ws_connect(server) as ws:
            ws.send("abc")
            assert ws.recv(timeout=5) == "ABC"
            ws.send("x" * 11)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
            assert closed.value.rcvd.code == 1009


def test_bad_options_and_handlers_raise_clear_errors():
    app = create_server(ServerProtocol.WEBSOCKET)
    with pytest.raises(TypeError, match="maxPayloadLength"):
        app.websocket(maxPayloadLenght=5)
    with pytest.raises(ValueError, match="backpressure_limit"):
        app.websocket(backpressure_limit=-1)
    with pytest.raises(TypeError, match="message"):
        app.websocket(message="not callable")


def test_publish_to_self_and_cork_and_send_binary():
    app = create_server(ServerProtocol.WEBSOCKET)

    def message(ws, message):
        ws.subscribe("t")
        with ws.cork():
            ws.send_binary("as bytes")
            ws.publish("t", "to everyone, me included")

    app.websocket(message=message, publish_to_self=True)
    with app.run_in_thread() as server:
        with ws_connect(server) as ws:
            ws.send("go")
            assert ws.recv(timeout=5) == b"as bytes"
            assert ws.recv(timeout=5) == "to everyone, me included"


def test_close_timeout_cuts_a_peer_that_never_answers_close():
    closed = []
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(open=lambda ws: ws.close(1000, "bye"), close_timeout=0.3,
                  close=lambda ws, code, reason: closed.append((code, reason)))
    with app.run_in_thread() as server:
        with socket.create_connection((server.host, server.port), timeout=5) as sock:
            sock.sendall(upgrade_request())
            data = b""
            started = time.monotonic()
            while True:  # read until the server cuts the TCP connection
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            assert b"\x88\x05\x03\xe8bye" in data
            assert time.monotonic() - started < 3
        _wait_for(lambda: closed)
    assert closed == [(1006, "close timeout")]


def test_node_style_pong_listener():
    pongs = []
    app = create_server(ServerProtocol.WEBSOCKET)

    def open_(ws):
        ws.on("pong", lambda data: pongs.append(data))
        ws.ping(b"are you there")

    app.websocket(open=open_)
    with app.run_in_thread() as server:
        with ws_connect(server):
            _wait_for(lambda: pongs)
    assert pongs == [b"are you there"]


def test_send_after_close_returns_zero_and_ready_state_closes():
    results = []
    app = create_server(ServerProtocol.WEBSOCKET)

    def close(ws, code, reason):
        results.append((ws.ready_state, ws.send("too late")))

    app.websocket(close=close)
    with app.run_in_thread() as server:
        with ws_connect(server) as ws:
            ws.close()
        _wait_for(lambda: results)
    assert results == [(verb.WebSocket.CLOSED, 0)]


def test_burst_to_an_async_handler_arrives_complete_and_in_order():
    app = create_server(ServerProtocol.WEBSOCKET)

    async def message(ws, message):
        await asyncio.sleep(0)
        ws.send(message)

    app.websocket(message=message)
    with app.run_in_thread() as server:
        with ws_connect(server) as ws:
            for i in range(500):  # beyond the pending-event limit: reading pauses, then resumes
                ws.send(str(i))
            assert [ws.recv(timeout=5) for _ in range(500)] == [str(i) for i in range(500)]


def test_http_body_limit_head_and_keep_alive():
    app = create_server(max_body=100)
    app.post("/", lambda req, res: res.text(str(len(req.body))))
    app.get("/page", lambda req, res: res.html("<p>page</p>"))
    with app.run_in_thread() as server:
        status, _, body = http_get(server, "/", "POST", body=b"x" * 100)
        assert (status, body) == (200, b"100")
        assert http_get(server, "/", "POST", body=b"x" * 101)[0] == 413
        status, headers, body = http_get(server, "/page", "HEAD")
        assert status == 200 and body == b"" and headers["Content-Length"] == "11"
        conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
        for _ in range(3):  # three requests on one keep-alive connection
            conn.request("GET", "/page")
            assert conn.getresponse().read() == b"<p>page</p>"
        conn.close()


def test_binding_a_port_in_use_raises():
    app = echo_app()
    with app.run_in_thread() as server:
        with pytest.raises(OSError):
            with echo_app().run_in_thread(port=server.port):
                pass


def test_garbage_after_handshake_closes_only_that_connection():
    app = echo_app()
    with app.run_in_thread() as server:
        with ws_connect(server) as good:
            with socket.create_connection((server.host, server.port), timeout=5) as sock:
                sock.sendall(upgrade_request() + bytes(range(256)) * 4)
                data = b""
                while True:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                assert b"\x88" in data  # a close frame (protocol error) before the cut
            good.send("fine")
            assert good.recv(timeout=5) == "fine"


def test_chunked_request_body():
    app = create_server()
    app.post("/", lambda req, res: res.text(req.body.decode()))
    with app.run_in_thread() as server:
        response = raw_request(server, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                                       b"\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world"
                                       b"\r\n0\r\n\r\n")
    assert status_of(response) == 200 and response.endswith(b"hello world")


def test_on_start_and_on_stop_hooks():
    events = []
    app = echo_app()
    app.on_start(lambda server: events.append(("start", server.port)))

    @app.on_stop
    async def stopped():
        events.append(("stop",))

    with app.run_in_thread() as server:
        port = server.port
    assert events == [("start", port), ("stop",)]


def test_compression_true_without_negotiation_still_serves():
    app = echo_app(compression=True)
    with app.run_in_thread() as server:
        with ws_connect(server, compression="deflate") as ws:  # the client offers deflate
            ws.send("plain")
            assert ws.recv(timeout=5) == "plain"


def test_stop_without_await_still_stops():
    async def main():
        app = echo_app()
        server = app.listen(0, host="127.0.0.1")
        await asyncio.sleep(0.05)
        server.stop()  # not awaited
        await asyncio.sleep(0.3)
        with pytest.raises(OSError):
            await asyncio.open_connection(server.host, server.port)

    asyncio.run(main())
