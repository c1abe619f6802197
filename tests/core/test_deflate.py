"""The compiled permessage-deflate core (verb.core._deflate): RFC 7692 section 7.2 vectors, round
trips, interoperability with CPython's zlib module, size limits (bombs), corrupt input, reuse,
memory per instance, and a hypothesis fuzz of the inflater."""

import functools
import json
import os
import random
import tracemalloc
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verb.core import _deflate
from verb.core._deflate import DeflateError, Deflater, Inflater

TAIL = b"\x00\x00\xff\xff"
KIB = 1024
MIB = 1024 * 1024
WINDOW_BITS = range(9, 16)
SAME_ZLIB = zlib.ZLIB_RUNTIME_VERSION == _deflate.ZLIB_VERSION


def json_like(size, seed=0):
    """`size` bytes of JSON-ish text: repetitive keys, varying values, like real messages."""
    rnd = random.Random(seed)
    parts = ['{"type":"batch","items":[']
    length = len(parts[0])
    while length < size:
        item = (
            json.dumps(
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
            + ","
        )
        parts.append(item)
        length += len(item)
    return "".join(parts)[:size].encode()


def messages(count=40, seed=0):
    """A mixed workload: JSON of several sizes, random bytes, repeats, empties."""
    rnd = random.Random(seed)
    out = []
    for i in range(count):
        kind = i % 5
        if kind == 0:
            out.append(json_like(rnd.choice([10, 100, 1000, 5000]), seed=i))
        elif kind == 1:
            out.append(rnd.randbytes(rnd.choice([1, 50, 3000])))
        elif kind == 2:
            out.append(out[-2] if len(out) >= 2 else b"again")
        elif kind == 3:
            out.append(b"")
        else:
            out.append(("ünïcödé ✓ " * rnd.randrange(1, 200)).encode())
    return out


def zlib_compress_messages(msgs, wbits=15, no_context_takeover=False, level=6, mem_level=5):
    """Payloads as another permessage-deflate implementation (websockets) produces them."""
    out = []
    comp = None
    for msg in msgs:
        if comp is None or no_context_takeover:
            comp = zlib.compressobj(level, zlib.DEFLATED, -wbits, mem_level)
        data = comp.compress(msg) + comp.flush(zlib.Z_SYNC_FLUSH)
        assert data.endswith(TAIL)
        out.append(data[:-4])
    return out


def zlib_decompress_messages(payloads, wbits=15, no_context_takeover=False):
    out = []
    dec = None
    for payload in payloads:
        if dec is None or no_context_takeover:
            dec = zlib.decompressobj(wbits=-wbits)
        out.append(dec.decompress(payload + TAIL))
    return out


def close_code(inflater, data, **kw):
    with pytest.raises(DeflateError) as info:
        inflater.decompress(data, **kw)
    return info.value.close_code


@functools.cache
def bomb(size=10 * MIB):
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    return (comp.compress(bytes(size)) + comp.flush(zlib.Z_SYNC_FLUSH))[:-4]


# ---------------------------------------------------------------------------------------------
# RFC 7692 section 7.2.3 examples, verbatim


def test_rfc_hello_compressed():
    # 7.2.3.1: "Hello" in one compressed frame.
    assert Deflater().compress(b"Hello") == bytes.fromhex("f248cdc9c90700")
    assert Inflater().decompress(bytes.fromhex("f248cdc9c90700")) == b"Hello"


def test_rfc_sharing_lz77_window():
    # 7.2.3.2: the second "Hello" refers back into the first message.
    deflater = Deflater()
    assert deflater.compress(b"Hello") == bytes.fromhex("f248cdc9c90700")
    assert deflater.compress(b"Hello") == bytes.fromhex("f200110000")
    inflater = Inflater()
    assert inflater.decompress(bytes.fromhex("f248cdc9c90700")) == b"Hello"
    assert inflater.decompress(bytes.fromhex("f200110000")) == b"Hello"


def test_rfc_no_context_takeover_compresses_each_message_alone():
    deflater = Deflater(no_context_takeover=True)
    assert deflater.compress(b"Hello") == bytes.fromhex("f248cdc9c90700")
    assert deflater.compress(b"Hello") == bytes.fromhex("f248cdc9c90700")


def test_rfc_fragmented_message():
    # 7.2.3.1: the same payload split over two frames.
    inflater = Inflater()
    inflater.feed(bytes.fromhex("f248cd"))
    inflater.feed(bytes.fromhex("c9c90700"))
    assert inflater.finish() == b"Hello"


def test_rfc_bfinal_block():
    # 7.2.3.3: a final block followed by an empty stored block's header.
    inflater = Inflater()
    assert inflater.decompress(bytes.fromhex("f348cdc9c9070000")) == b"Hello"
    assert inflater.decompress(bytes.fromhex("f248cdc9c90700")) == b"Hello"


def test_rfc_stored_block():
    # 7.2.3.4: a DEFLATE block with no compression.
    data = bytes.fromhex("000500faff48656c6c6f00")
    assert Inflater().decompress(data) == b"Hello"


def test_rfc_empty_message():
    # 7.2.3.6: an empty message is sent as a single 0x00 octet.
    assert Deflater().compress(b"") == b"\x00"
    assert Inflater().decompress(b"\x00") == b""


def test_bfinal_with_context_takeover_keeps_the_window():
    # A sender that ends each message with a final block (Z_FINISH) and starts the next
    # DEFLATE stream with the same LZ77 window: our inflater carries the window across.
    first = zlib.compressobj(6, zlib.DEFLATED, -15)
    m1 = first.compress(b"Hello, context!") + first.flush(zlib.Z_FINISH)
    second = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=b"Hello, context!")
    m2 = second.compress(b"Hello, context!") + second.flush(zlib.Z_FINISH)
    assert len(m2) < len(m1)  # it does refer back into the first message
    inflater = Inflater()
    assert inflater.decompress(m1) == b"Hello, context!"
    assert inflater.decompress(m2) == b"Hello, context!"
    # The same within one message: a final block, then more data in a new stream.
    inflater = Inflater()
    assert inflater.decompress(m1 + m2) == b"Hello, context!" * 2


