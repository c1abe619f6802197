"""permessage-deflate core (RFC 7692 section 7.2): raw DEFLATE compression of whole messages.

`Deflater` compresses one message at a time with a sync flush and strips the 00 00 ff ff tail
(section 7.2.1); `Inflater` appends the tail and inflates (section 7.2.2), message by message or
frame by frame, into a buffer that grows only as output appears and never past `max_size` + 1
bytes, so a decompression bomb is stopped (1009) after at most that much memory. Nothing here
does I/O or knows about frames: the frame parser and the connection layer drive these objects
(see _deflate.pxd for the cdef contract and the error codes).

zlib memory per instance (zlib's own figures, zutil/deflate.c; `memory` reports the live count):

    deflate: (1 << (windowBits + 2)) + (1 << (memLevel + 9)) + ~6 KiB of state
        windowBits 15, memLevel 8: 256 KiB + 6 KiB     windowBits 15, memLevel 5: 144 KiB + 6 KiB
        windowBits 12, memLevel 5:  32 KiB + 6 KiB     windowBits  9, memLevel 1:   3 KiB + 6 KiB
    inflate: (1 << windowBits) + ~7 KiB of state (the window is allocated on first output)
        windowBits 15: 32 KiB + 7 KiB                  windowBits 9: 512 B + 7 KiB

Both are allocated lazily, on the first message, and `release()` gives them back (the next
message re-creates them): a connection that negotiated compression but is idle can drop them.

windowBits 8: zlib cannot produce a raw deflate stream with a 256-byte window (deflateInit2
rejects -8; zlib issue #171: its deflate needs windowBits >= 9 for raw streams), so a Deflater
asked for 8 uses 9. A 9-bit stream may reference 512 bytes back, which a peer that asked for
server_max_window_bits=8 cannot decode: negotiation (verb.extensions) therefore never agrees to
8 for our side. Inflating with windowBits 8 works and is allowed.
"""

from cpython.mem cimport PyMem_RawFree, PyMem_RawMalloc, PyMem_RawRealloc
from cpython.ref cimport PyObject, Py_XDECREF
from libc.string cimport memcmp, memset

from verb.core._zlib cimport (
    Bytef, uInt, uLong, voidpf, z_stream,
    Z_BUF_ERROR, Z_DEFAULT_STRATEGY, Z_DEFLATED, Z_MEM_ERROR, Z_NO_FLUSH, Z_OK, Z_STREAM_END,
    Z_SYNC_FLUSH,
    deflate, deflateBound, deflateEnd, deflateInit2, deflateReset,
    inflate, inflateEnd, inflateInit2, inflateReset, inflateSetDictionary,
    get_dictionary_fn,
    zlibVersion,
)

cdef extern from "Python.h":
    # The raw forms, to grow/shrink a bytes object in place with _PyBytes_Resize.
    PyObject *_new_bytes "PyBytes_FromStringAndSize"(const char *v, Py_ssize_t n) except NULL
    char *_bytes_ptr "PyBytes_AS_STRING"(PyObject *o) noexcept
    int _PyBytes_Resize(PyObject **string, Py_ssize_t newsize) except -1
    const Py_ssize_t PY_SSIZE_T_MAX

ZLIB_VERSION = zlibVersion().decode()

DEFAULT_WINDOW_BITS = 15
DEFAULT_LEVEL = 6           # zlib's default; level 1 is ~2x faster, ~25% larger (benchmarks/)
# zlib's default is 8; 5 (as in the websockets library) compresses JSON-like messages of 1 KiB
# and 64 KiB to the same size within 0.5% with 144 KiB instead of 256 KiB per compressor, and
# makes the per-message reset of a no_context_takeover compressor cheaper (it clears
# 1 << (mem_level + 8) bytes of hash heads: 8 KiB instead of 64 KiB).
DEFAULT_MEM_LEVEL = 5

CLOSE_INVALID_DATA = INFLATE_CORRUPT
CLOSE_MESSAGE_TOO_BIG = INFLATE_TOO_BIG

