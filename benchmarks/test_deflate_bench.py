"""Throughput of the permessage-deflate core (verb._deflate) beside CPython's zlib module, which
is what the websockets library uses, with the same zlib settings in the same run. No sockets.

Run: .venv/bin/python -m pytest benchmarks/test_deflate_bench.py --benchmark-only
     (add --benchmark-json=out.json to keep the figures; MB/s are in extra_info)

Each round handles 64 different JSON-like messages of one size (so a compressor with context
takeover cannot just repeat its previous message) and the figures are per message. Both sides
go through their Python methods (our `compress`/`decompress`, the module's compressobj /
decompressobj), so call overheads are comparable; the frame layer will call the cdef methods.

Modes:
  dedicated  one compressor per connection with context takeover (zlib module: one compressobj
             reused, as websockets does without *_no_context_takeover).
  shared     no context takeover: our one Deflater/Inflater reset per message; the zlib module
             needs a new compressobj/decompressobj per message (as websockets does then).
Decompression is measured in shared mode only: a context-takeover stream cannot be replayed
round after round.

test_small_* measure the small-message crossover: compressed size (extra_info) next to the CPU
time of compressing and of decompressing. Compressing pays when the link is slower than
break-even = bytes saved * 8 / (compress + decompress time): below that speed the wire time
saved exceeds the CPU time spent.
"""

import json
import random
import zlib

import pytest

from verb.core._deflate import DEFAULT_LEVEL, DEFAULT_MEM_LEVEL, Deflater, Inflater

TAIL = b"\x00\x00\xff\xff"
COUNT = 64
WBITS = 15
SIZES = {"1KiB": 1024, "64KiB": 65536}
SMALL = [16, 32, 64, 128, 256, 512]


def json_like(size, seed=0):
    rnd = random.Random(seed)
    parts = ['{"type":"batch","items":[']
    length = len(parts[0])
    while length < size:
        item = json.dumps(
            {
                "id": rnd.randrange(10**6),
                "user": rnd.choice(["alice", "bob", "carol", "dave", "erin", "frank"]),
                "event": rnd.choice(["click", "view", "buy", "scroll"]),
                "ts": 1700000000 + rnd.randrange(10**6),
                "price": round(rnd.random() * 100, 2),
                "tags": rnd.sample(["a", "b", "c", "d", "e"], 2),
            },
            separators=(",", ":"),
        )
        parts.append(item + ",")
        length += len(item) + 1
    return "".join(parts)[:size].encode()


def workload(size):
    return [json_like(size, seed=i) for i in range(COUNT)]


def record(benchmark, size, **extra):
    benchmark.extra_info.update(extra)
    stats = benchmark.stats
    if stats is None:  # --benchmark-disable
        return
    per_message = stats.stats.mean / COUNT
    benchmark.extra_info["us/message"] = round(per_message * 1e6, 3)
    benchmark.extra_info["MB/s"] = round(size / per_message / 1e6, 1)


def zlib_compressobj():
    return zlib.compressobj(DEFAULT_LEVEL, zlib.DEFLATED, -WBITS, DEFAULT_MEM_LEVEL)


# ---------------------------------------------------------------------------------------------
# Throughput: 1 KiB and 64 KiB


def compressors(mode):
    if mode == "dedicated":
        deflater = Deflater(WBITS, False)
        comp = zlib_compressobj()

        def zlib_one(msg):
            return (comp.compress(msg) + comp.flush(zlib.Z_SYNC_FLUSH))[:-4]

    else:
        deflater = Deflater(WBITS, True)

        def zlib_one(msg):
            comp = zlib_compressobj()
            return (comp.compress(msg) + comp.flush(zlib.Z_SYNC_FLUSH))[:-4]

    return {"verb": deflater.compress, "zlib module": zlib_one}


@pytest.mark.parametrize("impl", ["verb", "zlib module"])
@pytest.mark.parametrize("mode", ["dedicated", "shared"])
@pytest.mark.parametrize("name", SIZES)
def test_compress(benchmark, name, mode, impl):
    size = SIZES[name]
    msgs = workload(size)
    compress = compressors(mode)[impl]

    def run():
        for msg in msgs:
            compress(msg)

    benchmark.group = f"compress {name} JSON, {mode}"
    benchmark(run)
    # Sizes from a fresh compressor over the workload, in order (same for both implementations).
    fresh = compressors(mode)[impl]
    sizes = sum(len(fresh(m)) for m in msgs)
    record(benchmark, size, ratio=round(sizes / (size * COUNT), 3))


@pytest.mark.parametrize("impl", ["verb", "zlib module"])
@pytest.mark.parametrize("name", SIZES)
def test_decompress(benchmark, name, impl):
    size = SIZES[name]
    payloads = [Deflater(WBITS, True).compress(m) for m in workload(size)]
    if impl == "verb":
        inflater = Inflater(WBITS, True, max_size=1 << 20)
        decompress = inflater.decompress
    else:

        def decompress(payload):
            return zlib.decompressobj(wbits=-WBITS).decompress(payload + TAIL, 1 << 20)

    def run():
        for payload in payloads:
            decompress(payload)

    benchmark.group = f"decompress {name} JSON, shared"
    benchmark(run)
    record(benchmark, size)


# ---------------------------------------------------------------------------------------------
# Small messages: is compressing worth it?


@pytest.mark.parametrize("level", [1, 6])
@pytest.mark.parametrize("size", SMALL)
def test_small_compress(benchmark, size, level):
    msgs = workload(size)
    deflater = Deflater(WBITS, True, level=level)
    compress = deflater.compress

    def run():
        for msg in msgs:
            compress(msg)

    benchmark.group = f"small messages: compress (shared, level {level})"
    benchmark(run)
    compressed = sum(len(compress(m)) for m in msgs) / COUNT
    record(
        benchmark,
        size,
        compressed_bytes=round(compressed, 1),
        saved_bytes=round(size - compressed, 1),
    )


@pytest.mark.parametrize("size", SMALL)
def test_small_decompress(benchmark, size):
    payloads = [Deflater(WBITS, True).compress(m) for m in workload(size)]
    inflater = Inflater(WBITS, True)
    decompress = inflater.decompress

    def run():
        for payload in payloads:
            decompress(payload)

    benchmark.group = "small messages: decompress (shared)"
    benchmark(run)
    record(benchmark, size)