# ---------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("no_context_takeover", [False, True], ids=["takeover", "no-takeover"])
@pytest.mark.parametrize("window_bits", WINDOW_BITS)
def test_round_trip_many_messages(window_bits, no_context_takeover):
    deflater = Deflater(window_bits, no_context_takeover)
    inflater = Inflater(window_bits, no_context_takeover)
    for msg in messages(60, seed=window_bits):
        assert inflater.decompress(deflater.compress(msg)) == msg


@pytest.mark.parametrize("window_bits", WINDOW_BITS)
def test_context_takeover_makes_repeats_smaller(window_bits):
    # zlib matches at most (1 << window_bits) - 262 bytes back: 250 for windowBits 9.
    msg = json_like(200, seed=1)
    deflater = Deflater(window_bits)
    first, second, third = (deflater.compress(msg) for _ in range(3))
    assert len(second) < len(first) // 4
    assert len(third) < len(first) // 4
    inflater = Inflater(window_bits)
    assert [inflater.decompress(p) for p in (first, second, third)] == [msg] * 3

    alone = Deflater(window_bits, no_context_takeover=True)
    assert [alone.compress(msg) for _ in range(3)] == [first] * 3


def test_level_and_mem_level_round_trip():
    msg = json_like(5000)
    sizes = {}
    for level in (0, 1, 6, 9, -1):
        for mem_level in (1, 5, 8, 9):
            payload = Deflater(level=level, mem_level=mem_level).compress(msg)
            assert Inflater().decompress(payload) == msg
            sizes[level, mem_level] = len(payload)
    assert sizes[0, 5] > len(msg)  # stored blocks
    assert sizes[9, 5] < sizes[1, 5] < sizes[0, 5]


