# Contract of the permessage-deflate core (RFC 7692 section 7.2): a raw-DEFLATE compressor and
# decompressor working on whole messages, which own the 00 00 ff ff tail (section 7.2.1/7.2.2).
# Sans-I/O: pointers and lengths in, bytes or a pointer to the inflated message out.
#
# Error contract (Inflater):
#   The cdef methods return 0 on success, or a close code on a bad message:
#     INFLATE_CORRUPT  = 1007 (CLOSE_INVALID_DATA): not a valid DEFLATE stream, or truncated;
#     INFLATE_TOO_BIG  = 1009 (CLOSE_MESSAGE_TOO_BIG): inflated size would exceed max_size.
#   `error` then holds a short reason for the close frame. They raise (and return -1) only on
#   MemoryError or a zlib failure that is verb's bug, never for anything the peer sent.
#   Whatever the return value, the Inflater is usable afterwards: an error discards the message
#   and resets the stream (context is lost, as the connection is failing anyway), so a shared
#   instance simply goes on with the next message.
# The Python layer (`decompress`, `feed`, `finish`) raises `DeflateError` with `.close_code`.
#
# Lifetimes: the inflated message is at `out[0:out_len]` once `finish_message` or
# `inflate_message` returned 0; it stays valid until the next feed/inflate/reset/release or
# `release_output()`, which the consumer calls after copying it (it frees a large buffer).
#
# Shared use (one Deflater and one Inflater per event loop for every connection that negotiated
# no_context_takeover both ways): messages of different connections may interleave frame by
# frame, so a shared Inflater must be given each message whole (`inflate_message`, the caller
# buffers compressed fragments); `feed_buffer`/`finish_message` are for a dedicated
# (per-connection) Inflater that inflates frame by frame.

from verb.core._zlib cimport z_stream

cdef enum:
    INFLATE_OK = 0
    INFLATE_CORRUPT = 1007
    INFLATE_TOO_BIG = 1009


cdef class Deflater:
    cdef z_stream _strm
    cdef bint _ready                     # deflateInit2 done (lazily, on the first message)
    cdef Py_ssize_t _zlib_memory         # bytes zlib holds now (counted by our allocator)
    cdef readonly int window_bits        # effective: 9 when 8 was asked (see _deflate.pyx)
    cdef readonly bint no_context_takeover
    cdef readonly int level
    cdef readonly int mem_level

    # One whole message -> its compressed payload, tail removed (RFC 7692 section 7.2.1).
    # An empty message gives b"\x00" (section 7.2.3.6). Raises MemoryError only.
    cdef bytes compress_buffer(self, const unsigned char *data, Py_ssize_t n)
    cpdef void reset(self) noexcept      # drop the LZ77 context (deflateReset)
    cpdef void release(self) noexcept    # free zlib's state; re-created on the next message
    cdef int _init(self) except -1


cdef class Inflater:
    cdef z_stream _strm
    cdef bint _ready                     # inflateInit2 done (lazily, on the first message)
    cdef bint _in_message                # a message was started and not finished
    cdef bint _stream_end                # the peer ended a DEFLATE stream (BFINAL=1)
    cdef Py_ssize_t _message_in          # compressed bytes of the current message so far
    cdef Py_ssize_t _zlib_memory
    cdef readonly int window_bits
    cdef readonly bint no_context_takeover
    cdef public Py_ssize_t max_size      # largest inflated message accepted
    cdef readonly str error              # reason of the last error, None after a good message

    # The inflated message (see Lifetimes above). The buffer grows (doubling) only as output
    # appears and never beyond max_size + 1 bytes: that extra byte is how too-big is detected.
    cdef unsigned char *out
    cdef Py_ssize_t out_len
    cdef Py_ssize_t _out_cap
    cdef Py_ssize_t _out_peak            # largest capacity reached by the current/last message

    # Dedicated use: the compressed payload of each frame of a message, in order, then finish.
    cdef int feed_buffer(self, const unsigned char *data, Py_ssize_t n) except -1
    cdef int finish_message(self) except -1
    # Shared or single-frame use: a whole message at once (feed_buffer + finish_message).
    cdef int inflate_message(self, const unsigned char *data, Py_ssize_t n) except -1

    cdef void release_output(self) noexcept
    cpdef void reset(self) noexcept      # abandon any message and drop the LZ77 context
    cpdef void release(self) noexcept    # reset, and free zlib's state and the buffer
    cdef int _init(self) except -1
    cdef int _begin(self) except -1
    cdef int _inflate(self, const unsigned char *data, Py_ssize_t n) except -1
    cdef bytes _take(self)
    cdef int _fail(self, int code, str reason) noexcept
    cdef int _grow(self, Py_ssize_t hint) except -1
    cdef int _restart_stream(self) except -1
