"""End-to-end tests of the programs in examples/ (the Verb WebSocket guide, ported).

Each test loads its example afresh (tests/support/example_loader.py), serves the example's module-level
`app` on 127.0.0.1 with a free port in a background thread, and drives it with the independent
`websockets` client (raw sockets where a misbehaving peer is needed). Timings the examples read
from the environment are set short here. Every wait is bounded.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest
from support.example_loader import EXAMPLES, ExampleLoader, wait_for
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from verb.app import timers
from verb.testing import request

TIMEOUT = 5  # seconds: the bound of every wait for something that should happen
QUIET = 0.3  # seconds: how long "nothing arrives" is watched for


@pytest.fixture
def examples(monkeypatch):
    """Loads examples; cancels the timers they created at teardown."""
    monkeypatch.delenv("VERB_PORT", raising=False)
    monkeypatch.delenv("VERB_HOST", raising=False)
    loader = ExampleLoader()
    yield loader
    loader.close()
    assert not timers._pending, "a timer of an example was left waiting for the next server"


def ws_connect(server, path="/", **kwargs):
    kwargs.setdefault("proxy", None)
    kwargs.setdefault("open_timeout", TIMEOUT)
    kwargs.setdefault("compression", None)
    return connect(server.ws_url + path, **kwargs)


def recv_json(ws, timeout=TIMEOUT):
    message = ws.recv(timeout=timeout)
    assert isinstance(message, str), f"expected a text frame, got {message!r}"
    return json.loads(message)


def send_json(ws, data):
    ws.send(json.dumps(data))


def assert_silent(*clients, timeout=QUIET):
    """Nothing arrives at any of `clients` within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    for ws in clients:
        with pytest.raises(TimeoutError):
            ws.recv(timeout=max(0.01, deadline - time.monotonic()))


def assert_closed(ws, code, reason=None):
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=TIMEOUT)
    assert closed.value.rcvd is not None, "closed without a close frame"
    assert closed.value.rcvd.code == code
    if reason is not None:
        assert closed.value.rcvd.reason == reason


def now_ms():
    return int(time.time() * 1000)


class Output:
    """What the examples print (their console.log), collected from capsys across reads."""

    def __init__(self, capsys):
        self.capsys = capsys
        self.text = ""

    def wait_for(self, fragment):
        def seen():
            self.text += self.capsys.readouterr().out
            return fragment in self.text
        wait_for(seen, TIMEOUT)


# ---------------------------------------------------------------------------------------------
# 1. Basic echo


def test_basic_echo(examples, capsys):
    example = examples.load("basic_echo")
    output = Output(capsys)
    with example.app.run_in_thread() as server:
        page = request(server, "GET", "/")
        assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
        # The page connects back to wherever it was served from, never a fixed address.
        assert "location.host" in page.text
        assert "localhost" not in page.text and "3000" not in page.text
        with ws_connect(server) as ws:
            assert ws.recv(timeout=TIMEOUT) == "Welcome to WebSocket server!"
            output.wait_for("Client connected")
            ws.send("hello")
            assert ws.recv(timeout=TIMEOUT) == "Echo: hello"
            ws.send("ünïcødé ✓")
            assert ws.recv(timeout=TIMEOUT) == "Echo: ünïcødé ✓"
        output.wait_for("Client disconnected: 1000 - ")
    assert "Received: hello" in output.text


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_verb_run_serves_basic_echo_and_stops_on_sigint(tmp_path):
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("VERB_PORT", None)
    env.pop("VERB_HOST", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "verb", "run", str(EXAMPLES / "basic_echo.py"), "--port",
         str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        cwd=tmp_path)  # not the repo root: `-m verb` must import the installed package
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout],
                              daemon=True)
    reader.start()
    seen = []

    def read_until(fragment):
        deadline = time.monotonic() + TIMEOUT * 2
        while not any(fragment in line for line in seen):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{fragment!r} not printed; output so far: {seen}")
            try:
                seen.append(lines.get(timeout=remaining))
            except queue.Empty:
                pass

    try:
        read_until(f"listening on http://127.0.0.1:{port}")
        with connect(f"ws://127.0.0.1:{port}/", proxy=None, open_timeout=TIMEOUT) as ws:
            assert ws.recv(timeout=TIMEOUT) == "Welcome to WebSocket server!"
            ws.send("over the CLI")
            assert ws.recv(timeout=TIMEOUT) == "Echo: over the CLI"
        read_until("Client disconnected: 1000")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=TIMEOUT * 2) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=TIMEOUT)
        reader.join(timeout=TIMEOUT)
        process.stdout.close()
    assert not any("Traceback" in line for line in seen), "".join(seen)


