# Contract of the incremental UTF-8 validator, shared by _utf8 and _frame.
from libc.stdint cimport uint32_t

cdef extern from "_utf8_kernel.h" nogil:
    const uint32_t VERB_UTF8_ACCEPT
    const uint32_t VERB_UTF8_REJECT
    int verb_utf8_feed(uint32_t *state, const unsigned char *p, size_t n) noexcept
