"""Hostile frames: huge declared lengths, fragment floods, decompression bombs and random
garbage close the one connection with the right code, without allocating what was declared."""

import random
import socket
import struct
import time
import zlib

import pytest
from websockets.sync.client import connect

from robust_util import (MASK, OP_BINARY, OP_CONT, OP_TEXT, RawWS, SubprocessServer, echo_ok,
                         frame, report, reset_peak_rss, upgrade_request, wait_for)
from verb import ServerProtocol, create_server

MIB = 1 << 20


def test_frame_declaring_2_63_minus_1_bytes_closes_1009_without_allocating():
    with SubprocessServer(max_payload_length=MIB) as srv:
        echo_ok(srv.port)  # warm up
        time.sleep(0.2)
        rss_before = srv.rss()
        assert reset_peak_rss(srv.pid)
        with RawWS(srv.port) as ws:
            # Only the header: 2**63 - 1 declared, then a few bytes of "payload".
            ws.send(frame(OP_BINARY, b"", length=(1 << 63) - 1)[:-4] + MASK + b"x" * 1000)
            code, _ = ws.recv_until_close()
            assert ws.wait_eof(5)
        growth = srv.peak_rss() - rss_before
        report("close code for a 2**63-1 byte frame", code)
        report("server peak RSS growth for a 2**63-1 byte frame (KiB)", growth // 1024)
        assert code == 1009
        assert growth < MIB, growth  # declared 8 EiB; the server allocated nothing of it
        assert echo_ok(srv.port) < 2


def test_frame_length_with_the_top_bit_set_is_a_protocol_error():
    with SubprocessServer(max_payload_length=MIB) as srv:
        with RawWS(srv.port) as ws:
            head = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 63) + MASK
            ws.send(head + b"x" * 100)
            code, _ = ws.recv_until_close()
        assert code in (1002, 1009), code
        echo_ok(srv.port)


def test_flood_of_one_byte_continuation_frames_past_max_payload_closes_1009():
    limit = 4096
    app = create_server(ServerProtocol.WEBSOCKET)
    got = []

    def message(ws, m):
        got.append(len(m))
        ws.send(m)

    app.websocket(message=message, max_payload_length=limit)
    with app.run_in_thread() as srv:
        with RawWS(srv.port) as ws:
            frames = [frame(OP_TEXT, b"a", fin=False)]
            frames += [frame(OP_CONT, b"a", fin=False) for _ in range(3 * limit)]
            data = b"".join(frames)
            try:
                for i in range(0, len(data), 6000):  # in pieces: the server may close early
                    ws.send(data[i:i + 6000])
            except (BrokenPipeError, ConnectionResetError):
                pass
            code, _ = ws.recv_until_close()
        report("1-byte fragments sent before/after the close, declared total (bytes)",
               f"{3 * limit + 1} > max_payload_length {limit}; close {code}")
        assert code == 1009
        assert got == []  # no partial message reached the handler
        echo_ok(srv.port)
        got.clear()
        assert srv.hub.stats()["websockets"] == 0 or wait_for(
            lambda: srv.hub.stats()["websockets"] == 0)
        echo_ok(srv.port)


def _deflate_bomb(size):
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = compressor.compress(b"\x00" * size) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert packed.endswith(b"\x00\x00\xff\xff")
    return packed[:-4]  # RFC 7692 section 7.2.1


