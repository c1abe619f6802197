"""Sans-I/O WebSocket frame core (RFC 6455 section 5): incremental parser and serializer.

Bytes go in, events come out through the compiled `FrameHandler` callbacks; nothing here does
I/O. The parser unmasks in place in the buffer it is given (the connection layer's own read
buffer), hands whole single-frame messages to the handler straight from that buffer, and
assembles fragmented messages and frames split across reads in a buffer of its own that is
released when the message ends.

Every rule a server must enforce ends in a protocol error with its close code (1002, 1007,
1009); events parsed before the error are delivered first, and after it the parser discards
all further input.

With permessage-deflate negotiated (an `Inflater` in `inflater`), a compressed message's
payload is kept compressed until its last frame and inflated whole: a shared inflater is never
left in the middle of a stream, and `max_payload_length` bounds both the compressed bytes held
and the inflated size (the inflater stops before allocating past it).
"""

from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy
from libc.stdint cimport uint32_t, uint64_t
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeUTF8

from verb.core._mask cimport verb_mask
from verb.core._utf8 cimport VERB_UTF8_ACCEPT, verb_utf8_feed

import os

from verb.core import events as _events
from verb.core.limits import DEFAULT_MAX_PAYLOAD_LENGTH, check_max_payload_length

# Parser states.
cdef enum:
    PS_HEADER = 0
    PS_PAYLOAD = 1
    PS_CLOSED = 2  # a close frame was received: later input is ignored (RFC 6455 section 5.5.1)
    PS_FAILED = 3  # protocol error: later input is ignored

# Python-visible names for the opcodes and close codes.
TEXT = OP_TEXT
BINARY = OP_BINARY
CONTINUATION = OP_CONT
CLOSE = OP_CLOSE
PING = OP_PING
PONG = OP_PONG

# The ready states (one definition: the enum in _frame.pxd).
CONNECTING = ST_CONNECTING
OPEN = ST_OPEN
CLOSING = ST_CLOSING
CLOSED = ST_CLOSED

# A single-frame message is gathered in one allocation of its declared length (checked against
# max_payload_length first; for uncompressed binary, the bytes object given to the handler)
# when it is at most DIRECT_MAX and its first piece brings at least a quarter of it. Otherwise
# the buffer grows as the payload arrives: a peer that declares much and sends little makes us
# hold at most about four times what it sent.
cdef enum:
    DIRECT_MAX = 1024 * 1024

# Arbitrary payload limits compare against this when "unlimited" is asked for.
cdef Py_ssize_t _UNLIMITED = <Py_ssize_t>((<size_t>-1) >> 1)


cdef bint is_valid_close_code(int code) noexcept nogil:
    """Codes a peer may send in a close frame (RFC 6455 section 7.4; IANA registry)."""
    return (1000 <= code <= 1003) or (1007 <= code <= 1014) or (3000 <= code <= 4999)


def valid_close_code(int code):
    """True if `code` may appear in a close frame on the wire."""
    return is_valid_close_code(code)


cdef class FrameHandler:
    """Receives the parser's events; the base class ignores them all.

    The connection layer subclasses this in Cython. Every method may raise; the exception
    propagates out of `FrameParser.feed_buffer`.
    """

    cdef int on_text(self, str text) except -1:
        return 0

    cdef int on_binary(self, bytes data) except -1:
        return 0

    cdef int on_ping(self, bytes data) except -1:
        return 0

    cdef int on_pong(self, bytes data) except -1:
        return 0

    cdef int on_close(self, int code, str reason) except -1:
        return 0

    cdef int on_protocol_error(self, int code, str reason) except -1:
        return 0


cdef class EventCollector(FrameHandler):
    """Turns parser callbacks into `verb.events` objects, appended to `.events`.

    A thin adapter for tests and tools; the server never uses it.
    """

    cdef public list events

    def __cinit__(self):
        self.events = []

    cdef int on_text(self, str text) except -1:
        self.events.append(_events.TextMessage(text))
        return 0

    cdef int on_binary(self, bytes data) except -1:
        self.events.append(_events.BinaryMessage(data))
        return 0

    cdef int on_ping(self, bytes data) except -1:
        self.events.append(_events.Ping(data))
        return 0

    cdef int on_pong(self, bytes data) except -1:
        self.events.append(_events.Pong(data))
        return 0

    cdef int on_close(self, int code, str reason) except -1:
        self.events.append(_events.Close(code, reason))
        return 0

    cdef int on_protocol_error(self, int code, str reason) except -1:
        self.events.append(_events.ProtocolError(code, reason))
        return 0


