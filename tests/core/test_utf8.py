"""Tests of the incremental UTF-8 validator (verb.core._utf8).

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

from verb.core._utf8 import Utf8Validator, validate_utf8

from support.kuhn_cases import INCOMPLETE, KUHN, KUHN_CODE_POINTS, VALID


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
