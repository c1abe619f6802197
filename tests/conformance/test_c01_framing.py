"""Group 1 (Autobahn 1.x): text and binary payloads at the frame-length encoding boundaries,
sent whole and in chunks, echoed byte-exact."""

import pytest
from client import OP_BINARY, OP_TEXT, Client, build_frame, exchange

LENGTHS = [0, 125, 126, 127, 128, 65535, 65536, 65537, 1 << 20]


def utf8_text(n: int) -> bytes:
    """Exactly n bytes of valid UTF-8 mixing 1-, 2-, 3- and 4-byte characters, so chunk
    boundaries fall inside code points."""
    unit = "a\u00e9\u20ac\U0001d11e".encode()  # 1 + 2 + 3 + 4 bytes
    body = unit * (n // len(unit))
    return body + b"z" * (n - len(body))


def binary_data(n: int) -> bytes:
    return bytes(i * 7 & 0xFF for i in range(min(n, 4096))) * (n // 4096) + \
        bytes(i * 7 & 0xFF for i in range(n % 4096))


def chunk_sizes(frame_len: int, header_len: int) -> list[int]:
    """The header one byte per write, then the payload in 8 pieces."""
    payload = frame_len - header_len
    return [1] * header_len + [max(1, payload // 8)] * min(7, payload)


# (case, opcode, payload length, chunked) -> expected: the same message echoed.
CASES = [
    pytest.param(op, n, chunked, id=f"{name}-{n}-{'chunks' if chunked else 'whole'}")
    for name, op in (("text", OP_TEXT), ("binary", OP_BINARY))
    for n in LENGTHS
    for chunked in (False, True)
]


@pytest.mark.parametrize("opcode, length, chunked", CASES)
def test_echo_at_length_boundary(server, opcode, length, chunked):
    payload = utf8_text(length) if opcode == OP_TEXT else binary_data(length)
    assert len(payload) == length
    frame = build_frame(opcode, payload)
    header_len = len(frame) - length
    pieces = chunk_sizes(len(frame), header_len) if chunked else None
    with Client(server.port) as c:
        exchange(c, frame, [(opcode, payload)], None, pieces=pieces,
                 delay=0.001 if chunked else 0.0)


@pytest.mark.parametrize("mask", [b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x01\x02\x03\x04"],
                         ids=["zero", "ones", "counting"])
@pytest.mark.parametrize("length", [0, 1, 3, 4, 5, 126, 65537])
def test_masking_keys(server, mask, length):
    payload = binary_data(length)
    with Client(server.port) as c:
        exchange(c, build_frame(OP_BINARY, payload, mask=mask), [(OP_BINARY, payload)], None)


def test_unmasked_client_frame_fails_1002(server):
    """RFC 6455 §5.1: a server must close on an unmasked client frame."""
    with Client(server.port) as c:
        exchange(c, build_frame(OP_TEXT, b"Hello") + build_frame(OP_TEXT, b"hi", masked=False),
                 [(OP_TEXT, b"Hello")], 1002)


def test_64bit_length_top_bit_fails_1002(server):
    """RFC 6455 §5.2: the most significant bit of a 64-bit length must be 0."""
    with Client(server.port) as c:
        exchange(c, build_frame(OP_BINARY, b"abcd", length=(1 << 63) | 4), [], 1002)


def test_incomplete_frame_is_not_answered(server):
    """A frame that declares more payload than has arrived is held, not echoed early; the rest
    completes it."""
    payload = b"0123456789" * 3
    frame = build_frame(OP_TEXT, payload)
    with Client(server.port) as c:
        c.send_raw(frame[:-10])
        with pytest.raises(AssertionError, match="timed out"):
            c.read_frame(timeout=0.2)
        exchange(c, frame[-10:], [(OP_TEXT, payload)], None)


def _pipeline():
    """Many messages of mixed kinds and sizes, with pings, as one byte string, and what must
    come back, in order."""
    import random

    rng = random.Random(6455)
    data, expected = [], []
    for i in range(300):
        n = rng.choice([0, 1, 5, 125, 126, 127, 300, 65536])
        if i % 3 == 0:
            payload = utf8_text(n)
            data.append(build_frame(OP_TEXT, payload))
            expected.append((OP_TEXT, payload))
        elif i % 3 == 1:
            payload = bytes(rng.randrange(256) for _ in range(min(n, 300))) * (n // 300 + 1)
            payload = payload[:n]
            data.append(build_frame(OP_BINARY, payload))
            expected.append((OP_BINARY, payload))
        else:
            data.append(build_frame(0x9, b"%d" % i))
            expected.append((0xA, b"%d" % i))
    return b"".join(data), expected, rng


@pytest.mark.parametrize("split", ["one-write", "random-writes"])
def test_pipelined_messages(server, split):
    """300 frames in one write, or cut into TCP writes at random places: all answered, in order."""
    data, expected, rng = _pipeline()
    pieces = None
    if split == "random-writes":
        pieces, total = [], 0
        while total < len(data):
            size = rng.choice([1, 2, 3, 7, 100, 1000, 5000])
            pieces.append(size)
            total += size
        pieces = pieces[:-1]
    with Client(server.port, timeout=10) as c:
        exchange(c, data, expected, None, pieces=pieces)
