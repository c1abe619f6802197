"""Tests of the incremental UTF-8 validator (verb._utf8).

The cases of Markus Kuhn's "UTF-8 decoder capability and stress test" (UTF-8-test.txt), written
out below by section, each with its expected outcome. Every expectation is checked three ways:
against Python's strict `bytes.decode("utf-8")`, against a small pure-Python reference validator
written from Unicode Table 3-7 (which also knows *where* the text becomes invalid), and against
verb. The reference is itself cross-checked against `bytes.decode`.

Fail fast: the frame parser relies on `verb_utf8_feed` reporting failure at the first chunk that
contains a byte which no valid text could have at that position. So for an invalid input fed
one byte at a time, `feed` must return True up to that byte and False from that byte on.
"""

import itertools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verb._utf8 import Utf8Validator, validate_utf8

VALID = "valid"
# A prefix of valid UTF-8 that ends inside a code point: not a valid text, but not failed either.
INCOMPLETE = "incomplete"


def decodes(data):
    """Python's verdict: strict decoding succeeds."""
    try:
        bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Reference validator (oracle), from Unicode Table 3-7 "Well-Formed UTF-8 Byte Sequences".
# --------------------------------------------------------------------------------------------

CONT = (0x80, 0xBF)
# For each lead byte of a multi-byte sequence: the allowed range of each byte that follows it.
# Bytes 80..C1 and F5..FF lead nothing.
TABLE_3_7 = {}
for _b in range(0xC2, 0xE0):
    TABLE_3_7[_b] = (CONT,)
TABLE_3_7[0xE0] = ((0xA0, 0xBF), CONT)
for _b in range(0xE1, 0xED):
    TABLE_3_7[_b] = (CONT, CONT)
TABLE_3_7[0xED] = ((0x80, 0x9F), CONT)
for _b in (0xEE, 0xEF):
    TABLE_3_7[_b] = (CONT, CONT)
TABLE_3_7[0xF0] = ((0x90, 0xBF), CONT, CONT)
for _b in (0xF1, 0xF2, 0xF3):
    TABLE_3_7[_b] = (CONT, CONT, CONT)
TABLE_3_7[0xF4] = ((0x80, 0x8F), CONT, CONT)


def reference(data):
    """Return the expected outcome for `data`: VALID, INCOMPLETE, or the index of the first byte
    at which the input stops being a prefix of any valid UTF-8 (where fail-fast must trip)."""
    i, n = 0, len(data)
    while i < n:
        lead = data[i]
        if lead < 0x80:
            i += 1
            continue
        tail = TABLE_3_7.get(lead)
        if tail is None:
            return i
        for k, (lo, hi) in enumerate(tail, 1):
            if i + k == n:
                return INCOMPLETE
            if not lo <= data[i + k] <= hi:
                return i + k
        i += 1 + len(tail)
    return VALID


# One byte from each 16-byte block of the continuation range: every range in Table 3-7 is a union
# of such blocks, so these completions (of up to the 3 missing bytes) find a valid extension of a
# prefix whenever there is one.
_COMPLETIONS = [
    bytes(c) for k in range(4) for c in itertools.product((0x80, 0x90, 0xA0, 0xB0), repeat=k)
]


def extendable(prefix):
    """Whether some valid UTF-8 text starts with `prefix`, judged by bytes.decode alone."""
    return any(decodes(prefix + c) for c in _COMPLETIONS)


# --------------------------------------------------------------------------------------------
# Checks of verb against an expected outcome.
# --------------------------------------------------------------------------------------------


def whole(data):
    v = Utf8Validator()
    ok = v.feed(data)
    return ok, v.complete, v.failed


def expected_state(expect):
    """(feed result, complete, failed) after feeding all of an input with this outcome."""
    if expect == VALID:
        return True, True, False
    if expect == INCOMPLETE:
        return True, False, False
    return False, False, True


def check_whole(data, expect):
    assert validate_utf8(data) is (expect == VALID)
    assert whole(data) == expected_state(expect)


def check_byte_by_byte(data, expect):
    """Feed one byte at a time: feed is True exactly before the failing byte (fail fast)."""
    fail = expect if isinstance(expect, int) else len(data)
    v = Utf8Validator()
    results = [v.feed(data[i : i + 1]) for i in range(len(data))]
    assert results == [i < fail for i in range(len(data))]
    assert (v.complete, v.failed) == expected_state(expect)[1:]


def check_splits(data, expect):
    """Split into two pieces at every position: same verdict; failure shows at the right piece."""
    fail = expect if isinstance(expect, int) else len(data)
    final = expected_state(expect)
    for cut in range(len(data) + 1):
        v = Utf8Validator()
        first = v.feed(data[:cut])
        assert first is (cut <= fail), cut
        assert v.feed(data[cut:]) is final[0], cut
        assert (v.complete, v.failed) == final[1:], cut


