# Contract of the sans-I/O frame core (RFC 6455 section 5): the parser, the callback interface it
# reports events through, and the serializer's inline header writer.

from cpython.buffer cimport PyBUF_SIMPLE, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport uint32_t, uint64_t

from verb.core._deflate cimport Deflater, Inflater

cdef enum:
    OP_CONT = 0x0
    OP_TEXT = 0x1
    OP_BINARY = 0x2
    OP_CLOSE = 0x8
    OP_PING = 0x9
    OP_PONG = 0xA

# The ready states of a connection (RFC 6455 sections 4 and 7), with the values of the browser's
# WebSocket.readyState and Bun's ws.readyState; _frame.pyx exposes them to Python as
# CONNECTING, OPEN, CLOSING, CLOSED.
cdef enum:
    ST_CONNECTING = 0
    ST_OPEN = 1
    ST_CLOSING = 2
    ST_CLOSED = 3

# Close codes (RFC 6455 section 7.4.1).
cdef enum:
    CLOSE_NORMAL = 1000
    CLOSE_GOING_AWAY = 1001
    CLOSE_PROTOCOL_ERROR = 1002
    CLOSE_UNSUPPORTED_DATA = 1003
    CLOSE_NO_STATUS = 1005
    CLOSE_ABNORMAL = 1006
    CLOSE_INVALID_DATA = 1007
    CLOSE_POLICY_VIOLATION = 1008
    CLOSE_MESSAGE_TOO_BIG = 1009
    CLOSE_MANDATORY_EXTENSION = 1010
    CLOSE_INTERNAL_ERROR = 1011


cdef class FrameHandler:
    """Receives the parser's events. Subclass it in Cython (cdef methods, no Python dispatch)."""
    cdef int on_text(self, str text) except -1
    cdef int on_binary(self, bytes data) except -1
    cdef int on_ping(self, bytes data) except -1
    cdef int on_pong(self, bytes data) except -1
    cdef int on_close(self, int code, str reason) except -1
    cdef int on_protocol_error(self, int code, str reason) except -1


cdef class FrameParser:
    cdef readonly FrameHandler handler
    cdef readonly bint server
    cdef readonly Py_ssize_t max_payload_length
    # permessage-deflate (RFC 7692): set when the extension was negotiated; RSV1 on the first
    # frame of a data message then marks it compressed. May be shared by many parsers: each
    # compressed message is inflated whole, once it has arrived.
    cdef public Inflater inflater

    cdef int _state
    # Header of the current frame while it arrives in pieces.
    cdef unsigned char _hdr[14]
    cdef int _hdr_len
    # Current frame.
    cdef int _opcode
    cdef bint _fin
    cdef bint _masked
    cdef unsigned char _key[4]
    cdef int _key_offset
    cdef uint64_t _remaining
    # Control frame payload being assembled (at most 125 bytes, RFC 6455 section 5.5).
    cdef unsigned char *_ctl      # a control frame's payload (125 bytes, held only while one arrives)
    cdef int _ctl_len
    # Data message being assembled; _msg_opcode is 0 when none is in progress.
    cdef int _msg_opcode
    cdef bint _msg_compressed
    # A single-frame message's payload is gathered at its final size, in one allocation; for
    # an uncompressed binary message up to DIRECT_MAX that is the bytes object handed to the
    # handler (then _msg points into it), so it is never copied again.
    cdef bytes _direct
    cdef unsigned char *_msg
    cdef Py_ssize_t _msg_len
    cdef Py_ssize_t _msg_cap
    cdef uint32_t _utf8_state

    cdef readonly int close_code
    cdef readonly str close_reason
    # The message being delivered (read by handlers): its payload size, after inflation, and
    # its compressed size on the wire (0 when it was not compressed).
    cdef readonly Py_ssize_t message_size
    cdef readonly Py_ssize_t compressed_size
    # Set by pause(): feed_buffer stops after the message being delivered.
    cdef readonly bint paused

    cdef Py_ssize_t feed_buffer(self, unsigned char *data, Py_ssize_t n) except -1
    cdef void pause(self) noexcept
    cdef void resume(self) noexcept
    cdef int _fail(self, int code, str reason) except -1
    cdef int _start_frame(self, const unsigned char *hdr) except -1
    cdef int _frame_payload(self, unsigned char *data, Py_ssize_t n) except -1
    cdef int _end_frame(self) except -1
    cdef int _deliver_message(self, const unsigned char *data, Py_ssize_t n) except -1
    cdef int _deliver_control(self) except -1
    cdef int _append_message(self, const unsigned char *data, Py_ssize_t n) except -1
    cdef void _reset_message(self) noexcept


