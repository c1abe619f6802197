"""Fuzz verb.core._frame.FrameParser: any byte stream, any chunking, with and without an Inflater.

Properties checked for every input:
- `feed`/`feed_inplace` never raise (a peer's bytes only ever become events, RFC 6455 §7.1.7);
- the events are the same whether the stream is fed whole, in chunks chosen by the input, one
  byte at a time, or in place;
- at most one Close or ProtocolError, and only as the last event; `failed`/`closed`/
  `close_code` agree with it; nothing is produced after it;
- no message exceeds max_payload_length (after inflation too).

Usage: python tests/fuzz/fuzz_frame.py [libFuzzer flags, e.g. -runs=100000 -max_len=4096] [corpus]
"""

import functools

from _common import (
    PAYLOAD_LIMITS, chunk_sizes, frame_stream, fuzz, instrumented_imports, pick, raw_deflate,
    split,
)

with instrumented_imports():
    from support import oracle
    from verb.core import events as ev
    from verb.core._deflate import Inflater
    from verb.core._frame import EventCollector, FrameParser


def run(stream, server, limit, inflater_args, pieces, inplace=False):
    collector = EventCollector()
    inflater = Inflater(*inflater_args) if inflater_args is not None else None
    parser = FrameParser(collector, server=server, max_payload_length=limit, inflater=inflater)
    for piece in pieces:
        if inplace:
            parser.feed_inplace(bytearray(piece))
        else:
            parser.feed(piece)
    return parser, collector.events


def check_events(parser, events, limit):
    end = [i for i, e in enumerate(events) if isinstance(e, (ev.Close, ev.ProtocolError))]
    assert len(end) <= 1 and (not end or end[0] == len(events) - 1), events
    last = events[-1] if events else None
    assert parser.failed == isinstance(last, ev.ProtocolError), (parser.failed, last)
    assert parser.closed == isinstance(last, ev.Close), (parser.closed, last)
    if isinstance(last, ev.ProtocolError):
        assert parser.close_code == last.code and last.code in (1002, 1007, 1009), last
    for e in events:
        if isinstance(e, ev.TextMessage):
            assert limit is None or len(e.data.encode("utf-8")) <= limit
        elif isinstance(e, ev.BinaryMessage):
            assert type(e.data) is bytes and (limit is None or len(e.data) <= limit)
        elif isinstance(e, (ev.Ping, ev.Pong)):
            assert len(e.data) <= 125
        elif isinstance(e, ev.Close):
            assert e.code == 1005 or e.code in oracle.VALID_CLOSE_CODES, e


def test_one_input(data):
    fdp = atheris.FuzzedDataProvider(data)
    server = fdp.ConsumeBool()
    limit = pick(fdp, PAYLOAD_LIMITS)
    inflater_args = None
    if fdp.ConsumeIntInRange(0, 3) == 0:
        inflater_args = (fdp.ConsumeIntInRange(8, 15), fdp.ConsumeBool())
    sizes = chunk_sizes(fdp)
    compress = None
    if inflater_args is not None:
        compress = functools.partial(raw_deflate, window_bits=inflater_args[0])
    stream = frame_stream(fdp, server, oracle.build_frame, compress)

    parser, whole = run(stream, server, limit, inflater_args, [stream])
    check_events(parser, whole, limit)
    # Not `buffered <= (limit if ... else ...)`: atheris 2.3 on Python 3.9/3.10 miscompiles a
    # comparison with such a conditional operand (it yields `limit` itself).
    bound = len(stream) if limit is None else limit
    assert parser.buffered <= bound, (parser.buffered, bound)

    for pieces, inplace in ((split(stream, sizes), False), (split(stream, sizes), True),
                            (split(stream, [1]), False)):
        chunked_parser, chunked = run(stream, server, limit, inflater_args, pieces, inplace)
        assert chunked == whole, (pieces, whole, chunked)
        assert (chunked_parser.failed, chunked_parser.closed, chunked_parser.close_code) == (
            parser.failed, parser.closed, parser.close_code)

    # Once closed or failed, the parser ignores everything.
    if parser.failed or parser.closed:
        before = len(whole)
        parser.feed(stream or b"\x81\x00")
        assert len(parser.handler.events) == before


import atheris  # noqa: E402 - after the instrumented imports, as atheris recommends

if __name__ == "__main__":
    fuzz(test_one_input)
