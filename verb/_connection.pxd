# What the server's and the client's connection layers (_protocol.pyx, _client.pyx) share.

cdef enum:
    # ready_state values, as the browser's WebSocket.readyState and Bun's ws.readyState.
    ST_CONNECTING = 0
    ST_OPEN = 1
    ST_CLOSING = 2
    ST_CLOSED = 3


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