def check_fail_fast_chunks(data, expect):
    """Whatever precedes the failing byte is accepted; the chunk that holds it is rejected, also
    when it is the chunk's last byte (kernels that work in blocks must still see it)."""
    if not isinstance(expect, int):
        return
    v = Utf8Validator()
    assert v.feed(data[:expect]) is True
    assert v.feed(data[expect : expect + 1]) is False
    v = Utf8Validator()
    assert v.feed(data[: expect + 1]) is False
    assert v.failed


def check_all(data, expect):
    check_whole(data, expect)
    check_byte_by_byte(data, expect)
    check_splits(data, expect)
    check_fail_fast_chunks(data, expect)


# --------------------------------------------------------------------------------------------
# Markus Kuhn, UTF-8 decoder capability and stress test. Each case: (section and title, bytes,
# expected outcome). An int outcome is the index of the first byte that cannot be valid there.
# Kuhn's file shows most sequences between quotes; the bare sequence is the case here, and
# test_kuhn_embedded puts each one back into text.
# --------------------------------------------------------------------------------------------

KUHN = [
    # 1  Some correct UTF-8 text
    ("1 kosme", b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", VALID),
    # 2.1  First possible sequence of a certain length
    ("2.1.1 1 byte U+0000", b"\x00", VALID),
    ("2.1.2 2 bytes U+0080", b"\xc2\x80", VALID),
    ("2.1.3 3 bytes U+0800", b"\xe0\xa0\x80", VALID),
    ("2.1.4 4 bytes U+10000", b"\xf0\x90\x80\x80", VALID),
    ("2.1.5 5 bytes U-200000", b"\xf8\x88\x80\x80\x80", 0),
    ("2.1.6 6 bytes U-4000000", b"\xfc\x84\x80\x80\x80\x80", 0),
    # 2.2  Last possible sequence of a certain length
    ("2.2.1 1 byte U+007F", b"\x7f", VALID),
    ("2.2.2 2 bytes U+07FF", b"\xdf\xbf", VALID),
    ("2.2.3 3 bytes U+FFFF", b"\xef\xbf\xbf", VALID),
    ("2.2.4 4 bytes U-1FFFFF", b"\xf7\xbf\xbf\xbf", 0),
    ("2.2.5 5 bytes U-3FFFFFF", b"\xfb\xbf\xbf\xbf\xbf", 0),
    ("2.2.6 6 bytes U-7FFFFFFF", b"\xfd\xbf\xbf\xbf\xbf\xbf", 0),
    # 2.3  Other boundary conditions
    ("2.3.1 U+D7FF", b"\xed\x9f\xbf", VALID),
    ("2.3.2 U+E000", b"\xee\x80\x80", VALID),
    ("2.3.3 U+FFFD", b"\xef\xbf\xbd", VALID),
    ("2.3.4 U+10FFFF", b"\xf4\x8f\xbf\xbf", VALID),
    ("2.3.5 U+110000", b"\xf4\x90\x80\x80", 1),
    # 3.1  Unexpected continuation bytes
    ("3.1.1 first continuation byte", b"\x80", 0),
    ("3.1.2 last continuation byte", b"\xbf", 0),
    ("3.1.3 2 continuation bytes", b"\x80\xbf", 0),
    ("3.1.4 3 continuation bytes", b"\x80\xbf\x80", 0),
    ("3.1.5 4 continuation bytes", b"\x80\xbf\x80\xbf", 0),
    ("3.1.6 5 continuation bytes", b"\x80\xbf\x80\xbf\x80", 0),
    ("3.1.7 6 continuation bytes", b"\x80\xbf\x80\xbf\x80\xbf", 0),
    ("3.1.8 7 continuation bytes", b"\x80\xbf\x80\xbf\x80\xbf\x80", 0),
    ("3.1.9 all 64 continuation bytes", bytes(range(0x80, 0xC0)), 0),
    # 3.2  Lonely start characters, each followed by a space (C0 and C1 cannot start anything)
    ("3.2.1 all 32 2-byte leads + space", b"".join(bytes([b, 0x20]) for b in range(0xC0, 0xE0)), 0),
    ("3.2.2 all 16 3-byte leads + space", b"".join(bytes([b, 0x20]) for b in range(0xE0, 0xF0)), 1),
    ("3.2.3 all 8 4-byte leads + space", b"".join(bytes([b, 0x20]) for b in range(0xF0, 0xF8)), 1),
    ("3.2.4 all 4 5-byte leads + space", b"\xf8 \xf9 \xfa \xfb ", 0),
    ("3.2.5 all 2 6-byte leads + space", b"\xfc \xfd ", 0),
]
# 3.2, one lead at a time: C2..F4 can start a sequence, so the space is the bad byte.
KUHN += [
    ("3.2 lonely {:02X} + space".format(b), bytes([b, 0x20]), 1 if 0xC2 <= b <= 0xF4 else 0)
    for b in range(0xC0, 0xFE)
]
KUHN += [
    # 3.3  Sequences with last continuation byte missing
    ("3.3.1 2 bytes U+0000", b"\xc0", 0),
    ("3.3.2 3 bytes U+0000", b"\xe0\x80", 1),
    ("3.3.3 4 bytes U+0000", b"\xf0\x80\x80", 1),
    ("3.3.4 5 bytes U+0000", b"\xf8\x80\x80\x80", 0),
    ("3.3.5 6 bytes U+0000", b"\xfc\x80\x80\x80\x80", 0),
    ("3.3.6 2 bytes U+07FF", b"\xdf", INCOMPLETE),
    ("3.3.7 3 bytes U+FFFF", b"\xef\xbf", INCOMPLETE),
    ("3.3.8 4 bytes U-1FFFFF", b"\xf7\xbf\xbf", 0),
    ("3.3.9 5 bytes U-3FFFFFF", b"\xfb\xbf\xbf\xbf", 0),
    ("3.3.10 6 bytes U-7FFFFFFF", b"\xfd\xbf\xbf\xbf\xbf", 0),
    # Not in the file: the valid truncations of 4-byte sequences.
    ("3.3 4 bytes U+10FFFF, last missing", b"\xf4\x8f\xbf", INCOMPLETE),
    ("3.3 4 bytes U+10000, two missing", b"\xf0\x90", INCOMPLETE),
    # 3.4  Concatenation of incomplete sequences (all of 3.3)
    (
        "3.4 concatenation of 3.3",
        b"\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80"
        b"\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf",
        0,
    ),
    # The valid-prefix members of 3.3 concatenated: the second lead is the bad byte.
    ("3.4 concatenation of 3.3.6 and 3.3.7", b"\xdf\xef\xbf", 1),
    # 3.5  Impossible bytes
    ("3.5.1 fe", b"\xfe", 0),
    ("3.5.2 ff", b"\xff", 0),
    ("3.5.3 fe fe ff ff", b"\xfe\xfe\xff\xff", 0),
    # 4.1  Examples of an overlong ASCII character ("/")
    ("4.1.1 U+002F 2 bytes", b"\xc0\xaf", 0),
    ("4.1.2 U+002F 3 bytes", b"\xe0\x80\xaf", 1),
    ("4.1.3 U+002F 4 bytes", b"\xf0\x80\x80\xaf", 1),
    ("4.1.4 U+002F 5 bytes", b"\xf8\x80\x80\x80\xaf", 0),
    ("4.1.5 U+002F 6 bytes", b"\xfc\x80\x80\x80\x80\xaf", 0),
    # 4.2  Maximum overlong sequences
    ("4.2.1 U+007F 2 bytes", b"\xc1\xbf", 0),
    ("4.2.2 U+07FF 3 bytes", b"\xe0\x9f\xbf", 1),
    ("4.2.3 U+FFFF 4 bytes", b"\xf0\x8f\xbf\xbf", 1),
    ("4.2.4 U-1FFFFF 5 bytes", b"\xf8\x87\xbf\xbf\xbf", 0),
    ("4.2.5 U-3FFFFFF 6 bytes", b"\xfc\x83\xbf\xbf\xbf\xbf", 0),
    # 4.3  Overlong representation of the NUL character
    ("4.3.1 U+0000 2 bytes", b"\xc0\x80", 0),
    ("4.3.2 U+0000 3 bytes", b"\xe0\x80\x80", 1),
    ("4.3.3 U+0000 4 bytes", b"\xf0\x80\x80\x80", 1),
    ("4.3.4 U+0000 5 bytes", b"\xf8\x80\x80\x80\x80", 0),
    ("4.3.5 U+0000 6 bytes", b"\xfc\x80\x80\x80\x80\x80", 0),
    # 5.1  Single UTF-16 surrogates
    ("5.1.1 U+D800", b"\xed\xa0\x80", 1),
    ("5.1.2 U+DB7F", b"\xed\xad\xbf", 1),
    ("5.1.3 U+DB80", b"\xed\xae\x80", 1),
    ("5.1.4 U+DBFF", b"\xed\xaf\xbf", 1),
    ("5.1.5 U+DC00", b"\xed\xb0\x80", 1),
    ("5.1.6 U+DF80", b"\xed\xbe\x80", 1),
    ("5.1.7 U+DFFF", b"\xed\xbf\xbf", 1),
    # 5.2  Paired UTF-16 surrogates
    ("5.2.1 U+D800 U+DC00", b"\xed\xa0\x80\xed\xb0\x80", 1),
    ("5.2.2 U+D800 U+DFFF", b"\xed\xa0\x80\xed\xbf\xbf", 1),
    ("5.2.3 U+DB7F U+DC00", b"\xed\xad\xbf\xed\xb0\x80", 1),
    ("5.2.4 U+DB7F U+DFFF", b"\xed\xad\xbf\xed\xbf\xbf", 1),
    ("5.2.5 U+DB80 U+DC00", b"\xed\xae\x80\xed\xb0\x80", 1),
    ("5.2.6 U+DB80 U+DFFF", b"\xed\xae\x80\xed\xbf\xbf", 1),
    ("5.2.7 U+DBFF U+DC00", b"\xed\xaf\xbf\xed\xb0\x80", 1),
    ("5.2.8 U+DBFF U+DFFF", b"\xed\xaf\xbf\xed\xbf\xbf", 1),
    # 5.3  Noncharacter code positions: well-formed UTF-8, to be accepted
    ("5.3.1 U+FFFE", b"\xef\xbf\xbe", VALID),
    ("5.3.2 U+FFFF", b"\xef\xbf\xbf", VALID),
    ("5.3.3 U+FDD0 .. U+FDEF", b"".join(b"\xef\xb7" + bytes([b]) for b in range(0x90, 0xB0)), VALID),
    (
        "5.3.4 U+nFFFE U+nFFFF, n = 1..10 (hex)",
        b"\xf0\x9f\xbf\xbe\xf0\x9f\xbf\xbf\xf0\xaf\xbf\xbe\xf0\xaf\xbf\xbf"
        b"\xf0\xbf\xbf\xbe\xf0\xbf\xbf\xbf\xf1\x8f\xbf\xbe\xf1\x8f\xbf\xbf"
        b"\xf1\x9f\xbf\xbe\xf1\x9f\xbf\xbf\xf1\xaf\xbf\xbe\xf1\xaf\xbf\xbf"
        b"\xf1\xbf\xbf\xbe\xf1\xbf\xbf\xbf\xf2\x8f\xbf\xbe\xf2\x8f\xbf\xbf"
        b"\xf2\x9f\xbf\xbe\xf2\x9f\xbf\xbf\xf2\xaf\xbf\xbe\xf2\xaf\xbf\xbf"
        b"\xf2\xbf\xbf\xbe\xf2\xbf\xbf\xbf\xf3\x8f\xbf\xbe\xf3\x8f\xbf\xbf"
        b"\xf3\x9f\xbf\xbe\xf3\x9f\xbf\xbf\xf3\xaf\xbf\xbe\xf3\xaf\xbf\xbf"
        b"\xf3\xbf\xbf\xbe\xf3\xbf\xbf\xbf\xf4\x8f\xbf\xbe\xf4\x8f\xbf\xbf",
        VALID,
    ),
]

# The code points that the named cases of sections 2 and 5 encode (surrogates included), to check
# the literals above against Python's encoder.
KUHN_CODE_POINTS = {
    "2.1.1 1 byte U+0000": [0x0],
    "2.1.2 2 bytes U+0080": [0x80],
    "2.1.3 3 bytes U+0800": [0x800],
    "2.1.4 4 bytes U+10000": [0x10000],
    "2.2.1 1 byte U+007F": [0x7F],
    "2.2.2 2 bytes U+07FF": [0x7FF],
    "2.2.3 3 bytes U+FFFF": [0xFFFF],
    "2.3.1 U+D7FF": [0xD7FF],
    "2.3.2 U+E000": [0xE000],
    "2.3.3 U+FFFD": [0xFFFD],
    "2.3.4 U+10FFFF": [0x10FFFF],
    "5.1.1 U+D800": [0xD800],
    "5.1.2 U+DB7F": [0xDB7F],
    "5.1.3 U+DB80": [0xDB80],
    "5.1.4 U+DBFF": [0xDBFF],
    "5.1.5 U+DC00": [0xDC00],
    "5.1.6 U+DF80": [0xDF80],
    "5.1.7 U+DFFF": [0xDFFF],
    "5.2.1 U+D800 U+DC00": [0xD800, 0xDC00],
    "5.2.2 U+D800 U+DFFF": [0xD800, 0xDFFF],
    "5.2.3 U+DB7F U+DC00": [0xDB7F, 0xDC00],
    "5.2.4 U+DB7F U+DFFF": [0xDB7F, 0xDFFF],
    "5.2.5 U+DB80 U+DC00": [0xDB80, 0xDC00],
    "5.2.6 U+DB80 U+DFFF": [0xDB80, 0xDFFF],
    "5.2.7 U+DBFF U+DC00": [0xDBFF, 0xDC00],
    "5.2.8 U+DBFF U+DFFF": [0xDBFF, 0xDFFF],
    "5.3.1 U+FFFE": [0xFFFE],
    "5.3.2 U+FFFF": [0xFFFF],
    "5.3.3 U+FDD0 .. U+FDEF": list(range(0xFDD0, 0xFDF0)),
    "5.3.4 U+nFFFE U+nFFFF, n = 1..10 (hex)": [
        (n << 16) | low for n in range(1, 0x11) for low in (0xFFFE, 0xFFFF)
    ],
}

KUHN_IDS = [case[0] for case in KUHN]
kuhn_cases = pytest.mark.parametrize("name,data,expect", KUHN, ids=KUHN_IDS)


def test_kuhn_case_names_are_unique():
    assert len(set(KUHN_IDS)) == len(KUHN_IDS)
    assert set(KUHN_CODE_POINTS) <= set(KUHN_IDS)


@pytest.mark.parametrize("name", sorted(KUHN_CODE_POINTS))
def test_kuhn_literals_encode_their_code_points(name):
    data = dict((case[0], case[1]) for case in KUHN)[name]
    text = "".join(map(chr, KUHN_CODE_POINTS[name]))
    assert data == text.encode("utf-8", "surrogatepass")


@kuhn_cases
def test_kuhn_expectation_agrees_with_python(name, data, expect):
    assert decodes(data) is (expect == VALID)


@kuhn_cases
def test_kuhn_expectation_agrees_with_reference(name, data, expect):
    assert reference(data) == expect


@kuhn_cases
def test_kuhn_whole(name, data, expect):
    check_whole(data, expect)


@kuhn_cases
def test_kuhn_byte_by_byte(name, data, expect):
    check_byte_by_byte(data, expect)


@kuhn_cases
def test_kuhn_split_in_two(name, data, expect):
    check_splits(data, expect)


@kuhn_cases
def test_kuhn_fail_fast_chunks(name, data, expect):
    check_fail_fast_chunks(data, expect)


PADDINGS = [
    b"",
    b'"',
    b"x" * 7,
    b"ASCII text, long enough to fill a few words",
    "кириллица ".encode(),
    "漢字かな".encode(),
    "🙂".encode(),
    ("abc" + "дé😀中" * 9).encode(),
]


@kuhn_cases
@pytest.mark.parametrize("before", PADDINGS, ids=range(len(PADDINGS)))
def test_kuhn_embedded(name, data, expect, before):
    """The case inside text, as in Kuhn's file ("..." quotes and more): the same verdict, the
    failure shifted by the text before it; an incomplete sequence fails at the closing text."""
    for after in (b"", b'"', b" and the rest of the line" * 3):
        text = before + data + after
        if isinstance(expect, int):
            expect_here = len(before) + expect
        elif expect == INCOMPLETE and after:
            expect_here = len(before) + len(data)
        else:
            expect_here = expect
        assert reference(text) == expect_here
        check_whole(text, expect_here)
        check_fail_fast_chunks(text, expect_here)


@pytest.mark.parametrize("name,data,expect", KUHN[:1] + KUHN[-4:], ids=KUHN_IDS[:1] + KUHN_IDS[-4:])
def test_kuhn_valid_repeated(name, data, expect):
    """Valid cases back to back, long enough for any block-wise fast path, at every offset."""
    for lead in range(16):
        text = b"." * lead + data * (200 // len(data) + 1)
        check_whole(text, VALID)
        v = Utf8Validator()
        for i in range(0, len(text), 13):
            assert v.feed(text[i : i + 13])
        assert v.complete


# --------------------------------------------------------------------------------------------
# The Python API.
# --------------------------------------------------------------------------------------------


def test_empty_input_is_valid():
    assert validate_utf8(b"") is True
    v = Utf8Validator()
    assert (v.complete, v.failed) == (True, False)
    assert v.feed(b"") is True
    assert (v.complete, v.failed) == (True, False)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview], ids=lambda t: t.__name__)
