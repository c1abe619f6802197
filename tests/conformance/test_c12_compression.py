"""Groups 12 and 13 (Autobahn 12.x/13.x): permessage-deflate (RFC 7692) against the server's
"shared" and "dedicated" compression modes, for each kind of offer: what is negotiated, echo of
compressed messages of several sizes (whole, fragmented, with pings between fragments), and the
server's replies decoded by CPython's zlib under the negotiated rules (a fresh inflater per
message when the server promised no context takeover, and a window no larger than it may use),
so a server that breaks a promise fails to decode here."""

import os
import zlib

import pytest
from client import (
    OP_BINARY,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RSV1,
    RSV2,
    Client,
    Deflate,
    build_frame,
    exchange,
)

PMD = "permessage-deflate"

# (id, offer) -> the parameters each mode answers with (RFC 7692 §7.1). "shared" always adds
# both no_context_takeover flags (one compressor for every connection; each message on its own).
OFFERS = [
    ("plain", PMD, {}),
    ("client_max_window_bits", PMD + "; client_max_window_bits", {}),
    ("server_no_context_takeover", PMD + "; server_no_context_takeover",
     {"server_no_context_takeover": True}),
    ("client_no_context_takeover", PMD + "; client_no_context_takeover",
     {"client_no_context_takeover": True}),
    ("both_no_context_takeover", PMD + "; server_no_context_takeover; client_no_context_takeover",
     {"server_no_context_takeover": True, "client_no_context_takeover": True}),
] + [
    (f"server_max_window_bits={n}", f"{PMD}; server_max_window_bits={n}",
     {"server_max_window_bits": n}) for n in range(9, 16)
] + [
    (f"client_max_window_bits={n}", f"{PMD}; client_max_window_bits={n}",
     {"client_max_window_bits": n}) for n in (9, 12, 15)
] + [
    ("all-10", PMD + "; server_max_window_bits=10; client_max_window_bits=10; "
     "server_no_context_takeover; client_no_context_takeover",
     {"server_max_window_bits": 10, "client_max_window_bits": 10,
      "server_no_context_takeover": True, "client_no_context_takeover": True}),
    ("fallback-offer", PMD + "; server_max_window_bits=8, " + PMD, {}),
]
OFFER_PARAMS = [pytest.param(offer, params, id=name) for name, offer, params in OFFERS]


def expected_deflate(mode, params):
    d = Deflate(**params)
    if mode == "shared":
        d.server_no_context_takeover = d.client_no_context_takeover = True
    return d


def negotiated(d):
    return (d.server_no_context_takeover, d.client_no_context_takeover,
            d.server_max_window_bits, d.client_max_window_bits)