cdef inline bint _is_utf8(const unsigned char *data, Py_ssize_t n) noexcept nogil:
    cdef uint32_t state = VERB_UTF8_ACCEPT
    return verb_utf8_feed(&state, data, <size_t>n) == 0 and state == VERB_UTF8_ACCEPT


cdef class FrameParser:
    """Incremental parser of a WebSocket byte stream.

    Args:
        handler: receives the events (a `FrameHandler`; `EventCollector` for Python use).
        server: True to parse a client's frames (they must be masked), False to parse a
            server's frames (they must not be).
        max_payload_length: largest message (after reassembly) or frame accepted; a frame that
            would go past it closes with 1009 before any of its payload is buffered.
            None for no limit.
    """

    def __cinit__(self, FrameHandler handler not None, *, bint server=True,
                  max_payload_length=DEFAULT_MAX_PAYLOAD_LENGTH, Inflater inflater=None):
        max_payload_length = check_max_payload_length("max_payload_length", max_payload_length)
        self.max_payload_length = _UNLIMITED if max_payload_length is None else max_payload_length
        self.handler = handler
        self.server = server
        self.inflater = inflater
        self._state = PS_HEADER
        self._msg = NULL
        self.close_code = 0
        self.close_reason = None

    def __dealloc__(self):
        if self._direct is None:
            free(self._msg)
        free(self._ctl)

    @property
    def failed(self):
        """True once a protocol error was found (see `close_code`, `close_reason`)."""
        return self._state == PS_FAILED

    @property
    def closed(self):
        """True once the peer's close frame was parsed."""
        return self._state == PS_CLOSED

    @property
    def buffered(self):
        """Bytes of an unfinished message held by the parser."""
        return self._msg_len

    @property
    def allocated(self):
        """Bytes reserved for the unfinished message (`buffered` of them in use)."""
        return self._msg_cap

    def feed(self, data):
        """Parse the next piece of the stream (any bytes-like); events go to the handler.

        The data is copied once, so the caller's buffer is left untouched. Returns how many
        bytes were taken (all of them unless the handler paused the parser).
        """
        cdef bytearray buf = bytearray(data)
        if len(buf):
            return self.feed_buffer(<unsigned char *><char *>buf, len(buf))
        return 0

    def feed_inplace(self, unsigned char[::1] buffer):
        """Parse a writable buffer, unmasking its payloads in place (no copy).

        This is what the connection layer does with its read buffer; here for benchmarks and
        tools. The buffer's contents are changed.
        """
        if buffer.shape[0]:
            return self.feed_buffer(&buffer[0], buffer.shape[0])
        return 0

    cdef int _fail(self, int code, str reason) except -1:
        self._state = PS_FAILED
        self.close_code = code
        self.close_reason = reason
        self._reset_message()
        self.handler.on_protocol_error(code, reason)
        return 0

    cdef void _reset_message(self) noexcept:
        if self._direct is not None:
            self._direct = None  # _msg pointed into it
        else:
            free(self._msg)
        self._msg = NULL
        self._msg_len = 0
        self._msg_cap = 0
        self._msg_opcode = 0
        self._msg_compressed = False
        self._utf8_state = VERB_UTF8_ACCEPT

    cdef Py_ssize_t feed_buffer(self, unsigned char *data, Py_ssize_t n) except -1:
        """Parse `n` bytes at `data`, unmasking in place. The buffer is the caller's.

        Returns how many bytes were taken: `n`, unless the handler paused the parser (`pause`)
        on a message; the rest is for the caller to feed again after `resume`.
        """
        cdef Py_ssize_t pos = 0, avail, need, take
        cdef unsigned char b1
        while pos < n and not self.paused:
            if self._state == PS_HEADER:
                avail = n - pos
                if self._hdr_len == 0 and avail >= 2:
                    # Common case: the whole header is in this buffer.
                    b1 = data[pos + 1]
                    need = _header_size(b1)
                    if avail >= need:
                        self._start_frame(data + pos)
                        pos += need
                        if self._state != PS_PAYLOAD:
                            continue
                        # Whole single-frame message in the buffer: hand it over from here.
                        if (self._fin and (self._opcode == OP_TEXT or self._opcode == OP_BINARY)
                                and <uint64_t>(n - pos) >= self._remaining):
                            take = <Py_ssize_t>self._remaining
                            if self._masked:
                                verb_mask(data + pos, data + pos, <size_t>take, self._key, 0)
                            self._state = PS_HEADER
                            self._remaining = 0
                            self._deliver_message(data + pos, take)
                            pos += take
                        continue
                # The header is split across reads: collect it byte by byte.
                self._hdr[self._hdr_len] = data[pos]
                self._hdr_len += 1
                pos += 1
                if self._hdr_len >= 2 and self._hdr_len == _header_size(self._hdr[1]):
                    self._hdr_len = 0
                    self._start_frame(self._hdr)
            elif self._state == PS_PAYLOAD:
                take = n - pos
                if <uint64_t>take > self._remaining:
                    take = <Py_ssize_t>self._remaining
                if self._masked:
                    self._key_offset = verb_mask(data + pos, data + pos, <size_t>take,
                                                 self._key, self._key_offset)
                self._remaining -= <uint64_t>take
                self._frame_payload(data + pos, take)
                pos += take
                if self._remaining == 0 and self._state == PS_PAYLOAD:
                    self._end_frame()
            else:
                return n  # closed or failed: the rest is discarded
        return pos

    cdef void pause(self) noexcept:
        """Take no more input after the message being delivered (a handler calls this)."""
        self.paused = True

    cdef void resume(self) noexcept:
        self.paused = False

    cdef int _start_frame(self, const unsigned char *hdr) except -1:
        """Check a complete header (RFC 6455 section 5.2) and set up the frame's state."""
        cdef unsigned char b0 = hdr[0], b1 = hdr[1]
        cdef int opcode = b0 & 0x0F
        cdef bint fin = (b0 & 0x80) != 0
        cdef bint rsv1 = (b0 & 0x40) != 0
        cdef bint masked = (b1 & 0x80) != 0
        cdef uint64_t length = b1 & 0x7F
        cdef int i, off = 2
        cdef bint control = opcode >= OP_CLOSE

        if b0 & 0x30:
            return self._fail(CLOSE_PROTOCOL_ERROR, "RSV2/RSV3 set without a negotiated extension")
        if (3 <= opcode <= 7) or opcode >= 0xB:
            return self._fail(CLOSE_PROTOCOL_ERROR, "reserved opcode {}".format(opcode))
        if masked != self.server:
            return self._fail(CLOSE_PROTOCOL_ERROR,
                              "client frame not masked" if self.server else "server frame masked")
        if length == 126:
            length = (<uint64_t>hdr[2] << 8) | hdr[3]
            off = 4
        elif length == 127:
            if hdr[2] & 0x80:
                return self._fail(CLOSE_PROTOCOL_ERROR, "64-bit payload length has its top bit set")
            length = 0
            for i in range(8):
                length = (length << 8) | hdr[2 + i]
            off = 10
        if control:
            if not fin:
                return self._fail(CLOSE_PROTOCOL_ERROR, "fragmented control frame")
            if length > 125:
                return self._fail(CLOSE_PROTOCOL_ERROR, "control frame payload over 125 bytes")
            if rsv1:
                return self._fail(CLOSE_PROTOCOL_ERROR, "RSV1 set on a control frame")
            self._ctl_len = 0
            if length and self._ctl == NULL:
                # Allocated per control frame, not per connection: idle connections stay small.
                self._ctl = <unsigned char *>malloc(125)
                if self._ctl == NULL:
                    raise MemoryError()
        elif opcode == OP_CONT:
            if self._msg_opcode == 0:
                return self._fail(CLOSE_PROTOCOL_ERROR, "continuation frame without a message")
            if rsv1:
                return self._fail(CLOSE_PROTOCOL_ERROR, "RSV1 set on a continuation frame")
        else:
            if self._msg_opcode != 0:
                return self._fail(CLOSE_PROTOCOL_ERROR,
                                  "new data frame inside a fragmented message")
            if rsv1 and self.inflater is None:
                return self._fail(CLOSE_PROTOCOL_ERROR, "RSV1 set without a negotiated extension")
        if not control:
            # Limits before any payload is buffered (declared length, plus what is held).
            if <uint64_t>self._msg_len + length > <uint64_t>self.max_payload_length:
                return self._fail(CLOSE_MESSAGE_TOO_BIG,
                                  "message over the {}-byte limit".format(self.max_payload_length))
            if opcode != OP_CONT:
                self._msg_compressed = rsv1
                if not fin:
                    self._msg_opcode = opcode
        if masked:
            memcpy(self._key, hdr + off, 4)
        self._opcode = opcode
        self._fin = fin
        self._masked = masked
        self._key_offset = 0
        self._remaining = length
        self._state = PS_PAYLOAD
        if length == 0:
            self._end_frame()
        return 0

    cdef int _frame_payload(self, unsigned char *data, Py_ssize_t n) except -1:
        """Take `n` unmasked payload bytes of the current frame."""
        if self._opcode >= OP_CLOSE:
            memcpy(self._ctl + self._ctl_len, data, <size_t>n)
            self._ctl_len += <int>n
            return 0
        cdef int msg_opcode = self._msg_opcode if self._opcode == OP_CONT else self._opcode
        if msg_opcode == OP_TEXT and not self._msg_compressed:
            # Fail fast: reject invalid UTF-8 as soon as it arrives (RFC 6455 section 8.1).
            if verb_utf8_feed(&self._utf8_state, data, <size_t>n) < 0:
                return self._fail(CLOSE_INVALID_DATA, "invalid UTF-8 in a text message")
        return self._append_message(data, n)

    cdef int _append_message(self, const unsigned char *data, Py_ssize_t n) except -1:
        cdef Py_ssize_t need = self._msg_len + n
        cdef Py_ssize_t cap, final
        cdef unsigned char *grown
        if self._msg == NULL and self._fin and self._opcode != OP_CONT:
            # The first piece of a single-frame message: its size is known (the declared
            # length passed the limit check in _start_frame).
            final = need + <Py_ssize_t>self._remaining
            if final > DIRECT_MAX or need < final // 4:
                pass  # grow as it arrives (see DIRECT_MAX)
            elif self._opcode == OP_BINARY and not self._msg_compressed:
                self._direct = PyBytes_FromStringAndSize(NULL, final)
                self._msg = <unsigned char *>PyBytes_AS_STRING(self._direct)
                self._msg_cap = final
            else:
                self._msg = <unsigned char *>malloc(<size_t>final)
                if self._msg == NULL:
                    raise MemoryError()
                self._msg_cap = final
        if need > self._msg_cap:
            cap = self._msg_cap * 2 if self._msg_cap else 256
            if cap < need:
                cap = need
            grown = <unsigned char *>realloc(self._msg, <size_t>cap)
            if grown == NULL:
                raise MemoryError()
            self._msg = grown
            self._msg_cap = cap
        if n:
            memcpy(self._msg + self._msg_len, data, <size_t>n)
        self._msg_len = need
        return 0

    cdef int _end_frame(self) except -1:
        """The current frame's payload is complete."""
        self._state = PS_HEADER
        if self._opcode >= OP_CLOSE:
            return self._deliver_control()
        if not self._fin:
            return 0  # more fragments follow; _msg_opcode was set by the first one
        if self._opcode != OP_CONT:
            self._msg_opcode = self._opcode
        return self._deliver_message(self._msg, self._msg_len)

    cdef int _deliver_message(self, const unsigned char *data, Py_ssize_t n) except -1:
        """A whole data message: `data` is the payload (ours or the caller's buffer)."""
        cdef int opcode = self._msg_opcode if self._msg_opcode else self._opcode
        cdef bint compressed = self._msg_compressed
        cdef bint validated = data == self._msg and data != NULL and not compressed
        cdef Inflater inflater
        cdef int code
        cdef object payload
        self.compressed_size = n if compressed else 0
        if compressed:
            inflater = self.inflater
            inflater.max_size = self.max_payload_length
            code = inflater.inflate_message(data, n)
            if code != 0:
                return self._fail(code, inflater.error)
            data = inflater.out
            n = inflater.out_len
        try:
            if self._direct is not None and data == self._msg:
                payload = self._direct  # gathered in place, exactly n bytes
            elif opcode != OP_TEXT:
                payload = PyBytes_FromStringAndSize(<const char *>data, n)
            elif validated:
                # Validated piece by piece as it arrived; only the end state is left to check.
                if self._utf8_state != VERB_UTF8_ACCEPT:
                    return self._fail(CLOSE_INVALID_DATA, "invalid UTF-8 in a text message")
                payload = PyUnicode_DecodeUTF8(<const char *>data, n, NULL)
            else:
                # CPython's decoder is strict UTF-8 (no surrogates, overlongs or > U+10FFFF):
                # one pass both validates and decodes.
                try:
                    payload = PyUnicode_DecodeUTF8(<const char *>data, n, NULL)
                except UnicodeDecodeError:
                    return self._fail(CLOSE_INVALID_DATA, "invalid UTF-8 in a text message")
        finally:
            if compressed:
                self.inflater.release_output()
        self._reset_message()
        self.message_size = n
        if opcode == OP_TEXT:
            return self.handler.on_text(<str>payload)
        return self.handler.on_binary(<bytes>payload)

    cdef int _deliver_control(self) except -1:
        cdef int code
        cdef str reason
        cdef bytes payload
        if self._opcode == OP_PING or self._opcode == OP_PONG:
            payload = PyBytes_FromStringAndSize(<char *>self._ctl, self._ctl_len)
            free(self._ctl)
            self._ctl = NULL
            if self._opcode == OP_PING:
                return self.handler.on_ping(payload)
            return self.handler.on_pong(payload)
        # Close (RFC 6455 section 5.5.1): empty, or a 2-byte code and a UTF-8 reason.
        if self._ctl_len == 0:
            code = CLOSE_NO_STATUS
            reason = ""
        elif self._ctl_len == 1:
            return self._fail(CLOSE_PROTOCOL_ERROR, "close frame payload of 1 byte")
        else:
            code = (self._ctl[0] << 8) | self._ctl[1]
            if not is_valid_close_code(code):
                return self._fail(CLOSE_PROTOCOL_ERROR, "invalid close code {}".format(code))
            if not _is_utf8(self._ctl + 2, self._ctl_len - 2):
                return self._fail(CLOSE_INVALID_DATA, "invalid UTF-8 in the close reason")
            reason = PyUnicode_DecodeUTF8(<char *>self._ctl + 2, self._ctl_len - 2, NULL)
        self._state = PS_CLOSED
        self._reset_message()
        return self.handler.on_close(code, reason)


