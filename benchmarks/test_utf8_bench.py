"""Throughput of UTF-8 validation, beside CPython's strict `bytes.decode("utf-8")`.

Run: .venv/bin/python -m pytest benchmarks/test_utf8_bench.py --benchmark-only

Each group validates the same 1 MiB with verb's `validate_utf8` and decodes it with
`bytes.decode`. The decoder does more (it builds a str), so it is a reference point, not a like
for like: validation should be at least as fast. Each benchmark's `extra_info` holds its MB/s
(1 MB = 1e6 bytes, from the mean time); pytest-benchmark's table does not show it, the output of
--benchmark-json=FILE has it.
"""

import random

import pytest

from verb.core._utf8 import validate_utf8

SIZE = 1 << 20  # 1 MiB


def _fill(pieces, seed):
    """Exactly SIZE bytes of valid UTF-8: random pieces strung together, space-padded."""
    rng = random.Random(seed)
    out = bytearray()
    encoded = [p.encode("utf-8") for p in pieces]
    while True:
        piece = rng.choice(encoded)
        if len(out) + len(piece) > SIZE:
            break
        out += piece
    out += b" " * (SIZE - len(out))
    data = bytes(out)
    data.decode("utf-8")  # valid, or the benchmark is meaningless
    return data


ASCII_TEXT = _fill(
    [
        "The quick brown fox jumps over the lazy dog. ",
        '{"type": "message", "id": 12345, "text": "hello, world"}\n',
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. ",
        "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n",
        "0123456789 ",
    ],
    seed=1,
)

# A chat-like mix of scripts: Cyrillic and Greek (2-byte), CJK, kana and Hangul (3-byte), emoji
# (4-byte), with the spaces, digits and punctuation such text carries.
MIXED_TEXT = _fill(
    [
        "Съешь же ещё этих мягких французских булок, да выпей чаю. ",
        "Привет! Как дела? ",
        "我能吞下玻璃而不伤身体。",
        "这是一个测试句子，包含常用汉字和标点符号。",
        "いろはにほへと ちりぬるを わかよたれそ つねならむ。",
        "다람쥐 헌 쳇바퀴에 타고파. ",
        "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. ",
        "👍😀🎉🚀 ",
        "ok 🙂 ",
        "naïve café, Zürich 2024: 15 €. ",
    ],
    seed=2,
)

CYRILLIC_TEXT = _fill(["Съешь же ещё этих мягких французских булок, да выпей чаю. "], seed=3)
CJK_TEXT = _fill(["我能吞下玻璃而不伤身体。", "这是一个测试句子，包含常用汉字和标点符号。"], seed=4)

CASES = [
    ("ascii", ASCII_TEXT),
    ("mixed", MIXED_TEXT),
    ("cyrillic", CYRILLIC_TEXT),
    ("cjk", CJK_TEXT),
]


def _record(benchmark, nbytes):
    """Store the throughput; with --benchmark-disable there are no stats, so no figure."""
    benchmark.extra_info["bytes"] = nbytes
    if benchmark.stats:
        benchmark.extra_info["MB/s"] = round(nbytes / benchmark.stats.stats.mean / 1e6, 1)


@pytest.mark.parametrize("name,data", CASES, ids=[c[0] for c in CASES])
def test_verb_validate_utf8(benchmark, name, data):
    benchmark.group = "utf8 1 MiB " + name
    assert benchmark(validate_utf8, data) is True
    _record(benchmark, len(data))


@pytest.mark.parametrize("name,data", CASES, ids=[c[0] for c in CASES])
def test_bytes_decode(benchmark, name, data):
    benchmark.group = "utf8 1 MiB " + name
    assert len(benchmark(data.decode, "utf-8")) > 0
    _record(benchmark, len(data))


def test_data_is_what_it_says():
    assert len(ASCII_TEXT) == len(MIXED_TEXT) == SIZE
    assert ASCII_TEXT.isascii()
    text = MIXED_TEXT.decode("utf-8")
    widths = {1: 0, 2: 0, 3: 0, 4: 0}
    for ch in text:
        widths[len(ch.encode("utf-8"))] += 1
    assert all(widths.values()), widths  # every sequence length occurs
