# zlib's C API (https://zlib.net/manual.html), the part verb uses: raw deflate/inflate streams
# for permessage-deflate (RFC 7692). Linked against the system zlib (setup.py: libraries=["z"]).
#
# Only the fields an application may touch are declared; Cython reads and writes them by name,
# so the real struct layout (and zconf.h's z_ prefixing) stays zlib.h's business.
# deflateInit2/inflateInit2 are macros over deflateInit2_/inflateInit2_ that pass the header's
# version and sizeof(z_stream); declaring them as functions makes Cython emit the macro call.

cdef extern from "zlib.h" nogil:
    ctypedef unsigned char Bytef
    ctypedef unsigned int uInt
    ctypedef unsigned long uLong
    ctypedef void *voidpf
    ctypedef voidpf (*alloc_func)(voidpf opaque, uInt items, uInt size) noexcept
    ctypedef void (*free_func)(voidpf opaque, voidpf address) noexcept

    ctypedef struct z_stream:
        Bytef *next_in       # z_const Bytef * (z_const is empty unless ZLIB_CONST)
        uInt avail_in
        uLong total_in
        Bytef *next_out
        uInt avail_out
        uLong total_out
        const char *msg      # last error message, NULL if none
        alloc_func zalloc
        free_func zfree
        voidpf opaque
        int data_type        # inflate: decoding state bits (see inflate(), Z_BLOCK)
        uLong adler

    ctypedef z_stream *z_streamp

    const char *zlibVersion()

    # Flush values.
    int Z_NO_FLUSH
    int Z_PARTIAL_FLUSH
    int Z_SYNC_FLUSH
    int Z_FULL_FLUSH
    int Z_FINISH
    int Z_BLOCK

    # Return codes.
    int Z_OK
    int Z_STREAM_END
    int Z_NEED_DICT
    int Z_ERRNO
    int Z_STREAM_ERROR
    int Z_DATA_ERROR
    int Z_MEM_ERROR
    int Z_BUF_ERROR
    int Z_VERSION_ERROR

    # Compression levels and strategies.
    int Z_NO_COMPRESSION
    int Z_BEST_SPEED
    int Z_BEST_COMPRESSION
    int Z_DEFAULT_COMPRESSION
    int Z_FILTERED
    int Z_HUFFMAN_ONLY
    int Z_RLE
    int Z_FIXED
    int Z_DEFAULT_STRATEGY

    int Z_DEFLATED
    int MAX_WBITS       # 15
    int MAX_MEM_LEVEL   # 9

    int deflateInit2(z_streamp strm, int level, int method, int windowBits, int memLevel,
                     int strategy)
    int deflate(z_streamp strm, int flush)
    int deflateReset(z_streamp strm)
    int deflateEnd(z_streamp strm)
    uLong deflateBound(z_streamp strm, uLong sourceLen)

    int inflateInit2(z_streamp strm, int windowBits)
    int inflate(z_streamp strm, int flush)
    int inflateReset(z_streamp strm)
    int inflateEnd(z_streamp strm)
    int inflateSetDictionary(z_streamp strm, const Bytef *dictionary, uInt dictLength)


# inflateGetDictionary appeared in zlib 1.2.7.1 (symbol version ZLIB_1.2.7.1), newer than
# manylinux2014's zlib 1.2.7, so a wheel may not import it by name: _deflate finds it at run
# time in the loaded zlib and calls it through this pointer type.
ctypedef int (*get_dictionary_fn)(z_streamp strm, Bytef *dictionary, uInt *dictLength) noexcept nogil
