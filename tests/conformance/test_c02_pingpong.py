"""Group 2 (Autobahn 2.x): pings answered by pongs with the same payload, bad pings fail the
connection with 1002, unsolicited pongs are ignored."""

import pytest
from client import OP_CONT, OP_PING, OP_PONG, OP_TEXT, Client, build_frame, exchange

ALL_BYTES_125 = bytes(range(256))[:125]
TEXT_125 = ("\u00e9" * 62).encode() + b"x"

# (id, bytes sent, messages expected back in order, close code the server must send or None
#  when the connection stays open and the client closes with 1000)
CASES = [
    ("ping-empty", build_frame(OP_PING), [(OP_PONG, b"")], None),
    ("ping-text-payload", build_frame(OP_PING, b"Hello, world!"),
     [(OP_PONG, b"Hello, world!")], None),
    ("ping-binary-payload", build_frame(OP_PING, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"),
     [(OP_PONG, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff")], None),
    ("ping-125-binary", build_frame(OP_PING, ALL_BYTES_125), [(OP_PONG, ALL_BYTES_125)], None),
    ("ping-125-utf8", build_frame(OP_PING, TEXT_125), [(OP_PONG, TEXT_125)], None),
    ("ping-126", build_frame(OP_PING, b"\xfe" * 126), [], 1002),
    ("ping-65536", build_frame(OP_PING, b"\xfe" * 65536), [], 1002),
    ("ping-fragmented", build_frame(OP_PING, b"frag", fin=False) + build_frame(OP_CONT, b"ment"),
     [], 1002),
    ("ping-fin0-alone", build_frame(OP_PING, b"x", fin=False), [], 1002),
    ("pong-unsolicited-empty", build_frame(OP_PONG) + build_frame(OP_TEXT, b"after"),
     [(OP_TEXT, b"after")], None),
    ("pong-unsolicited-125", build_frame(OP_PONG, ALL_BYTES_125) + build_frame(OP_TEXT, b"after"),
     [(OP_TEXT, b"after")], None),
    ("pong-unsolicited-then-ping", build_frame(OP_PONG, b"unsolicited") +
     build_frame(OP_PING, b"solicited"), [(OP_PONG, b"solicited")], None),
    ("ten-pings", b"".join(build_frame(OP_PING, b"ping %d" % i) for i in range(10)),
     [(OP_PONG, b"ping %d" % i) for i in range(10)], None),
    ("ping-text-ping", build_frame(OP_PING, b"a") + build_frame(OP_TEXT, b"t") +
     build_frame(OP_PING, b"b"), [(OP_PONG, b"a"), (OP_TEXT, b"t"), (OP_PONG, b"b")], None),
]


@pytest.mark.parametrize("data, expected, close", [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_ping_pong(server, data, expected, close):
    with Client(server.port) as c:
        exchange(c, data, expected, close)


@pytest.mark.parametrize("payload", [b"", ALL_BYTES_125], ids=["empty", "125"])
def test_ping_in_byte_chunks(server, payload):
    """A ping trickled one byte per write is still answered once, intact."""
    with Client(server.port) as c:
        exchange(c, build_frame(OP_PING, payload), [(OP_PONG, payload)], None,
                 pieces=1, delay=0.0005)


def test_ten_pings_one_at_a_time(server):
    """Ten pings, each answered before the next is sent."""
    with Client(server.port) as c:
        for i in range(10):
            c.send_frame(OP_PING, b"p%d" % i)
            f = c.read_frame()
            assert (f.opcode, f.payload, f.fin) == (OP_PONG, b"p%d" % i, True)
        assert c.close_normally() == []
