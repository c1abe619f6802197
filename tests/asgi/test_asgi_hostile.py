"""Hostile peers and misbehaving apps against `verb asgi`: the same close codes as verb's own
API, bounded memory, and no connection stalls another."""

from __future__ import annotations

import asyncio
import os
import socket
import struct

import pytest
from support.asgi_servers import AsgiProcess

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

MiB = 1024 * 1024


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with AsgiProcess("verb", "apps.hostile_apps:app", tmp_path_factory.mktemp("hostile"),
                     ["--ws-max-size", str(MiB), "--timeout-keep-alive", "2",
                      "--ws-max-queue", "8"]) as process:
        yield process


async def echoes(server, text="still here") -> str:
    async with connect(server.ws_url + "/echo", open_timeout=10) as ws:
        await ws.send(text)
        return await asyncio.wait_for(ws.recv(), 10)


def upgrade(port: int, path: str, extra: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 b"Sec-WebSocket-Version: 13\r\n" + extra + b"\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock


def masked_binary(payload: bytes) -> bytes:
    header = struct.pack("!BBQ", 0x82, 0x80 | 127, len(payload))
    return header + b"\0\0\0\0" + payload   # zero key: the payload goes as is


def test_an_app_that_never_reads_costs_bounded_memory(server):
    """Reading pauses once --ws-max-queue messages wait for the app: the peer's sends block
    in TCP, the server's memory stays bounded, and other connections are served."""
    before = rss(server.proc.pid)
    sock = upgrade(server.port, "/deaf")
    frame = masked_binary(b"x" * (64 * 1024))
    sent = 0
    sock.settimeout(2.0)
    try:
        for _ in range(1024):                 # at most 64 MiB
            sock.sendall(frame)
            sent += len(frame)
    except socket.timeout:
        pass                                  # the server stopped reading: TCP is full
    finally:
        assert asyncio.run(echoes(server)) == "still here"
        grown = rss(server.proc.pid) - before
        sock.close()
    assert sent < 1024 * len(frame), "the server never stopped reading"
    assert grown < 24 * MiB, f"server RSS grew {grown / MiB:.1f} MiB for one deaf app"


def test_an_app_that_never_accepts_is_dropped_and_others_carry_on(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=15)
    sock.sendall(b"GET /never-accepts HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 b"Sec-WebSocket-Version: 13\r\n\r\n")
    assert asyncio.run(echoes(server)) == "still here"
    assert sock.recv(4096) == b""            # closed by the server (a 15 s timeout fails)
    sock.close()


def test_an_app_that_raises_before_accept_gets_500_and_others_carry_on(server):
    async def run():
        with pytest.raises(InvalidStatus) as info:
            async with connect(server.ws_url + "/raises", open_timeout=10):
                pass
        return info.value.response.status_code, await echoes(server)
    assert asyncio.run(run()) == (500, "still here")


def test_a_frame_declaring_2_63_bytes_closes_1009(server):
    sock = upgrade(server.port, "/echo")
    sock.sendall(struct.pack("!BBQ", 0x82, 0x80 | 127, 2 ** 63 - 1) + b"\0\0\0\0")
    reply = sock.recv(64)
    sock.close()
    assert reply[:1] == b"\x88" and struct.unpack("!H", reply[2:4])[0] == 1009, reply


def test_a_decompression_bomb_closes_1009_with_bounded_memory(tmp_path):
    with AsgiProcess("verb", "apps.hostile_apps:app", tmp_path,
                     ["--ws-max-size", str(MiB)]) as process:
        before = rss(process.proc.pid)

        async def bomb():
            async with connect(process.ws_url + "/echo", compression="deflate",
                               max_size=None) as ws:
                await ws.send(b"\0" * (64 * MiB))   # ~64 KiB on the wire
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 20)
                return ws.close_code
        assert asyncio.run(bomb()) == 1009
        assert rss(process.proc.pid) - before < 16 * MiB
        assert asyncio.run(echoes(process)) == "still here"


def test_random_garbage_after_the_handshake_never_crashes_the_server(server):
    for seed in range(20):
        sock = upgrade(server.port, "/echo")
        sock.sendall(os.urandom(4096))
        sock.close()
    assert asyncio.run(echoes(server)) == "still here"
    assert server.proc.poll() is None
