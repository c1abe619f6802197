"""Payload masking (RFC 6455 section 5.3): verb.core._mask against a pure-Python oracle.

The kernel has several paths chosen by length and by the address of the destination (a byte
head up to 8-byte alignment, words up to 32-byte alignment, 32-byte registers when the CPU has
AVX2, 16-byte registers, words, a byte tail), so the small cases run every length at every key
offset and at every address modulo 8, from slices of larger buffers, and the large cases run
random lengths at several addresses.
"""

import array
import ctypes
import random

import pytest

from verb.core._mask import apply_mask, mask_inplace

KEY = b"\x9b\x2c\xe1\x47"  # four distinct bytes, none zero: a wrong phase shows
OFFSETS = range(4)
MIB = 1 << 20


def oracle(data, key, offset=0):
    """The definition: byte i is XOR-ed with key[(offset + i) % 4]."""
    return bytes(b ^ key[(offset + i) % 4] for i, b in enumerate(data))


def fast_oracle(data, key, offset=0):
    """The same, as one big-integer XOR: fast enough for megabytes."""
    n = len(data)
    rotated = key[offset % 4 :] + key[: offset % 4]
    keystream = (rotated * (n // 4 + 1))[:n]
    x = int.from_bytes(data, "little") ^ int.from_bytes(keystream, "little")
    return x.to_bytes(n, "little")


def address(buf):
    """Address of the first byte of a writable buffer."""
    return ctypes.addressof(ctypes.c_char.from_buffer(buf))


GUARD = 16  # bytes either side of a slice, checked for stray writes
GUARD_BYTE = 0xA5


def slice_at(data, align):
    """A writable memoryview holding `data`, whose first byte's address is `align` mod 64.

    Returns (backing bytearray, view); the bytes around the view are GUARD_BYTE.
    """
    backing = bytearray([GUARD_BYTE]) * (len(data) + 2 * GUARD + 64)
    start = GUARD + (align - address(backing) - GUARD) % 64
    view = memoryview(backing)[start : start + len(data)]
    view[:] = data
    assert (address(backing) + start) % 64 == align
    return backing, view


def assert_guards_intact(backing, view_len, align):
    start = GUARD + (align - address(backing) - GUARD) % 64
    assert set(backing[:start]) == {GUARD_BYTE}
    assert set(backing[start + view_len :]) == {GUARD_BYTE}


def test_oracles_agree():
    rng = random.Random(1)
    for n in (0, 1, 3, 4, 5, 63, 64, 1000):
        data = rng.randbytes(n)
        for offset in OFFSETS:
            assert fast_oracle(data, KEY, offset) == oracle(data, KEY, offset)
    assert oracle(b"\x00" * 6, KEY, 2) == KEY[2:] + KEY + KEY[:0]


# Every length 0..64, at every key offset and every address modulo 8 --------------------------


@pytest.mark.parametrize("align", range(8))
@pytest.mark.parametrize("offset", OFFSETS)
def test_small_lengths_every_offset_and_alignment(offset, align):
    rng = random.Random(offset * 8 + align)
    for n in range(65):
        data = rng.randbytes(n)
        expected = oracle(data, KEY, offset)

        # apply_mask from a misaligned source into a new bytes object.
        backing, view = slice_at(data, align)
        assert apply_mask(view, KEY, offset) == expected
        assert view == data  # source untouched

        # mask_inplace on a misaligned slice: result, next offset, nothing written outside.
        assert mask_inplace(view, KEY, offset) == (offset + n) % 4
        assert view == expected
        assert_guards_intact(backing, n, align)


# Lengths past every block size and alignment step (the head can take up to 31 bytes, AVX2
# starts at 256 bytes, the 16-byte loop at 64): every length to 600, at every address mod 32.


@pytest.mark.parametrize("offset", OFFSETS)
def test_medium_lengths_every_alignment_mod_32(offset):
    rng = random.Random(100 + offset)
    source = rng.randbytes(600)
    for align in range(32):
        backing, view = slice_at(source, align)
        for n in range(65, 601):
            data = source[:n]
            expected = fast_oracle(data, KEY, offset)
            piece = view[:n]
            assert apply_mask(piece, KEY, offset) == expected
            assert mask_inplace(piece, KEY, offset) == (offset + n) % 4
            assert piece == expected
            piece[:] = data  # restore for the next length
        assert_guards_intact(backing, len(source), align)


# Random lengths up to 4 MiB ------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_random():
    return random.Random(6455).randbytes(4 * MIB + 64)


LARGE_LENGTHS = [4 * MIB, 4 * MIB - 1, MIB + 3] + random.Random(7).sample(range(601, 4 * MIB), 3)


@pytest.mark.parametrize("align", [0, 1, 7, 29])
@pytest.mark.parametrize("offset", OFFSETS)
def test_large_random_lengths(big_random, offset, align):
    rng = random.Random(offset * 64 + align)
    n = rng.choice(LARGE_LENGTHS)
    data = big_random[align : align + n]
    expected = fast_oracle(data, KEY, offset)

    backing, view = slice_at(data, align)
    assert apply_mask(view, KEY, offset) == expected
    assert mask_inplace(view, KEY, offset) == (offset + n) % 4
    assert view == expected
    assert_guards_intact(backing, n, align)


def test_large_every_listed_length(big_random):
    for n in LARGE_LENGTHS:
        data = big_random[:n]
        assert apply_mask(data, KEY, 3) == fast_oracle(data, KEY, 3)


# Streaming: pieces with carried offsets equal the whole --------------------------------------


def random_split(rng, n, max_piece):
    """Cut points of range(n) into pieces of 0..max_piece bytes (empty pieces included)."""
    cuts = [0]
    while cuts[-1] < n:
        cuts.append(min(n, cuts[-1] + rng.randint(0, max_piece)))
    return list(zip(cuts, cuts[1:]))


@pytest.mark.parametrize("max_piece", [3, 40, 700, 70_000])
@pytest.mark.parametrize("start", OFFSETS)
def test_streaming_pieces_equal_whole(start, max_piece):
    rng = random.Random(start * 1000 + max_piece)
    payload = rng.randbytes(rng.randint(0, 10 * max_piece + 100))
    whole = apply_mask(payload, KEY, start)
    assert whole == fast_oracle(payload, KEY, start)

    # In place, piece by piece, each piece a memoryview slice of one buffer.
    buf = bytearray(payload)
    view = memoryview(buf)
    offset = start
    for lo, hi in random_split(rng, len(payload), max_piece):
        offset = mask_inplace(view[lo:hi], KEY, offset)
    assert buf == whole
    assert offset == (start + len(payload)) % 4

    # Into new buffers, piece by piece (bytes pieces: the offset is carried by the caller).
    out = []
    offset = start
    for lo, hi in random_split(rng, len(payload), max_piece):
        out.append(apply_mask(payload[lo:hi], KEY, offset))
        offset = (offset + hi - lo) % 4
    assert b"".join(out) == whole


# Buffer types ----------------------------------------------------------------------------------

PAYLOAD = bytes(range(256)) * 3 + b"tail!"  # 773 bytes: every path, an odd tail


@pytest.mark.parametrize(
    "make",
    [bytes, bytearray, memoryview, lambda b: memoryview(bytearray(b)).toreadonly(),
     lambda b: array.array("B", b)],
    ids=["bytes", "bytearray", "memoryview", "readonly-memoryview", "array"],
)
def test_apply_mask_accepts_bytes_like(make):
    data = make(PAYLOAD)
    out = apply_mask(data, KEY, 1)
    assert type(out) is bytes
    assert out == oracle(PAYLOAD, KEY, 1)
    assert bytes(data) == PAYLOAD  # input untouched


def test_apply_mask_any_item_format():
    # Like bytes(), any contiguous buffer is its bytes, whatever its item type.
    data = array.array("I", range(100))
    assert apply_mask(data, KEY) == oracle(data.tobytes(), KEY)


@pytest.mark.parametrize("make", [bytes, bytearray, memoryview], ids=["bytes", "bytearray", "mv"])
def test_key_accepts_bytes_like(make):
    assert apply_mask(PAYLOAD, make(KEY)) == oracle(PAYLOAD, KEY)
    buf = bytearray(PAYLOAD)
    mask_inplace(buf, make(KEY))
    assert buf == oracle(PAYLOAD, KEY)


def test_mask_inplace_bytearray():
    buf = bytearray(PAYLOAD)
    assert mask_inplace(buf, KEY, 2) == (2 + len(PAYLOAD)) % 4
    assert buf == oracle(PAYLOAD, KEY, 2)
    buf.append(0)  # the buffer export was released: the bytearray can be resized again


def test_mask_inplace_writable_memoryview():
    buf = bytearray(PAYLOAD)
    with memoryview(buf) as view:
        assert mask_inplace(view, KEY) == len(PAYLOAD) % 4
    assert buf == oracle(PAYLOAD, KEY)


def test_mask_inplace_memoryview_slice_touches_only_the_slice():
    buf = bytearray(PAYLOAD)
    lo, hi = 13, 613
    assert mask_inplace(memoryview(buf)[lo:hi], KEY, 3) == (3 + hi - lo) % 4
    assert buf[:lo] == PAYLOAD[:lo]
    assert buf[lo:hi] == oracle(PAYLOAD[lo:hi], KEY, 3)
    assert buf[hi:] == PAYLOAD[hi:]


def test_mask_inplace_array():
    buf = array.array("B", PAYLOAD)
    mask_inplace(buf, KEY)
    assert buf.tobytes() == oracle(PAYLOAD, KEY)


def test_masking_twice_restores():
    buf = bytearray(PAYLOAD)
    offset = mask_inplace(buf, KEY, 1)
    assert buf != PAYLOAD
    assert mask_inplace(buf, KEY, 1) == offset
    assert buf == PAYLOAD
    assert apply_mask(apply_mask(PAYLOAD, KEY, 2), KEY, 2) == PAYLOAD


def test_empty():
    assert apply_mask(b"", KEY) == b""
    assert apply_mask(b"", KEY, 3) == b""
    for offset in OFFSETS:
        assert mask_inplace(bytearray(), KEY, offset) == offset


def test_offset_is_taken_modulo_4():
    for offset in range(-8, 12):
        assert apply_mask(PAYLOAD, KEY, offset) == oracle(PAYLOAD, KEY, offset % 4)
        buf = bytearray(PAYLOAD)
        assert mask_inplace(buf, KEY, offset) == (offset + len(PAYLOAD)) % 4
        assert buf == oracle(PAYLOAD, KEY, offset % 4)


def test_offset_keyword():
    assert apply_mask(PAYLOAD, KEY, offset=2) == oracle(PAYLOAD, KEY, 2)
    assert mask_inplace(bytearray(5), KEY, offset=2) == 3


# Errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad_key", [b"", b"\x01", b"abc", b"abcde", bytes(8), bytearray(3)])
def test_key_not_4_bytes(bad_key):
    with pytest.raises(ValueError, match=r"key must be exactly 4 bytes, got {}".format(len(bad_key))):
        apply_mask(PAYLOAD, bad_key)
    buf = bytearray(PAYLOAD)
    with pytest.raises(ValueError, match="key"):
        mask_inplace(buf, bad_key)
    assert buf == PAYLOAD


@pytest.mark.parametrize("readonly", [b"abcdefgh", memoryview(bytearray(8)).toreadonly()],
                         ids=["bytes", "readonly-memoryview"])
def test_mask_inplace_read_only_buffer(readonly):
    before = bytes(readonly)
    with pytest.raises(BufferError, match=r"mask_inplace needs a writable .*got (bytes|memoryview)"):
        mask_inplace(readonly, KEY)
    assert bytes(readonly) == before


def test_non_contiguous_buffer():
    buf = bytearray(16)
    strided = memoryview(buf)[::2]
    with pytest.raises(BufferError):
        apply_mask(strided, KEY)
    with pytest.raises(BufferError):
        mask_inplace(strided, KEY)
    assert buf == bytes(16)


@pytest.mark.parametrize("not_bytes", ["abcd", None, 1234, [1, 2, 3, 4]])
def test_not_bytes_like(not_bytes):
    with pytest.raises(TypeError):
        apply_mask(not_bytes, KEY)
    with pytest.raises(TypeError):
        apply_mask(PAYLOAD, not_bytes)
    with pytest.raises(TypeError):
        mask_inplace(not_bytes, KEY)
    with pytest.raises(TypeError):
        mask_inplace(bytearray(4), not_bytes)