cdef inline Py_ssize_t _header_size(unsigned char b1) noexcept nogil:
    """Header length implied by the second header byte (RFC 6455 section 5.2)."""
    cdef unsigned char length = b1 & 0x7F
    cdef Py_ssize_t size = 2 if length < 126 else (4 if length == 126 else 10)
    return size + 4 if b1 & 0x80 else size


# ---------------------------------------------------------------------------------------------
# Serializer

# Client masking keys come from the OS's CSPRNG (RFC 6455 section 5.3 requires them to be
# unpredictable); one os.urandom call serves 256 keys.
cdef unsigned char _key_pool[1024]
cdef int _key_pool_pos = 1024


def _discard_key_pool():
    global _key_pool_pos
    _key_pool_pos = 1024


if hasattr(os, "register_at_fork"):
    # A forked child must not reuse the keys its parent has yet to use.
    os.register_at_fork(after_in_child=_discard_key_pool)


cdef const unsigned char *next_random_key() except NULL:
    global _key_pool_pos
    cdef bytes fresh
    if _key_pool_pos >= 1024:
        fresh = os.urandom(1024)
        memcpy(_key_pool, PyBytes_AS_STRING(fresh), 1024)
        _key_pool_pos = 0
    _key_pool_pos += 4
    return _key_pool + _key_pool_pos - 4


