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
