"""Throughput of payload masking (RFC 6455 section 5.3), beside a memcpy of the same buffer.

Run: .venv/bin/python -m pytest benchmarks/test_mask_bench.py --benchmark-only

The reference point is a plain copy of the same 1 MiB into a preallocated buffer: unmasking in
place should cost no more than moving the bytes. websockets' C ``apply_mask`` (which returns a new
bytes object) is there for comparison with verb's ``apply_mask``, which does the same.
"""

import random

import pytest

from verb.core._mask import apply_mask, mask_inplace

try:
    from websockets.speedups import apply_mask as ws_apply_mask
except ImportError:  # websockets without its C extension
    ws_apply_mask = None

KEY = b"\x37\xfa\x21\x3d"
SIZE = 1 << 20  # 1 MiB
SMALL = 125  # the largest payload with a 7-bit length: a typical small message

# Warm-up also makes the calibration take its best of many runs, so one slow first call cannot
# make it settle on a single call per round (where the timer's own cost would dominate at 125 B).
pytestmark = pytest.mark.benchmark(warmup=True, warmup_iterations=2000)

_rng = random.Random(6455)
PAYLOAD = _rng.randbytes(SIZE)
SMALL_PAYLOAD = PAYLOAD[:SMALL]


def _record(benchmark, nbytes):
    """Store the throughput of the run; absent with --benchmark-disable (no stats then)."""
    benchmark.extra_info["bytes"] = nbytes
    if benchmark.stats:
        benchmark.extra_info["GB/s"] = round(nbytes / benchmark.stats.stats.mean / 1e9, 2)


# 1 MiB ---------------------------------------------------------------------------------------


def test_1mib_verb_mask_inplace(benchmark):
    benchmark.group = "mask 1 MiB"
    buf = bytearray(PAYLOAD)
    # An even number of calls leaves buf as it was; an odd number leaves it masked once.
    benchmark(mask_inplace, buf, KEY)
    assert buf in (PAYLOAD, apply_mask(PAYLOAD, KEY))
    _record(benchmark, SIZE)


def test_1mib_memcpy(benchmark):
    benchmark.group = "mask 1 MiB"
    dst = memoryview(bytearray(SIZE))
    src = bytearray(PAYLOAD)
    # memoryview slice assignment: one memmove of the whole buffer, no allocation.
    benchmark(dst.__setitem__, slice(None), src)
    assert dst == PAYLOAD
    _record(benchmark, SIZE)


@pytest.mark.skipif(ws_apply_mask is None, reason="websockets.speedups (C) not available")
def test_1mib_websockets_apply_mask(benchmark):
    benchmark.group = "mask 1 MiB"
    out = benchmark(ws_apply_mask, PAYLOAD, KEY)
    assert out == apply_mask(PAYLOAD, KEY)
    _record(benchmark, SIZE)


def test_1mib_verb_apply_mask(benchmark):
    benchmark.group = "mask 1 MiB"
    out = benchmark(apply_mask, PAYLOAD, KEY)
    assert len(out) == SIZE
    _record(benchmark, SIZE)


# 125 bytes: per-call overhead dominates ----------------------------------------------------------


def test_small_verb_mask_inplace(benchmark):
    benchmark.group = "mask 125 B"
    buf = bytearray(SMALL_PAYLOAD)
    benchmark(mask_inplace, buf, KEY)
    _record(benchmark, SMALL)


@pytest.mark.skipif(ws_apply_mask is None, reason="websockets.speedups (C) not available")
def test_small_websockets_apply_mask(benchmark):
    benchmark.group = "mask 125 B"
    out = benchmark(ws_apply_mask, SMALL_PAYLOAD, KEY)
    assert out == apply_mask(SMALL_PAYLOAD, KEY)
    _record(benchmark, SMALL)


def test_small_verb_apply_mask(benchmark):
    benchmark.group = "mask 125 B"
    out = benchmark(apply_mask, SMALL_PAYLOAD, KEY)
    assert len(out) == SMALL
    _record(benchmark, SMALL)
