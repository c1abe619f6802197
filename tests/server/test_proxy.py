"""Behind a reverse proxy: nginx proxying `Upgrade` to two verb processes sharing Redis, and
X-Forwarded-For honoured for `ws.remote_address` and `req.ip` only with `trust_proxy=True`.

Clients reach nginx from 127.0.0.2 (all of 127/8 is loopback on Linux) while nginx reaches verb
from 127.0.0.1, so the address verb reports tells whether it took the forwarded one.
"""

from __future__ import annotations

import contextlib
import socket

import pytest
from support.cluster import (
    Nginx,
    VerbProcess,
    assert_nothing_more,
    client,
    command,
    receive_until,
    wait_until,
)

CLIENT_ADDRESS = "127.0.0.2"


@pytest.fixture
def cluster(tmp_path, redis_server):
    """Two verb processes (trust_proxy on) behind nginx, with Redis."""
    started = []
    nginx = None
    try:
        for name in ("one", "two"):
            started.append(VerbProcess(tmp_path / name, broker=redis_server.url,
                                       env={"TEST_TRUST_PROXY": "1"}))
        for process in started:
            process.wait_ready()
        nginx = Nginx(tmp_path / "nginx", [p.port for p in started]).wait_ready()
        yield nginx, started
    finally:
        if nginx is not None:
            nginx.stop()
        for process in started:
            process.stop()


def http_get(url_host_port, path, headers=(), source=CLIENT_ADDRESS) -> str:
    host, port = url_host_port
    with socket.create_connection((host, port), timeout=5, source_address=(source, 0)) as sock:
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n"
                     .encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return body.decode()


def ws_client(url, headers=None, source=CLIENT_ADDRESS):
    return client(url, additional_headers=headers, source_address=(source, 0))


def test_nginx_proxies_websockets_to_two_processes_sharing_redis(cluster, redis_server):
    nginx, (one, two) = cluster
    with contextlib.ExitStack() as stack:
        clients = []
        pids = set()
        # nginx balances round-robin: consecutive connections alternate between the two.
        while len(pids) < 2 or len(clients) < 6:
            assert len(clients) < 40, f"nginx never reached both processes\n{nginx.log()}"
            ws = stack.enter_context(ws_client(nginx.ws_url + "/"))
            clients.append(ws)
            pids.add(int(command(ws, "pid", "pid ").split()[1]))
        assert pids == {one.pid, two.pid}
        for ws in clients:
            command(ws, "sub room", "subscribed")
        wait_until(lambda: redis_server.numsub("room") == 2, message="both processes subscribed")
        publisher, *others = clients
        for i in range(10):
            publisher.send(f"pub room m{i}")
        publisher.send(f"pubbin room {b'end'.hex()}")
        for ws in others:
            assert receive_until(ws, b"end") == [f"m{i}" for i in range(10)] + [b"end"]
        assert_nothing_more(publisher)
        # X-Forwarded-For through nginx, trust_proxy on: the client's address, even when the
        # client forges the header (nginx appends the address it saw; verb takes the last).
        assert command(publisher, "addr", "addr ") == f"addr {CLIENT_ADDRESS}"
        forged = stack.enter_context(ws_client(nginx.ws_url + "/",
                                               {"X-Forwarded-For": "6.6.6.6"}))
        assert command(forged, "addr", "addr ") == f"addr {CLIENT_ADDRESS}"
    nginx_address = ("127.0.0.1", nginx.port)
    assert http_get(nginx_address, "/ip") == CLIENT_ADDRESS
    assert http_get(nginx_address, "/ip", [("X-Forwarded-For", "6.6.6.6")]) == CLIENT_ADDRESS


def test_forwarded_for_is_ignored_without_trust_proxy(tmp_path):
    process = VerbProcess(tmp_path / "verb").wait_ready()  # trust_proxy off (the default)
    nginx = None
    try:
        nginx = Nginx(tmp_path / "nginx", [process.port]).wait_ready()
        # Through nginx: verb sees nginx's address, not the forwarded one.
        with ws_client(nginx.ws_url + "/") as ws:
            assert command(ws, "addr", "addr ") == "addr 127.0.0.1"
        assert http_get(("127.0.0.1", nginx.port), "/ip") == "127.0.0.1"
        # A direct client forging the header is not believed either.
        with ws_client(process.ws_url + "/", {"X-Forwarded-For": "6.6.6.6"}) as ws:
            assert command(ws, "addr", "addr ") == f"addr {CLIENT_ADDRESS}"
        assert http_get(("127.0.0.1", process.port), "/ip",
                        [("X-Forwarded-For", "6.6.6.6")]) == CLIENT_ADDRESS
    finally:
        if nginx is not None:
            nginx.stop()
        process.stop()


def test_trust_proxy_takes_the_forwarded_address_of_a_direct_peer(tmp_path):
    """trust_proxy means every peer is the proxy: only enable it when clients cannot reach
    verb directly (the README says so)."""
    process = VerbProcess(tmp_path / "verb", env={"TEST_TRUST_PROXY": "1"}).wait_ready()
    try:
        with ws_client(process.ws_url + "/", {"X-Forwarded-For": "203.0.113.9"}) as ws:
            assert command(ws, "addr", "addr ") == "addr 203.0.113.9"
        with ws_client(process.ws_url + "/") as ws:  # no header: the peer's address
            assert command(ws, "addr", "addr ") == f"addr {CLIENT_ADDRESS}"
    finally:
        process.stop()
