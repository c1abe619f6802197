"""Group 4 (Autobahn 4.x): reserved opcodes (3-7 data, 11-15 control) fail the connection with
1002, after a valid message that is still echoed first; nothing after the bad frame is
answered."""

import pytest
from client import OP_PING, OP_TEXT, Client, build_frame, exchange

RESERVED = [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]

# (opcode, payload of the bad frame, fin) -> [echo of "Hello"], close 1002, TCP closed.
CASES = [
    pytest.param(op, payload, fin, id=f"op{op}-{'payload' if payload else 'empty'}"
                 + ("" if fin else "-fin0"))
    for op in RESERVED
    for payload, fin in ((b"", True), (b"reserved opcode payload", True), (b"x", False))
]


@pytest.mark.parametrize("opcode, payload, fin", CASES)
def test_reserved_opcode_fails_1002(server, opcode, payload, fin):
    data = build_frame(OP_TEXT, b"Hello") + build_frame(opcode, payload, fin=fin) + \
        build_frame(OP_PING, b"after")
    with Client(server.port) as c:
        exchange(c, data, [(OP_TEXT, b"Hello")], 1002)


@pytest.mark.parametrize("opcode", RESERVED)
def test_reserved_opcode_first_frame(server, opcode):
    with Client(server.port) as c:
        exchange(c, build_frame(opcode, b"first"), [], 1002)
