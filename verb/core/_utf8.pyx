"""Incremental UTF-8 validation (RFC 3629), compiled.

The frame parser uses the C kernel (`verb_utf8_feed`, see _utf8.pxd) directly; this module gives
it a Python face for tests, benchmarks and clients.

Both entry points take any object with a contiguous buffer (bytes, bytearray, memoryview, ...),
read as raw bytes. They read bytes objects directly, and other objects through the buffer
protocol, without making a memoryview: for a short message that would cost more than the
validation itself. For the same reason the GIL is only released for large inputs.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from libc.stdint cimport uint32_t

# Inputs from this size on are validated without the GIL (64 KiB: some microseconds of work).
# Below it, releasing and taking back the GIL costs more than it can give to other threads.
cdef enum:
    _NOGIL_MIN_SIZE = 1 << 16


cdef inline void _run(uint32_t *state, const unsigned char *p, Py_ssize_t n) noexcept:
    if n >= _NOGIL_MIN_SIZE:
        with nogil:
            verb_utf8_feed(state, p, <size_t>n)
    elif n > 0:
        verb_utf8_feed(state, p, <size_t>n)


cdef int _feed(uint32_t *state, object data) except -1:
    cdef Py_buffer view
    if PyBytes_CheckExact(data):
        _run(state, <const unsigned char *>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
        return 0
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)  # TypeError, BufferError if not contiguous
    _run(state, <const unsigned char *>view.buf, view.len)
    PyBuffer_Release(&view)
    return 0


def validate_utf8(data):
    """Return True if `data` (a bytes-like object) is complete, well-formed UTF-8."""
    cdef uint32_t state = VERB_UTF8_ACCEPT
    _feed(&state, data)
    return state == VERB_UTF8_ACCEPT


cdef class Utf8Validator:
    """Validates text that arrives in pieces; a code point may be split between pieces.

    `feed` returns False at the first piece that makes the text invalid, and keeps returning
    False after that. `complete` tells whether the text so far ends on a code point boundary.
    """

    # Starts at VERB_UTF8_ACCEPT, which is 0: Cython zero-fills a new object's C fields.
    cdef uint32_t _state

    def feed(self, data):
        """Validate the next piece (a bytes-like object). Returns False once the text is known
        to be invalid."""
        _feed(&self._state, data)
        return self._state != VERB_UTF8_REJECT

    @property
    def complete(self):
        """True when the text so far is valid and does not end inside a code point."""
        return self._state == VERB_UTF8_ACCEPT

    @property
    def failed(self):
        """True once the text is known to be invalid (until `reset`)."""
        return self._state == VERB_UTF8_REJECT

    def reset(self):
        """Start over, for a new text."""
        self._state = VERB_UTF8_ACCEPT
