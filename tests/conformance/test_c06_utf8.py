"""Group 6 (Autobahn 6.x): every case of Markus Kuhn's UTF-8 stress test as a text message,
sent as one frame, as one frame per byte, and as one frame whose bytes arrive one TCP write at a
time. Valid text is echoed byte-exact; invalid text (or text ending inside a code point) fails
the connection with 1007. Fail fast: when invalid bytes trickle in, the close arrives after the
first bad byte and before the rest of the frame has been sent."""

import pytest
from client import OP_CONT, OP_TEXT, Client, build_frame, exchange
from support.kuhn_cases import INCOMPLETE, KUHN, VALID

CASES = [pytest.param(data, expect, id=name) for name, data, expect in KUHN]
# Bytes appended to an invalid case when trickling it, so the frame goes on well after the bad
# byte and a server that only checks whole frames is caught.
TAIL = b"x" * 64
TRICKLE_DELAY = 0.002


def outcome(data, expect):
    """(messages expected back, close code) for a case sent as one complete message."""
    if expect == VALID:
        return [(OP_TEXT, data)], None
    return [], 1007


@pytest.mark.parametrize("data, expect", CASES)
def test_kuhn_one_frame(server, data, expect):
    with Client(server.port) as c:
        exchange(c, build_frame(OP_TEXT, data), *outcome(data, expect))


@pytest.mark.parametrize("data, expect", CASES)
def test_kuhn_frame_per_byte(server, data, expect):
    frames = b"".join(
        build_frame(OP_TEXT if i == 0 else OP_CONT, data[i:i + 1], fin=i == len(data) - 1)
        for i in range(len(data)))
    with Client(server.port) as c:
        exchange(c, frames, *outcome(data, expect))


@pytest.mark.parametrize("data, expect", CASES)
def test_kuhn_trickled(server, data, expect):
    if expect == VALID:
        with Client(server.port) as c:
            exchange(c, build_frame(OP_TEXT, data), [(OP_TEXT, data)], None,
                     pieces=1, delay=TRICKLE_DELAY / 4)
        return
    # The first byte that can never be valid: the case's own, or the tail's first byte right
    # after a case that ends inside a code point.
    bad = len(data) if expect == INCOMPLETE else expect
    payload = data + TAIL
    frame = build_frame(OP_TEXT, payload)
    header = len(frame) - len(payload)
    with Client(server.port) as c:
        c.send_raw(frame[:header])
        sent = header + c.send_raw(frame[header:], pieces=1, delay=TRICKLE_DELAY,
                                   stop_on_close=True)
        assert sent < len(frame), "no close before the whole frame was sent (not fail-fast)"
        assert sent > header + bad, f"closed after {sent - header} payload bytes, bad byte {bad}"
        frames = c.expect_close(1007)
        assert frames == []


@pytest.mark.parametrize("data, expect", CASES)
def test_kuhn_fail_fast_across_fragments(server, data, expect):
    """A valid first fragment, then the case as an unfinished fragment: an invalid case fails
    with 1007 without waiting for the message's last fragment; a valid or incomplete one waits,
    and the last fragment ("x", not a continuation byte) then decides."""
    first = build_frame(OP_TEXT, b"Hello ", fin=False)
    middle = build_frame(OP_CONT, data, fin=False)
    last = build_frame(OP_CONT, b"x")
    with Client(server.port) as c:
        c.send_raw(first + middle)
        if expect not in (VALID, INCOMPLETE):
            assert c.expect_close(1007) == []
            return
        with pytest.raises(AssertionError, match="timed out"):
            c.read_frame(timeout=0.05)
        if expect == VALID:
            exchange(c, last, [(OP_TEXT, b"Hello " + data + b"x")], None)
        else:
            exchange(c, last, [], 1007)
