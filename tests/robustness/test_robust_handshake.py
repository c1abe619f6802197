"""Hostile handshakes: slow clients are cut at handshake_timeout, oversized or malformed
requests get the right status and a closed connection, and the server keeps serving."""

import socket
import time

import pytest

from robust_util import (echo_ok, header_of, raw_exchange, report, status_of, upgrade_request)
from verb import ServerProtocol, create_server

HANDSHAKE_TIMEOUT = 1.0


def echo_app(**options):
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, message: ws.send(message), **options)
    return app


@pytest.fixture(scope="module")
def server():
    app = echo_app(handshake_timeout=HANDSHAKE_TIMEOUT, origins=["https://good.example"])
    with app.run_in_thread() as srv:
        yield srv


def _time_until_dropped(port, chunks, interval, limit=6.0):
    """Send `chunks` one every `interval` s (until dropped); seconds from connect to drop."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=limit)
    start = time.monotonic()
    try:
        for chunk in chunks:
            if time.monotonic() - start > limit:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - start
            sock.settimeout(interval)
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return time.monotonic() - start
            if not data:
                return time.monotonic() - start
            raise AssertionError(f"server answered a slowloris: {data[:80]!r}")
        sock.settimeout(max(0.01, limit - (time.monotonic() - start)))
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            data = b""
        assert data == b"", data
        return time.monotonic() - start
    finally:
        sock.close()


def test_slowloris_partial_request_line_dropped_at_handshake_timeout(server):
    elapsed = _time_until_dropped(server.port, [b"GET /chat HT"], 0.3)
    report("partial request line dropped after (s)", round(elapsed, 3))
    assert HANDSHAKE_TIMEOUT <= elapsed <= HANDSHAKE_TIMEOUT + 1.5, elapsed
    echo_ok(server.port)


def test_slowloris_one_header_every_300ms_dropped_at_handshake_timeout(server):
    chunks = [b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"] + [
        b"X-Slow-%d: %s\r\n" % (i, b"a" * 10) for i in range(40)]
    elapsed = _time_until_dropped(server.port, chunks, 0.3)
    report("header-dripping client dropped after (s)", round(elapsed, 3))
    assert HANDSHAKE_TIMEOUT <= elapsed <= HANDSHAKE_TIMEOUT + 1.5, elapsed
    echo_ok(server.port)


def test_many_slowloris_clients_do_not_block_a_good_client(server):
    socks = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(200)]
    try:
        for sock in socks:
            sock.sendall(b"GET / HTTP/1.1\r\nHo")
        rtt = echo_ok(server.port)
        report("echo round trip with 200 slowloris sockets open (s)", round(rtt, 4))
        assert rtt < 2.0, rtt
        time.sleep(HANDSHAKE_TIMEOUT + 1.0)
        dropped = 0
        for sock in socks:
            sock.settimeout(0.5)
            try:
                dropped += sock.recv(1) == b""
            except ConnectionResetError:
                dropped += 1
            except socket.timeout:
                pass
        report("slowloris sockets dropped after timeout + 1 s", f"{dropped}/200")
        assert dropped == 200, dropped
    finally:
        for sock in socks:
            sock.close()


def test_request_line_over_8_kib_is_414(server):
    response = raw_exchange(server.port, upgrade_request("/" + "a" * (8 * 1024 + 10)))
    assert status_of(response) == 414, response[:100]
    echo_ok(server.port)


def test_101_headers_is_431_and_100_are_accepted(server):
    # upgrade_request has 5 header fields of its own.
    extra = [(f"X-H{i}", "v") for i in range(96)]
    response = raw_exchange(server.port, upgrade_request(extra_headers=extra), timeout=1.0)
    report("status for 101 header fields", status_of(response))
    assert status_of(response) == 431, response[:100]
    response = raw_exchange(server.port, upgrade_request(extra_headers=extra[:95]), timeout=1.0)
    assert status_of(response) == 101, response[:100]


def test_one_9_kib_header_is_431(server):
    response = raw_exchange(server.port, upgrade_request(X_Big="b" * 9 * 1024))
    assert status_of(response) == 431, response[:100]
    echo_ok(server.port)


def test_bad_version_is_426_with_supported_version(server):
    response = raw_exchange(server.port, upgrade_request(Sec_WebSocket_Version="8"))
    assert status_of(response) == 426, response[:100]
    assert header_of(response, "Sec-WebSocket-Version") == "13", response


@pytest.mark.parametrize("key", ["short", "!" * 24, "A" * 28])
def test_bad_key_is_400(server, key):
    response = raw_exchange(server.port, upgrade_request(Sec_WebSocket_Key=key))
    assert status_of(response) == 400, response[:100]


def test_post_upgrade_is_400(server):
    response = raw_exchange(server.port, upgrade_request(method="POST"))
    assert status_of(response) == 400, response[:100]


def test_bad_origin_is_403_and_good_origin_upgrades(server):
    response = raw_exchange(server.port, upgrade_request(Origin="https://evil.example"))
    assert status_of(response) == 403, response[:100]
    response = raw_exchange(server.port, upgrade_request(Origin="https://good.example"),
                            timeout=0.5)
    assert status_of(response) == 101, response[:100]


def test_no_upgrade_header_is_plain_http(server):
    response = raw_exchange(server.port, upgrade_request(Upgrade=None, Connection="close"))
    assert status_of(response) == 404, response[:100]


def test_error_responses_close_the_connection_promptly(server):
    # Each refusal is a complete response followed by EOF, not a hang until the timeout.
    start = time.monotonic()
    for request in (upgrade_request(method="POST"), upgrade_request(Sec_WebSocket_Key="x"),
                    upgrade_request(Sec_WebSocket_Version="7"),
                    upgrade_request("/" + "a" * 9000)):
        raw_exchange(server.port, request, timeout=HANDSHAKE_TIMEOUT * 3)
    elapsed = time.monotonic() - start
    report("4 refused handshakes, answered and closed in (s)", round(elapsed, 3))
    assert elapsed < HANDSHAKE_TIMEOUT, elapsed


def test_random_bytes_instead_of_a_request_never_crash_the_server(server):
    import random

    rng = random.Random(2616)
    statuses = {}
    trials, deadline = 0, time.monotonic() + 15
    seeds = [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", upgrade_request()]
    while trials < 300 and time.monotonic() < deadline:
        trials += 1
        if trials % 2:
            data = rng.randbytes(rng.randrange(1, 3000))
        else:  # a real request with a few bytes flipped
            data = bytearray(rng.choice(seeds))
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = bytes(data)
        response = raw_exchange(server.port, data, timeout=0.3)
        status = status_of(response) if response.startswith(b"HTTP/1.1 ") else None
        statuses[status] = statuses.get(status, 0) + 1
        if trials % 25 == 0:
            echo_ok(server.port)
    echo_ok(server.port)
    report("random pre-handshake bytes: trials, answers by status", (trials, statuses))
    assert trials >= 100