cdef bytes build_frame(int opcode, const unsigned char *data, Py_ssize_t n, bint fin, bint rsv1,
                       const unsigned char *key):
    """One frame as bytes: header, then the payload (masked with `key` unless it is NULL)."""
    cdef Py_ssize_t header = frame_header_size(n, key != NULL)
    cdef bytes frame = PyBytes_FromStringAndSize(NULL, header + n)
    cdef unsigned char *out = <unsigned char *>PyBytes_AS_STRING(frame)
    write_frame_header(out, opcode, fin, rsv1, n, key)
    if n:
        if key != NULL:
            verb_mask(out + header, data, <size_t>n, key, 0)
        else:
            memcpy(out + header, data, <size_t>n)
    return frame


cdef inline const unsigned char *_mask_key(object mask) except? NULL:
    """NULL for server frames (mask None/False), a random key for True, else the given key.

    A given key points into `mask`, which the caller keeps alive for the call.
    """
    if mask is None or mask is False:
        return NULL
    if mask is True:
        return next_random_key()
    if not isinstance(mask, bytes) or len(<bytes>mask) != 4:
        raise ValueError("mask must be None, True or 4 bytes, got {!r}".format(mask))
    return <const unsigned char *>PyBytes_AS_STRING(<bytes>mask)


def encode_frame(int opcode, data, *, bint fin=True, bint rsv1=False, mask=None):
    """Serialize one frame.

    Args:
        opcode: TEXT, BINARY, CONTINUATION, CLOSE, PING or PONG.
        data: the payload: str (encoded as UTF-8) or any bytes-like object.
        fin: last frame of its message.
        rsv1: set RSV1 (only meaningful with a negotiated extension).
        mask: None for a server frame; True for a client frame with a random key; or a 4-byte
            key.

    Returns:
        The frame as bytes; the same bytes may be written to any number of connections.
    """
    if (3 <= opcode <= 7) or opcode > 0xA or opcode < 0:
        raise ValueError("not a WebSocket opcode: {!r}".format(opcode))
    cdef const unsigned char *key = _mask_key(mask)
    cdef Py_ssize_t size
    cdef bint text
    cdef Py_buffer view
    cdef bint held
    cdef const unsigned char *payload = message_payload(data, &size, &text, &view, &held)
    try:
        if opcode >= OP_CLOSE:
            if size > 125:
                raise ValueError("control frame payload is {} bytes; the limit is 125".format(
                    size))
            if not fin:
                raise ValueError("control frames cannot be fragmented")
        return build_frame(opcode, payload, size, fin, rsv1, key)
    finally:
        if held:
            PyBuffer_Release(&view)