# The empty stored block a sync flush ends with (RFC 7692 section 7.2.1).
cdef const unsigned char *_TAIL = b"\x00\x00\xff\xff"
# An empty message: the 3-bit header of an empty stored block, padded (section 7.2.3.6).
cdef bytes _EMPTY_MESSAGE = b"\x00"

# zlib is given at most this much input or output per call (avail_in/avail_out are uInt).
cdef Py_ssize_t _MAX_CALL = 1 << 30
# The Inflater's first output buffer: 4x the compressed size, within these bounds.
cdef Py_ssize_t _INITIAL_MIN = 1024
cdef Py_ssize_t _INITIAL_MAX = 64 * 1024
# An output buffer up to this size is kept for the next message; a larger one is freed.
cdef Py_ssize_t _KEEP_CAPACITY = 16 * 1024


class DeflateError(Exception):
    """A compressed message that cannot be accepted.

    Attributes:
        close_code: 1007 (corrupt or truncated DEFLATE data) or 1009 (inflates past max_size).
        reason: a short reason, fit for a close frame.
    """

    def __init__(self, close_code, reason):
        super().__init__(close_code, reason)
        self.close_code = close_code
        self.reason = reason

    def __str__(self):
        return "{} ({})".format(self.reason, self.close_code)


# zlib allocates through these so that each stream's memory is counted (opaque points at the
# owner's counter) and visible to tracemalloc (PyMem_Raw* needs no GIL, like malloc).
cdef voidpf _zalloc(voidpf opaque, uInt items, uInt size) noexcept nogil:
    cdef size_t n = <size_t>items * <size_t>size
    cdef size_t *block = <size_t *>PyMem_RawMalloc(n + 16)   # 16: keeps malloc's alignment
    if block == NULL:
        return NULL
    block[0] = n
    (<Py_ssize_t *>opaque)[0] += <Py_ssize_t>n
    return <voidpf>(<char *>block + 16)


cdef void _zfree(voidpf opaque, voidpf address) noexcept nogil:
    cdef size_t *block = <size_t *>(<char *>address - 16)
    (<Py_ssize_t *>opaque)[0] -= <Py_ssize_t>block[0]
    PyMem_RawFree(block)


cdef int _check_window_bits(int window_bits) except -1:
    if not 8 <= window_bits <= 15:
        raise ValueError("window_bits must be between 8 and 15, got {}".format(window_bits))
    return 0


cdef Py_ssize_t _limit(object max_size) except -1:
    if max_size is None:
        return PY_SSIZE_T_MAX
    if max_size < 0:
        raise ValueError("max_size must be >= 0 or None, got {!r}".format(max_size))
    return max_size


