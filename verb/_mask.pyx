"""XOR masking of WebSocket payloads (RFC 6455 section 5.3), compiled.

Python-level entry points for tests, benchmarks and clients; the frame parser calls the inline
C kernel (`verb_mask`, see _mask.pxd) directly.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize


cdef inline const unsigned char* _key_ptr(const unsigned char[::1] key) except NULL:
    if key.shape[0] != 4:
        raise ValueError("mask key must be exactly 4 bytes, got {}".format(key.shape[0]))
    return &key[0]


def apply_mask(const unsigned char[::1] data, const unsigned char[::1] key, int offset=0):
    """Return `data` XOR-ed with the repeating 4-byte `key`, as new bytes.

    Args:
        data: any contiguous bytes-like object (read only is fine).
        key: the 4-byte masking key.
        offset: index into the key of data's first byte (0-3), for payloads handled in pieces.
    """
    cdef const unsigned char* k = _key_ptr(key)
    cdef Py_ssize_t n = data.shape[0]
    cdef bytes out = PyBytes_FromStringAndSize(NULL, n)
    cdef unsigned char* dst = <unsigned char*>PyBytes_AS_STRING(out)
    if n:
        with nogil:
            verb_mask(dst, &data[0], <size_t>n, k, offset)
    return out


def mask_inplace(unsigned char[::1] data, const unsigned char[::1] key, int offset=0):
    """XOR a writable buffer (bytearray, writable memoryview) with `key` in place.

    Returns:
        The key offset of the byte after `data`, to pass as `offset` for the next piece.
    """
    cdef const unsigned char* k = _key_ptr(key)
    cdef Py_ssize_t n = data.shape[0]
    if n == 0:
        return offset & 3
    with nogil:
        offset = verb_mask(&data[0], &data[0], <size_t>n, k, offset)
    return offset