def encode_message(data, *, Py_ssize_t fragment_size=0, mask=None):
    """Serialize a whole message: str as text, any bytes-like as binary.

    Args:
        fragment_size: when > 0, split the payload into frames of at most this many bytes
            (RFC 6455 section 5.4); the first frame carries the opcode, the rest are
            continuations, the last has FIN set.
        mask: as for `encode_frame`; each frame gets its own key when True.

    Returns:
        A list of frames (bytes); one frame unless the message was fragmented.
    """
    cdef Py_ssize_t start = 0, size
    if fragment_size < 0:
        raise ValueError("fragment_size must be >= 0, got {}".format(fragment_size))
    cdef Py_ssize_t n
    cdef bint text
    cdef Py_buffer view
    cdef bint held
    cdef const unsigned char *payload = message_payload(data, &n, &text, &view, &held)
    cdef int opcode = OP_TEXT if text else OP_BINARY
    try:
        if fragment_size == 0 or n <= fragment_size:
            return [build_frame(opcode, payload, n, True, False, _mask_key(mask))]
        frames = []
        while start < n:
            size = min(fragment_size, n - start)
            frames.append(build_frame(opcode if start == 0 else OP_CONT, payload + start, size,
                                      start + size == n, False, _mask_key(mask)))
            start += size
        return frames
    finally:
        if held:
            PyBuffer_Release(&view)