def test_window_bits_8():
    # zlib cannot produce raw deflate with a 256-byte window: the Deflater uses 512.
    deflater = Deflater(8)
    assert deflater.window_bits == 9
    msg = json_like(3000)
    assert zlib.decompressobj(wbits=-9).decompress(deflater.compress(msg) + TAIL) == msg
    # Inflating with 8 works for data that stays within 256 bytes of history.
    comp = zlib.compressobj(6, zlib.DEFLATED, -9)
    short = b"abcabcabc" * 20
    payload = (comp.compress(short) + comp.flush(zlib.Z_SYNC_FLUSH))[:-4]
    inflater = Inflater(8)
    assert inflater.window_bits == 8
    assert inflater.decompress(payload) == short


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window_bits": 7},
        {"window_bits": 16},
        {"level": 10},
        {"level": -2},
        {"mem_level": 0},
        {"mem_level": 10},
    ],
)
def test_deflater_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        Deflater(**kwargs)


@pytest.mark.parametrize("kwargs", [{"window_bits": 7}, {"window_bits": 16}, {"max_size": -1}])
def test_inflater_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        Inflater(**kwargs)


def test_bytes_like_inputs():
    msg = json_like(2000)
    payload = Deflater().compress(bytearray(msg))
    assert Deflater().compress(memoryview(msg)) == payload
    assert Inflater().decompress(memoryview(payload)) == msg
    assert Inflater().decompress(bytearray(payload)) == msg


def test_large_messages():
    rnd = random.Random(5)
    for msg in (rnd.randbytes(3 * MIB), json_like(2 * MIB), bytes(20 * MIB)):
        payload = Deflater().compress(msg)
        assert Inflater().decompress(payload) == msg
        assert zlib.decompressobj(wbits=-15).decompress(payload + TAIL) == msg


# ---------------------------------------------------------------------------------------------
# Interoperability with CPython's zlib module (what websockets uses)


@pytest.mark.parametrize("no_context_takeover", [False, True], ids=["takeover", "no-takeover"])
@pytest.mark.parametrize("window_bits", WINDOW_BITS)
def test_zlib_module_to_inflater(window_bits, no_context_takeover):
    msgs = messages(50, seed=100 + window_bits)
    payloads = zlib_compress_messages(msgs, window_bits, no_context_takeover)
    inflater = Inflater(window_bits, no_context_takeover)
    assert [inflater.decompress(p) for p in payloads] == msgs


@pytest.mark.parametrize("no_context_takeover", [False, True], ids=["takeover", "no-takeover"])
@pytest.mark.parametrize("window_bits", WINDOW_BITS)
def test_deflater_to_zlib_module(window_bits, no_context_takeover):
    msgs = messages(50, seed=200 + window_bits)
    deflater = Deflater(window_bits, no_context_takeover)
    payloads = [deflater.compress(m) for m in msgs]
    assert zlib_decompress_messages(payloads, window_bits, no_context_takeover) == msgs
    if SAME_ZLIB:
        # The same zlib with the same settings makes the same bytes, except for empty
        # messages (the zlib module makes 00 00 00 ff ff, we make 00: both are valid).
        expected = zlib_compress_messages(msgs, window_bits, no_context_takeover)
        for msg, ours, theirs in zip(msgs, payloads, expected):
            assert ours == (theirs if msg else b"\x00")


def test_empty_messages_between_context_messages():
    msgs = [b"hello", b"", b"hello", b"", b"", b"hello world"]
    deflater = Deflater()
    payloads = [deflater.compress(m) for m in msgs]
    assert zlib_decompress_messages(payloads) == msgs
    inflater = Inflater()
    assert [inflater.decompress(p) for p in payloads] == msgs
    # Some senders send nothing at all for an empty message; that is taken as empty too and
    # leaves the context alone.
    inflater = Inflater()
    theirs = zlib_compress_messages([b"hello", b"hello"])
    assert inflater.decompress(theirs[0]) == b"hello"
    assert inflater.decompress(b"") == b""
    assert inflater.decompress(theirs[1]) == b"hello"


