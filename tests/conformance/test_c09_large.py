"""Group 9 (Autobahn 9.x): large messages, whole and in many fragments, echoed intact
(the server's max_payload_length is 8 MiB, see conftest.py)."""

import hashlib
import os

import pytest
from client import (
    OP_BINARY,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RSV1,
    Client,
    build_frame,
    exchange,
)

MIB = 1 << 20
_RANDOM = os.urandom(MIB)


def payload(opcode, size):
    if opcode == OP_TEXT:
        unit = "a\u00e9\u20ac\U0001d11e".encode()
        data = unit * (size // len(unit))
        return data + b"z" * (size - len(data))
    return (_RANDOM * (size // MIB + 1))[:size]


# (opcode, message size, fragment size or None, TCP write size or None) -> echoed intact.
CASES = [
    pytest.param(op, size, frag, write, id=f"{name}-{size // MIB}MiB-{label}")
    for name, op in (("text", OP_TEXT), ("binary", OP_BINARY))
    for size, frag, write, label in (
        (MIB, None, None, "whole"),
        (4 * MIB, None, None, "whole"),
        (4 * MIB, None, 65536, "writes-64KiB"),
        (4 * MIB, 4096, None, "frags-4KiB"),
        (4 * MIB, 64, None, "frags-64B"),
    )
]


@pytest.mark.parametrize("opcode, size, fragment, write", CASES)
def test_large_message(server, opcode, size, fragment, write):
    data = payload(opcode, size)
    with Client(server.port, timeout=20) as c:
        c.send_message(data, binary=opcode == OP_BINARY, fragment=fragment, pieces=write)
        op, echoed = c.read_message()
        assert op == opcode
        assert len(echoed) == size
        assert hashlib.sha256(echoed).digest() == hashlib.sha256(data).digest()
        assert c.close_normally() == []


def test_too_big_fails_1009(server):
    """One byte over max_payload_length (8 MiB) closes with 1009, from the declared length,
    before the payload is sent."""
    frame = build_frame(OP_BINARY, b"", length=8 * MIB + 1)
    with Client(server.port) as c:
        c.send_raw(frame)
        assert c.expect_close(1009) == []


# Limits, against a server with max_payload_length=1000:
# (id, frames) -> messages echoed, close code (None: stays open, client closes with 1000).
build = build_frame
LIMIT_CASES = [
    ("exactly-at-limit", lambda: build(OP_BINARY, b"x" * 1000), [(OP_BINARY, b"x" * 1000)], None),
    ("one-over", lambda: build(OP_BINARY, b"x" * 1001), [], 1009),
    ("declared-over-no-payload", lambda: build(OP_BINARY, b"", length=1001), [], 1009),
    ("fragments-at-limit", lambda: build(OP_TEXT, b"a" * 600, fin=False) + build(OP_CONT, b"b" * 400),
     [(OP_TEXT, b"a" * 600 + b"b" * 400)], None),
    ("fragments-over", lambda: build(OP_TEXT, b"a" * 600, fin=False) + build(OP_CONT, b"b" * 401),
     [], 1009),
    ("ping-125-under-small-limit", lambda: build(OP_PING, b"p" * 125), [(OP_PONG, b"p" * 125)], None),
]


@pytest.mark.parametrize("make, expected, close",
                         [pytest.param(*c[1:], id=c[0]) for c in LIMIT_CASES])
def test_max_payload_length(small_server, make, expected, close):
    with Client(small_server.port) as c:
        exchange(c, make(), expected, close)


@pytest.mark.parametrize("size, close", [(1000, None), (1001, 1009), (1 << 20, 1009)])
def test_max_payload_length_counts_inflated_size(small_server, size, close):
    """The limit applies to the inflated message, not to its compressed size (a deflate bomb)."""
    data = bytes(size)
    with Client(small_server.port, extensions="permessage-deflate") as c:
        assert c.deflate is not None
        frame = build(OP_BINARY, c.deflate.compress(data), rsv=RSV1)
        exchange(c, frame, [(OP_BINARY, data)] if close is None else [], close)
