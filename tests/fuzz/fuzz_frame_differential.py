"""Differential fuzzing: verb.core._frame's compiled parser against tests/support/oracle.py.

For every input (a raw byte stream, or frames built field by field) the events of the compiled
parser, fed whole and in the input's chunks, must equal the pure-Python oracle's after
`oracle.normalize` (protocol-error reasons are not compared, their close codes are).

Usage: python tests/fuzz/fuzz_frame_differential.py [libFuzzer flags] [corpus dirs]
"""

from _common import (
    PAYLOAD_LIMITS, chunk_sizes, frame_stream, fuzz, instrumented_imports, pick, split,
)

with instrumented_imports():
    from support import oracle
    from verb.core._frame import EventCollector, FrameParser


def compiled(stream, server, limit, pieces):
    collector = EventCollector()
    parser = FrameParser(collector, server=server, max_payload_length=limit)
    for piece in pieces:
        parser.feed(piece)
    return oracle.normalize(collector.events)


def test_one_input(data):
    fdp = atheris.FuzzedDataProvider(data)
    server = fdp.ConsumeBool()
    limit = pick(fdp, PAYLOAD_LIMITS)
    sizes = chunk_sizes(fdp)
    stream = frame_stream(fdp, server, oracle.build_frame)

    expected = oracle.normalize(oracle.parse(stream, server=server, max_payload_length=limit))
    whole = compiled(stream, server, limit, [stream])
    if whole != expected:
        raise AssertionError("compiled parser (whole) != oracle\nstream={!r}\nserver={} "
                             "limit={}\ncompiled={!r}\noracle={!r}".format(
                                 stream, server, limit, whole, expected))
    chunked = compiled(stream, server, limit, split(stream, sizes))
    if chunked != expected:
        raise AssertionError("compiled parser (chunks {}) != oracle\nstream={!r}\nserver={} "
                             "limit={}\ncompiled={!r}\noracle={!r}".format(
                                 sizes, stream, server, limit, chunked, expected))


import atheris  # noqa: E402

if __name__ == "__main__":
    fuzz(test_one_input)