# ---------------------------------------------------------------------------------------------
# Messages in pieces (frames)


def feed_pieces(inflater, payload, cuts):
    last = 0
    for cut in sorted(set(cuts)) + [len(payload)]:
        inflater.feed(payload[last:cut])
        last = cut
    return inflater.finish()


@pytest.mark.parametrize("no_context_takeover", [False, True], ids=["takeover", "no-takeover"])
def test_pieces(no_context_takeover):
    rnd = random.Random(7)
    msgs = messages(30, seed=7)
    payloads = zlib_compress_messages(msgs, no_context_takeover=no_context_takeover)
    inflater = Inflater(no_context_takeover=no_context_takeover)
    for msg, payload in zip(msgs, payloads):
        n = len(payload)
        cuts = rnd.sample(range(1, n), min(n - 1, rnd.randrange(0, 12))) if n > 1 else []
        assert feed_pieces(inflater, payload, cuts) == msg


def test_byte_by_byte():
    msg = json_like(20000)
    payload = Deflater().compress(msg)
    inflater = Inflater()
    assert feed_pieces(inflater, payload, range(1, len(payload))) == msg
    assert inflater.decompress(Deflater().compress(b"next")) == b"next"


def test_empty_pieces_and_empty_fed_message():
    inflater = Inflater()
    inflater.feed(b"")
    inflater.feed(b"\x00")
    inflater.feed(b"")
    assert inflater.finish() == b""
    assert inflater.finish() == b""  # finish() with nothing fed: an empty message
    assert inflater.buffered == 0


