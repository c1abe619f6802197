"""Connection layer of the client: an asyncio BufferedProtocol (uvloop or plain asyncio) that
drives the frame core in client mode (RFC 6455: server frames unmasked, ours masked).

`verb.client` does the rest (URLs, the opening request, the check of the response, the reconnect
helper); this module is the part that runs per message:

- reads land in a read buffer shared by the client connections of a thread (BufferedProtocol;
  the buffer is only used between `get_buffer` and `buffer_updated`, which run back to back),
  and the parser reads frames in place there;
- each message is the `str` or `bytes` the parser produced, queued in a deque; reading pauses
  while `max_queue` messages wait, and resumes once the reader took three quarters of them;
- sends are masked into one new `bytes` per frame (a fresh key per frame from the core's pool
  of os.urandom keys); the first frame of a loop iteration is written at once, the ones that
  follow it in the same iteration (or while one read is handled) go out in one transport call
  at its end;
- pings from the server are answered at once; our pings resolve when their pong arrives.
"""

import asyncio
import collections
import os
import threading

from cpython.bytearray cimport PyByteArray_AS_STRING

from verb.core._deflate cimport Deflater, Inflater
from verb.core._frame cimport (
    CLOSE_ABNORMAL, CLOSE_INTERNAL_ERROR, CLOSE_NO_STATUS, CLOSE_NORMAL, FrameHandler,
    FrameParser, OP_BINARY, OP_PING, OP_PONG, OP_TEXT, ST_CLOSED, ST_CLOSING, ST_CONNECTING,
    ST_OPEN, check_close, close_frame, control_frame, message_frame, next_random_key,
)
from verb.server._transport cimport (
    READ_BUFFER_SIZE, feed_by_copy, transport_buffered, write_frames,
)

from verb.core.limits import DEFAULT_CLIENT_MAX_QUEUE, DEFAULT_CLIENT_WRITE_LIMIT

cdef enum:
    # Largest opening-handshake response head accepted.
    MAX_RESPONSE_HEAD = 64 * 1024
    # Queued output at which a send writes at once instead of waiting for the batch.
    FLUSH_BYTES = 64 * 1024

_CLOSE_NAMES = {
    1000: "normal closure", 1001: "going away", 1002: "protocol error",
    1003: "unsupported data", 1005: "no status code", 1006: "abnormal closure",
    1007: "invalid data", 1008: "policy violation", 1009: "message too big",
    1010: "mandatory extension", 1011: "internal error", 1012: "service restart",
    1013: "try again later", 1014: "bad gateway",
}


class ConnectionClosed(Exception):
    """The connection is closed (or closing): raised by `recv`, `send`, `ping` and `drain`.

    Attributes:
        code: the close code: the one in the server's close frame, the one we failed the
            connection with (1002, 1007, 1009, 1011), or 1006 when the TCP connection ended
            without a closing handshake.
        reason: the close reason (text).
    """

    def __init__(self, code, reason):
        self.code = code
        self.reason = reason
        name = _CLOSE_NAMES.get(code, "")
        text = "{} ({})".format(code, name) if name else str(code)
        if reason:
            text += " " + reason
        super().__init__("WebSocket connection closed: " + text)


class ConnectionClosedOK(ConnectionClosed):
    """A clean closing handshake: 1000, 1001 or no status code, or a close we started.
    `async for message in ws` ends on it instead of raising."""


class ConnectionClosedError(ConnectionClosed):
    """The connection ended abnormally: no closing handshake (1006), a protocol error, or the
    server closed with an error code."""


# Per thread: (bytearray, memoryview over it).
cdef object _local = threading.local()


cdef object _read_buffer():
    cdef object pair = getattr(_local, "pair", None)
    if pair is None:
        buf = bytearray(READ_BUFFER_SIZE)
        pair = (buf, memoryview(buf))
        _local.pair = pair
    return pair


