# Contract of the masking kernel (RFC 6455 section 5.3), shared by _mask and _frame.
# The kernel is a static inline C function, so cimporting modules get it inlined.

cdef extern from "_mask_kernel.h" nogil:
    int verb_mask(unsigned char *dst, const unsigned char *src, size_t n,
                  const unsigned char *key, int offset) noexcept
