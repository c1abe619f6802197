"""Group 7 (Autobahn 7.x): the closing handshake. Valid close codes are echoed and the server
then closes the TCP connection; bad close payloads fail with 1002 (or 1007 for a reason that is
not UTF-8); nothing sent after a close is answered."""

import pytest
from client import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, Client, exchange, messages
from client import build_frame as F
from client import close_payload as CP

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000,
               3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]

# (id, bytes sent, messages expected before the close, close code the server sends; None for
#  an empty close payload)
CASES = [
    # 7.1: after a close, nothing more is processed.
    ("echo-then-close", F(OP_TEXT, b"Hello") + F(OP_CLOSE, CP(1000)), [(OP_TEXT, b"Hello")],
     1000),
    ("close-twice", F(OP_CLOSE, CP(1000)) + F(OP_CLOSE, CP(1001)), [], 1000),
    ("ping-after-close", F(OP_CLOSE, CP(1000)) + F(OP_PING, b"x"), [], 1000),
    ("text-after-close", F(OP_CLOSE, CP(1000)) + F(OP_TEXT, b"ignored"), [], 1000),
    ("binary-after-close", F(OP_CLOSE, CP(1000)) + F(OP_BINARY, b"\x00" * 1000), [], 1000),
    ("close-mid-message", F(OP_TEXT, b"frag", fin=False) + F(OP_CLOSE, CP(1000)) +
     F(OP_CONT, b"ment"), [], 1000),
    ("garbage-after-close", F(OP_CLOSE, CP(1000)) + b"\xff\xff\xff\xff garbage", [], 1000),
    # 7.3: close payload sizes.
    ("empty", F(OP_CLOSE, b""), [], "1000-or-empty"),
    ("one-byte", F(OP_CLOSE, b"\x03"), [], 1002),
    ("code-only", F(OP_CLOSE, CP(1000)), [], 1000),
    ("code-and-reason", F(OP_CLOSE, CP(1000, b"Hello World!")), [], 1000),
    ("reason-123", F(OP_CLOSE, CP(1000, b"*" * 123)), [], 1000),
    ("reason-123-utf8", F(OP_CLOSE, CP(1000, "\u00e9".encode() * 61 + b"x")), [], 1000),
    ("reason-124", F(OP_CLOSE, CP(1000, b"*" * 124)), [], 1002),
    # 7.5: reason not UTF-8.
    ("reason-invalid-utf8", F(OP_CLOSE, CP(1000, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
                                                   b"\xed\xa0\x80\x65\x64\x69\x74\x65\x64")),
     [], 1007),
    ("reason-truncated-utf8", F(OP_CLOSE, CP(1000, b"ok \xe2\x82")), [], 1007),
    ("reason-lone-continuation", F(OP_CLOSE, CP(1000, b"\x80")), [], 1007),
] + [
    # 7.7: valid codes are echoed.
    (f"code-{code}", F(OP_CLOSE, CP(code)), [], code) for code in VALID_CODES
] + [
    (f"code-{code}-with-reason", F(OP_CLOSE, CP(code, b"reason")), [], code)
    for code in (1001, 3000, 4999)
] + [
    # 7.9: invalid codes fail with 1002.
    (f"code-{code}", F(OP_CLOSE, CP(code)), [], 1002) for code in INVALID_CODES
]


@pytest.mark.parametrize("data, expected, close", [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_close(server, data, expected, close):
    with Client(server.port) as c:
        if close == "1000-or-empty":
            # RFC 6455 §5.5.1: an empty close may be answered empty or with 1000.
            c.send_raw(data)
            frames, frame, how = c.read_until_close()
            assert frame is not None and frame.close_code in (None, 1000), frame
            assert frame.close_reason == b"" and how in ("eof", "reset")
            assert frames == []
            return
        exchange(c, data, expected, close)


def test_close_chunked(server):
    """A close frame trickled one byte at a time is echoed once complete."""
    with Client(server.port) as c:
        exchange(c, F(OP_CLOSE, CP(1000, b"bye")), [], 1000, pieces=1, delay=0.001)


def test_server_hangs_up_without_our_reply(server):
    """After echoing our close the server closes the TCP connection itself (RFC 6455 §7.1.1),
    without waiting for anything more from us."""
    with Client(server.port) as c:
        c.send_close(1000)
        frames, frame, how = c.read_until_close(reply=False, timeout=2)
        assert frames == [] and frame.close_code == 1000 and how == "eof"


@pytest.mark.parametrize("size", [256 * 1024, 4 << 20], ids=["256KiB", "4MiB"])
def test_close_after_large_message_flushes_echo_first(server, size):
    """Autobahn 7.1.6: a large message, a close and a ping in one write: the whole echo goes out
    before the close (no truncation by the closing handshake), the ping is not answered."""
    payload = bytes(range(256)) * (size // 256)
    data = F(OP_BINARY, payload) + F(OP_CLOSE, CP(1000)) + F(OP_PING, b"after close")
    with Client(server.port, timeout=20) as c:
        c.send_raw(data)
        frames = c.expect_close(1000)
        assert [(op, len(p)) for op, p in messages(frames)] == [(OP_BINARY, size)]
        assert messages(frames)[0][1] == payload