def test_accepts_bytes_like(wrap):
    assert validate_utf8(wrap("é€😀".encode())) is True
    assert validate_utf8(wrap(b"\xc3")) is False
    v = Utf8Validator()
    assert v.feed(wrap(b"\xe2\x82")) is True
    assert v.feed(wrap(b"\xac")) is True
    assert v.complete


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview], ids=lambda t: t.__name__)
@pytest.mark.parametrize("size", [(1 << 16) - 1, 1 << 16, 1 << 17])
def test_large_bytes_like(wrap, size):
    """Around the size from which the GIL is released during validation."""
    text = ("€" * size).encode()[:size]
    assert validate_utf8(wrap(text)) is (size % 3 == 0)
    v = Utf8Validator()
    assert v.feed(wrap(text)) is True
    assert v.complete is (size % 3 == 0)
    assert v.feed(wrap(b"\xff" + text)) is False


def test_accepts_a_slice_of_a_memoryview():
    buf = memoryview(b"xx\xe2\x82\xacyy")
    assert validate_utf8(buf[2:5]) is True
    assert validate_utf8(buf[2:4]) is False


def test_rejects_a_buffer_that_is_not_contiguous():
    with pytest.raises(BufferError):
        validate_utf8(memoryview(b"abcd")[::2])


def test_rejects_str():
    with pytest.raises(TypeError):
        validate_utf8("text")
    with pytest.raises(TypeError):
        Utf8Validator().feed("text")


