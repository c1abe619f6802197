"""Incremental UTF-8 validation (RFC 3629), compiled.

The frame parser uses the C kernel (`verb_utf8_feed`, see _utf8.pxd) directly; this module gives
it a Python face for tests, benchmarks and clients.
"""

from libc.stdint cimport uint32_t


def validate_utf8(const unsigned char[::1] data):
    """Return True if `data` is complete, well-formed UTF-8."""
    cdef uint32_t state = VERB_UTF8_ACCEPT
    cdef Py_ssize_t n = data.shape[0]
    if n:
        with nogil:
            verb_utf8_feed(&state, &data[0], <size_t>n)
    return state == VERB_UTF8_ACCEPT


cdef class Utf8Validator:
    """Validates text that arrives in pieces; a code point may be split between pieces.

    `feed` returns False at the first piece that makes the text invalid, and keeps returning
    False after that. `complete` tells whether the text so far ends on a code point boundary.
    """

    cdef uint32_t _state

    def __cinit__(self):
        self._state = VERB_UTF8_ACCEPT

    def feed(self, const unsigned char[::1] data):
        """Validate the next piece. Returns False once the text is known to be invalid."""
        cdef Py_ssize_t n = data.shape[0]
        if n:
            with nogil:
                verb_utf8_feed(&self._state, &data[0], <size_t>n)
        return self._state != VERB_UTF8_REJECT

    @property
    def complete(self):
        """True when the text so far is valid and does not end inside a code point."""
        return self._state == VERB_UTF8_ACCEPT

    @property
    def failed(self):
        return self._state == VERB_UTF8_REJECT

    def reset(self):
        self._state = VERB_UTF8_ACCEPT
