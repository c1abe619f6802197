"""Group 9 (Autobahn 9.x): large messages, whole and in many fragments, echoed intact
(the server's max_payload_length is 8 MiB, see conftest.py)."""

import hashlib
import os

import pytest

from client import OP_BINARY, OP_TEXT, Client

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
    from client import build_frame
    frame = build_frame(OP_BINARY, b"", length=8 * MIB + 1)
    with Client(server.port) as c:
        c.send_raw(frame)
        assert c.expect_close(1009) == []
