"""A slow, obviously-correct reference parser of RFC 6455 frame streams, in pure Python.

It reads a whole stream at once and returns the events the compiled parser must produce for the
same bytes fed in any chunking. Rules are checked in the same order as the compiled parser so
that when a frame breaks several rules both report the same close code. Reasons of protocol
errors are not compared (only codes).
"""

from verb.core.events import BinaryMessage, Close, Ping, Pong, ProtocolError, TextMessage

VALID_CLOSE_CODES = set(range(1000, 1004)) | set(range(1007, 1015)) | set(range(3000, 5000))


def utf8_prefix_ok(data):
    """True if `data` is valid UTF-8 or a prefix of some valid UTF-8 text."""
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        # An error only at the very end, for an incomplete sequence, is still a valid prefix.
        if exc.end != len(data) or exc.reason != "unexpected end of data":
            return False
        return True


def parse(stream, server=True, max_payload_length=16 * 1024 * 1024):
    if max_payload_length is None:
        max_payload_length = float("inf")
    events = []
    pos = 0
    message = None  # (opcode, bytearray) of a fragmented message in progress
    n = len(stream)

    def fail(code):
        events.append(ProtocolError(code, ""))
        return events

    while pos < n:
        if n - pos < 2:
            return events
        b0, b1 = stream[pos], stream[pos + 1]
        length = b1 & 0x7F
        header = 2 + (2 if length == 126 else 8 if length == 127 else 0) + (4 if b1 & 0x80 else 0)
        if n - pos < header:
            return events
        fin, rsv1, opcode, masked = b0 & 0x80, b0 & 0x40, b0 & 0x0F, bool(b1 & 0x80)
        if b0 & 0x30:
            return fail(1002)
        if opcode in (3, 4, 5, 6, 7) or opcode >= 0xB:
            return fail(1002)
        if masked != server:
            return fail(1002)
        off = pos + 2
        if length == 126:
            length = int.from_bytes(stream[off:off + 2], "big")
            off += 2
        elif length == 127:
            if stream[off] & 0x80:
                return fail(1002)
            length = int.from_bytes(stream[off:off + 8], "big")
            off += 8
        control = opcode >= 8
        if control:
            if not fin or length > 125 or rsv1:
                return fail(1002)
        elif opcode == 0:
            if message is None or rsv1:
                return fail(1002)
        else:
            if message is not None or rsv1:
                return fail(1002)
        if not control:
            held = len(message[1]) if message is not None and opcode == 0 else 0
            if held + length > max_payload_length:
                return fail(1009)
        key = stream[off:off + 4] if masked else b"\0\0\0\0"
        off += 4 if masked else 0
        body = bytes(b ^ key[i % 4] for i, b in enumerate(stream[off:off + length]))
        complete = len(body) == length
        pos = off + length

        if control:
            if not complete:
                return events
            if opcode == 9:
                events.append(Ping(body))
            elif opcode == 10:
                events.append(Pong(body))
            else:
                if len(body) == 0:
                    events.append(Close(1005, ""))
                elif len(body) == 1:
                    return fail(1002)
                else:
                    code = int.from_bytes(body[:2], "big")
                    if code not in VALID_CLOSE_CODES:
                        return fail(1002)
                    try:
                        reason = body[2:].decode("utf-8")
                    except UnicodeDecodeError:
                        return fail(1007)
                    events.append(Close(code, reason))
                return events  # nothing after a close frame is parsed
            continue

        msg_opcode = message[0] if opcode == 0 else opcode
        so_far = (bytes(message[1]) if opcode == 0 else b"") + body
        if msg_opcode == 1 and not utf8_prefix_ok(so_far):
            return fail(1007)  # fail fast, even inside an incomplete frame
        if not complete:
            return events
        if not fin:
            message = (msg_opcode, bytearray(so_far))
            continue
        message = None
        if msg_opcode == 1:
            try:
                events.append(TextMessage(so_far.decode("utf-8")))
            except UnicodeDecodeError:
                return fail(1007)
        else:
            events.append(BinaryMessage(so_far))
    return events


def normalize(events):
    """Events with protocol-error reasons blanked, for comparison with the oracle."""
    return [ProtocolError(e.code, "") if isinstance(e, ProtocolError) else e for e in events]


def build_frame(opcode, payload=b"", fin=True, rsv=0, key=None, length=None):
    """A frame built by hand (independent of verb's serializer). `rsv` is the 3 RSV bits;
    `length` overrides the declared payload length (to declare more than is sent)."""
    declared = len(payload) if length is None else length
    head = bytearray([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if key is not None else 0
    if declared < 126:
        head.append(mask_bit | declared)
    elif declared < 65536:
        head.append(mask_bit | 126)
        head += declared.to_bytes(2, "big")
    else:
        head.append(mask_bit | 127)
        head += declared.to_bytes(8, "big")
    if key is not None:
        head += key
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes(head) + bytes(payload)
