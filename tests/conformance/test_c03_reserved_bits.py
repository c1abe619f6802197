"""Group 3 (Autobahn 3.x): a frame with RSV1/2/3 set, compression off, fails the connection with
1002; a valid message sent just before it is still echoed first, and nothing after it (a ping)
is answered."""

import pytest
from client import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Client,
    build_frame,
    close_payload,
    exchange,
)

KINDS = {
    "text": (OP_TEXT, b"Hello"),
    "binary": (OP_BINARY, b"\x00\xff\x01"),
    "empty-text": (OP_TEXT, b""),
    "ping": (OP_PING, b"ping"),
    "pong": (OP_PONG, b"pong"),
    "close": (OP_CLOSE, close_payload(1000)),
}

# (rsv bits, kind of the offending frame, sent in one write or frame by frame with delays)
# -> expected: [echo of "Hello"], then close 1002 and the TCP connection ends.
CASES = [
    pytest.param(rsv, kind, False, id=f"rsv{rsv}-{kind}")
    for rsv in range(1, 8)
    for kind in KINDS
] + [
    pytest.param(rsv, "text", True, id=f"rsv{rsv}-text-slow")
    for rsv in range(1, 8)
]


@pytest.mark.parametrize("rsv, kind, slow", CASES)
def test_reserved_bits_fail_1002(server, rsv, kind, slow):
    opcode, payload = KINDS[kind]
    first = build_frame(OP_TEXT, b"Hello")
    bad = build_frame(opcode, payload, rsv=rsv)
    after = build_frame(OP_PING, b"after")
    data = first + bad + after
    pieces = [len(first), len(bad)] if slow else None
    with Client(server.port) as c:
        exchange(c, data, [(OP_TEXT, b"Hello")], 1002, pieces=pieces, delay=0.01 if slow else 0)


@pytest.mark.parametrize("rsv", range(1, 8))
def test_reserved_bits_on_continuation(server, rsv):
    data = build_frame(OP_TEXT, b"frag", fin=False) + build_frame(OP_CONT, b"ment", rsv=rsv)
    with Client(server.port) as c:
        exchange(c, data, [], 1002)