def test_incomplete_is_neither_complete_nor_failed():
    v = Utf8Validator()
    assert v.feed(b"price: \xe2\x82") is True
    assert (v.complete, v.failed) == (False, False)
    assert v.feed(b"") is True
    assert (v.complete, v.failed) == (False, False)
    assert v.feed(b"\xac") is True
    assert (v.complete, v.failed) == (True, False)


def test_failure_is_sticky_until_reset():
    v = Utf8Validator()
    assert v.feed(b"ok \xff") is False
    assert (v.complete, v.failed) == (False, True)
    assert v.feed(b"fine text") is False
    assert v.feed(b"") is False
    assert v.failed
    v.reset()
    assert (v.complete, v.failed) == (True, False)
    assert v.feed("fine text é".encode()) is True
    assert v.complete


def test_reset_drops_a_pending_sequence():
    v = Utf8Validator()
    v.feed(b"\xf0\x9f")
    v.reset()
    assert v.feed(b"\x98\x80") is False


def test_validators_are_independent():
    a, b = Utf8Validator(), Utf8Validator()
    a.feed(b"\xe2")
    assert b.feed(b"x") is True and b.complete
    assert a.feed(b"\x82\xac") is True and a.complete


# --------------------------------------------------------------------------------------------
# The reference validator against bytes.decode.
# --------------------------------------------------------------------------------------------