cdef class ClientWebSocketBase(FrameHandler):
    """One client connection. Used through `ClientWebSocket`, which adds
    asyncio.BufferedProtocol as a second base so that uvloop and asyncio both take their
    buffered-read path. Created by `verb.connect`, not directly."""

    cdef readonly object transport
    cdef object loop
    cdef FrameParser parser
    cdef int _state
    # Opening handshake.
    cdef bytes _request
    cdef bytearray _response
    cdef object _on_response
    cdef object _handshake
    # Reading.
    cdef bytearray _rbuf
    cdef object _rview
    cdef int _reading
    cdef object _messages
    cdef Py_ssize_t _max_queue
    cdef bint _read_paused
    cdef object _waiter
    cdef bint _done_reading       # no message will be queued any more
    # Writing.
    cdef list _out
    cdef Py_ssize_t _out_bytes
    cdef bint _flush_scheduled
    cdef bint _write_paused
    cdef list _drain_waiters
    cdef Py_ssize_t _write_limit
    # Compression (permessage-deflate negotiated).
    cdef Deflater _deflater
    cdef Py_ssize_t _compression_threshold
    # Pings: payload -> (future, loop time sent), in the order sent.
    cdef dict _pings
    cdef double _ping_interval
    cdef double _ping_timeout
    cdef object _keepalive_handle
    cdef object _keepalive_deadline
    cdef bytes _keepalive_payload
    # Closing.
    cdef double _close_timeout
    cdef object _close_handle
    cdef object _lost
    cdef bint _close_received
    cdef bint _close_started_by_us
    cdef int _sent_code           # our close frame's code, 0 until we send one
    cdef str _sent_reason
    cdef readonly object close_code
    cdef readonly object close_reason

    # Set once the handshake succeeded.
    cdef public object subprotocol
    cdef public object extensions
    cdef public object response_headers
    cdef public object deflate_parameters
    cdef readonly object remote_address
    cdef readonly object local_address

    CONNECTING = ST_CONNECTING
    OPEN = ST_OPEN
    CLOSING = ST_CLOSING
    CLOSED = ST_CLOSED

    def __init__(self, loop, bytes request, on_response, *, max_payload_length=None,
                 Py_ssize_t max_queue=DEFAULT_CLIENT_MAX_QUEUE,
                 Py_ssize_t write_limit=DEFAULT_CLIENT_WRITE_LIMIT,
                 double close_timeout=10.0, ping_interval=None, ping_timeout=None):
        self.loop = loop
        self._request = request
        self._on_response = on_response
        self._handshake = loop.create_future()
        self._lost = loop.create_future()
        self._response = bytearray()
        self._state = ST_CONNECTING
        self._messages = collections.deque()
        self._max_queue = max(1, max_queue)
        self._write_limit = write_limit
        self._close_timeout = close_timeout
        self._ping_interval = ping_interval or 0.0
        self._ping_timeout = (ping_timeout if ping_timeout is not None else ping_interval) or 0.0
        self._pings = {}
        self._drain_waiters = []
        self.extensions = ()
        self.parser = FrameParser(self, server=False, max_payload_length=max_payload_length)

    # -- state ----------------------------------------------------------------------------------

    @property
    def state(self):
        """CONNECTING, OPEN, CLOSING or CLOSED (0-3, as the browser's readyState)."""
        return self._state

    @property
    def closed(self):
        """True once the TCP connection is gone."""
        return self._state == ST_CLOSED

    @property
    def queued(self):
        """Messages received and not read yet."""
        return len(self._messages)

    @property
    def buffered_amount(self):
        """Bytes sent and not yet taken by the kernel."""
        cdef Py_ssize_t n = self._out_bytes
        if self.transport is not None:
            n += transport_buffered(self.transport)
        return n

    def __repr__(self):
        return "<ClientWebSocket {} {}>".format(
            ("CONNECTING", "OPEN", "CLOSING", "CLOSED")[self._state], self.remote_address)

    # -- asyncio protocol -------------------------------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        pair = _read_buffer()
        self._rbuf = pair[0]
        self._rview = pair[1]
        # Pause (drain waits) above write_limit, resume at a quarter of it; uvloop's default
        # low mark is 16 bytes.
        transport.set_write_buffer_limits(high=self._write_limit, low=self._write_limit // 4)
        self.remote_address = transport.get_extra_info("peername")
        self.local_address = transport.get_extra_info("sockname")
        transport.write(self._request)
        self._request = None

    def get_buffer(self, Py_ssize_t sizehint):
        return self._rview

    def buffer_updated(self, Py_ssize_t nbytes):
        self._reading += 1
        try:
            if self._state == ST_CONNECTING:
                self._response += self._rview[:nbytes]
                self._handshake_data()
            else:
                self.parser.feed_buffer(<unsigned char *>PyByteArray_AS_STRING(self._rbuf),
                                        nbytes)
        except Exception as exc:  # never into the event loop: fail this connection
            self._fail_internal(exc)
        finally:
            self._reading -= 1
            if self._reading == 0 and self._out is not None:
                self._flush()

    def data_received(self, data):  # plain Protocol path (not used by asyncio or uvloop here)
        feed_by_copy(self, data)

    def eof_received(self):
        return False  # close the transport

    def pause_writing(self):
        self._write_paused = True

    def resume_writing(self):
        self._write_paused = False
        self._wake_drain(None)

    def connection_lost(self, exc):
        cdef object waiter
        self.transport = None
        self._out = None
        self._out_bytes = 0
        if self.close_code is None:
            self.close_code = CLOSE_ABNORMAL
            self.close_reason = "connection lost" if exc is None else \
                "connection lost: {}".format(exc)
        self._state = ST_CLOSED
        self._done_reading = True
        self._cancel_timers()
        self.parser = None
        self._deflater = None
        if not self._handshake.done():
            self._handshake.set_exception(ConnectionResetError(
                "connection closed during the opening handshake"
                + ("" if exc is None else ": {}".format(exc))))
        self._wake_reader()
        error = self._closed_error()
        for waiter, _ in self._pings.values():
            if not waiter.done():
                waiter.set_exception(error)
        self._pings.clear()
        self._wake_drain(error)
        if not self._lost.done():
            self._lost.set_result(None)

    # -- opening handshake ------------------------------------------------------------------------

    cdef int _handshake_data(self) except -1:
        cdef Py_ssize_t end = self._response.find(b"\r\n\r\n")
        if end < 0:
            if len(self._response) > MAX_RESPONSE_HEAD:
                raise ValueError("the handshake response head is over {} bytes".format(
                    MAX_RESPONSE_HEAD))
            return 0
        head = bytes(self._response[:end + 4])
        rest = bytes(self._response[end + 4:])
        self._response = None
        try:
            self._on_response(self, head, rest)
        except BaseException as exc:
            self._state = ST_CLOSED
            if not self._handshake.done():
                self._handshake.set_exception(exc)
            self.transport.abort()
            return 0
        self._state = ST_OPEN
        if self._ping_interval > 0:
            self._keepalive_handle = self.loop.call_later(self._ping_interval, self._keepalive)
        if not self._handshake.done():
            self._handshake.set_result(None)
        if rest:
            self.parser.feed(rest)
        return 0

    def _use_deflate(self, Deflater deflater, Inflater inflater, Py_ssize_t threshold):
        """Called by the response check once permessage-deflate was agreed."""
        self._deflater = deflater
        self._compression_threshold = threshold
        self.parser.inflater = inflater

    def _wait_open(self):
        return self._handshake

    def _abort(self):
        if self.transport is not None:
            self.transport.abort()

    def _closed_by_us(self):
        return self._close_started_by_us

    # -- receiving --------------------------------------------------------------------------------

    cdef void _wake_reader(self):
        cdef object waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    cdef inline int _queue_message(self, object message) except -1:
        self._messages.append(message)
        if self._waiter is not None:
            self._wake_reader()
        if not self._read_paused and len(self._messages) >= self._max_queue and \
                self.transport is not None:
            self._read_paused = True
            self.transport.pause_reading()
        return 0

    cdef inline object _pop(self):
        cdef object message = self._messages.popleft()
        if self._read_paused and len(self._messages) <= self._max_queue // 4:
            self._read_paused = False
            if self.transport is not None:
                self.transport.resume_reading()
        return message

    cdef object _closed_error(self):
        """The exception for a connection that is closing or closed."""
        cdef int code
        if self.close_code is not None:
            code = self.close_code
            reason = self.close_reason or ""
        elif self._sent_code:
            # We closed and the server has not answered yet: our code says how it is closing.
            code = self._sent_code
            reason = self._sent_reason
            if self._close_started_by_us:
                return ConnectionClosedOK(code, reason)
        else:
            code = CLOSE_ABNORMAL
            reason = ""
        if self._close_received and (self._close_started_by_us or code == CLOSE_NORMAL or
                                     code == 1001 or code == CLOSE_NO_STATUS):
            return ConnectionClosedOK(code, reason)
        return ConnectionClosedError(code, reason)

    async def _wait_message(self):
        if self._waiter is not None:
            raise RuntimeError("recv() is already being awaited by another task")
        self._waiter = self.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def recv(self):
        """The next message: str for text, bytes for binary.

        Raises:
            ConnectionClosedOK / ConnectionClosedError: no message is left and the connection
                closed (see `close_code` and `close_reason`).
        """
        while True:
            if self._messages:
                return self._pop()
            if self._done_reading:
                raise self._closed_error()
            await self._wait_message()

    def __aiter__(self):
        return self

    async def __anext__(self):
        """Messages until the connection closes: iteration ends on a clean close and raises
        ConnectionClosedError on an abnormal one."""
        while True:
            if self._messages:
                return self._pop()
            if self._done_reading:
                error = self._closed_error()
                if isinstance(error, ConnectionClosedOK):
                    raise StopAsyncIteration
                raise error
            await self._wait_message()

    # -- sending ----------------------------------------------------------------------------------

    cdef int _queue(self, bytes frame) except -1:
        """Write `frame`: the first frame of a loop iteration goes out at once (no added
        latency for a lone message), the ones that follow in the same iteration are batched
        into one write at its end; while a read is handled, at the end of the read."""
        if self._reading == 0 and not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_soon)
            if self._out is None and self.transport is not None:
                self.transport.write(frame)
                return 0
        if self._out is None:
            self._out = [frame]
        else:
            self._out.append(frame)
        self._out_bytes += len(frame)
        if self._out_bytes >= FLUSH_BYTES:
            self._flush()
        return 0

    def _flush_soon(self):
        self._flush_scheduled = False
        self._flush()

    cdef void _flush(self):
        cdef list out = self._out
        if out is None:
            return
        cdef Py_ssize_t total = self._out_bytes
        self._out = None
        self._out_bytes = 0
        if self.transport is None:
            return
        if len(out) == 1:
            self.transport.write(out[0])
        else:
            write_frames(self.transport, out, total)

    cdef int _check_open(self) except -1:
        if self._state != ST_OPEN:
            if self._state == ST_CONNECTING:
                raise RuntimeError("the connection is not open yet")
            raise self._closed_error()
        return 0

    def send(self, data):
        """Send a message: str as text, any bytes-like as binary.

        The frame is masked with a fresh random key and written with the other frames sent in
        the same loop iteration. Await `drain()` to wait until the write buffer is below
        `write_limit` again (flow control).

        Raises:
            ConnectionClosed: the connection is closing or closed.
        """
        self._check_open()
        self._queue(message_frame(data, 0, self._deflater, None, self._compression_threshold,
                                  next_random_key()))

    def send_text(self, str data not None):
        self._check_open()
        self._queue(message_frame(data, OP_TEXT, self._deflater, None,
                                  self._compression_threshold, next_random_key()))

    def send_binary(self, data):
        self._check_open()
        self._queue(message_frame(data, OP_BINARY, self._deflater, None,
                                  self._compression_threshold, next_random_key()))

    async def drain(self):
        """Write out what is queued and wait until the transport's buffer is below the low
        mark (`write_limit // 4`) if it went above `write_limit`."""
        self._flush()
        if self._write_paused and self.transport is not None:
            waiter = self.loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter
        if self._state == ST_CLOSED:
            raise self._closed_error()

    cdef void _wake_drain(self, object error):
        cdef list waiters = self._drain_waiters
        if not waiters:
            return
        self._drain_waiters = []
        for waiter in waiters:
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)

    async def ping(self, data=None):
        """Send a ping and wait for its pong; returns the round trip in seconds.

        Args:
            data: the payload (str or bytes-like, at most 125 bytes); 4 random bytes if None.
                Two pings waiting at once must have different payloads.
        """
        self._check_open()
        if data is None:
            data = os.urandom(4)
            while data in self._pings:
                data = os.urandom(4)
        elif isinstance(data, str):
            data = data.encode("utf-8")
        else:
            data = bytes(data)
        if data in self._pings:
            raise ValueError("a ping with this payload is already waiting for its pong")
        frame = control_frame(OP_PING, data, next_random_key())
        waiter = self.loop.create_future()
        self._pings[data] = (waiter, self.loop.time())
        self._queue(frame)
        return await waiter

    def pong(self, data=b""):
        """Send an unsolicited pong (a unidirectional heartbeat, RFC 6455 section 5.5.3)."""
        self._check_open()
        self._queue(control_frame(OP_PONG, data, next_random_key()))

    # -- keepalive --------------------------------------------------------------------------------

    def _keepalive(self):
        self._keepalive_handle = None
        if self._state != ST_OPEN:
            return
        if self._keepalive_deadline is None:
            self._keepalive_payload = os.urandom(4)
            self._queue(control_frame(OP_PING, self._keepalive_payload, next_random_key()))
            if self._ping_timeout > 0:
                self._keepalive_deadline = self.loop.call_later(self._ping_timeout,
                                                                 self._keepalive_expired)
        self._keepalive_handle = self.loop.call_later(self._ping_interval, self._keepalive)

    def _keepalive_expired(self):
        self._keepalive_deadline = None
        if self._state == ST_OPEN:
            self._fail(CLOSE_INTERNAL_ERROR, "keepalive ping timeout")

    cdef void _cancel_timers(self):
        if self._keepalive_handle is not None:
            self._keepalive_handle.cancel()
            self._keepalive_handle = None
        if self._keepalive_deadline is not None:
            self._keepalive_deadline.cancel()
            self._keepalive_deadline = None
        if self._close_handle is not None:
            self._close_handle.cancel()
            self._close_handle = None

    # -- closing ----------------------------------------------------------------------------------

    async def close(self, code=CLOSE_NORMAL, str reason=""):
        """Close the connection: send a close frame, wait (at most `close_timeout`) for the
        server's close frame and for the server to close TCP (RFC 6455 section 7.1.1), then
        drop the connection if it has not.

        Args:
            code: a close code that may be sent (1000-1003, 1007-1014, 3000-4999), or None for
                a close frame without a code.
            reason: text, at most 123 bytes once encoded.
        """
        code = check_close(code, reason)
        if self._state == ST_OPEN:
            self._close_started_by_us = True
            self._send_close(code, reason)
        await self.wait_closed()

    async def wait_closed(self):
        """Wait until the TCP connection is gone (at most `close_timeout` once closing)."""
        if self._lost.done():
            return
        if self._state == ST_OPEN:
            await asyncio.shield(self._lost)
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._lost), self._close_timeout)
        except asyncio.TimeoutError:
            self._abort()
            await asyncio.shield(self._lost)

    cdef void _send_close(self, int code, str reason):
        """Queue our close frame behind what is queued and write it out; sends end here."""
        self._state = ST_CLOSING
        self._sent_code = code
        self._sent_reason = reason
        self._cancel_timers()
        self._queue(close_frame(code, reason, next_random_key()))
        self._flush()

    cdef void _fail(self, int code, str reason):
        """_Fail the WebSocket Connection_ (RFC 6455 section 7.1.7): send a close frame with
        `code` if we can, close TCP; receiving ends and `code` is the close code."""
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
        self._done_reading = True
        if self._state == ST_OPEN:
            self._send_close(code, reason)
        self._state = ST_CLOSING if self.transport is not None else ST_CLOSED
        self._wake_reader()
        if self.transport is not None:
            self.transport.close()

    cdef void _fail_internal(self, object exc):
        if self._state == ST_CONNECTING:
            if not self._handshake.done():
                self._handshake.set_exception(exc)
            self._abort()
            return
        self._fail(CLOSE_INTERNAL_ERROR, "internal error: {}".format(type(exc).__name__))

    def _close_expired(self):
        """The server sent its close frame and did not close TCP in time."""
        self._close_handle = None
        if self.transport is not None:
            self.transport.close()

    # -- frame events (FrameHandler) --------------------------------------------------------------

    cdef int on_text(self, str text) except -1:
        return self._queue_message(text)

    cdef int on_binary(self, bytes data) except -1:
        return self._queue_message(data)

    cdef int on_ping(self, bytes data) except -1:
        if self._state == ST_OPEN:
            self._queue(control_frame(OP_PONG, data, next_random_key()))  # RFC 6455 section 5.5.2
        return 0

    cdef int on_pong(self, bytes data) except -1:
        cdef double now
        if data == self._keepalive_payload and self._keepalive_deadline is not None:
            self._keepalive_deadline.cancel()
            self._keepalive_deadline = None
        if data not in self._pings:
            return 0
        # A pong answers its ping and every earlier one (RFC 6455 section 5.5.3 lets a peer
        # answer only the latest).
        now = self.loop.time()
        while self._pings:
            key = next(iter(self._pings))
            waiter, sent = self._pings.pop(key)
            if not waiter.done():
                waiter.set_result(now - sent)
            if key == data:
                break
        return 0

    cdef int on_close(self, int code, str reason) except -1:
        self._close_received = True
        self._done_reading = True
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
        if self._state == ST_OPEN:
            # RFC 6455 section 5.5.1: answer with a close frame echoing the code.
            self._send_close(CLOSE_NORMAL if code == CLOSE_NO_STATUS else code, "")
        self._wake_reader()
        # The server closes TCP first (section 7.1.1); if it does not, we do.
        if self.transport is not None and self._close_handle is None:
            self._close_handle = self.loop.call_later(self._close_timeout, self._close_expired)
        return 0

    cdef int on_protocol_error(self, int code, str reason) except -1:
        self._fail(code, reason)
        return 0
