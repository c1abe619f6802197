# What the server's and the client's connection layers (verb.server._server, verb.client._client)
# share about asyncio transports. Inline only: cimporting it imports no module at run time.

cdef inline Py_ssize_t transport_buffered(object transport) except -1:
    """Bytes waiting in a transport. Python 3.9's asyncio TLS transport raises AttributeError
    once its TCP transport is gone (before connection_lost reaches us): nothing waits then."""
    try:
        return transport.get_write_buffer_size()
    except AttributeError:
        return 0


# Frames queued for one connection totalling at most this many bytes are joined into one bytes
# object before the write: a copy of a few KiB costs less than the transport's per-buffer work
# in writelines (uvloop keeps, then gathers, each buffer); larger batches go out as a list.
cdef enum:
    JOIN_LIMIT = 16 * 1024


cdef inline int write_frames(object transport, list frames, Py_ssize_t total) except -1:
    """Write `frames` (two or more) with one transport call."""
    if total <= JOIN_LIMIT:
        transport.write(b"".join(frames))
    else:
        transport.writelines(frames)
    return 0


cdef enum:
    # Size of the read buffer a connection reads into (one per loop on the server, one per
    # thread in the client).
    READ_BUFFER_SIZE = 256 * 1024


cdef inline int feed_by_copy(object protocol, object data) except -1:
    """The plain Protocol path (data_received), which neither asyncio nor uvloop takes with a
    BufferedProtocol: copy `data` into `protocol.get_buffer()` a buffer's worth at a time and
    hand each part to `protocol.buffer_updated`."""
    cdef Py_ssize_t start = 0, n, total = len(data)
    view = memoryview(data).cast("B")
    while start < total:
        n = min(total - start, READ_BUFFER_SIZE)
        protocol.get_buffer(n)[:n] = view[start:start + n]
        protocol.buffer_updated(n)
        start += n
    return 0