@pytest.mark.parametrize("mode", ["shared", "dedicated"])
def test_decompression_bomb_closes_1009_with_bounded_memory(mode):
    limit = MIB
    bomb = _deflate_bomb(10 * MIB)
    with SubprocessServer(max_payload_length=limit, compression=mode) as srv:
        # Warm up the compression path with a well-behaved deflate client.
        with connect(f"ws://127.0.0.1:{srv.port}/", proxy=None, compression="deflate") as good:
            good.send("z" * 5000)
            assert good.recv(timeout=5) == "z" * 5000
        time.sleep(0.2)
        rss_before = srv.rss()
        assert reset_peak_rss(srv.pid)
        request = upgrade_request(Sec_WebSocket_Extensions="permessage-deflate; "
                                  "client_no_context_takeover; client_max_window_bits")
        with RawWS(srv.port, request) as ws:
            assert b"permessage-deflate" in ws.response, ws.response
            ws.send(frame(OP_BINARY, bomb, rsv1=True))
            code, _ = ws.recv_until_close()
        growth = srv.peak_rss() - rss_before
        report(f"decompression bomb ({mode}): {len(bomb)} B -> 10 MiB; close code", code)
        report(f"decompression bomb ({mode}): server peak RSS growth (KiB)", growth // 1024)
        assert code == 1009
        assert growth < 2 * limit, growth
        assert echo_ok(srv.port) < 2


def _garbage(rng):
    kind = rng.randrange(4)
    if kind == 0:  # pure noise
        return rng.randbytes(rng.randrange(1, 2000))
    if kind == 1:  # a plausible header with random bits, then noise
        return bytes([rng.randrange(256), 0x80 | rng.randrange(128)]) + rng.randbytes(
            rng.randrange(0, 300))
    if kind == 2:  # valid frames with random opcodes / flags / payloads
        return b"".join(
            frame(rng.randrange(16), rng.randbytes(rng.randrange(0, 200)),
                  fin=rng.random() < 0.7, rsv1=rng.random() < 0.2)
            for _ in range(rng.randrange(1, 8)))
    # a valid text frame, then one byte flipped somewhere
    data = bytearray(frame(OP_TEXT, "héllo wörld ✓".encode() * rng.randrange(1, 20)))
    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


@pytest.mark.slow  # ~7 s each: run by README's test command, not once more per wheel
@pytest.mark.parametrize("compression", [None, "shared"])
def test_random_garbage_after_handshake_never_crashes_the_server(compression):
    rng = random.Random(6455)
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, m: ws.send(m), max_payload_length=64 * 1024,
                  compression=compression, close_timeout=1.0)
    trials, checks, deadline = 0, 0, time.monotonic() + 20
    request = upgrade_request(Sec_WebSocket_Extensions="permessage-deflate; "
                              "client_no_context_takeover") if compression else None
    with app.run_in_thread() as srv:
        with connect(f"ws://127.0.0.1:{srv.port}/", proxy=None, compression=None) as good:
            while trials < 400 and time.monotonic() < deadline:
                trials += 1
                with RawWS(srv.port, request) as ws:
                    try:
                        ws.send(_garbage(rng))
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    if trials % 2:  # half the time, see how the server answers
                        try:
                            ws.recv_until_close(timeout=0.2)
                        except (EOFError, socket.timeout, ConnectionResetError):
                            pass
                good.send(f"still there {trials}")
                assert good.recv(timeout=2) == f"still there {trials}"
                checks += 1
        wait_for(lambda: srv.hub.stats()["websockets"] == 0 and srv.hub.stats()[
            "connections"] == 0, timeout=5)
        echo_ok(srv.port)
    report(f"garbage trials survived (compression={compression})", f"{checks}/{trials}")
    assert checks == trials >= 100, (checks, trials)


def _deflate(data):
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


@pytest.mark.parametrize("shape", ["single", "fragmented", "compressed",
                                   "compressed-fragmented"])
def test_max_payload_length_boundary_exact_passes_one_more_closes_1009(shape):
    limit = 64 * 1024
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, m: ws.send(len(m).to_bytes(4, "big")),
                  max_payload_length=limit, compression="shared")
    compressed = shape.startswith("compressed")
    request = upgrade_request(Sec_WebSocket_Extensions="permessage-deflate; "
                              "client_no_context_takeover") if compressed else None

    def frames(size):
        payload = bytes(random.Random(size).randrange(4) for _ in range(size))
        if compressed:
            payload = _deflate(payload)
        if not shape.endswith("fragmented"):
            return frame(OP_BINARY, payload, rsv1=compressed)
        step = max(1, len(payload) // 50)
        pieces = [payload[i:i + step] for i in range(0, len(payload), step)]
        out = [frame(OP_BINARY, pieces[0], fin=len(pieces) == 1, rsv1=compressed)]
        out += [frame(OP_CONT, p, fin=i == len(pieces) - 1) for i, p in enumerate(pieces[1:], 1)]
        return b"".join(out)

    results = {}
    with app.run_in_thread() as srv:
        for size in (limit, limit + 1):
            with RawWS(srv.port, request) as ws:
                ws.send(frames(size))
                opcode, payload = ws.recv_frame()
                if opcode == OP_BINARY:
                    results[size] = int.from_bytes(payload, "big")
                else:
                    results[size] = ("close", int.from_bytes(payload[:2], "big"))
    report(f"max_payload_length={limit} ({shape}): limit -> echoed size, limit+1 -> close",
           results)
    assert results == {limit: limit, limit + 1: ("close", 1009)}


@pytest.mark.parametrize("mode", ["shared", "dedicated"])
def test_fragmented_decompression_bomb_closes_1009(mode):
    limit = 256 * 1024
    bomb = _deflate_bomb(10 * MIB)
    app = create_server(ServerProtocol.WEBSOCKET)
    got = []
    app.websocket(message=lambda ws, m: (got.append(len(m)), ws.send(m)),
                  max_payload_length=limit, compression=mode)
    request = upgrade_request(Sec_WebSocket_Extensions="permessage-deflate; "
                              "client_no_context_takeover")
    with app.run_in_thread() as srv:
        with RawWS(srv.port, request) as ws:
            pieces = [bomb[i:i + 200] for i in range(0, len(bomb), 200)]
            data = frame(OP_BINARY, pieces[0], fin=False, rsv1=True) + b"".join(
                frame(OP_CONT, p, fin=i == len(pieces) - 1) for i, p in enumerate(pieces[1:], 1))
            try:
                ws.send(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            code, _ = ws.recv_until_close()
        report(f"fragmented bomb ({mode}, {len(pieces)} fragments): close code", code)
        assert code == 1009 and got == []
        assert echo_ok(srv.port) < 2