cdef bytes build_close_frame(int code, bytes reason, const unsigned char *key):
    """A close frame (RFC 6455 section 5.5.1): `code` then `reason` (UTF-8, at most 123 bytes,
    checked by the caller); CLOSE_NO_STATUS gives an empty payload."""
    cdef bytes payload = b"" if code == CLOSE_NO_STATUS else \
        bytes(((code >> 8) & 0xFF, code & 0xFF)) + reason
    return build_frame(OP_CLOSE, <const unsigned char *>PyBytes_AS_STRING(payload),
                       len(payload), True, False, key)


cdef bytes frame_header(int opcode, Py_ssize_t n):
    """The header of an unmasked, unfragmented, uncompressed frame of `n` payload bytes (a
    large payload then follows it as its own buffer, never copied)."""
    cdef bytes header = PyBytes_FromStringAndSize(NULL, frame_header_size(n, False))
    write_frame_header(<unsigned char *>PyBytes_AS_STRING(header), opcode, True, False, n, NULL)
    return header


cdef bytes control_frame(int opcode, object data, const unsigned char *key):
    """A ping or pong frame; `data` is str (UTF-8) or any bytes-like, at most 125 bytes
    (RFC 6455 section 5.5)."""
    cdef Py_ssize_t n
    cdef bint text, held
    cdef Py_buffer view
    cdef const unsigned char *payload = message_payload(data, &n, &text, &view, &held)
    try:
        if n > 125:
            raise ValueError("control frame payload is {} bytes; the limit is 125".format(n))
        return build_frame(opcode, payload, n, True, False, key)
    finally:
        if held:
            PyBuffer_Release(&view)