def test_buffered_grows_while_fed():
    msg = json_like(50000)
    payload = Deflater().compress(msg)
    inflater = Inflater()
    inflater.feed(payload[: len(payload) // 2])
    assert 0 < inflater.buffered < len(msg)
    inflater.feed(payload[len(payload) // 2 :])
    assert inflater.finish() == msg
    assert inflater.buffered == 0


def test_whole_message_while_a_fed_one_is_unfinished_is_a_bug():
    inflater = Inflater()
    inflater.feed(bytes.fromhex("f248cd"))
    with pytest.raises(RuntimeError):
        inflater.decompress(b"\x00")
    inflater.reset()
    assert inflater.decompress(bytes.fromhex("f248cdc9c90700")) == b"Hello"


# ---------------------------------------------------------------------------------------------
# Size limits: decompression bombs


def test_bomb_stops_at_max_size():
    data = bomb()
    assert len(data) < 20 * KIB
    inflater = Inflater(max_size=MIB)
    with pytest.raises(DeflateError) as info:
        inflater.decompress(data)
    assert info.value.close_code == 1009
    assert "limit" in info.value.reason
    assert inflater.error == info.value.reason
    # The output buffer grew only as output appeared, and stopped at max_size + 1 bytes.
    assert inflater.peak_buffer == MIB + 1
    # The message is discarded and the buffer freed.
    assert inflater.memory < 64 * KIB


def test_bomb_peak_memory_tracemalloc():
    data = bomb()
    inflater = Inflater(max_size=MIB)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with pytest.raises(DeflateError):
            inflater.decompress(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # zlib's state and window (~40 KiB) plus the output buffer (max_size + 1) plus, at most,
    # the previous buffer during the last realloc (max_size / 2): far from 10 MiB.
    assert peak < 1.6 * MIB, peak
    assert peak > MIB  # the buffer really is traced (our allocations go through PyMem_Raw*)


def test_bomb_fed_in_pieces():
    data = bomb()
    inflater = Inflater(max_size=MIB)
    with pytest.raises(DeflateError) as info:
        for i in range(0, len(data), 100):
            inflater.feed(data[i : i + 100])
        inflater.finish()
    assert info.value.close_code == 1009
    assert inflater.peak_buffer == MIB + 1


def test_decompress_max_size_argument_overrides_for_one_call():
    data = bomb(100 * KIB)
    inflater = Inflater(no_context_takeover=True)
    assert close_code(inflater, data, max_size=10 * KIB) == 1009
    assert inflater.peak_buffer <= 10 * KIB + 1
    assert inflater.max_size > 100 * KIB  # unchanged: unlimited
    assert inflater.decompress(data) == bytes(100 * KIB)
    limited = Inflater(max_size=KIB)
    assert close_code(limited, data) == 1009
    assert limited.decompress(data, max_size=100 * KIB) == bytes(100 * KIB)


@pytest.mark.parametrize("size", [0, 1, 1000, 1024, 65536, 100000])
def test_max_size_is_inclusive(size):
    msg = os.urandom(size)
    payload = Deflater().compress(msg)
    assert Inflater(max_size=size).decompress(payload) == msg
    if size:
        assert close_code(Inflater(max_size=size - 1), payload) == 1009


def test_small_messages_use_a_small_buffer():
    inflater = Inflater()
    inflater.decompress(Deflater().compress(json_like(500)))
    assert inflater.peak_buffer <= 4 * KIB


# ---------------------------------------------------------------------------------------------
# Corrupt input: a close code, never a crash; the inflater goes on working


def assert_still_works(inflater):
    """A fresh message decodes after an error (the error reset the stream)."""
    msg = json_like(3000, seed=9)
    assert inflater.decompress(Deflater().compress(msg)) == msg


@pytest.mark.parametrize(
    "data",
    [
        b"\xff",  # BTYPE 11: reserved
        b"\x07\xff\xff\xff",  # reserved block type again
        b"\x00\x05\x00\x00\x00hello",  # stored block with a bad NLEN
        bytes.fromhex("f248cdc9c907"),  # "Hello" without its last byte: truncated
        bytes.fromhex("f248cdc9"),  # cut inside the block
        bytes.fromhex("0005"),  # cut inside a stored block's header
    ],
)
def test_corrupt(data):
    inflater = Inflater()
    assert close_code(inflater, data) == 1007
    assert inflater.error
    assert_still_works(inflater)


def test_truncated_every_length():
    msg = b"The quick brown fox jumps over the lazy dog. " * 20 + bytes(range(256))
    payload = Deflater().compress(msg)
    inflater = Inflater()
    for cut in range(1, len(payload)):
        assert close_code(inflater, payload[:-cut]) == 1007
    assert inflater.decompress(payload) == msg


def test_distance_too_far_back():
    # A stream made with a 32 KiB window, read with a 512-byte one: the second message refers
    # 2000 bytes back, into the first, past what the small window kept. (zlib checks distances
    # against the history it holds, not against windowBits.)
    msg = os.urandom(2000)
    deflater = Deflater(15)
    first, second = deflater.compress(msg), deflater.compress(msg)
    inflater = Inflater(9)
    assert inflater.decompress(first) == msg
    assert close_code(inflater, second) == 1007
    inflater = Inflater(15)
    assert [inflater.decompress(first), inflater.decompress(second)] == [msg, msg]


def test_flipped_bits_never_crash():
    msg = json_like(600, seed=3)
    payload = Deflater().compress(msg)
    inflater = Inflater(max_size=64 * KIB)
    outcomes = set()
    for i in range(len(payload) * 8):
        bad = bytearray(payload)
        bad[i // 8] ^= 1 << (i % 8)
        try:
            outcomes.add("same" if inflater.decompress(bad) == msg else "different")
        except DeflateError as exc:
            outcomes.add(exc.close_code)
    assert 1007 in outcomes
    assert outcomes <= {1007, 1009, "same", "different"}
    assert_still_works(inflater)


def test_random_bytes_never_crash():
    rnd = random.Random(11)
    inflater = Inflater(max_size=256 * KIB)
    codes = set()
    for _ in range(2000):
        try:
            inflater.decompress(rnd.randbytes(rnd.randrange(1, 200)))
        except DeflateError as exc:
            codes.add(exc.close_code)
    assert 1007 in codes
    assert codes <= {1007, 1009}
    assert_still_works(inflater)


def test_error_mid_message_in_pieces_then_reuse():
    inflater = Inflater(no_context_takeover=True)
    inflater.feed(bytes.fromhex("f248cd"))
    with pytest.raises(DeflateError) as info:
        inflater.feed(b"\xff\xff\xff\xff")
        inflater.finish()
    assert info.value.close_code == 1007
    assert inflater.buffered == 0
    assert_still_works(inflater)


def test_reuse_after_errors_with_context_takeover():
    # After an error the context is gone: the next message must be from a fresh compressor
    # (in practice the connection is closed; a shared instance only sees independent ones).
    inflater = Inflater(max_size=MIB)
    deflater = Deflater()
    assert inflater.decompress(deflater.compress(b"Hello")) == b"Hello"
    assert close_code(inflater, bomb()) == 1009
    assert inflater.error
    assert_still_works(inflater)
    assert close_code(inflater, b"\xff") == 1007
    assert_still_works(inflater)
    assert inflater.decompress(Deflater().compress(b"ok")) == b"ok"
    assert inflater.error is None


# ---------------------------------------------------------------------------------------------
# Shared mode: one compressor and one decompressor for many connections


def test_shared_instances_for_many_independent_messages():
    deflater = Deflater(no_context_takeover=True)
    inflater = Inflater(no_context_takeover=True, max_size=MIB)
    rnd = random.Random(13)
    msgs = messages(200, seed=13)
    for i, msg in enumerate(msgs):
        payload = deflater.compress(msg)
        # Any fresh peer decompressor reads it: no context from earlier messages is used.
        assert zlib_decompress_messages([payload])[0] == msg
        # And the shared inflater reads messages of fresh peer compressors, with errors
        # from misbehaving peers interleaved.
        theirs = zlib_compress_messages([msg], level=rnd.choice([1, 6, 9]))[0]
        assert inflater.decompress(theirs) == msg
        if i % 17 == 0:
            assert close_code(inflater, rnd.randbytes(50) + b"\xff") in (1007, 1009)
        if i % 23 == 0:
            assert close_code(inflater, bomb(2 * MIB)) == 1009


def test_shared_deflater_broadcast_payload_is_the_same_for_everyone():
    deflater = Deflater(no_context_takeover=True)
    msg = json_like(1000)
    payload = deflater.compress(msg)
    deflater.compress(json_like(800, seed=2))
    assert deflater.compress(msg) == payload


# ---------------------------------------------------------------------------------------------
# Memory per instance


def deflate_state_bytes(window_bits, mem_level):
    return (1 << (window_bits + 2)) + (1 << (mem_level + 9))


@pytest.mark.parametrize("mem_level", [1, 5, 8, 9])
@pytest.mark.parametrize("window_bits", WINDOW_BITS)
def test_deflater_memory_matches_zlib_formula(window_bits, mem_level):
    deflater = Deflater(window_bits, mem_level=mem_level)
    assert deflater.memory == 0  # lazy
    deflater.compress(b"x")
    extra = deflater.memory - deflate_state_bytes(window_bits, mem_level)
    assert 0 < extra < 8 * KIB  # zlib's deflate_state struct
    deflater.release()
    assert deflater.memory == 0
    assert Inflater().decompress(deflater.compress(b"back")) == b"back"


@pytest.mark.parametrize("window_bits", range(8, 16))
def test_inflater_memory_matches_zlib_formula(window_bits):
    inflater = Inflater(window_bits)
    assert inflater.memory == 0  # lazy
    inflater.decompress(bytes.fromhex("f248cdc9c90700"))
    buffer = inflater.peak_buffer
    extra = inflater.memory - buffer - (1 << window_bits)
    assert 0 < extra < 8 * KIB  # zlib's inflate_state struct
    inflater.release()
    assert inflater.memory == 0
    assert inflater.decompress(bytes.fromhex("f248cdc9c90700")) == b"Hello"


def test_large_output_buffer_is_not_kept():
    inflater = Inflater()
    inflater.decompress(Deflater().compress(bytes(MIB)))
    assert inflater.peak_buffer >= MIB
    assert inflater.memory < 64 * KIB


def test_instances_are_freed():
    # Many instances created, used and dropped: nothing left behind.
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(200):
            d, i = Deflater(), Inflater(max_size=MIB)
            i.decompress(d.compress(json_like(3000)))
            with pytest.raises(DeflateError):
                i.decompress(bomb(2 * MIB))
            del d, i
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 64 * KIB


# ---------------------------------------------------------------------------------------------
# Fuzz


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SHARED_FUZZ_INFLATER = Inflater(max_size=64 * KIB)


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_random_input(data):
    try:
        out = SHARED_FUZZ_INFLATER.decompress(data)
    except DeflateError as exc:
        assert exc.close_code in (1007, 1009)
    else:
        assert len(out) <= 64 * KIB
    SHARED_FUZZ_INFLATER.reset()
    assert SHARED_FUZZ_INFLATER.decompress(bytes.fromhex("f248cdc9c90700")) == b"Hello"
    SHARED_FUZZ_INFLATER.reset()


@FUZZ
@given(
    st.binary(min_size=1, max_size=3000),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4),
    st.integers(0, 20),
    st.lists(st.integers(1, 10**6), max_size=5),
)
def test_fuzz_corrupted_streams(msg, flips, cut, piece_cuts):
    payload = bytearray(zlib_compress_messages([msg * 3])[0])
    for index, value in flips:
        payload[index % len(payload)] ^= value
    if cut:
        payload = payload[:-cut] or payload
    inflater = Inflater(max_size=16 * KIB)
    try:
        out = feed_pieces(inflater, bytes(payload), [c % len(payload) for c in piece_cuts])
    except DeflateError as exc:
        assert exc.close_code in (1007, 1009)
    else:
        assert len(out) <= 16 * KIB
        if not flips and not cut:
            assert out == msg * 3
    assert_still_works(inflater)


@FUZZ
@given(st.lists(st.binary(max_size=2000), max_size=8), st.integers(9, 15), st.booleans())
def test_fuzz_round_trip(msgs, window_bits, no_context_takeover):
    deflater = Deflater(window_bits, no_context_takeover)
    inflater = Inflater(window_bits, no_context_takeover)
    for msg in msgs:
        assert inflater.decompress(deflater.compress(msg)) == msg


def test_deflate_error_str_and_attributes():
    error = DeflateError(1009, "inflated message over the size limit")
    assert error.close_code == 1009 and error.reason == "inflated message over the size limit"
    assert str(error) == "inflated message over the size limit (1009)"


def test_reprs():
    assert repr(Deflater(8, True, 1, 2)) == (
        "Deflater(window_bits=9, no_context_takeover=True, level=1, mem_level=2)")
    assert repr(Inflater()) == "Inflater(window_bits=15, no_context_takeover=False, max_size=None)"
    assert repr(Inflater(10, True, 100)) == (
        "Inflater(window_bits=10, no_context_takeover=True, max_size=100)")


def test_deflater_reset_drops_the_context():
    message = b"a message that compresses better the second time " * 4
    deflater = Deflater()
    deflater.reset()  # before the first message: nothing to reset, no error
    first = deflater.compress(message)
    assert len(deflater.compress(message)) < len(first)  # refers back to the first
    deflater.reset()
    assert deflater.compress(message) == first
    assert Inflater().decompress(first) == message