def check_reference(data):
    expect = reference(data)
    assert decodes(data) is (expect == VALID)
    if isinstance(expect, int):
        assert extendable(data[:expect])
        assert not extendable(data[: expect + 1])
    else:
        assert extendable(data)


# Atoms that make interesting inputs when strung together: pieces of sequences and boundaries.
ATOMS = [
    b"a", b" ", b"\x00", b"\x7f", b"\x80", b"\x8f", b"\x90", b"\x9f", b"\xa0", b"\xbf",
    b"\xc0", b"\xc1", b"\xc2", b"\xdf", b"\xe0", b"\xe1", b"\xec", b"\xed", b"\xee", b"\xef",
    b"\xf0", b"\xf1", b"\xf3", b"\xf4", b"\xf5", b"\xf7", b"\xf8", b"\xfe", b"\xff",
    b"\xc2\x80", b"\xdf\xbf", b"\xe0\xa0\x80", b"\xed\x9f\xbf", b"\xed\xa0\x80", b"\xef\xbf\xbf",
    b"\xf0\x90\x80\x80", b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf0\x8f\xbf\xbf",
    "é".encode(), "€".encode(), "😀".encode(), b"ASCII run, 16+ bytes long",
]

texts = st.text(st.characters(codec="utf-8"), max_size=40).map(lambda s: s.encode("utf-8"))