cpdef int check_close(object code, str reason) except -1:
    """The rules for a close that a user asks for (RFC 6455 sections 5.5.1 and 7.4): returns
    the code to send, CLOSE_NO_STATUS for None (then `reason` must be empty); raises ValueError
    for a code that may not be sent or a reason over 123 bytes once encoded."""
    cdef Py_ssize_t size
    if code is None:
        if reason:
            raise ValueError("a close reason needs a close code")
        return CLOSE_NO_STATUS
    if isinstance(code, bool) or not isinstance(code, int) or not is_valid_close_code(code):
        raise ValueError("{!r} is not a close code that may be sent".format(code))
    size = len(reason.encode("utf-8"))
    if size > 123:
        raise ValueError("close reason is {} bytes once encoded; the limit is 123".format(size))
    return code


cdef bytes close_frame(int code, str reason, const unsigned char *key):
    """A close frame with `reason` cut at a code point boundary to fit 123 bytes: the reasons
    verb writes itself (protocol errors, shutdown) are never refused for their length."""
    cdef bytes encoded = reason.encode("utf-8")
    if len(encoded) > 123:
        encoded = encoded[:123].decode("utf-8", "ignore").encode("utf-8")
    return build_close_frame(code, encoded, key)


cdef bytes compressed_frame(Deflater deflater, bint text, const unsigned char *payload,
                            Py_ssize_t n, const unsigned char *key):
    """A permessage-deflate frame: RSV1 set, payload compressed (RFC 7692 section 6)."""
    cdef bytes packed = deflater.compress_buffer(payload, n)
    return build_frame(OP_TEXT if text else OP_BINARY,
                       <const unsigned char *>PyBytes_AS_STRING(packed), len(packed), True, True,
                       key)


cdef bytes message_frame(object data, int opcode, Deflater deflater, object compress,
                         Py_ssize_t threshold, const unsigned char *key):
    """A whole data message in one frame: str as text and bytes-like as binary unless `opcode`
    (OP_TEXT or OP_BINARY) says otherwise; compressed when a `deflater` is given and
    `wants_compression(compress, size, threshold)`."""
    cdef Py_ssize_t n
    cdef bint text, held
    cdef Py_buffer view
    cdef const unsigned char *payload = message_payload(data, &n, &text, &view, &held)
    if opcode:
        text = opcode == OP_TEXT
    try:
        if deflater is not None and wants_compression(compress, n, threshold):
            return compressed_frame(deflater, text, payload, n, key)
        return build_frame(OP_TEXT if text else OP_BINARY, payload, n, True, False, key)
    finally:
        if held:
            PyBuffer_Release(&view)


def encode_close(code=CLOSE_NORMAL, str reason="", *, mask=None):
    """Serialize a close frame (RFC 6455 section 5.5.1).

    Args:
        code: a close code a peer may send (1000-1003, 1007-1014, 3000-4999), or None for a
            close frame without a status code (then `reason` must be empty).
        reason: text, at most 123 bytes once encoded as UTF-8.
    """
    return build_close_frame(check_close(code, reason), reason.encode("utf-8"), _mask_key(mask))


def parse(data, *, bint server=True, max_payload_length=DEFAULT_MAX_PAYLOAD_LENGTH):
    """Parse a complete byte stream; returns the list of `verb.events` objects it produced."""
    cdef EventCollector collector = EventCollector()
    FrameParser(collector, server=server, max_payload_length=max_payload_length).feed(data)
    return collector.events
