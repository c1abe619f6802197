"""Group 5 (Autobahn 5.x): fragmented messages are reassembled; control frames may come between
fragments; a continuation without a start, a new data frame inside a message, or a fragmented
control frame fails the connection with 1002."""

import pytest
from client import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Client,
    close_payload,
    exchange,
)
from client import build_frame as F


def frags(opcode, parts, between=b""):
    """A message as fragments, with the bytes `between` after each fragment but the last."""
    out = []
    for i, p in enumerate(parts):
        last = i == len(parts) - 1
        out.append(F(opcode if i == 0 else OP_CONT, p, fin=last))
        if not last:
            out.append(between)
    return out


# (id, list of frame bytes to send, delay between frames, expected messages, close or None)
CASES = [
    # 5.1 / 5.2: fragmented control frames.
    ("ping-fragmented", [F(OP_PING, b"frag", fin=False), F(OP_CONT, b"ment")], 0, [], 1002),
    ("pong-fragmented", [F(OP_PONG, b"frag", fin=False), F(OP_CONT, b"ment")], 0, [], 1002),
    ("close-fragmented", [F(OP_CLOSE, close_payload(1000)[:1], fin=False),
                          F(OP_CONT, close_payload(1000)[1:])], 0, [], 1002),
    # 5.3 - 5.5: a text message in two fragments, in one write or with delays.
    ("text-2-frags", frags(OP_TEXT, [b"fragment1", b"fragment2"]), 0,
     [(OP_TEXT, b"fragment1fragment2")], None),
    ("text-2-frags-slow", frags(OP_TEXT, [b"fragment1", b"fragment2"]), 0.01,
     [(OP_TEXT, b"fragment1fragment2")], None),
    ("binary-2-frags", frags(OP_BINARY, [b"\x00\x01", b"\xfe\xff"]), 0,
     [(OP_BINARY, b"\x00\x01\xfe\xff")], None),
    ("text-empty-frags", frags(OP_TEXT, [b"", b"", b""]), 0, [(OP_TEXT, b"")], None),
    ("text-empty-first-and-last", frags(OP_TEXT, [b"", b"middle", b""]), 0,
     [(OP_TEXT, b"middle")], None),
    # Text fragments split inside a code point (U+20AC = e2 82 ac) must reassemble.
    ("text-split-code-point", frags(OP_TEXT, [b"\xe2", b"\x82", b"\xac!"]), 0,
     [(OP_TEXT, "\u20ac!".encode())], None),
    # 5.6 - 5.8: a ping between fragments is answered at once (before the message).
    ("text-ping-between", frags(OP_TEXT, [b"fragment1", b"fragment2"], F(OP_PING, b"p")), 0,
     [(OP_PONG, b"p"), (OP_TEXT, b"fragment1fragment2")], None),
    ("text-ping-between-slow", frags(OP_TEXT, [b"fragment1", b"fragment2"], F(OP_PING, b"p")),
     0.01, [(OP_PONG, b"p"), (OP_TEXT, b"fragment1fragment2")], None),
    ("binary-pong-between", frags(OP_BINARY, [b"a", b"b"], F(OP_PONG, b"unsolicited")), 0,
     [(OP_BINARY, b"ab")], None),
    ("text-5-frags-pings", frags(OP_TEXT, [b"f1", b"f2", b"f3", b"f4", b"f5"], F(OP_PING, b"p")),
     0, [(OP_PONG, b"p")] * 4 + [(OP_TEXT, b"f1f2f3f4f5")], None),
    ("text-5-frags-pings-slow", frags(OP_TEXT, [b"f1", b"f2", b"f3", b"f4", b"f5"],
                                      F(OP_PING, b"p")),
     0.005, [(OP_PONG, b"p")] * 4 + [(OP_TEXT, b"f1f2f3f4f5")], None),
    # A close between fragments: the unfinished message is dropped, the close echoed.
    ("close-between-frags", [F(OP_TEXT, b"frag", fin=False), F(OP_CLOSE, close_payload(1000)),
                             F(OP_CONT, b"ment")], 0, [], 1000),
    # 5.9 - 5.14: continuation without a start.
    ("cont-fin1-no-start", [F(OP_CONT, b"non-continuation payload"), F(OP_TEXT, b"Hello")], 0,
     [], 1002),
    ("cont-fin1-no-start-slow", [F(OP_CONT, b"non-continuation payload"), F(OP_TEXT, b"Hello")],
     0.01, [], 1002),
    ("cont-fin0-no-start", [F(OP_CONT, b"non-continuation payload", fin=False),
                            F(OP_TEXT, b"Hello")], 0, [], 1002),
    ("cont-after-complete", [F(OP_TEXT, b"Hello"), F(OP_CONT, b"more")], 0,
     [(OP_TEXT, b"Hello")], 1002),
    # 5.15 - 5.17
    ("text-cont-cont-fin0-text", [F(OP_TEXT, b"fragment1", fin=False), F(OP_CONT, b"fragment2"),
                                  F(OP_CONT, b"fragment3", fin=False), F(OP_TEXT, b"fragment4")],
     0, [(OP_TEXT, b"fragment1fragment2")], 1002),
    ("cont-then-fragmented", [F(OP_CONT, b"fragment1", fin=False), F(OP_TEXT, b"fragment2",
                                                                      fin=False),
                              F(OP_CONT, b"fragment3")], 0, [], 1002),
    # 5.18: a new data frame inside a fragmented message.
    ("text-fin0-then-text", [F(OP_TEXT, b"fragment1", fin=False), F(OP_TEXT, b"fragment2")], 0,
     [], 1002),
    ("text-fin0-then-binary", [F(OP_TEXT, b"fragment1", fin=False), F(OP_BINARY, b"\x00")], 0,
     [], 1002),
    ("binary-fin0-then-text-fin0", [F(OP_BINARY, b"a", fin=False), F(OP_TEXT, b"b", fin=False),
                                    F(OP_CONT, b"c")], 0, [], 1002),
    # Messages back to back, each fragmented.
    ("two-fragmented-messages", frags(OP_TEXT, [b"a", b"b"]) + frags(OP_BINARY, [b"c", b"d"]), 0,
     [(OP_TEXT, b"ab"), (OP_BINARY, b"cd")], None),
]


@pytest.mark.parametrize("frames, delay, expected, close",
                         [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_fragmentation(server, frames, delay, expected, close):
    data = b"".join(frames)
    pieces = [len(f) for f in frames[:-1]] if delay else None
    with Client(server.port) as c:
        exchange(c, data, expected, close, pieces=pieces, delay=delay)


@pytest.mark.parametrize("opcode, count, size", [
    (OP_TEXT, 1000, 1), (OP_BINARY, 1000, 1), (OP_TEXT, 2000, 7), (OP_BINARY, 300, 100),
], ids=["text-1000x1", "binary-1000x1", "text-2000x7", "binary-300x100"])
def test_many_small_fragments(server, opcode, count, size):
    payload = bytes(0x41 + i % 26 for i in range(count * size))
    data = b"".join(frags(opcode, [payload[i:i + size] for i in range(0, len(payload), size)]))
    with Client(server.port) as c:
        exchange(c, data, [(opcode, payload)], None)


def test_many_small_fragments_with_pings(server):
    payload = b"abcdefghij" * 50
    parts = [payload[i:i + 5] for i in range(0, len(payload), 5)]
    data = b"".join(frags(OP_TEXT, parts, F(OP_PING, b"between")))
    with Client(server.port) as c:
        exchange(c, data, [(OP_PONG, b"between")] * (len(parts) - 1) + [(OP_TEXT, payload)], None)