cdef inline Py_ssize_t frame_header_size(Py_ssize_t length, bint masked) noexcept nogil:
    cdef Py_ssize_t size = 2 if length < 126 else (4 if length < 65536 else 10)
    return size + 4 if masked else size


cdef inline Py_ssize_t write_frame_header(unsigned char *out, int opcode, bint fin, bint rsv1,
                                          Py_ssize_t length,
                                          const unsigned char *key) noexcept nogil:
    """Write a frame header (RFC 6455 section 5.2) to `out` (room for 14 bytes); returns its size.

    `key` is the 4-byte masking key for client frames, or NULL for server frames.
    """
    cdef Py_ssize_t i = 2
    cdef int shift
    out[0] = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    cdef unsigned char mask_bit = 0x80 if key != NULL else 0
    if length < 126:
        out[1] = mask_bit | <unsigned char>length
    elif length < 65536:
        out[1] = mask_bit | 126
        out[2] = <unsigned char>(length >> 8)
        out[3] = <unsigned char>length
        i = 4
    else:
        out[1] = mask_bit | 127
        for shift in range(8):
            out[2 + shift] = <unsigned char>((<uint64_t>length) >> (56 - 8 * shift))
        i = 10
    if key != NULL:
        out[i] = key[0]
        out[i + 1] = key[1]
        out[i + 2] = key[2]
        out[i + 3] = key[3]
        i += 4
    return i


cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object text, Py_ssize_t *size) except NULL


cdef inline const unsigned char *message_payload(object data, Py_ssize_t *size, bint *text,
                                                 Py_buffer *view, bint *held) except? NULL:
    """Where a message's payload lies: str as its UTF-8 (a text message), bytes directly, any
    other bytes-like through the buffer protocol; then `held` is set and the caller must
    PyBuffer_Release(view)."""
    held[0] = False
    if type(data) is bytes:
        text[0] = False
        size[0] = PyBytes_GET_SIZE(data)
        return <const unsigned char *>PyBytes_AS_STRING(data)
    if isinstance(data, str):
        text[0] = True
        return <const unsigned char *>PyUnicode_AsUTF8AndSize(data, size)
    PyObject_GetBuffer(data, view, PyBUF_SIMPLE)
    held[0] = True
    text[0] = False
    size[0] = view.len
    return <const unsigned char *>view.buf


# A fresh masking key for a client frame (RFC 6455 section 5.3): 4 bytes from a pool refilled
# from os.urandom (the OS CSPRNG), 256 keys per refill; the pool is discarded in a forked child.
cdef const unsigned char *next_random_key() except NULL
cdef bint is_valid_close_code(int code) noexcept nogil

# The frame builders: every outgoing frame, server's or client's, is made by one of these.
# `key` is the 4-byte masking key of a client frame, NULL for a server frame.
cdef bytes build_frame(int opcode, const unsigned char *data, Py_ssize_t n, bint fin, bint rsv1,
                       const unsigned char *key)
cdef bytes build_close_frame(int code, bytes reason, const unsigned char *key)
cdef bytes frame_header(int opcode, Py_ssize_t n)
cdef bytes control_frame(int opcode, object data, const unsigned char *key)
cdef bytes close_frame(int code, str reason, const unsigned char *key)
cdef bytes compressed_frame(Deflater deflater, bint text, const unsigned char *payload,
                            Py_ssize_t n, const unsigned char *key)
cdef bytes message_frame(object data, int opcode, Deflater deflater, object compress,
                         Py_ssize_t threshold, const unsigned char *key)
cpdef int check_close(object code, str reason) except -1


cdef inline bint wants_compression(object compress, Py_ssize_t size,
                                   Py_ssize_t threshold) noexcept:
    """Per-message opt-out/in: compress=False never, True always, None from `threshold` on."""
    if compress is None:
        return size >= threshold
    return compress is True
