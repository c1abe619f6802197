"""XOR masking of WebSocket payloads (RFC 6455 section 5.3), compiled.

Python-level entry points for tests, benchmarks and clients; the frame parser calls the inline
C kernel (`verb_mask`, see _mask.pxd) directly.

The buffers are taken with the plain buffer protocol (PyObject_GetBuffer), not typed
memoryviews: that accepts any contiguous bytes-like object whatever its item format, as
bytes() does, and costs a fraction of a typed memoryview's setup on small payloads.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memcpy

# Payloads from this size on are masked without the GIL, so other threads can run meanwhile.
# Below it the masking takes a microsecond or less (tens of GB/s), and giving the GIL away would
# cost more than it lets others gain: taking it back waits for whichever thread got it.
cdef enum:
    _NOGIL_MIN = 65536


cdef int _get_key(object key, unsigned char k[4]) except -1:
    """Copy the 4-byte mask key into `k`; bytes is the fast path, any bytes-like will do."""
    cdef Py_buffer view
    if type(key) is bytes and PyBytes_GET_SIZE(key) == 4:
        memcpy(k, PyBytes_AS_STRING(key), 4)
        return 0
    PyObject_GetBuffer(key, &view, PyBUF_SIMPLE)
    try:
        if view.len != 4:
            raise ValueError("mask key must be exactly 4 bytes, got {}".format(view.len))
        memcpy(k, view.buf, 4)
    finally:
        PyBuffer_Release(&view)
    return 0


def apply_mask(data, key, int offset=0):
    """Return `data` XOR-ed with the repeating 4-byte `key`, as new bytes.

    Args:
        data: any contiguous bytes-like object (read only is fine).
        key: the 4-byte masking key (bytes-like).
        offset: index into the key of data's first byte (0-3; taken modulo 4), for payloads
            handled in pieces.
    """
    cdef unsigned char k[4]
    cdef Py_buffer view
    cdef bytes out
    cdef unsigned char* dst
    cdef const unsigned char* src
    cdef size_t n
    _get_key(key, k)
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        out = PyBytes_FromStringAndSize(NULL, view.len)
        dst = <unsigned char*>PyBytes_AS_STRING(out)
        src = <const unsigned char*>view.buf
        n = <size_t>view.len
        if n >= _NOGIL_MIN:
            with nogil:
                verb_mask(dst, src, n, k, offset)
        else:
            verb_mask(dst, src, n, k, offset)
    finally:
        PyBuffer_Release(&view)
    return out


def mask_inplace(buf, key, int offset=0):
    """XOR a writable buffer (bytearray, writable memoryview) with `key` in place.

    Args:
        buf: a writable, contiguous buffer.
        key: the 4-byte masking key (bytes-like).
        offset: index into the key of buf's first byte (0-3; taken modulo 4).

    Returns:
        The key offset of the byte after `buf` (0-3), to pass as `offset` for the next piece.

    Raises:
        BufferError: `buf` is read only (bytes, a read-only memoryview) or not contiguous.
    """
    cdef unsigned char k[4]
    cdef Py_buffer view
    cdef unsigned char* p
    cdef size_t n
    _get_key(key, k)
    try:
        PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE)
    except BufferError as exc:
        raise BufferError(
            "mask_inplace needs a writable contiguous buffer (bytearray, writable memoryview), "
            "got {} ({})".format(type(buf).__name__, exc)
        ) from None
    try:
        p = <unsigned char*>view.buf
        n = <size_t>view.len
        if n >= _NOGIL_MIN:
            with nogil:
                offset = verb_mask(p, p, n, k, offset)
        else:
            offset = verb_mask(p, p, n, k, offset)
    finally:
        PyBuffer_Release(&view)
    return offset