@st.composite
def mutated_texts(draw):
    """Valid text with one byte replaced, inserted or removed: invalid near valid code."""
    data = bytearray(draw(texts.filter(bool)))
    i = draw(st.integers(0, len(data) - 1))
    how = draw(st.sampled_from(["replace", "insert", "delete"]))
    if how == "delete":
        del data[i]
    elif how == "insert":
        data.insert(i, draw(st.integers(0, 255)))
    else:
        data[i] = draw(st.integers(0, 255))
    return bytes(data)


inputs = st.one_of(
    st.binary(max_size=40),
    texts,
    mutated_texts(),
    st.lists(st.sampled_from(ATOMS), max_size=12).map(b"".join),
)

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(inputs)
def test_reference_agrees_with_python(data):
    check_reference(data)


def test_reference_agrees_with_python_on_kuhn_and_atoms():
    for _, data, _ in KUHN:
        check_reference(data)
    for a, b in itertools.product(ATOMS, repeat=2):
        check_reference(a + b)


# --------------------------------------------------------------------------------------------
# Properties: verb against the reference and bytes.decode.
# --------------------------------------------------------------------------------------------


def chunked(data, cuts):
    cuts = sorted(set(c % (len(data) + 1) for c in cuts))
    bounds = [0] + cuts + [len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def feed_chunks(chunks):
    v = Utf8Validator()
    results = [v.feed(c) for c in chunks]
    return results, v


@PROPERTY
@given(inputs, st.lists(st.integers(0, 1000), max_size=8))
def test_random_input_random_chunks(data, cuts):
    expect = reference(data)
    assert validate_utf8(data) is decodes(data) is (expect == VALID)
    chunks = chunked(data, cuts)
    results, v = feed_chunks(chunks)
    fail = expect if isinstance(expect, int) else len(data)
    start = 0
    for chunk, ok in zip(chunks, results):
        # True while the failing byte lies beyond this chunk: fail fast at chunk granularity.
        assert ok is (start + len(chunk) <= fail)
        start += len(chunk)
    assert (v.complete, v.failed) == expected_state(expect)[1:]


@PROPERTY
@given(inputs)
def test_random_input_byte_by_byte_and_splits(data):
    expect = reference(data)
    check_byte_by_byte(data, expect)
    check_splits(data, expect)


@PROPERTY
@given(st.text(st.characters(codec="utf-8"), max_size=300), st.lists(st.integers(0, 2000), max_size=10))
def test_random_text_is_valid_in_any_chunks(text, cuts):
    data = text.encode("utf-8")
    assert validate_utf8(data) is True
    results, v = feed_chunks(chunked(data, cuts))
    assert all(results)
    assert v.complete


@PROPERTY
@given(st.text(st.characters(codec="utf-8"), min_size=1, max_size=300), st.data())
def test_random_text_truncated(text, data):
    """Cut inside a code point: a valid prefix, not complete; the remainder completes it."""
    raw = text.encode("utf-8")
    cut = data.draw(st.integers(0, len(raw)))
    expect = reference(raw[:cut])
    assert expect in (VALID, INCOMPLETE)
    assert (expect == VALID) is decodes(raw[:cut]) is validate_utf8(raw[:cut])
    v = Utf8Validator()
    assert v.feed(raw[:cut]) is True
    assert (v.complete, v.failed) == expected_state(expect)[1:]
    assert v.feed(raw[cut:]) is True
    assert v.complete


# --------------------------------------------------------------------------------------------
# Exhaustive and sampled short sequences.
# --------------------------------------------------------------------------------------------


def mismatches(sequences):
    """Sequences on which verb (whole, and byte by byte), the reference and bytes.decode do not
    all agree."""
    bad = []
    for data in sequences:
        expect = reference(data)
        state = expected_state(expect)
        if decodes(data) is not (expect == VALID) or validate_utf8(data) is not (expect == VALID):
            bad.append(data)
            continue
        v = Utf8Validator()
        if v.feed(data) is not state[0] or (v.complete, v.failed) != state[1:]:
            bad.append(data)
            continue
        fail = expect if isinstance(expect, int) else len(data)
        v = Utf8Validator()
        if [v.feed(data[i : i + 1]) for i in range(len(data))] != [i < fail for i in range(len(data))]:
            bad.append(data)
    return bad


def test_all_1_and_2_byte_sequences():
    one = [bytes([a]) for a in range(256)]
    two = [bytes([a, b]) for a in range(256) for b in range(256)]
    assert mismatches(one) == []
    assert mismatches(two) == []
    # Sanity of the space: 128 ASCII bytes; 30 * 64 two-byte code points plus 128 * 128 ASCII pairs.
    assert sum(map(decodes, one)) == 128
    assert sum(map(decodes, two)) == 30 * 64 + 128 * 128


# Both ends of every class of bytes Table 3-7 distinguishes.
EDGES = [
    0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
    0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF,
]


def test_all_3_and_4_byte_sequences_of_class_edges():
    assert mismatches(bytes(s) for s in itertools.product(EDGES, repeat=3)) == []
    assert mismatches(bytes(s) for s in itertools.product(EDGES, repeat=4)) == []


def test_sampled_3_and_4_byte_sequences():
    """Random 3- and 4-byte sequences, with leads and continuation bytes over-represented."""
    rng = random.Random(6455)
    lead = list(range(0xE0, 0xF8))
    cont = list(range(0x80, 0xC0))
    anything = list(range(256))

    def pick(pool):
        return rng.choice(pool if rng.random() < 0.85 else anything)

    samples = [
        bytes([pick(lead)] + [pick(cont) for _ in range(k - 1)])
        for k in (3, 4)
        for _ in range(30000)
    ]
    assert mismatches(samples) == []


def test_every_3_byte_sequence_of_each_lead_with_edge_last_byte():
    """Each 3-byte lead with every second byte, and an edge (or any) third byte."""
    seqs = [bytes([a, b, c]) for a in range(0xE0, 0xF0) for b in range(256) for c in (0x7F, 0x80, 0xBF, 0xC0)]
    seqs += [bytes([a, b, c]) for a in range(0xE0, 0xF0) for b in (0x80, 0x9F, 0xA0, 0xBF) for c in range(256)]
    assert mismatches(seqs) == []


def test_every_4_byte_lead_and_second_byte():
    seqs = [
        bytes([a, b, c, d])
        for a in range(0xF0, 0xF8)
        for b in range(256)
        for c, d in ((0x80, 0x80), (0xBF, 0xBF), (0x80, 0x7F), (0xC0, 0x80))
    ]
    assert mismatches(seqs) == []


# --------------------------------------------------------------------------------------------
# Longer text: every position relative to blocks, every kind of damage.
# --------------------------------------------------------------------------------------------

MIXED = (
    "Hello, мир! 漢字 and emoji 😀🎉 — naïve café, Ελληνικά, עברית, 日本語のテキスト. "
    "Plain ASCII for a while so that a word-at-a-time path gets going, then: ü ß € 𝄞 ✓"
).encode("utf-8")


@pytest.mark.parametrize("bad", [0x80, 0xBF, 0xC0, 0xC2, 0xE0, 0xED, 0xF0, 0xF4, 0xF5, 0xFF, 0x20])
def test_mixed_text_damaged_at_every_position(bad):
    for i in range(len(MIXED)):
        data = MIXED[:i] + bytes([bad]) + MIXED[i + 1 :]
        expect = reference(data)
        assert decodes(data) is (expect == VALID)
        check_whole(data, expect)
        check_fail_fast_chunks(data, expect)


ASCII_RUN = b"A long run of plain ASCII text, as fast paths skip it in big steps. " * 5


@pytest.mark.parametrize(
    "bad",
    [b"\x80", b"\xc1", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xff", "€".encode()],
    ids=lambda b: b.hex(),
)
def test_ascii_run_with_one_sequence_at_every_position(bad):
    """A long ASCII run with a sequence (invalid, incomplete or valid) at every position."""
    for i in range(len(ASCII_RUN)):
        data = ASCII_RUN[:i] + bad + ASCII_RUN[i:]
        expect = reference(data)
        check_whole(data, expect)
        check_fail_fast_chunks(data, expect)
        check_whole(ASCII_RUN[:i] + bad, reference(ASCII_RUN[:i] + bad))


def test_sequence_interrupted_by_ascii():
    """A sequence cut by ASCII and finished after it: invalid at the first ASCII byte, wherever
    the pieces fall relative to blocks (a fast path must not skip ASCII inside a sequence)."""
    for part, rest in [
        (b"\xc3", b"\xa9"),
        (b"\xe2", b"\x82\xac"),
        (b"\xe2\x82", b"\xac"),
        (b"\xf0", b"\x9f\x98\x80"),
        (b"\xf0\x9f", b"\x98\x80"),
        (b"\xf0\x9f\x98", b"\x80"),
    ]:
        assert reference(part + rest) == VALID
        for before in range(40):
            for gap in range(1, 40):
                data = b"a" * before + part + b"b" * gap + rest
                check_whole(data, before + len(part))
                check_fail_fast_chunks(data, before + len(part))


def test_mixed_text_truncated_at_every_position():
    for i in range(len(MIXED) + 1):
        expect = reference(MIXED[:i])
        assert expect in (VALID, INCOMPLETE)
        check_whole(MIXED[:i], expect)


def test_mixed_text_in_chunks_of_every_size():
    for size in range(1, 70):
        v = Utf8Validator()
        assert all(v.feed(MIXED[i : i + size]) for i in range(0, len(MIXED), size))
        assert v.complete


def test_long_inputs_with_one_error():
    """Large buffers (the size of benchmark data) with the error near the start, middle, end."""
    for unit in (b"ascii only text ", "кириллица 漢字 😀 ".encode()):
        base = unit * (100_000 // len(unit))
        assert validate_utf8(base) is True
        for where in (0, 1, 17, len(base) // 2, len(base) - 5, len(base) - 1):
            for bad in (b"\xff", b"\xed\xa0\x80", b"\xc0\xaf"):
                data = base[:where] + bad + base[where:]
                expect = reference(data)
                assert isinstance(expect, int)
                check_whole(data, expect)
                check_fail_fast_chunks(data, expect)
        assert validate_utf8(base + b"\xe2\x82") is False
        v = Utf8Validator()
        assert v.feed(base + b"\xe2\x82") is True
        assert (v.complete, v.failed) == (False, False)