cdef class Deflater:
    """Compresses whole messages for permessage-deflate.

    Args:
        window_bits: LZ77 window, 8-15 (the agreed *_max_window_bits of our side); 8 is run
            as 9, see the module docstring.
        no_context_takeover: reset the compressor after each message (RFC 7692 section 7.1.1);
            required for a Deflater shared by several connections.
        level: zlib compression level, 0-9 (or -1 for zlib's default, 6).
        mem_level: zlib memLevel, 1-9: memory for the match finder, 1 << (mem_level + 9) bytes.
    """

    def __cinit__(self, int window_bits=DEFAULT_WINDOW_BITS, bint no_context_takeover=False,
                  int level=DEFAULT_LEVEL, int mem_level=DEFAULT_MEM_LEVEL):
        _check_window_bits(window_bits)
        if not -1 <= level <= 9:
            raise ValueError("level must be between -1 and 9, got {}".format(level))
        if not 1 <= mem_level <= 9:
            raise ValueError("mem_level must be between 1 and 9, got {}".format(mem_level))
        self.window_bits = 9 if window_bits == 8 else window_bits
        self.no_context_takeover = no_context_takeover
        self.level = level
        self.mem_level = mem_level

    def __dealloc__(self):
        if self._ready:
            deflateEnd(&self._strm)

    cdef int _init(self) except -1:
        memset(&self._strm, 0, sizeof(z_stream))
        self._strm.zalloc = _zalloc
        self._strm.zfree = _zfree
        self._strm.opaque = <voidpf>&self._zlib_memory
        cdef int rc = deflateInit2(&self._strm, self.level, Z_DEFLATED, -self.window_bits,
                                   self.mem_level, Z_DEFAULT_STRATEGY)
        if rc == Z_MEM_ERROR:
            raise MemoryError()
        if rc != Z_OK:
            raise RuntimeError("deflateInit2 failed ({})".format(rc))
        self._ready = True
        return 0

    cdef bytes compress_buffer(self, const unsigned char *data, Py_ssize_t n):
        """Compress one whole message; returns its payload without the 00 00 ff ff tail."""
        if n == 0:
            # zlib would give nothing at all for no input after a flush; this is the
            # empty stored block's header, which the receiver completes with the tail.
            return _EMPTY_MESSAGE
        if not self._ready:
            self._init()
        cdef z_stream *strm = &self._strm
        # One deflate call suffices when the output has deflateBound's room plus the sync
        # flush's empty stored block (up to 3 + 7 bits + 4 bytes); the loop covers the rest.
        cdef Py_ssize_t cap = <Py_ssize_t>deflateBound(strm, <uLong>n) + 16
        cdef Py_ssize_t produced = 0, remaining = n, room
        cdef int rc
        cdef PyObject *out = _new_bytes(NULL, cap)
        cdef bytes result
        cdef bint done = False
        strm.next_in = <Bytef *>data
        strm.avail_in = 0
        try:
            while True:
                if strm.avail_in == 0 and remaining:
                    strm.avail_in = <uInt>(remaining if remaining < _MAX_CALL else _MAX_CALL)
                    remaining -= strm.avail_in
                if produced == cap:
                    cap += (cap >> 1) + 64
                    _PyBytes_Resize(&out, cap)
                room = cap - produced
                if room > _MAX_CALL:
                    room = _MAX_CALL
                strm.next_out = <Bytef *>_bytes_ptr(out) + produced
                strm.avail_out = <uInt>room
                rc = deflate(strm, Z_SYNC_FLUSH if remaining == 0 else Z_NO_FLUSH)
                produced += room - strm.avail_out
                if rc != Z_OK and rc != Z_BUF_ERROR:
                    raise RuntimeError("deflate failed ({})".format(rc))
                # Done when the flush left room (all output given) and all input was taken.
                if strm.avail_out != 0 and strm.avail_in == 0 and remaining == 0:
                    break
            if produced < 4 or memcmp(_bytes_ptr(out) + produced - 4, _TAIL, 4) != 0:
                raise RuntimeError("deflate's sync flush did not end with 00 00 ff ff")
            _PyBytes_Resize(&out, produced - 4)
            result = <bytes>out
            done = True
        finally:
            Py_XDECREF(out)
            if not done:
                # The stream took part of a message the peer will never see: drop the context.
                deflateReset(strm)
        if self.no_context_takeover:
            deflateReset(strm)
        return result

    cpdef void reset(self) noexcept:
        """Forget the LZ77 context: the next message compresses as if it were the first."""
        if self._ready:
            deflateReset(&self._strm)

    cpdef void release(self) noexcept:
        """Free zlib's state (and the context); the next message allocates it again."""
        if self._ready:
            deflateEnd(&self._strm)
            self._ready = False

    def compress(self, data):
        """Compress one whole message (any bytes-like); returns the frame payload."""
        cdef const unsigned char[::1] view = memoryview(data).cast("B")
        if view.shape[0] == 0:
            return self.compress_buffer(NULL, 0)
        return self.compress_buffer(&view[0], view.shape[0])

    @property
    def memory(self):
        """Bytes zlib holds for this Deflater now (0 until the first message)."""
        return self._zlib_memory

    def __repr__(self):
        return "Deflater(window_bits={}, no_context_takeover={}, level={}, mem_level={})".format(
            self.window_bits, self.no_context_takeover, self.level, self.mem_level)