def text_of(size):
    words = [b"lorem", b"ipsum", "d\u00f6lor".encode(), b"sit", "\u20acmet".encode(), b"\xf0\x9f\x98\x80"]
    out = bytearray()
    i = 0
    while len(out) < size:
        out += words[(i * 7 + i // 5) % len(words)] + b" "
        i += 1
    data = bytes(out[:size])
    while True:  # do not cut a code point
        try:
            data.decode()
            return data
        except UnicodeDecodeError:
            data = data[:-1] + b"x"


# Sizes around the server's compression threshold (128) and well beyond the windows; the random
# one does not compress at all.
SIZES = [0, 1, 127, 128, 129, 1000, 20000, 70000, 300000]
RANDOM = os.urandom(70000)
# Repeats 4 KiB apart: compressible only with a window of 2**13 or more, so a server that uses a
# larger window than it agreed to makes back-references our smaller inflater rejects.
FAR_REPEATS = os.urandom(4096) * 6


def messages_to_send():
    out = []
    for size in SIZES:
        out.append((OP_TEXT, text_of(size)))
        out.append((OP_BINARY, bytes(range(256)) * (size // 256) + bytes(size % 256)))
    out.append((OP_BINARY, RANDOM))
    out.append((OP_BINARY, FAR_REPEATS))
    # The same message twice: with context takeover the second compresses to a back-reference
    # into the first, on both sides.
    out += [(OP_TEXT, text_of(5000))] * 2
    return out


def check_reply(c, opcode, data, *, sent_len):
    op, echoed = c.read_message()
    assert op == opcode and len(echoed) == len(data) and echoed == data
    if sent_len >= 1000 and data is not RANDOM:
        assert c.last_compressed, f"a compressible reply of {sent_len} bytes was not compressed"


@pytest.mark.parametrize("offer, params", OFFER_PARAMS)
def test_negotiation_and_echo(deflate_server, offer, params):
    with Client(deflate_server.port, extensions=offer, timeout=10) as c:
        assert c.deflate is not None, "offer declined"
        assert negotiated(c.deflate) == negotiated(
            expected_deflate(deflate_server.compression_mode, params)), \
            c.response_headers.get("sec-websocket-extensions")
        for opcode, data in messages_to_send():
            c.send_message(data, binary=opcode == OP_BINARY, compress=True)
            check_reply(c, opcode, data, sent_len=len(data))
        # Uncompressed messages are allowed too (RSV1 clear).
        c.send_message(text_of(3000), binary=False, compress=False)
        check_reply(c, OP_TEXT, text_of(3000), sent_len=3000)
        assert c.close_normally() == []


@pytest.mark.parametrize("fragment", [1, 7, 1000])
@pytest.mark.parametrize("offer, params", [OFFER_PARAMS[0], OFFER_PARAMS[4], OFFER_PARAMS[5]])
def test_fragmented_compressed(deflate_server, offer, params, fragment):
    with Client(deflate_server.port, extensions=offer, timeout=10) as c:
        for opcode, data in [(OP_TEXT, text_of(3000)), (OP_BINARY, bytes(20000)),
                             (OP_TEXT, text_of(3000))]:
            c.send_message(data, binary=opcode == OP_BINARY, compress=True, fragment=fragment)
            check_reply(c, opcode, data, sent_len=len(data))
        assert c.close_normally() == []


@pytest.mark.parametrize("offer, params", [OFFER_PARAMS[0], OFFER_PARAMS[4]])
def test_pings_between_compressed_fragments(deflate_server, offer, params):
    with Client(deflate_server.port, extensions=offer) as c:
        data = text_of(10000)
        compressed = c.deflate.compress(data)
        step = max(1, len(compressed) // 5)
        chunks = [compressed[i:i + step] for i in range(0, len(compressed), step)]
        frames = []
        for i, chunk in enumerate(chunks):
            frames.append(build_frame(OP_TEXT if i == 0 else OP_CONT, chunk,
                                      fin=i == len(chunks) - 1, rsv=RSV1 if i == 0 else 0))
            if i < len(chunks) - 1:
                frames.append(build_frame(OP_PING, b"ping %d" % i))
        c.send_raw(b"".join(frames))
        for i in range(len(chunks) - 1):
            f = c.read_frame()
            assert (f.opcode, f.payload) == (OP_PONG, b"ping %d" % i)
        check_reply(c, OP_TEXT, data, sent_len=len(data))
        assert c.close_normally() == []


def test_server_max_window_bits_8_declined(deflate_server):
    """zlib cannot make an 8-bit window: the offer is declined, and the connection works
    uncompressed."""
    with Client(deflate_server.port, extensions=PMD + "; server_max_window_bits=8") as c:
        assert c.deflate is None
        exchange(c, build_frame(OP_TEXT, text_of(2000)), [(OP_TEXT, text_of(2000))], None)


def _deflated(data):
    return Deflate().compress(data)


# Protocol errors with compression negotiated: (id, frames) -> close code.
ERRORS = [
    ("rsv1-on-continuation", build_frame(OP_TEXT, _deflated(b"abc"), fin=False, rsv=RSV1) +
     build_frame(OP_CONT, b"", rsv=RSV1), 1002),
    ("rsv1-on-ping", build_frame(OP_PING, b"x", rsv=RSV1), 1002),
    ("rsv2-on-text", build_frame(OP_TEXT, b"x", rsv=RSV2), 1002),
    ("corrupt-deflate-data", build_frame(OP_BINARY, b"\xff\xff\xff\xff\xff", rsv=RSV1), 1007),
    ("inflates-to-invalid-utf8", build_frame(OP_TEXT, _deflated(b"ok \xed\xa0\x80"), rsv=RSV1),
     1007),
    ("inflates-past-max-payload", build_frame(OP_BINARY, _deflated(bytes(9 << 20)), rsv=RSV1),
     1009),
]


def _final_block(data):
    """Compressed ending in a block with BFINAL set (RFC 7692 §7.2.3.4), no sync-flush tail."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(zlib.Z_FINISH)


ERRORS += [
    ("bfinal-then-trailing-bytes", build_frame(OP_TEXT, _final_block(b"abc" * 50) + b"\x12\x34",
                                               rsv=RSV1), 1007),
    ("fragmented-inflates-to-invalid-utf8",
     Client.message_frames(_deflated(b"ok" * 100 + b"\xff"), OP_TEXT, fragment=5, rsv=RSV1), 1007),
]


@pytest.mark.parametrize("data, close", [pytest.param(*e[1:], id=e[0]) for e in ERRORS])
def test_compression_errors(deflate_server, data, close):
    with Client(deflate_server.port, extensions=PMD) as c:
        exchange(c, data, [], close)


def _full_flush(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_FULL_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


# Valid but unusual compressed payloads, with client_no_context_takeover: (id, frames, echo).
UNUSUAL = [
    ("empty-payload", build_frame(OP_TEXT, b"", rsv=RSV1), [(OP_TEXT, b"")]),
    ("empty-stored-block", build_frame(OP_BINARY, b"\x00", rsv=RSV1), [(OP_BINARY, b"")]),
    ("bfinal-blocks", build_frame(OP_TEXT, _final_block(b"hello" * 40), rsv=RSV1)
     + build_frame(OP_TEXT, _final_block(b"world" * 40), rsv=RSV1),
     [(OP_TEXT, b"hello" * 40), (OP_TEXT, b"world" * 40)]),
    ("full-flush", build_frame(OP_BINARY, _full_flush(b"z" * 500), rsv=RSV1),
     [(OP_BINARY, b"z" * 500)]),
]


@pytest.mark.parametrize("data, expected", [pytest.param(*u[1:], id=u[0]) for u in UNUSUAL])
def test_unusual_compressed_payloads(deflate_server, data, expected):
    with Client(deflate_server.port, extensions=PMD + "; client_no_context_takeover") as c:
        exchange(c, data, expected, None)


@pytest.mark.parametrize("fragment", [None, 65536, 4096], ids=["whole", "frags-64KiB", "frags-4KiB"])
@pytest.mark.parametrize("offer, params", [OFFER_PARAMS[0], OFFER_PARAMS[4]])
def test_large_compressed(deflate_server, offer, params, fragment):
    """Groups 12.x/13.x at the large end: 1 MiB and 4 MiB (compressible and not), and
    1 MiB again so context takeover spans big messages."""
    with Client(deflate_server.port, extensions=offer, timeout=20) as c:
        for data, binary in [(text_of(1 << 20), False), (os.urandom(1 << 20), True),
                             (text_of(4 << 20), False), (text_of(1 << 20), False)]:
            c.send_message(data, binary=binary, compress=True, fragment=fragment)
            op, echoed = c.read_message()
            assert op == (OP_BINARY if binary else OP_TEXT)
            assert len(echoed) == len(data) and echoed == data
        assert c.close_normally() == []