# ---------------------------------------------------------------------------------------------
# 2. Secure echo (wss://)


def test_secure_echo_over_tls(examples, monkeypatch, tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    monkeypatch.setenv("TLS_CERT", str(cert_path))
    monkeypatch.setenv("TLS_KEY", str(key_path))
    example = examples.load("secure_echo")
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with example.app.run_in_thread() as server:
        assert server.ws_url.startswith("wss://")
        with ws_connect(server, ssl=client_context) as ws:
            assert ws.recv(timeout=TIMEOUT) == "Welcome to secure WebSocket server!"
            ws.send("secret")
            assert ws.recv(timeout=TIMEOUT) == "Secure echo: secret"
            assert ws.socket.version().startswith("TLS")
        # A client that does not trust the CA is refused by its own TLS check.
        with pytest.raises(ssl.SSLCertVerificationError):
            ws_connect(server, ssl=ssl.create_default_context())
        # Plain ws:// on the TLS port gets no WebSocket.
        with pytest.raises(InvalidHandshake):
            connect(f"ws://{server.host}:{server.port}/", proxy=None, open_timeout=2)


def test_secure_echo_certificate_arguments(examples, monkeypatch, tmp_path):
    cert_path, key_path = tmp_path / "c.pem", tmp_path / "k.pem"
    cert_path.write_text("x")
    key_path.write_text("y")
    monkeypatch.setenv("TLS_CERT", str(tmp_path / "missing.pem"))
    with pytest.raises(FileNotFoundError, match="TLS_CERT"):
        examples.load("secure_echo")
    # --cert/--key, when given, win over the environment.
    monkeypatch.setenv("TLS_CERT", str(cert_path))
    monkeypatch.setenv("TLS_KEY", str(key_path))
    trustme = pytest.importorskip("trustme")
    issued = trustme.CA().issue_cert("127.0.0.1")
    issued.cert_chain_pems[0].write_to_path(str(cert_path))
    issued.private_key_pem.write_to_path(str(key_path))
    example = examples.load("secure_echo")
    assert example.tls_files([]) == {"cert": str(cert_path), "key": str(key_path)}
    assert example.tls_files(["--cert", str(key_path), "--key", str(cert_path)]) == {
        "cert": str(key_path), "key": str(cert_path)}


# ---------------------------------------------------------------------------------------------
# 3. Advanced configuration


def test_advanced_config_options_are_applied(examples):
    example = examples.load("advanced_config")
    config = example.app.config
    assert config.max_payload_length == 1024 * 1024
    assert config.idle_timeout == 60
    assert config.compression == "shared"
    assert config.backpressure_limit == 512 * 1024
    assert config.protocols == ("chat", "json")
    assert config.headers == (("X-Server", "verb"),)


def test_advanced_config_messages(examples):
    example = examples.load("advanced_config")
    with example.app.run_in_thread() as server:
        # compression=True on the server and permessage-deflate offered by the client: the
        # connection works whether or not the extension is negotiated.
        with ws_connect(server, subprotocols=["json", "chat"], compression="deflate") as a, \
                ws_connect(server, subprotocols=["json"]) as b:
            assert a.subprotocol == "chat" and b.subprotocol == "json"
            assert a.response.headers["X-Server"] == "verb"

            before = now_ms()
            send_json(a, {"type": "ping"})
            pong = recv_json(a)
            assert pong["type"] == "pong" and set(pong) == {"type", "timestamp"}
            assert before - 1000 <= pong["timestamp"] <= now_ms() + 1000

            send_json(a, {"type": "chat", "message": "hello all"})
            for ws in (a, b):  # a broadcast: the sender gets it too
                chat = recv_json(ws)
                assert chat["type"] == "chat" and chat["message"] == "hello all"
                assert isinstance(chat["timestamp"], int)

            send_json(b, {"type": "dance"})
            assert recv_json(b) == {"type": "error", "message": "Unknown message type"}
            send_json(b, [1, 2])
            assert recv_json(b) == {"type": "error", "message": "Unknown message type"}
            b.send("{not json")
            assert recv_json(b) == {"type": "error", "message": "Invalid JSON"}
            assert_silent(a)  # errors go to the sender only

            # max_payload_length: a bigger message closes the connection with 1009.
            b.send("x" * (1024 * 1024 + 1))
            assert_closed(b, 1009)
            send_json(a, {"type": "ping"})
            assert recv_json(a)["type"] == "pong"


# ---------------------------------------------------------------------------------------------
# 4. Chat with user counts (topics)


def test_chat_page(examples):
    example = examples.load("chat")
    with example.app.run_in_thread() as server:
        page = request(server, "GET", "/")
        assert page.status == 200
        assert 'location.host + "/ws"' in page.text and "localhost" not in page.text


def test_chat_join_message_leave_and_counts(examples):
    example = examples.load("chat")
    with example.app.run_in_thread() as server:
        with ws_connect(server, "/ws") as alice, ws_connect(server, "/ws") as bob, \
                ws_connect(server, "/ws") as lurker:
            send_json(alice, {"type": "join", "username": "alice"})
            assert recv_json(alice) == {"type": "user_joined", "username": "alice"}
            assert recv_json(alice) == {"type": "user_count", "count": 1}

            send_json(bob, {"type": "join", "username": "bob"})
            for ws in (alice, bob):
                assert recv_json(ws) == {"type": "user_joined", "username": "bob"}
                assert recv_json(ws) == {"type": "user_count", "count": 2}

            send_json(alice, {"type": "message", "text": "hi bob"})
            for ws in (alice, bob):
                message = recv_json(ws)
                assert message.pop("timestamp") > 0
                assert message == {"type": "message", "username": "alice", "text": "hi bob"}

            # Only those who joined hear the chat; a client that has not joined may not talk.
            assert_silent(lurker)
            send_json(lurker, {"type": "message", "text": "psst"})
            assert recv_json(lurker) == {"type": "error", "message": "Join the chat first"}
            send_json(alice, {"type": "join", "username": "again"})
            assert recv_json(alice) == {"type": "error", "message": "Already joined"}
            send_json(lurker, {"type": "join", "username": "  "})
            assert recv_json(lurker) == {"type": "error", "message": "A username is required"}
            lurker.send("nope")
            assert recv_json(lurker) == {"type": "error", "message": "Invalid JSON"}

            bob.close()
            assert recv_json(alice) == {"type": "user_left", "username": "bob"}
            assert recv_json(alice) == {"type": "user_count", "count": 1}
            lurker.close()  # never joined: no announcement
            assert_silent(alice)
            assert example.app.subscriber_count("chat") == 1


# ---------------------------------------------------------------------------------------------
# 5. Multi-room chat


def test_multi_room_chat(examples):
    example = examples.load("multi_room_chat")
    rooms = example.rooms
    with example.app.run_in_thread() as server:
        with ws_connect(server) as alice, ws_connect(server) as bob, ws_connect(server) as carol:
            send_json(alice, {"type": "join", "room": "lobby", "username": "alice"})
            assert recv_json(alice) == {"type": "joined", "room": "lobby", "members": ["alice"]}
            send_json(bob, {"type": "join", "room": "lobby", "username": "bob"})
            assert recv_json(bob) == {"type": "joined", "room": "lobby",
                                      "members": ["alice", "bob"]}
            assert recv_json(alice) == {"type": "user_joined", "room": "lobby",
                                        "username": "bob"}
            send_json(alice, {"type": "join", "room": "games"})
            assert recv_json(alice) == {"type": "joined", "room": "games", "members": ["alice"]}
            send_json(carol, {"type": "join", "room": "games", "username": "carol"})
            assert recv_json(carol)["members"] == ["alice", "carol"]
            assert recv_json(alice) == {"type": "user_joined", "room": "games",
                                        "username": "carol"}
            assert sorted(rooms) == ["games", "lobby"]
            assert len(rooms["lobby"]) == 2 and len(rooms["games"]) == 2

            # A message reaches its room's members (the sender included) and nobody else.
            send_json(bob, {"type": "message", "room": "lobby", "text": "hello lobby"})
            for ws in (alice, bob):
                message = recv_json(ws)
                assert message.pop("timestamp") > 0
                assert message == {"type": "message", "room": "lobby", "username": "bob",
                                   "text": "hello lobby"}
            assert_silent(carol)
            send_json(bob, {"type": "message", "room": "games", "text": "let me in"})
            assert recv_json(bob) == {"type": "error", "message": "Not in room games"}

            send_json(carol, {"type": "ping"})
            pong = recv_json(carol)
            assert pong["type"] == "pong" and isinstance(pong["timestamp"], int)
            send_json(carol, {"type": "shout", "room": "games"})
            assert recv_json(carol) == {"type": "error", "message": "Unknown message type"}
            send_json(carol, {"type": "join"})
            assert recv_json(carol) == {"type": "error", "message": "A room name is required"}
            send_json(carol, {"type": "join", "room": "games"})
            assert recv_json(carol) == {"type": "error", "message": "Already in room games"}
            send_json(carol, {"type": "leave", "room": "lobby"})
            assert recv_json(carol) == {"type": "error", "message": "Not in room lobby"}

            # Leaving: the others are told; the last one out removes the room.
            send_json(carol, {"type": "leave", "room": "games"})
            assert recv_json(carol) == {"type": "left", "room": "games"}
            assert recv_json(alice) == {"type": "user_left", "room": "games",
                                        "username": "carol"}
            send_json(alice, {"type": "leave", "room": "games"})
            assert recv_json(alice) == {"type": "left", "room": "games"}
            wait_for(lambda: "games" not in rooms)
            assert_silent(bob, carol)

            # Disconnecting leaves every room.
            bob.close()
            assert recv_json(alice) == {"type": "user_left", "room": "lobby", "username": "bob"}
            assert list(rooms) == ["lobby"] and len(rooms["lobby"]) == 1
        wait_for(lambda: not rooms)  # alice, the last member, disconnected


# ---------------------------------------------------------------------------------------------
# 6. Live feeds


def test_live_feed_publishers_start_with_the_server(examples, monkeypatch):
    monkeypatch.setenv("FEED_INTERVAL_MS", "40")
    example = examples.load("live_feed")
    # set_interval at module level, with no loop running: the feeds wait for the server.
    assert all(timer in timers._pending for timer in example.feed_timers)
    with example.app.run_in_thread() as server:
        assert not any(timer in timers._pending for timer in example.feed_timers)
        with ws_connect(server) as stocks, ws_connect(server) as news, \
                ws_connect(server) as idle:
            for ws in (stocks, news, idle):
                assert recv_json(ws) == {"type": "welcome", "topics": ["stocks", "news",
                                                                       "weather"]}
            send_json(stocks, {"type": "subscribe", "topic": "stocks"})
            assert recv_json(stocks) == {"type": "subscribed", "topic": "stocks"}
            send_json(news, {"type": "subscribe", "topic": "news"})
            assert recv_json(news) == {"type": "subscribed", "topic": "news"}
            send_json(news, {"type": "subscribe", "topic": "weather"})
            assert recv_json(news) == {"type": "subscribed", "topic": "weather"}

            # Each subscriber gets its topics' updates only; a client without topics nothing.
            updates = [recv_json(stocks) for _ in range(3)]
            for update in updates:
                assert update["type"] == "update" and update["topic"] == "stocks"
                assert set(update["data"]) == {"AAPL", "GOOGL", "MSFT", "TSLA"}
                assert isinstance(update["timestamp"], int)
            news_topics = set()
            while news_topics != {"news", "weather"}:
                update = recv_json(news)
                assert update["type"] == "update" and update["topic"] in ("news", "weather")
                news_topics.add(update["topic"])
            assert_silent(idle)

            send_json(news, {"type": "getTopics"})
            while (reply := recv_json(news))["type"] == "update":
                pass
            assert reply == {"type": "topics", "topics": ["stocks", "news", "weather"],
                             "subscribed": ["news", "weather"]}

            # After the unsubscribe is confirmed, no more updates arrive.
            send_json(stocks, {"type": "unsubscribe", "topic": "stocks"})
            while (reply := recv_json(stocks))["type"] == "update":
                pass
            assert reply == {"type": "unsubscribed", "topic": "stocks"}
            assert_silent(stocks)

            send_json(idle, {"type": "subscribe", "topic": "gossip"})
            assert recv_json(idle) == {"type": "error", "message": "Unknown topic: gossip"}
            send_json(idle, {"type": "publish"})
            assert recv_json(idle) == {"type": "error", "message": "Unknown message type"}


# ---------------------------------------------------------------------------------------------
# 7. Authentication


@pytest.fixture
def auth_example(examples, monkeypatch):
    monkeypatch.setenv("AUTH_TIMEOUT_MS", "300")
    return examples.load("auth")


def test_auth_timeout_closes_a_client_that_does_not_authenticate(auth_example):
    with auth_example.app.run_in_thread() as server, ws_connect(server) as ws:
        started = time.monotonic()
        assert recv_json(ws) == {"type": "auth_required"}
        send_json(ws, {"type": "message", "text": "let me talk"})
        assert recv_json(ws) == {"type": "error", "message": "Authentication required"}
        assert recv_json(ws) == {"type": "auth_timeout",
                                 "message": "Authentication timeout"}
        assert_closed(ws, 1008, "Authentication timeout")
        assert 0.25 <= time.monotonic() - started < TIMEOUT


def test_auth_admin_and_user_roles(auth_example):
    with auth_example.app.run_in_thread() as server:
        with ws_connect(server) as admin, ws_connect(server) as user:
            for ws, token in ((admin, "admin-token"), (user, "user-token")):
                assert recv_json(ws) == {"type": "auth_required"}
                send_json(ws, {"type": "auth", "token": token})
            assert recv_json(admin) == {"type": "auth_success", "user": "alice", "role": "admin"}
            assert recv_json(user) == {"type": "auth_success", "user": "bob", "role": "user"}

            send_json(admin, {"type": "admin_command", "command": "restart"})
            assert recv_json(admin) == {"type": "admin_result", "command": "restart",
                                        "result": "ok", "by": "alice"}
            send_json(user, {"type": "admin_command", "command": "restart"})
            assert recv_json(user) == {"type": "error", "message": "Permission denied"}

            # Authenticated clients outlive the authentication timeout.
            time.sleep(0.45)
            send_json(user, {"type": "message", "text": "still here"})
            assert recv_json(user) == {"type": "message", "user": "bob", "text": "still here"}
            send_json(user, {"type": "auth", "token": "admin-token"})
            assert recv_json(user) == {"type": "error", "message": "Already authenticated"}
            assert_silent(admin)


def test_auth_bad_token_is_refused(auth_example):
    with auth_example.app.run_in_thread() as server:
        with ws_connect(server) as ws:
            assert recv_json(ws) == {"type": "auth_required"}
            send_json(ws, {"type": "auth", "token": "forged"})
            assert recv_json(ws) == {"type": "auth_failed", "message": "Invalid token"}
            assert_closed(ws, 1008, "Authentication failed")
        with ws_connect(server) as ws:
            assert recv_json(ws) == {"type": "auth_required"}
            ws.send("not json")
            assert recv_json(ws) == {"type": "error", "message": "Invalid JSON"}


def test_auth_token_in_query_via_upgrade(auth_example):
    app = auth_example.query_token_app()
    with app.run_in_thread() as server:
        with ws_connect(server, "/?token=admin-token") as ws:
            assert recv_json(ws) == {"type": "auth_success", "user": "alice", "role": "admin"}
            send_json(ws, {"type": "admin_command", "command": "flush"})
            assert recv_json(ws)["type"] == "admin_result"
        with ws_connect(server, "/?token=user-token") as ws:
            assert recv_json(ws) == {"type": "auth_success", "user": "bob", "role": "user"}
            send_json(ws, {"type": "admin_command", "command": "flush"})
            assert recv_json(ws) == {"type": "error", "message": "Permission denied"}
        for path in ("/?token=forged", "/"):
            with pytest.raises(InvalidStatus) as refused:
                ws_connect(server, path)
            assert refused.value.response.status_code == 401


# ---------------------------------------------------------------------------------------------
# 8. Error handling and health checks


class RawClient:
    """A WebSocket client over a plain socket that reads frames and never answers a ping."""

    def __init__(self, server):
        self.sock = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            assert chunk, "connection closed during the handshake"
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101")

    def frames_until_eof(self, timeout):
        """Opcodes of the frames received until the server drops the connection."""
        opcodes = []
        deadline = time.monotonic() + timeout
        while True:
            while len(self.buffer) >= 2 and len(self.buffer) >= 2 + (self.buffer[1] & 0x7F):
                length = self.buffer[1] & 0x7F  # server frames here are short and unmasked
                assert length < 126
                opcodes.append(self.buffer[0] & 0x0F)
                self.buffer = self.buffer[2 + length:]
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(4096)
            except ConnectionResetError:
                return opcodes
            except socket.timeout:
                raise AssertionError(f"not dropped within {timeout} s; frames: {opcodes}") from None
            if not chunk:
                return opcodes
            self.buffer += chunk

    def close(self):
        self.sock.close()


def test_error_handling_replies(examples, capsys):
    example = examples.load("error_handling")
    output = Output(capsys)
    with example.app.run_in_thread() as server, ws_connect(server) as ws:
        send_json(ws, {"type": "echo", "data": [1, "two"]})
        assert recv_json(ws) == {"type": "echo", "data": [1, "two"]}
        ws.send("{oops")
        assert recv_json(ws) == {"type": "error", "message": "Invalid JSON"}
        send_json(ws, {"data": 1})
        assert recv_json(ws) == {"type": "error", "message": "Missing message type"}
        send_json(ws, "echo")
        assert recv_json(ws) == {"type": "error", "message": "Missing message type"}
        send_json(ws, {"type": "juggle"})
        assert recv_json(ws) == {"type": "error", "message": "Unknown message type: juggle"}
        # An exception escaping the handler goes to the error handler; the client stays.
        send_json(ws, {"type": "fail"})
        assert recv_json(ws) == {"type": "error", "message": "Internal server error"}
        output.wait_for("WebSocket error: RuntimeError(")
        send_json(ws, {"type": "echo", "data": "still open"})
        assert recv_json(ws) == {"type": "echo", "data": "still open"}


def test_error_handling_terminates_dead_peers_and_keeps_live_ones(examples, monkeypatch):
    monkeypatch.setenv("HEARTBEAT_INTERVAL_MS", "100")
    example = examples.load("error_handling")
    with example.app.run_in_thread() as server:
        # websockets answers pings on its own thread: this peer is alive.
        with ws_connect(server, ping_interval=None) as live:
            dead = RawClient(server)
            try:
                wait_for(lambda: len(example.clients) == 2)
                opcodes = dead.frames_until_eof(timeout=TIMEOUT)
            finally:
                dead.close()
            # Pinged (0x9) at least once, then dropped without a closing handshake (no 0x8):
            # terminated by the heartbeat, not closed by the server's idle timeout (120 s, 1001).
            assert 0x9 in opcodes and 0x8 not in opcodes, opcodes
            wait_for(lambda: len(example.clients) == 1)
            # The live peer has been pinged and answered through several rounds meanwhile.
            time.sleep(0.35)
            send_json(live, {"type": "echo", "data": "alive"})
            assert recv_json(live) == {"type": "echo", "data": "alive"}
            assert len(example.clients) == 1


# ---------------------------------------------------------------------------------------------
# 9. Connection management


def test_connection_management_capacity(examples, monkeypatch):
    monkeypatch.setenv("MAX_CONNECTIONS", "2")
    example = examples.load("connection_management")
    with example.app.run_in_thread() as server:
        with ws_connect(server) as first, ws_connect(server) as second:
            assert recv_json(first) == {"type": "welcome", "id": 1, "connections": 1}
            assert recv_json(second) == {"type": "welcome", "id": 2, "connections": 2}
            with ws_connect(server) as third:
                assert recv_json(third) == {"type": "error", "message": "Server at capacity"}
                assert_closed(third, 1013, "Server overloaded")
            first.send("hello")
            assert recv_json(first) == {"type": "ack", "received": "hello"}
            assert request(server, "GET", "/stats").json() == {
                "active": 2, "max": 2, "total": 2, "rejected": 1, "timed_out": 0}
        # Capacity comes back as clients leave.
        wait_for(lambda: not example.connections)
        with ws_connect(server) as fourth:
            assert recv_json(fourth) == {"type": "welcome", "id": 3, "connections": 1}


def test_connection_management_inactivity_cleanup(examples, monkeypatch):
    monkeypatch.setenv("CLEANUP_INTERVAL_MS", "50")
    monkeypatch.setenv("INACTIVITY_TIMEOUT_MS", "400")
    example = examples.load("connection_management")
    with example.app.run_in_thread() as server:
        with ws_connect(server) as active, ws_connect(server) as silent:
            recv_json(active)
            recv_json(silent)
            started = time.monotonic()
            timed_out = None
            while timed_out is None:
                assert time.monotonic() - started < TIMEOUT, "the silent client was kept"
                active.send("tick")  # activity every ~100 ms keeps this one
                assert recv_json(active) == {"type": "ack", "received": "tick"}
                try:
                    timed_out = recv_json(silent, timeout=0.1)
                except TimeoutError:
                    pass
            assert timed_out == {"type": "timeout", "message": "Closed for inactivity"}
            assert 0.35 <= time.monotonic() - started
            assert_closed(silent, 1000, "Inactive connection")
            active.send("still here")
            assert recv_json(active) == {"type": "ack", "received": "still here"}
            assert len(example.connections) == 1
            assert example.stats["timed_out"] == 1


# --- limited_chat.py ------------------------------------------------------------------------


def test_limited_chat_limits_each_user_and_serves_metrics(examples, monkeypatch):
    monkeypatch.setenv("MESSAGES_PER_SECOND", "2")  # bursts of 4
    monkeypatch.setenv("CONNECTIONS_PER_IP", "3")
    example = examples.load("limited_chat")
    with example.app.run_in_thread() as server:
        with ws_connect(server, "/?user=bob") as bob, ws_connect(server, "/?user=admin") as admin:
            for i in range(10):
                bob.send(f"b{i}")
            got = [recv_json(bob) for _ in range(5)]  # 4 chats and one "limited"
            assert [m["text"] for m in got if m["type"] == "chat"] == ["b0", "b1", "b2", "b3"]
            assert {"type": "limited", "retry": "slow down"} in got
            for i in range(10):  # the admin is not limited
                admin.send(f"a{i}")
            texts = []
            while len(texts) < 14:  # bob's 4 and the admin's 10, in the admin's view
                texts.append(recv_json(admin)["text"])
            assert texts[4:] == [f"a{i}" for i in range(10)]
            with ws_connect(server, "/?user=carol"):
                with pytest.raises(InvalidStatus) as info:
                    with ws_connect(server, "/?user=dave"):
                        pass
                assert info.value.response.status_code == 429
        response = request(server, "GET", "/metrics")
    assert response.status == 200
    assert 'verb_rate_limited_total{action="drop"} 6.0' in response.text
    assert 'verb_handshakes_total{outcome="rejected",status="429"} 1.0' in response.text