cdef get_dictionary_fn _get_dictionary = NULL
cdef bint _get_dictionary_looked_up = False


cdef get_dictionary_fn _inflate_get_dictionary():
    """zlib's inflateGetDictionary, found once in the zlib this process loaded (see _zlib.pxd).

    Only a rare case needs it: a peer ending a DEFLATE stream (BFINAL) inside a message while
    keeping its context (RFC 7692 section 7.2.3.3). NULL when the loaded zlib lacks it.
    """
    global _get_dictionary, _get_dictionary_looked_up
    if not _get_dictionary_looked_up:
        _get_dictionary_looked_up = True
        import ctypes
        import sys
        try:
            zlib = ctypes.CDLL("libz.1.dylib" if sys.platform == "darwin" else "libz.so.1")
            address = ctypes.cast(zlib.inflateGetDictionary, ctypes.c_void_p).value
        except (OSError, AttributeError):
            address = None
        if address:
            _get_dictionary = <get_dictionary_fn><size_t>address
    return _get_dictionary


cdef class Inflater:
    """Decompresses permessage-deflate messages, with a limit on their inflated size.

    Args:
        window_bits: LZ77 window the peer compresses with, 8-15 (the agreed
            *_max_window_bits of the peer's side).
        no_context_takeover: reset after each message (the peer resets its compressor);
            required for an Inflater shared by several connections.
        max_size: largest inflated message accepted, in bytes; None for no limit. A message
            that would inflate past it fails with 1009 once max_size + 1 bytes came out.
    """

    def __cinit__(self, int window_bits=DEFAULT_WINDOW_BITS, bint no_context_takeover=False,
                  max_size=None):
        _check_window_bits(window_bits)
        self.window_bits = window_bits
        self.no_context_takeover = no_context_takeover
        self.max_size = _limit(max_size)

    def __dealloc__(self):
        if self._ready:
            inflateEnd(&self._strm)
        PyMem_RawFree(self.out)

    cdef int _init(self) except -1:
        memset(&self._strm, 0, sizeof(z_stream))
        self._strm.zalloc = _zalloc
        self._strm.zfree = _zfree
        self._strm.opaque = <voidpf>&self._zlib_memory
        cdef int rc = inflateInit2(&self._strm, -self.window_bits)
        if rc == Z_MEM_ERROR:
            raise MemoryError()
        if rc != Z_OK:
            raise RuntimeError("inflateInit2 failed ({})".format(rc))
        self._ready = True
        return 0

    cdef int _begin(self) except -1:
        if not self._ready:
            self._init()
        self.out_len = 0
        self._out_peak = self._out_cap
        self._message_in = 0
        self._in_message = True
        self.error = None
        return 0

    cdef int feed_buffer(self, const unsigned char *data, Py_ssize_t n) except -1:
        """Inflate the next piece (e.g. one frame's payload) of a message; 0 or a close code."""
        if not self._in_message:
            self._begin()
        if n == 0:
            return 0
        self._message_in += n
        return self._inflate(data, n)

    cdef int finish_message(self) except -1:
        """End the message: inflate the tail; 0 (output at out[0:out_len]) or a close code."""
        cdef int rc
        if not self._in_message:
            self._begin()
        if self._message_in != 0 and not self._stream_end:
            rc = self._inflate(_TAIL, 4)
            if rc:
                return rc
            # A complete message ends on a block boundary once the tail's empty stored block
            # is read: zlib then waits for a block header (data_type bit 7). Anything else
            # means the payload stopped inside a block: truncated.
            if not self._stream_end and not (self._strm.data_type & 128):
                return self._fail(INFLATE_CORRUPT, "truncated compressed message")
        # An empty payload is taken as an empty message (RFC 7692 section 7.2.3.6 sends 0x00,
        # but senders that produce nothing exist); it leaves the stream untouched.
        # A payload that ended its DEFLATE stream (BFINAL=1, section 7.2.3.3) needs no tail.
        self._in_message = False
        if self.no_context_takeover:
            inflateReset(&self._strm)
            self._stream_end = False
        return 0

    cdef int inflate_message(self, const unsigned char *data, Py_ssize_t n) except -1:
        """Inflate one whole message; 0 (output at out[0:out_len]) or a close code."""
        cdef int rc
        if self._in_message:
            raise RuntimeError("inflate_message while a fed message is unfinished")
        self._begin()
        if n:
            self._message_in = n
            rc = self._inflate(data, n)
            if rc:
                return rc
        return self.finish_message()

    cdef int _inflate(self, const unsigned char *data, Py_ssize_t n) except -1:
        cdef z_stream *strm = &self._strm
        cdef Py_ssize_t remaining = n, room
        cdef int rc
        strm.next_in = <Bytef *>data
        strm.avail_in = 0
        while True:
            if strm.avail_in == 0 and remaining:
                strm.avail_in = <uInt>(remaining if remaining < _MAX_CALL else _MAX_CALL)
                remaining -= strm.avail_in
            if self._stream_end:
                if strm.avail_in == 0:
                    return 0
                rc = self._restart_stream()
                if rc:
                    return rc
            if self.out_len == self._out_cap:
                self._grow(n)
            room = self._out_cap - self.out_len
            if room > _MAX_CALL:
                room = _MAX_CALL
            strm.next_out = self.out + self.out_len
            strm.avail_out = <uInt>room
            rc = inflate(strm, Z_SYNC_FLUSH)
            self.out_len += room - strm.avail_out
            if self.out_len > self.max_size:
                return self._fail(INFLATE_TOO_BIG, "inflated message over the size limit")
            if rc == Z_OK or rc == Z_BUF_ERROR:
                # Done when all input is taken and output stopped before filling the buffer
                # (a full buffer may mean more output is pending: grow and go on).
                if strm.avail_out != 0 and strm.avail_in == 0 and remaining == 0:
                    return 0
            elif rc == Z_STREAM_END:
                self._stream_end = True
            elif rc == Z_MEM_ERROR:
                self._fail(INFLATE_CORRUPT, "out of memory")
                raise MemoryError()
            else:  # Z_DATA_ERROR, Z_NEED_DICT (never in raw mode), Z_STREAM_ERROR
                return self._fail(INFLATE_CORRUPT, "invalid compressed data")

    cdef int _grow(self, Py_ssize_t hint) except -1:
        """Make room for more output: double, within max_size + 1 bytes."""
        cdef Py_ssize_t limit = self.max_size + 1 if self.max_size < PY_SSIZE_T_MAX else self.max_size
        cdef Py_ssize_t cap
        cdef unsigned char *grown
        if self._out_cap:
            cap = self._out_cap * 2 if self._out_cap < PY_SSIZE_T_MAX // 2 else PY_SSIZE_T_MAX
        else:
            cap = hint * 4 if hint < _INITIAL_MAX // 4 else _INITIAL_MAX
            if cap < _INITIAL_MIN:
                cap = _INITIAL_MIN
        if cap > limit:
            cap = limit
        grown = <unsigned char *>PyMem_RawRealloc(self.out, <size_t>cap)
        if grown == NULL:
            self._fail(INFLATE_CORRUPT, "out of memory")
            raise MemoryError()
        self.out = grown
        self._out_cap = cap
        if cap > self._out_peak:
            self._out_peak = cap
        return 0

    cdef int _restart_stream(self) except -1:
        """More data after a final block (BFINAL=1): a new DEFLATE stream starts.

        Returns 0, or INFLATE_CORRUPT (after _fail) when the window must carry over and the
        loaded zlib cannot hand it out.

        RFC 7692 section 7.2.3.3 lets a sender end a message's data with a final block; what
        follows (the rest of the message, or the next message) is a new raw stream, and the
        LZ77 window carries over, so it becomes the new stream's dictionary.
        """
        cdef uInt size = 0
        cdef get_dictionary_fn get_dictionary = _inflate_get_dictionary()
        if get_dictionary == NULL:
            if self.no_context_takeover:
                inflateReset(&self._strm)  # nothing carries over: no dictionary needed
                self._stream_end = False
                return 0
            return self._fail(INFLATE_CORRUPT, "zlib too old to continue after a final block")
        cdef Bytef *window = <Bytef *>PyMem_RawMalloc(<size_t>1 << self.window_bits)
        if window == NULL:
            self._fail(INFLATE_CORRUPT, "out of memory")
            raise MemoryError()
        get_dictionary(&self._strm, window, &size)
        inflateReset(&self._strm)
        if size:
            inflateSetDictionary(&self._strm, window, size)
        PyMem_RawFree(window)
        self._stream_end = False
        return 0

    cdef int _fail(self, int code, str reason) noexcept:
        """Discard the message and reset the stream; returns `code` for the caller to return."""
        self.reset()
        self.error = reason
        return code

    cdef void release_output(self) noexcept:
        """The consumer is done with out[0:out_len]: keep a small buffer, free a large one."""
        self.out_len = 0
        if self._out_cap > _KEEP_CAPACITY:
            PyMem_RawFree(self.out)
            self.out = NULL
            self._out_cap = 0

    cpdef void reset(self) noexcept:
        """Abandon any unfinished message and forget the LZ77 context."""
        if self._ready:
            inflateReset(&self._strm)
        self._stream_end = False
        self._in_message = False
        self._message_in = 0
        self.release_output()

    cpdef void release(self) noexcept:
        """reset(), then free zlib's state and the output buffer (re-created when needed)."""
        self.reset()
        if self._ready:
            inflateEnd(&self._strm)
            self._ready = False
        PyMem_RawFree(self.out)
        self.out = NULL
        self._out_cap = 0

    # -- Python face, for tests and tools ---------------------------------------------------

    cdef bytes _take(self):
        cdef bytes data = (<char *>self.out)[:self.out_len] if self.out_len else b""
        self.release_output()
        return data

    def decompress(self, data, max_size=None):
        """Inflate one whole message (its payload, without the tail).

        Args:
            data: the compressed payload, any bytes-like.
            max_size: limit for this message; None uses the Inflater's `max_size`.

        Raises:
            DeflateError: corrupt (close_code 1007) or too big (1009).
        """
        cdef const unsigned char[::1] view = memoryview(data).cast("B")
        cdef Py_ssize_t saved = self.max_size
        cdef int rc
        if max_size is not None:
            self.max_size = _limit(max_size)
        try:
            rc = self.inflate_message(&view[0] if view.shape[0] else NULL, view.shape[0])
        finally:
            self.max_size = saved
        if rc:
            raise DeflateError(rc, self.error)
        return self._take()

    def feed(self, data):
        """Inflate the next piece of the current message (e.g. one frame's payload).

        Raises:
            DeflateError: as for `decompress`; the message is then discarded.
        """
        cdef const unsigned char[::1] view = memoryview(data).cast("B")
        cdef int rc = self.feed_buffer(&view[0] if view.shape[0] else NULL, view.shape[0])
        if rc:
            raise DeflateError(rc, self.error)

    def finish(self):
        """End the current message; returns it inflated.

        Raises:
            DeflateError: as for `decompress`.
        """
        cdef int rc = self.finish_message()
        if rc:
            raise DeflateError(rc, self.error)
        return self._take()

    @property
    def buffered(self):
        """Inflated bytes of the unfinished message so far."""
        return self.out_len if self._in_message else 0

    @property
    def memory(self):
        """Bytes this Inflater holds now: zlib's state and window plus its output buffer."""
        return self._zlib_memory + self._out_cap

    @property
    def peak_buffer(self):
        """Largest output buffer of the current or last message, in bytes."""
        return self._out_peak

    def __repr__(self):
        return "Inflater(window_bits={}, no_context_takeover={}, max_size={})".format(
            self.window_bits, self.no_context_takeover,
            None if self.max_size == PY_SSIZE_T_MAX else self.max_size)
