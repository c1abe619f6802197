"""Rate limits (verb/server/limits.pxi and the hub): per-connection message and byte buckets with
their three actions, the control-frame allowance, per-connection limits picked by a callable,
max_connections_per_ip and handshake_rate with their bounded address table.

Floods are sized for the default tier (20,000 messages; --full: 100,000) and bounded in time.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import time

import pytest

import verb
from verb import ServerProtocol, create_server
from verb.client.client import ConnectionClosed
from verb.server.options import Options, RateLimit

TIMEOUT = 30.0


def run(coro, timeout=TIMEOUT):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture
def flood_size(full_tier):
    return 100_000 if full_tier else 20_000


def echo_app(**options):
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, message: ws.send(message), **options)
    return app


async def flood(ws, count, payload=b"x", batch=500):
    """Send `count` messages as fast as the connection takes them; returns how many went out
    before the server closed (ConnectionClosed)."""
    sent = 0
    try:
        while sent < count:
            for _ in range(min(batch, count - sent)):
                ws.send(payload)
                sent += 1
            await ws.drain()
    except ConnectionClosed:
        pass
    return sent


# --- options ------------------------------------------------------------------------------------


def test_rate_limit_dict_defaults():
    limit = Options.from_kwargs(rateLimit={"messages": 100}).rate_limit
    assert limit == RateLimit(messages=100.0, per=1.0, burst=100.0, bytes=None,
                              burst_bytes=None, action="close")
    limit = Options(rate_limit={"messages": 10, "per": 2, "burst": 30, "bytes": 1000,
                                "action": "drop"}).rate_limit
    assert (limit.burst, limit.bytes, limit.burst_bytes, limit.action) == (30, 1000, 1000, "drop")
    assert Options(rate_limit={"messages": 1, "bytes": 10, "burst_bytes": 50}).rate_limit \
        .burst_bytes == 50


def test_options_are_off_by_default():
    options = Options()
    assert (options.rate_limit, options.max_connections_per_ip, options.handshake_rate) == \
        (None, None, None)


@pytest.mark.parametrize("value, error, text", [
    ("100/s", TypeError, "rateLimit must be a dict"),
    ({}, TypeError, 'needs "messages"'),
    ({"messages": 0}, ValueError, r"rateLimit\[messages\] must be a finite number > 0, got 0"),
    ({"messages": True}, TypeError, r"rateLimit\[messages\] must be a number, got True"),
    ({"messages": 5, "per": -1}, ValueError, r"rateLimit\[per\]"),
    ({"messages": 5, "burst": 0.5}, ValueError, r"rateLimit\[burst\] must be a finite number >= 1"),
    ({"messages": 5, "action": "ban"}, ValueError, "must be one of close, drop, pause, got 'ban'"),
    ({"messages": 5, "mesages": 5}, TypeError, "unknown key 'mesages'; did you mean 'messages'"),
    ({"messages": 5, "burst_bytes": 10}, ValueError, '"burst_bytes" needs "bytes"'),
])
def test_bad_rate_limits_name_the_option_and_value(value, error, text):
    app = create_server(ServerProtocol.WEBSOCKET)
    with pytest.raises(error, match=text):
        app.websocket(message=print, rateLimit=value)


@pytest.mark.parametrize("name, value, error, text", [
    ("maxConnectionsPerIp", 0, ValueError, "maxConnectionsPerIp must be an integer >= 1"),
    ("max_connections_per_ip", "5", TypeError, "max_connections_per_ip must be an int"),
    ("handshakeRate", 10, TypeError, "handshakeRate must be a dict"),
    ("handshake_rate", {"per": 1}, TypeError, 'needs "per_ip"'),
    ("handshake_rate", {"per_ip": -2}, ValueError, r"handshake_rate\[per_ip\]"),
    ("handshake_rate", {"per_ip": 2, "perip": 1}, TypeError, "unknown key 'perip'"),
])
def test_bad_address_limits_name_the_option_and_value(name, value, error, text):
    with pytest.raises(error, match=text):
        create_server(ServerProtocol.WEBSOCKET).websocket(message=print, **{name: value})


# --- the three actions --------------------------------------------------------------------------


def test_close_action_closes_a_flood_with_1008_within_3_s(flood_size):
    received = []
    app = create_server(ServerProtocol.WEBSOCKET)  # no echo: the client only reads the close
    app.websocket(message=lambda ws, message: received.append(message),
                  rate_limit={"messages": 1000, "per": 1})

    async def main(url):
        async with verb.connect(url) as ws:
            start = time.monotonic()
            sent = await flood(ws, flood_size)
            await ws.wait_closed()
            return ws.close_code, ws.close_reason, time.monotonic() - start, sent

    with app.run_in_thread() as server:
        code, reason, elapsed, sent = run(main(server.ws_url))
        stats = app.stats()
    assert code == 1008 and reason == "rate limit exceeded: 1000 messages per 1 s"
    assert elapsed < 3.0
    assert 1000 <= sent <= flood_size
    # The burst, plus what the bucket refilled while the flood lasted; nothing after the close.
    assert 1000 <= len(received) <= 1000 + 1000 * elapsed + 1
    assert stats["rate_limited"]["close"] == 1
    assert stats["closes"] == {"1008": {"server": 1}}


def test_drop_action_echoes_at_most_burst_plus_rate_times_elapsed(flood_size):
    limited = []
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, message: ws.send(message),
                  limited=lambda ws, message: limited.append(time.monotonic()),
                  rate_limit={"messages": 1000, "per": 1, "action": "drop"})

    async def main(url):
        async with verb.connect(url, max_queue=flood_size + 1) as ws:  # reads on
            start = time.monotonic()
            assert await flood(ws, flood_size) == flood_size
            await ws.ping()  # its pong comes once the server has handled the whole flood
            flood_time = time.monotonic() - start
            await asyncio.sleep(1.2)  # the bucket refills: the marker is not dropped
            ws.send(b"end")
            echoes = 0
            while await ws.recv() != b"end":
                echoes += 1
            return echoes, flood_time

    with app.run_in_thread() as server:
        echoes, flood_time = run(main(server.ws_url))
        stats = app.stats()
    assert 1000 <= echoes <= 1000 + 1000 * flood_time + 1
    assert stats["rate_limited"]["drop"] == flood_size - echoes
    assert stats["messages_in"] == flood_size + 1
    # `limited` was told, at most once a second.
    assert 1 <= len(limited) <= flood_time + 2
    assert all(b - a >= 0.99 for a, b in zip(limited, limited[1:]))


def test_pause_action_holds_the_sender_to_the_rate_and_loses_nothing():
    count, rate = 6000, 2000  # burst 2000, then 2 s at 2000 messages/s
    app = echo_app(rate_limit={"messages": rate, "per": 1, "action": "pause"})

    async def main(url):
        async with verb.connect(url) as ws:
            start = time.monotonic()
            sender = asyncio.ensure_future(flood(ws, count, batch=100))
            received = []
            for _ in range(count):
                received.append(await ws.recv())
            elapsed = time.monotonic() - start
            assert await sender == count
            return received, elapsed

    with app.run_in_thread() as server:
        received, elapsed = run(main(server.ws_url))
        stats = app.stats()
    assert received == [b"x"] * count  # nothing dropped, in order
    assert elapsed >= (count - rate) / rate * 0.9  # held to the rate
    assert stats["rate_limited"]["pause"] >= 1
    assert stats["rate_limited"]["drop"] == stats["rate_limited"]["close"] == 0


def test_pause_keeps_what_was_left_of_the_read_and_the_order():
    # Messages in one write, past the burst: the rest of that read waits in the connection
    # and is parsed, in order, once the bucket refills.
    app = echo_app(rate_limit={"messages": 10, "per": 0.5, "burst": 3, "action": "pause"})

    async def main(url):
        async with verb.connect(url) as ws:
            for i in range(12):
                ws.send(str(i))
            return [await ws.recv() for _ in range(12)]

    with app.run_in_thread() as server:
        assert run(main(server.ws_url)) == [str(i) for i in range(12)]


def test_byte_bucket_limits_payload_bytes():
    app = echo_app(rate_limit={"messages": 10_000, "bytes": 10_000, "per": 1, "action": "drop"})

    async def main(url):
        async with verb.connect(url) as ws:
            for _ in range(50):
                ws.send(bytes(1000))  # 50,000 bytes against a 10,000-byte burst
            await ws.drain()
            await asyncio.sleep(1.2)
            ws.send(b"end")
            echoes = 0
            while await ws.recv() != b"end":
                echoes += 1
            return echoes

    with app.run_in_thread() as server:
        echoes = run(main(server.ws_url))
    assert 10 <= echoes <= 12


def read_frames(sock, seconds):
    """Server frames (unmasked) arriving within `seconds`: [(opcode, payload)]."""
    data, frames = b"", []
    sock.settimeout(0.05)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        data += chunk
        while len(data) >= 2 and len(data) >= 2 + (data[1] & 0x7F):  # short frames only
            size = data[1] & 0x7F
            frames.append((data[0] & 0x0F, data[2:2 + size]))
            data = data[2 + size:]
    return frames


def masked(opcode, payload):
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload  # key 0


def test_a_ping_flood_gets_no_more_pongs_than_the_control_allowance():
    app = echo_app(rate_limit={"messages": 100, "action": "drop"})
    with app.run_in_thread() as server:
        sock, status, _ = open_raw(server)
        assert status.startswith("HTTP/1.1 101")
        start = time.monotonic()
        sock.sendall(b"".join(masked(0x9, i.to_bytes(4, "big")) for i in range(200)))
        sock.sendall(masked(0x1, b"still open"))
        frames = read_frames(sock, 0.5)
        elapsed = time.monotonic() - start
        sock.close()
        drops = app.stats()["rate_limited"]["drop"]
    pongs = [payload for opcode, payload in frames if opcode == 0xA]
    assert 20 <= len(pongs) <= 20 + 10 * elapsed + 1  # a burst of 20, then 10 a second
    assert pongs == [i.to_bytes(4, "big") for i in range(len(pongs))]
    assert (0x1, b"still open") in frames  # data messages have their own bucket
    assert drops == 200 - len(pongs)


def test_a_callable_picks_each_connections_limit_after_upgrade_before_open():
    seen = []

    def pick(ws):
        seen.append((ws.data.get("user"), ws.ready_state))
        return None if ws.data.get("user") == "admin" else {"messages": 5, "per": 60}

    def upgrade(req):
        return {"user": req.query.get("user")}

    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(upgrade=upgrade, open=lambda ws: seen.append(("open", ws.data["user"])),
                  message=lambda ws, message: ws.send(message), rate_limit=pick)

    async def main(url):
        async with verb.connect(url + "/?user=admin") as admin:
            for i in range(20):
                admin.send(str(i))
            assert [await admin.recv() for _ in range(20)] == [str(i) for i in range(20)]
        async with verb.connect(url + "/?user=bob") as bob:
            for i in range(20):
                bob.send(str(i))
            await bob.wait_closed()
            return bob.close_code

    with app.run_in_thread() as server:
        assert run(main(server.ws_url)) == 1008
    assert seen[0] == ("admin", 1) and seen[1] == ("open", "admin")
    assert seen[2] == ("bob", 1) and seen[3] == ("open", "bob")


def test_a_callable_that_raises_or_returns_garbage_closes_1011_through_the_error_handler():
    errors = []
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, message: ws.send(message),
                  error=lambda ws, exc: (errors.append(exc), ws.close(1011, "no limit")),
                  rate_limit=lambda ws: {"messages": "many"})

    async def main(url):
        async with verb.connect(url) as ws:
            await ws.wait_closed()
            return ws.close_code

    with app.run_in_thread() as server:
        assert run(main(server.ws_url)) == 1011
    assert isinstance(errors[0], TypeError) and "rate_limit[messages]" in str(errors[0])


# --- per address --------------------------------------------------------------------------------


def upgrade_bytes(forwarded=None):
    lines = ["GET / HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]
    if forwarded:
        lines.append(f"X-Forwarded-For: {forwarded}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def open_raw(server, forwarded=None):
    """An upgrade over a raw socket: (socket, status line, headers text)."""
    sock = socket.create_connection((server.host, server.port), timeout=5)
    sock.sendall(upgrade_bytes(forwarded))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return sock, head.split(b"\r\n", 1)[0].decode(), head.decode("latin-1")


def test_max_connections_per_ip_answers_429_with_retry_after():
    app = echo_app(max_connections_per_ip=2)
    with app.run_in_thread() as server:
        first, status1, _ = open_raw(server)
        second, status2, _ = open_raw(server)
        third, status3, head3 = open_raw(server)
        # Plain HTTP requests (a metrics scrape) do not count.
        conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
        conn.request("GET", "/")
        assert conn.getresponse().status == 404
        conn.close()
        assert (status1, status2) == ("HTTP/1.1 101 Switching Protocols",) * 2
        assert status3.startswith("HTTP/1.1 429") and "Retry-After: 1" in head3
        third.close()
        first.close()  # one closes: the address may open another
        deadline = time.monotonic() + 5
        while app.stats()["websockets"] > 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        fourth, status4, _ = open_raw(server)
        assert status4 == "HTTP/1.1 101 Switching Protocols"
        second.close()
        fourth.close()
        assert app.stats()["handshakes"] == {"101": 3, "429": 1}


def test_handshake_rate_limits_upgrade_attempts_per_address():
    app = echo_app(handshake_rate={"per_ip": 2, "per": 1, "burst": 3})
    with app.run_in_thread() as server:
        statuses = []
        for _ in range(5):
            sock, status, head = open_raw(server)
            statuses.append(status.split(" ")[1])
            sock.close()
        assert statuses == ["101", "101", "101", "429", "429"]
        time.sleep(0.6)  # 2 per second: one token back
        sock, status, _ = open_raw(server)
        sock.close()
        assert status.split(" ")[1] == "101"


def test_limits_apply_to_the_proxied_address_and_the_table_stays_bounded():
    from verb.server._server import MAX_IDLE_PEERS as cap

    app = create_server(ServerProtocol.WEBSOCKET, trust_proxy=True)
    app.websocket(message=lambda ws, message: ws.send(message), max_connections_per_ip=1,
                  handshake_rate={"per_ip": 100})
    with app.run_in_thread() as server:
        held, status, _ = open_raw(server, forwarded="203.0.113.7")
        assert status.startswith("HTTP/1.1 101")
        _, status, _ = open_raw(server, forwarded="203.0.113.7")
        assert status.startswith("HTTP/1.1 429")
        _, status, _ = open_raw(server, forwarded="203.0.113.8")  # another client
        assert status.startswith("HTTP/1.1 101")
        # A scan from many addresses: the table keeps at most `cap` idle ones, and never
        # forgets the address with an open connection.
        for i in range(cap + 500):
            sock = socket.create_connection((server.host, server.port), timeout=5)
            # Addresses of the benchmarking range (RFC 2544), only ever written in a header.
            sock.sendall(upgrade_bytes(f"198.{18 + (i >> 16)}.{i >> 8 & 255}.{i & 255}"))
            sock.recv(4096)
            sock.close()
        deadline = time.monotonic() + 10
        while app.stats()["websockets"] > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.stats()["peers"] <= cap + 1
        _, status, _ = open_raw(server, forwarded="203.0.113.7")
        assert status.startswith("HTTP/1.1 429")  # its limit was not lifted
        held.close()
