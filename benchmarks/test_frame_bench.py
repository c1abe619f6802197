"""Throughput of the compiled frame core: parsing masked client frames and serializing server
frames. No sockets. Run: .venv/bin/python -m pytest benchmarks/test_frame_bench.py --benchmark-only

Each parse round feeds one buffer holding ~1 MiB of frames of one size (at least 16 frames) to
a parser whose handler ignores events, so the figure is the core's own cost: header parsing,
unmasking in place, building the `bytes` handed to the handler.
"""

import os

import pytest

from verb.core import _frame

SIZES = {"16B": 16, "125B": 125, "1KiB": 1024, "64KiB": 65536, "1MiB": 1 << 20}
MIB = 1 << 20


def record_rates(benchmark, messages, payload_bytes):
    stats = benchmark.stats
    if stats is None:  # --benchmark-disable: one plain run, no figures
        return
    mean = stats.stats.mean
    benchmark.extra_info["messages/s"] = round(messages / mean)
    benchmark.extra_info["MiB/s"] = round(payload_bytes / mean / MIB, 1)


@pytest.mark.parametrize("name", SIZES)
def test_parse_masked_binary(benchmark, name):
    size = SIZES[name]
    count = max(16, MIB // size)
    frame = _frame.encode_frame(_frame.BINARY, os.urandom(size), mask=True)
    stream = bytearray(frame * count)
    parser = _frame.FrameParser(_frame.FrameHandler(), max_payload_length=None)
    benchmark.group = "parse masked binary frames"
    # Parsing unmasks in place; parsing the same buffer again re-masks it: same work each round.
    benchmark(parser.feed_inplace, stream)
    record_rates(benchmark, count, count * size)


@pytest.mark.parametrize("name", ["16B", "125B", "1KiB", "64KiB"])
def test_parse_masked_text(benchmark, name):
    size = SIZES[name]
    count = max(16, MIB // size)
    text = ("ascii and ünïcödé ✓ " * (size // 16 + 1)).encode()[:size].decode("utf-8", "ignore")
    frame = _frame.encode_frame(_frame.TEXT, text, mask=True)
    parser = _frame.FrameParser(_frame.FrameHandler(), max_payload_length=None)
    benchmark.group = "parse masked text frames"
    # Text must be unmasked before each round (validation), so feed() copies: a copy per round.
    benchmark(parser.feed, frame * count)
    record_rates(benchmark, count, count * len(text.encode()))


@pytest.mark.parametrize("name", SIZES)
def test_serialize_server_binary(benchmark, name):
    size = SIZES[name]
    payload = os.urandom(size)
    count = max(1, min(1000, MIB // size))
    encode = _frame.encode_frame
    binary = _frame.BINARY

    def run():
        for _ in range(count):
            encode(binary, payload)

    benchmark.group = "serialize server frames"
    benchmark(run)
    record_rates(benchmark, count, count * size)


@pytest.mark.parametrize("name", ["16B", "1KiB", "64KiB"])
def test_serialize_client_masked(benchmark, name):
    size = SIZES[name]
    payload = os.urandom(size)
    count = max(1, min(1000, MIB // size))
    encode = _frame.encode_frame
    binary = _frame.BINARY

    def run():
        for _ in range(count):
            encode(binary, payload, mask=True)

    benchmark.group = "serialize client frames (random mask)"
    benchmark(run)
    record_rates(benchmark, count, count * size)
