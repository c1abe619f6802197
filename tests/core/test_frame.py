"""The compiled frame core (verb.core._frame): parser rules, serializer, and a differential test
against the pure-Python oracle in tests/support/oracle.py."""

import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import oracle
from support.oracle import build_frame
from verb.core import _frame
from verb.core.events import BinaryMessage, Close, Ping, Pong, ProtocolError, TextMessage

KEY = bytes.fromhex("37fa213d")


def parse_chunked(data, chunks, **kw):
    """Feed `data` cut at the given offsets; returns the events."""
    collector = _frame.EventCollector()
    parser = _frame.FrameParser(collector, **kw)
    last = 0
    for cut in sorted(chunks) + [len(data)]:
        parser.feed(data[last:cut])
        last = cut
    return collector.events


def parse_all_ways(data, **kw):
    """Events for `data` fed whole, one byte at a time and in random pieces; asserts they agree."""
    whole = _frame.parse(data, **kw)
    bytewise = parse_chunked(data, range(1, len(data)), **kw)
    rnd = random.Random(len(data))
    pieces = parse_chunked(data, rnd.sample(range(1, max(len(data), 2)), min(5, len(data) // 2)),
                           **kw)
    assert bytewise == whole
    assert pieces == whole
    return whole


def error_code(data, **kw):
    events = parse_all_ways(data, **kw)
    assert events and isinstance(events[-1], ProtocolError), events
    return events[-1].code


# ---------------------------------------------------------------------------------------------
# RFC 6455 section 5.7 examples, verbatim


def test_rfc_single_frame_unmasked_text():
    assert parse_all_ways(bytes.fromhex("810548656c6c6f"), server=False) == [TextMessage("Hello")]


def test_rfc_single_frame_masked_text():
    assert parse_all_ways(bytes.fromhex("818537fa213d7f9f4d5158")) == [TextMessage("Hello")]


def test_rfc_fragmented_unmasked_text():
    data = bytes.fromhex("010348656c") + bytes.fromhex("80026c6f")
    assert parse_all_ways(data, server=False) == [TextMessage("Hello")]


def test_rfc_unmasked_ping_and_masked_pong():
    assert parse_all_ways(bytes.fromhex("890548656c6c6f"), server=False) == [Ping(b"Hello")]
    assert parse_all_ways(bytes.fromhex("8a8537fa213d7f9f4d5158")) == [Pong(b"Hello")]


def test_rfc_256_bytes_binary_16_bit_length():
    payload = bytes(range(256))
    data = bytes.fromhex("827e0100") + payload
    assert parse_all_ways(data, server=False) == [BinaryMessage(payload)]


def test_rfc_64_kib_binary_64_bit_length():
    payload = os.urandom(65536)
    data = bytes.fromhex("827f0000000000010000") + payload
    assert _frame.parse(data, server=False) == [BinaryMessage(payload)]
    assert parse_chunked(data, range(1, 20), server=False) == [BinaryMessage(payload)]


def test_rfc_examples_from_our_serializer():
    assert _frame.encode_frame(_frame.TEXT, "Hello") == bytes.fromhex("810548656c6c6f")
    assert _frame.encode_frame(_frame.TEXT, b"Hello", mask=KEY) == bytes.fromhex(
        "818537fa213d7f9f4d5158")
    assert _frame.encode_message("Hello", fragment_size=3) == [
        bytes.fromhex("010348656c"), bytes.fromhex("80026c6f")]
    assert _frame.encode_frame(_frame.PING, b"Hello") == bytes.fromhex("890548656c6c6f")
    assert _frame.encode_frame(_frame.PONG, b"Hello", mask=KEY) == bytes.fromhex(
        "8a8537fa213d7f9f4d5158")
    assert _frame.encode_frame(_frame.BINARY, bytes(256))[:4] == bytes.fromhex("827e0100")
    assert _frame.encode_frame(_frame.BINARY, bytes(65536))[:10] == bytes.fromhex(
        "827f0000000000010000")


# ---------------------------------------------------------------------------------------------
# Rules a server enforces, each with its close code


@pytest.mark.parametrize("rsv", [1, 2, 4, 3, 7])
def test_rsv_bits_without_extension_close_1002(rsv):
    assert error_code(build_frame(1, b"hi", rsv=rsv, key=KEY)) == 1002


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_reserved_opcodes_close_1002(opcode):
    assert error_code(build_frame(opcode, b"", key=KEY)) == 1002


def test_unmasked_client_frame_closes_1002():
    assert error_code(build_frame(1, b"hello")) == 1002


def test_masked_server_frame_closes_1002_on_client_side():
    assert error_code(build_frame(1, b"hello", key=KEY), server=False) == 1002


def test_control_frame_over_125_bytes_closes_1002():
    assert error_code(build_frame(9, bytes(126), key=KEY)) == 1002
    assert parse_all_ways(build_frame(9, bytes(125), key=KEY)) == [Ping(bytes(125))]


@pytest.mark.parametrize("opcode", [8, 9, 10])
def test_fragmented_control_frame_closes_1002(opcode):
    assert error_code(build_frame(opcode, b"", fin=False, key=KEY)) == 1002


def test_continuation_without_message_closes_1002():
    assert error_code(build_frame(0, b"x", key=KEY)) == 1002


@pytest.mark.parametrize("opcode", [1, 2])
def test_new_data_frame_inside_fragmented_message_closes_1002(opcode):
    data = build_frame(1, b"a", fin=False, key=KEY) + build_frame(opcode, b"b", key=KEY)
    assert error_code(data) == 1002


def test_64_bit_length_with_top_bit_closes_1002():
    data = bytes([0x82, 0xFF]) + (1 << 63).to_bytes(8, "big") + KEY
    assert error_code(data, max_payload_length=None) == 1002


def test_close_payload_of_one_byte_closes_1002():
    assert error_code(build_frame(8, b"\x03", key=KEY)) == 1002


VALID_CLOSE_CODES = set(range(1000, 1004)) | set(range(1007, 1015)) | set(range(3000, 5000))


def test_close_code_validity_table():
    for code in range(0, 6000):
        assert _frame.valid_close_code(code) == (code in VALID_CLOSE_CODES), code
    for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535):
        assert error_code(build_frame(8, code.to_bytes(2, "big"), key=KEY)) == 1002
    for code in (1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999):
        frame = build_frame(8, code.to_bytes(2, "big") + "bye ✓".encode(), key=KEY)
        assert parse_all_ways(frame) == [Close(code, "bye ✓")]


def test_close_without_payload_reports_1005():
    assert parse_all_ways(build_frame(8, b"", key=KEY)) == [Close(1005, "")]


def test_invalid_utf8_in_text_closes_1007():
    assert error_code(build_frame(1, b"\xce\xba\xe1\xbd\xb9\xed\xa0\x80", key=KEY)) == 1007


def test_invalid_utf8_in_close_reason_closes_1007():
    assert error_code(build_frame(8, b"\x03\xe8\xff\xfe", key=KEY)) == 1007


def test_text_message_ending_inside_code_point_closes_1007():
    data = build_frame(1, "€".encode()[:2], fin=False, key=KEY) + build_frame(0, b"", key=KEY)
    assert error_code(data) == 1007


def test_code_point_split_across_frames_is_carried():
    text = "κόσμε €𝄞"
    raw = text.encode()
    for cut in range(1, len(raw)):
        data = build_frame(1, raw[:cut], fin=False, key=KEY) + build_frame(0, raw[cut:], key=KEY)
        assert parse_all_ways(data) == [TextMessage(text)]


def test_invalid_utf8_fails_fast_inside_an_unfinished_frame():
    # Autobahn 6.4.3: one frame, its bad bytes sent before the rest; the close comes at once.
    payload = "κόσμε".encode() + b"\xf4\x90\x80\x80" + b"edited"
    frame = build_frame(1, payload, key=KEY)
    collector = _frame.EventCollector()
    parser = _frame.FrameParser(collector)
    head = len(frame) - len(payload)
    valid = len("κόσμε".encode())
    parser.feed(frame[:head + valid + 1])  # F4 alone may still start a valid code point
    assert collector.events == []
    parser.feed(frame[head + valid + 1:head + valid + 2])  # F4 90 is above U+10FFFF
    assert collector.events == [ProtocolError(1007, "invalid UTF-8 in a text message")]
    assert parser.failed and parser.close_code == 1007


def test_invalid_utf8_fails_fast_in_first_fragment_before_message_ends():
    data = build_frame(1, b"ok\xc0\xaf", fin=False, key=KEY)
    assert parse_all_ways(data) == [ProtocolError(1007, "invalid UTF-8 in a text message")]


def test_frame_over_limit_closes_1009_from_header_alone():
    collector = _frame.EventCollector()
    parser = _frame.FrameParser(collector, max_payload_length=1024)
    parser.feed(build_frame(2, b"", key=KEY, length=1025)[:8])  # header only, no payload
    assert collector.events[-1].code == 1009
    assert parser.buffered == 0


def test_huge_declared_length_closes_1009_without_allocating():
    collector = _frame.EventCollector()
    parser = _frame.FrameParser(collector)
    parser.feed(bytes([0x82, 0xFF]) + ((1 << 63) - 1).to_bytes(8, "big") + KEY + b"x" * 100)
    assert collector.events == [ProtocolError(1009, "message over the 16777216-byte limit")]
    assert parser.buffered == 0


def test_fragmented_message_over_limit_closes_1009_before_buffering_the_frame():
    collector = _frame.EventCollector()
    parser = _frame.FrameParser(collector, max_payload_length=100)
    parser.feed(build_frame(2, bytes(60), fin=False, key=KEY))
    assert parser.buffered == 60
    parser.feed(build_frame(0, b"", fin=False, key=KEY, length=41)[:8])
    assert collector.events == [ProtocolError(1009, "message over the 100-byte limit")]
    assert parser.buffered == 0


def test_message_exactly_at_limit_is_accepted():
    data = build_frame(2, bytes(50), fin=False, key=KEY) + build_frame(0, bytes(50), key=KEY)
    assert parse_all_ways(data, max_payload_length=100) == [BinaryMessage(bytes(100))]


def test_flood_of_one_byte_continuations_past_limit_closes_1009():
    data = build_frame(2, b"x", fin=False, key=KEY)
    data += b"".join(build_frame(0, b"x", fin=False, key=KEY) for _ in range(200))
    events = parse_all_ways(data, max_payload_length=100)
    assert events == [ProtocolError(1009, "message over the 100-byte limit")]


def test_events_before_an_error_are_delivered_first():
    # Autobahn 3.2-3.4 / 5.15: the valid message preceding a bad frame is still echoed.
    data = build_frame(1, b"hello", key=KEY) + build_frame(1, b"bad", rsv=2, key=KEY)
    events = parse_all_ways(data)
    assert events[0] == TextMessage("hello")
    assert events[1].code == 1002 and len(events) == 2


def test_input_after_an_error_is_discarded():
    collector = _frame.EventCollector()
    parser = _frame.FrameParser(collector)
    parser.feed(build_frame(3, b"", key=KEY))
    parser.feed(build_frame(1, b"later", key=KEY))
    assert [type(e) for e in collector.events] == [ProtocolError]
    assert parser.failed and parser.close_code == 1002


def test_input_after_a_close_frame_is_ignored():
    data = build_frame(8, b"\x03\xe8", key=KEY) + build_frame(1, b"after", key=KEY)
    collector = _frame.EventCollector()
    parser = _frame.FrameParser(collector)
    parser.feed(data)
    assert collector.events == [Close(1000, "")]
    assert parser.closed


def test_control_frames_between_fragments():
    data = (build_frame(1, b"Hel", fin=False, key=KEY) + build_frame(9, b"p1", key=KEY)
            + build_frame(0, b"l", fin=False, key=KEY) + build_frame(10, b"p2", key=KEY)
            + build_frame(0, b"o", key=KEY))
    assert parse_all_ways(data) == [Ping(b"p1"), Pong(b"p2"), TextMessage("Hello")]


def test_close_in_the_middle_of_a_fragmented_message_ends_parsing():
    # Autobahn 7.1.5: the message never completes; the close is reported cleanly.
    data = build_frame(1, b"frag1", fin=False, key=KEY) + build_frame(8, b"\x03\xe8", key=KEY)
    assert parse_all_ways(data) == [Close(1000, "")]


def test_empty_messages():
    data = build_frame(1, b"", key=KEY) + build_frame(2, b"", key=KEY)
    data += build_frame(1, b"", fin=False, key=KEY) + build_frame(0, b"", key=KEY)
    assert parse_all_ways(data) == [TextMessage(""), BinaryMessage(b""), TextMessage("")]


def test_many_fragments_reassemble():
    payload = os.urandom(4096)
    data = build_frame(2, payload[:1], fin=False, key=KEY)
    data += b"".join(build_frame(0, payload[i:i + 1], fin=False, key=KEY)
                     for i in range(1, len(payload) - 1))
    data += build_frame(0, payload[-1:], key=KEY)
    assert _frame.parse(data) == [BinaryMessage(payload)]


@pytest.mark.parametrize("size", [300, 200_000, 1024 * 1024, 1024 * 1024 + 1, 3_000_000])
@pytest.mark.parametrize("opcode", [1, 2])
def test_single_frame_message_split_across_reads(size, opcode):
    # Below 1 MiB a single-frame message is gathered at its declared size (binary: in the bytes
    # object handed over); above, the buffer grows as the payload arrives. Both deliver it whole.
    payload = bytes(random.Random(size).choices(b"abcdefgh", k=size))
    message = payload.decode() if opcode == 1 else payload
    data = build_frame(opcode, payload, key=KEY) + build_frame(2, b"next", key=KEY)
    cuts = [3, 9, 17, size // 3, size // 2 + 7, len(data) - 5]
    expected = [TextMessage(message) if opcode == 1 else BinaryMessage(message),
                BinaryMessage(b"next")]
    assert parse_chunked(data, cuts) == expected
    assert _frame.parse(data) == expected


@pytest.mark.parametrize("declared", [1000, 200_000, 1024 * 1024, 16 * 1024 * 1024])
def test_declared_length_under_limit_is_not_allocated_before_it_arrives(declared):
    # A peer declaring much and sending 10 bytes: what is held is what arrived, and the buffer
    # allocated for it is at most 4 times that (or the 256-byte minimum).
    collector = _frame.EventCollector()
    parser = _frame.FrameParser(collector)
    parser.feed(build_frame(2, b"", key=KEY, length=declared)[:14] + b"x" * 10)
    assert parser.buffered == 10 and collector.events == []
    assert parser.allocated <= 256
    parser.feed(b"y" * (declared // 4))  # a quarter more arrives: still bounded by what came
    assert parser.allocated <= 4 * parser.buffered


def test_feed_does_not_modify_the_callers_buffer():
    frame = bytearray(build_frame(1, b"hello", key=KEY))
    before = bytes(frame)
    assert _frame.parse(frame) == [TextMessage("hello")]
    assert frame == before


def test_parser_rejects_bad_limit():
    with pytest.raises(ValueError, match="max_payload_length"):
        _frame.FrameParser(_frame.EventCollector(), max_payload_length=-1)


def test_handler_exception_propagates_from_feed():
    events = _frame.EventCollector()
    events.events = None  # appending to None raises inside the compiled callback
    parser = _frame.FrameParser(events)
    with pytest.raises(AttributeError):
        parser.feed(build_frame(1, b"x", key=KEY))


# ---------------------------------------------------------------------------------------------
# Serializer


@pytest.mark.parametrize("size,header", [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10),
                                         (70000, 10)])
def test_length_encodings_at_boundaries(size, header):
    payload = os.urandom(size)
    frame = _frame.encode_frame(_frame.BINARY, payload)
    assert len(frame) == header + size
    assert _frame.parse(frame, server=False) == [BinaryMessage(payload)]
    masked = _frame.encode_frame(_frame.BINARY, payload, mask=True)
    assert len(masked) == header + 4 + size
    assert _frame.parse(masked) == [BinaryMessage(payload)]
    assert frame == build_frame(2, payload)
    assert _frame.encode_frame(_frame.BINARY, payload, mask=KEY) == build_frame(2, payload,
                                                                                key=KEY)


def test_text_and_binary_round_trip_client_to_server_and_back():
    for message in ["", "hello", "κόσμε €𝄞" * 50, b"", b"\x00\xff" * 3000]:
        client_frames = b"".join(_frame.encode_message(message, mask=True))
        server_frames = b"".join(_frame.encode_message(message))
        expected = TextMessage(message) if isinstance(message, str) else BinaryMessage(message)
        assert parse_all_ways(client_frames) == [expected]
        assert parse_all_ways(server_frames, server=False) == [expected]


def test_encode_message_accepts_any_bytes_like():
    for data in (b"abc", bytearray(b"abc"), memoryview(b"xabcx")[1:4]):
        assert _frame.encode_message(data) == [b"\x82\x03abc"]


@pytest.mark.parametrize("fragment_size", [1, 2, 3, 7, 100, 4095])
def test_fragmentation_on_request(fragment_size):
    message = "Grüße, 世界! " * 300
    frames = _frame.encode_message(message, fragment_size=fragment_size, mask=True)
    size = len(message.encode())
    assert len(frames) == -(-size // fragment_size)
    assert frames[0][0] & 0x0F == 1 and all(f[0] & 0x0F == 0 for f in frames[1:])
    assert all(f[0] & 0x80 == 0 for f in frames[:-1]) and frames[-1][0] & 0x80
    assert parse_all_ways(b"".join(frames)) == [TextMessage(message)]


def test_close_frames():
    assert _frame.encode_close() == b"\x88\x02\x03\xe8"
    assert _frame.encode_close(None) == b"\x88\x00"
    assert _frame.encode_close(4000, "bye") == b"\x88\x05\x0f\xa0bye"
    assert _frame.parse(_frame.encode_close(1001, "gone ✓", mask=True)) == [Close(1001, "gone ✓")]
    assert len(_frame.encode_close(1000, "x" * 123)) == 2 + 125


def test_close_frame_errors():
    with pytest.raises(ValueError, match="123"):
        _frame.encode_close(1000, "x" * 124)
    with pytest.raises(ValueError, match="close code"):
        _frame.encode_close(1005)
    with pytest.raises(ValueError, match="close code"):
        _frame.encode_close(None, "reason without code")


def test_encode_frame_errors():
    with pytest.raises(ValueError, match="125"):
        _frame.encode_frame(_frame.PING, bytes(126))
    with pytest.raises(ValueError, match="fragmented"):
        _frame.encode_frame(_frame.PING, b"", fin=False)
    with pytest.raises(ValueError, match="opcode"):
        _frame.encode_frame(3, b"")
    with pytest.raises(ValueError, match="mask"):
        _frame.encode_frame(_frame.TEXT, b"", mask=b"abc")
    with pytest.raises(ValueError, match="fragment_size"):
        _frame.encode_message(b"x", fragment_size=-1)
    with pytest.raises(TypeError):
        _frame.encode_message(12345)


def test_random_masking_keys_differ():
    keys = {_frame.encode_frame(_frame.BINARY, b"abcd", mask=True)[2:6] for _ in range(600)}
    assert len(keys) > 590  # 600 draws from 2**32: a collision is astronomically rare


def test_one_serialized_frame_serves_many_connections():
    frame = _frame.encode_message("broadcast ✓")[0]
    for _ in range(3):
        assert _frame.parse(frame, server=False) == [TextMessage("broadcast ✓")]
    assert frame == _frame.encode_message("broadcast ✓")[0]


# ---------------------------------------------------------------------------------------------
# Differential test against the oracle, on random streams in random chunkings

settings.register_profile("verb", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("verb")


@st.composite
def frames(draw, server):
    key = draw(st.binary(min_size=4, max_size=4)) if server else None
    kind = draw(st.sampled_from(["text", "text", "binary", "control", "close", "raw", "garbage",
                                 "big"]))
    if kind in ("text", "binary"):
        if kind == "text":
            payload = draw(st.text(max_size=200)).encode()
            if draw(st.integers(0, 5)) == 0 and payload:
                i = draw(st.integers(0, len(payload) - 1))
                payload = payload[:i] + bytes([draw(st.integers(0x80, 0xFF))]) + payload[i + 1:]
        else:
            payload = draw(st.binary(max_size=300))
        cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=4)))
        pieces = [payload[a:b] for a, b in zip([0] + cuts, cuts + [len(payload)])]
        out = b""
        for i, piece in enumerate(pieces):
            opcode = (1 if kind == "text" else 2) if i == 0 else 0
            out += build_frame(opcode, piece, fin=i == len(pieces) - 1, key=key)
            if i < len(pieces) - 1 and draw(st.booleans()):
                out += build_frame(draw(st.sampled_from([9, 10])), draw(st.binary(max_size=20)),
                                   key=key)
        return out
    if kind == "control":
        return build_frame(draw(st.sampled_from([9, 10])), draw(st.binary(max_size=130)),
                           key=key)
    if kind == "close":
        code = draw(st.sampled_from([None, 1000, 1001, 1005, 1015, 2999, 3000, 4999, 5000]))
        reason = draw(st.one_of(st.text(max_size=20).map(str.encode), st.binary(max_size=5)))
        body = b"" if code is None else code.to_bytes(2, "big") + reason
        return build_frame(8, body[:125], key=key)
    if kind == "raw":
        return build_frame(draw(st.integers(0, 15)), draw(st.binary(max_size=140)),
                           fin=draw(st.booleans()), rsv=draw(st.sampled_from([0, 0, 0, 1, 2, 4])),
                           key=draw(st.sampled_from([key, None, b"\1\2\3\4"])))
    if kind == "big":
        size = draw(st.sampled_from([125, 126, 127, 65535, 65536]))
        return build_frame(2, bytes([size & 0xFF]) * size, key=key)
    return draw(st.binary(min_size=1, max_size=20))


@given(st.data())
@settings(max_examples=300)
def test_differential_against_oracle(data):
    server = data.draw(st.booleans())
    stream = b"".join(data.draw(st.lists(frames(server), max_size=6)))
    limit = data.draw(st.sampled_from([None, 100, 16 * 1024 * 1024]))
    expected = oracle.parse(stream, server=server, max_payload_length=limit)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    got = parse_chunked(stream, cuts, server=server, max_payload_length=limit)
    assert oracle.normalize(got) == expected
    assert oracle.normalize(_frame.parse(stream, server=server, max_payload_length=limit)) == \
        expected


def test_rsv1_on_control_and_continuation_frames_closes_1002():
    assert error_code(build_frame(9, b"", rsv=4, key=KEY)) == 1002
    data = build_frame(2, b"a", fin=False, key=KEY) + build_frame(0, b"b", rsv=4, key=KEY)
    assert error_code(data) == 1002


def test_base_handler_ignores_every_event():
    parser = _frame.FrameParser(_frame.FrameHandler())
    for frame in (build_frame(1, b"t", key=KEY), build_frame(2, b"b", key=KEY),
                  build_frame(9, b"", key=KEY), build_frame(10, b"", key=KEY),
                  build_frame(8, b"", key=KEY)):
        parser.feed(frame)
    assert parser.closed and not parser.failed


def test_feed_inplace_unmasks_the_buffer_itself():
    buffer = bytearray(build_frame(2, b"payload", key=KEY))
    collector = _frame.EventCollector()
    _frame.FrameParser(collector).feed_inplace(buffer)
    assert collector.events == [BinaryMessage(b"payload")]
    assert buffer.endswith(b"payload")  # unmasked where it lay: no copy was made
    _frame.FrameParser(collector).feed_inplace(bytearray())
    with pytest.raises((TypeError, ValueError, BufferError)):
        _frame.FrameParser(collector).feed_inplace(b"read-only bytes")


# ---------------------------------------------------------------------------------------------
# Kuhn's UTF-8 stress test through the parser: whole frames (CPython's strict decoder), and
# fragmented one byte per frame (the incremental validator)

from support.kuhn_cases import KUHN, VALID  # noqa: E402


@pytest.mark.parametrize("name,data,expect", KUHN, ids=[case[0] for case in KUHN])
def test_kuhn_cases_in_text_messages(name, data, expect):
    single = build_frame(1, data, key=KEY)
    fragmented = build_frame(1, data[:1], fin=False, key=KEY)
    fragmented += b"".join(build_frame(0, data[i:i + 1], fin=False, key=KEY)
                           for i in range(1, len(data)))
    fragmented += build_frame(0, b"", key=KEY)
    for stream in (single, fragmented):
        events = parse_all_ways(stream)
        if expect == VALID:
            assert events == [TextMessage(data.decode("utf-8"))]
        else:
            assert [type(e) for e in events] == [ProtocolError] and events[0].code == 1007
    if isinstance(expect, int):
        # Fail fast: the fragmented stream fails in the frame carrying the first bad byte.
        collector = _frame.EventCollector()
        parser = _frame.FrameParser(collector)
        parser.feed(build_frame(1, data[:1], fin=False, key=KEY))
        for i in range(1, expect + 1):
            assert not parser.failed
            parser.feed(build_frame(0, data[i:i + 1], fin=False, key=KEY))
        assert parser.failed and parser.close_code == 1007


# ---------------------------------------------------------------------------------------------
# permessage-deflate (RFC 7692) through the parser

import zlib  # noqa: E402

from verb.core._deflate import Deflater, Inflater  # noqa: E402


def deflate(data, wbits=15):
    """A compressed message payload made with CPython's zlib, tail removed (RFC 7692 7.2.1)."""
    compressor = zlib.compressobj(wbits=-wbits)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def deflate_parser(**kw):
    collector = _frame.EventCollector()
    inflater = kw.pop("inflater", None) or Inflater(no_context_takeover=True)
    return collector, _frame.FrameParser(collector, inflater=inflater, **kw)


def test_compressed_single_frame_messages_text_and_binary():
    text = "κόσμε " * 500
    data = build_frame(1, deflate(text.encode()), rsv=4, key=KEY)
    data += build_frame(2, deflate(b"\x00" * 5000), rsv=4, key=KEY)
    data += build_frame(1, b"not compressed", key=KEY)  # RSV1 clear: a plain message
    for cuts in ([], range(1, len(data)), [7, 100, 101]):
        collector, parser = deflate_parser()
        last = 0
        for cut in list(cuts) + [len(data)]:
            parser.feed(data[last:cut])
            last = cut
        assert collector.events == [TextMessage(text), BinaryMessage(b"\x00" * 5000),
                                    TextMessage("not compressed")]


def test_compressed_fragmented_message_with_control_frames_between():
    payload = deflate(b"fragmented and compressed " * 100)
    third = len(payload) // 3
    data = (build_frame(2, payload[:third], fin=False, rsv=4, key=KEY)
            + build_frame(9, b"mid", key=KEY)
            + build_frame(0, payload[third:2 * third], fin=False, key=KEY)
            + build_frame(10, b"pong", key=KEY)
            + build_frame(0, payload[2 * third:], key=KEY))
    collector, parser = deflate_parser()
    for i in range(0, len(data), 3):
        parser.feed(data[i:i + 3])
    assert collector.events == [Ping(b"mid"), Pong(b"pong"),
                                BinaryMessage(b"fragmented and compressed " * 100)]


def test_rsv1_on_continuation_or_control_frame_closes_1002_even_with_deflate():
    collector, parser = deflate_parser()
    parser.feed(build_frame(2, deflate(b"a"), fin=False, rsv=4, key=KEY)
                + build_frame(0, b"", rsv=4, key=KEY))
    assert collector.events[-1].code == 1002
    collector, parser = deflate_parser()
    parser.feed(build_frame(9, b"", rsv=4, key=KEY))
    assert collector.events[-1].code == 1002


def test_context_takeover_across_messages():
    compressor = zlib.compressobj(wbits=-15)
    inflater = Inflater()  # keeps its window between messages
    collector, parser = deflate_parser(inflater=inflater)
    sizes = []
    for i in range(20):
        message = b'{"event": "tick", "symbol": "VERB", "price": %d}' % (100 + i)
        payload = (compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
        sizes.append(len(payload))
        parser.feed(build_frame(2, payload, rsv=4, key=KEY))
    assert collector.events == [BinaryMessage(b'{"event": "tick", "symbol": "VERB", "price": %d}'
                                              % (100 + i)) for i in range(20)]
    assert sizes[-1] < sizes[0] / 2  # later messages refer back to earlier ones


def test_decompression_bomb_closes_1009():
    bomb = deflate(b"\x00" * (10 << 20))
    assert len(bomb) < 20_000
    collector, parser = deflate_parser(max_payload_length=1 << 20)
    parser.feed(build_frame(2, bomb, rsv=4, key=KEY))
    assert [type(e) for e in collector.events] == [ProtocolError]
    assert collector.events[0].code == 1009
    assert parser.inflater.peak_buffer <= (1 << 20) + 1


def test_corrupt_compressed_stream_closes_1007():
    for garbage in (b"\xff\xff\xff\xff", deflate(b"hello world")[:-3] + b"\x07\x07\x07"):
        collector, parser = deflate_parser()
        parser.feed(build_frame(1, garbage, rsv=4, key=KEY))
        assert [e.code for e in collector.events] == [1007]


def test_compressed_text_with_invalid_utf8_closes_1007():
    collector, parser = deflate_parser()
    parser.feed(build_frame(1, deflate(b"ok \xed\xa0\x80"), rsv=4, key=KEY))
    assert [e.code for e in collector.events] == [1007]


def test_one_shared_inflater_serves_interleaved_connections():
    shared = Inflater(no_context_takeover=True)
    a, parser_a = deflate_parser(inflater=shared)
    b, parser_b = deflate_parser(inflater=shared)
    payload_a, payload_b = deflate(b"from a " * 50), deflate(b"from b " * 50)
    half_a, half_b = len(payload_a) // 2, len(payload_b) // 2
    parser_a.feed(build_frame(2, payload_a[:half_a], fin=False, rsv=4, key=KEY))
    parser_b.feed(build_frame(2, payload_b[:half_b], fin=False, rsv=4, key=KEY))
    parser_a.feed(build_frame(0, payload_a[half_a:], key=KEY))
    parser_b.feed(build_frame(0, payload_b[half_b:], key=KEY))
    assert a.events == [BinaryMessage(b"from a " * 50)]
    assert b.events == [BinaryMessage(b"from b " * 50)]


def test_our_deflater_round_trips_through_the_parser():
    deflater = Deflater(no_context_takeover=True)
    collector, parser = deflate_parser()
    for message in (b"", b"x", b"abc" * 1000, bytes(range(256)) * 40):
        parser.feed(build_frame(2, deflater.compress(message), rsv=4, key=KEY))
    assert [e.data for e in collector.events] == [b"", b"x", b"abc" * 1000,
                                                  bytes(range(256)) * 40]


def test_base_handler_ignores_protocol_errors():
    parser = _frame.FrameParser(_frame.FrameHandler())
    parser.feed(build_frame(1, b"unmasked"))  # a server must reject an unmasked client frame
    assert parser.failed and parser.close_code == 1002


def test_encode_frame_accepts_any_bytes_like():
    for data in (bytearray(b"abc"), memoryview(b"xabcx")[1:4]):
        assert _frame.encode_frame(_frame.BINARY, data) == b"\x82\x03abc"
        assert _frame.encode_frame(_frame.PING, data) == b"\x89\x03abc"
