"""Connection layer: an asyncio BufferedProtocol (uvloop or plain asyncio) driving the frame core.

One port serves HTTP/1.1 (httptools) and WebSocket upgrades. Per event loop one `Hub` owns what
connections share: the read buffer every connection reads into (BufferedProtocol), the
timeout sweep that serves every connection's handshake, idle and close deadlines, the topic
registry, the write batch, and the statistics.

Writes are batched: a send appends the frame to its connection's output list and marks the
connection dirty; the hub writes every dirty connection's frames with one transport call at the
end of the current read (or, for sends made outside a read, once per loop iteration).

Errors never escape into the event loop: a user handler's exception is caught in
`ServerWebSocket._call_failed`, goes to the `error` handler or the log, and at worst closes that
one connection with 1011.
"""

import asyncio
import collections
import logging

from cpython.buffer cimport PyBuffer_Release
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memcpy

from verb._deflate cimport Deflater, Inflater
from verb._frame cimport (
    CLOSE_GOING_AWAY, CLOSE_INTERNAL_ERROR, CLOSE_NO_STATUS, CLOSE_NORMAL, CLOSE_ABNORMAL,
    CLOSE_POLICY_VIOLATION, FrameHandler, FrameParser, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG,
    OP_TEXT, build_close_frame, build_frame, frame_header_size, is_valid_close_code,
    message_payload, write_frame_header,
)

import httptools
import orjson

from verb import extensions as _extensions
from verb import handshake as _handshake
from verb.http import HTTPError, Headers, Request, Response, error_response
from verb.options import Handler

log = logging.getLogger("verb")

# ready_state values, as in the browser API and Bun.
CONNECTING = 0
OPEN = 1
CLOSING = 2
CLOSED = 3

from verb._connection cimport (
    ST_CLOSED, ST_CLOSING, ST_CONNECTING, ST_OPEN, transport_buffered, write_frames,
)

cdef enum:
    MODE_HTTP = 0
    MODE_UPGRADING = 1   # waiting for an async upgrade handler
    MODE_WEBSOCKET = 2
    MODE_CLOSED = 3

# Reading pauses when this many events of one connection wait for its async handlers.
DEF MAX_PENDING_EVENTS = 64
# Size of the read buffer shared by every connection of a loop.
DEF READ_BUFFER_SIZE = 256 * 1024
# bytes payloads from this size on are sent after their own header instead of being copied
# into a frame (they are immutable, so the transport may hold them until they are written).
DEF ZERO_COPY_MIN = 64 * 1024


cdef class _Handler:
    """A user handler resolved once: function, how many arguments it takes, sync or async."""
    cdef object fn
    cdef int arity
    cdef bint is_async

    def __cinit__(self, handler):
        self.fn = handler.fn
        self.arity = handler.arity
        self.is_async = handler.is_async


cdef inline _Handler _resolve(handler):
    return None if handler is None else _Handler(handler)


cdef inline object _invoke(_Handler h, object a, object b, object c):
    """Call `h` with as many of (a, b, c) as it accepts."""
    if h.arity == 1:
        return h.fn(a)
    if h.arity == 2:
        return h.fn(a, b)
    if h.arity >= 3:
        return h.fn(a, b, c)
    return h.fn()


cdef class Hub:
    """What the connections of one server on one event loop share."""

    cdef readonly object loop
    cdef readonly object options
    cdef readonly object router
    cdef readonly object app
    cdef readonly bint websocket_enabled
    # Upgrades may take the plain path (_plain_upgrade_key): no upgrade handler, no path or
    # origin restriction, no proxy headers to read.
    cdef readonly bint plain_upgrades
    cdef _Handler h_open, h_message, h_close, h_error, h_drain, h_ping, h_pong, h_upgrade
    cdef object on_pong_listeners

    cdef readonly set connections
    cdef readonly set websockets
    cdef dict topics
    # Cluster hooks (verb.pubsub), None without an external broker: on_topic_change(topic,
    # active) when a topic gets its first local subscriber (True) or loses its last (False);
    # on_publish(topic, data, compress) after ws.publish has delivered locally.
    cdef public object on_topic_change
    cdef public object on_publish
    cdef bytearray _read_buffer
    cdef object _read_view
    cdef list _dirty
    cdef list _dirty_spare        # the other of two lists _flush swaps (no list per flush)
    # Frames published since the last flush. A subscriber that has nothing else queued holds
    # a run of them ([_run_start, _run_end) in ServerWebSocket) instead of its own list, and
    # subscribers holding the same run write one shared bytes object (_run_bytes).
    cdef list _published
    cdef Py_ssize_t _run_bytes_start, _run_bytes_end
    cdef bytes _run_bytes
    cdef bint _flush_scheduled
    cdef int _reading  # > 0 while a read is being handled: its flush happens at its end
    cdef object _sweep_handle
    cdef double _sweep_interval
    cdef readonly double now  # loop time at the last sweep: the clock of idle timeouts
    cdef readonly bint accepting

    # Limits, copied out of the options once.
    cdef Py_ssize_t max_payload_length
    cdef Py_ssize_t backpressure_limit
    cdef bint close_on_backpressure_limit
    cdef bint publish_to_self
    cdef double idle_timeout
    cdef bint send_pings
    cdef double handshake_timeout
    cdef double close_timeout
    cdef object max_connections
    # permessage-deflate: negotiation settings (None: off), the loop's shared compressors (one
    # per window size a client asked for) and shared decompressor.
    cdef object deflate_settings
    cdef dict _shared_deflaters
    cdef Inflater _shared_inflater
    cdef Py_ssize_t compression_threshold

    # Statistics.
    cdef public unsigned long long messages_in, messages_out, bytes_in, bytes_out, dropped
    cdef public unsigned long long connections_total

    def __cinit__(self, loop, options, handlers, router, app=None):
        self.loop = loop
        self.app = app
        self.options = options
        self.router = router
        self.websocket_enabled = handlers is not None
        if handlers is not None:
            self.h_open = _resolve(handlers.open)
            self.h_message = _resolve(handlers.message)
            self.h_close = _resolve(handlers.close)
            self.h_error = _resolve(handlers.error)
            self.h_drain = _resolve(handlers.drain)
            self.h_ping = _resolve(handlers.ping)
            self.h_pong = _resolve(handlers.pong)
            self.h_upgrade = _resolve(handlers.upgrade)
        self.connections = set()
        self.websockets = set()
        self.topics = {}
        self._read_buffer = bytearray(READ_BUFFER_SIZE)
        self._read_view = memoryview(self._read_buffer)
        self._dirty = []
        self._dirty_spare = []
        self._published = []
        self.accepting = True
        self.max_payload_length = options.max_payload_length
        self.backpressure_limit = options.backpressure_limit
        self.close_on_backpressure_limit = options.close_on_backpressure_limit
        self.publish_to_self = options.publish_to_self
        self.idle_timeout = options.idle_timeout or 0.0
        self.send_pings = options.send_pings
        self.handshake_timeout = options.handshake_timeout
        self.close_timeout = options.close_timeout
        self.max_connections = options.max_connections
        self.compression_threshold = options.compression_threshold
        self.plain_upgrades = self.websocket_enabled and self.h_upgrade is None and \
            options.path is None and options.origins is None and not options.trust_proxy
        if options.compression is not None:
            self.deflate_settings = _extensions.DeflateSettings(
                mode=options.compression,
                server_max_window_bits=options.server_max_window_bits,
                client_max_window_bits=options.client_max_window_bits)
            self._shared_deflaters = {}
        # Sweep often enough to honour the shortest timeout to within a quarter of it.
        cdef double shortest = min(self.handshake_timeout, self.close_timeout)
        if self.idle_timeout > 0:
            shortest = min(shortest, self.idle_timeout / 2)
        self._sweep_interval = max(0.05, min(1.0, shortest / 4))
        self._sweep_handle = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self):
        self.now = self.loop.time()
        self._sweep_handle = self.loop.call_later(self._sweep_interval, self._sweep)

    def stop_accepting(self):
        self.accepting = False

    def close_all(self, int code=CLOSE_GOING_AWAY, str reason="server shutting down"):
        """Close every WebSocket with `code` and every idle HTTP connection."""
        cdef ConnectionBase conn
        cdef ServerWebSocket ws
        for ws in list(self.websockets):
            ws._close(code, reason)
        for conn in list(self.connections):
            if conn.mode != MODE_WEBSOCKET and conn._busy == 0:
                conn._abort()
        self._flush()

    def shutdown(self):
        """Drop every connection at once and stop the sweep."""
        cdef ConnectionBase conn
        cdef ServerWebSocket ws
        for conn in list(self.connections):
            conn._abort()
        for ws in list(self.websockets):
            ws._abort()
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
            self._sweep_handle = None

    def pending_output(self):
        """Bytes still waiting in transports (for graceful stop)."""
        cdef ConnectionBase conn
        cdef Py_ssize_t total = 0
        cdef ServerWebSocket ws
        for conn in self.connections:
            if conn.transport is not None:
                total += transport_buffered(conn.transport)
        for ws in self.websockets:
            if ws.transport is not None:
                total += transport_buffered(ws.transport)
        return total

    def stats(self):
        return {
            "connections": len(self.connections) + len(self.websockets),
            "websockets": len(self.websockets),
            "connections_total": self.connections_total,
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "backpressure_drops": self.dropped,
            "topics": len(self.topics),
        }

    # -- timeouts: one sweep per loop serves every connection's deadlines -----------------------

    def _sweep(self):
        cdef double now = self.loop.time()
        cdef ConnectionBase conn
        cdef ServerWebSocket ws
        self.now = now
        try:
            for conn in list(self.connections):
                if conn._busy == 0 and conn.deadline and now >= conn.deadline:
                    conn._abort()  # handshake or keep-alive timeout
            for ws in list(self.websockets):
                ws._check_timers(now)
            self._flush()
        except Exception:
            log.exception("verb: timeout sweep failed")
        self._sweep_handle = self.loop.call_later(self._sweep_interval, self._sweep)

    # -- write batching -------------------------------------------------------------------------

    cdef inline void _mark_dirty(self, ServerWebSocket ws):
        self._dirty.append(ws)
        if self._reading == 0 and not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_soon)

    def _flush_soon(self):
        self._flush_scheduled = False
        self._flush()

    cdef void _flush(self):
        cdef ServerWebSocket ws
        cdef list dirty = self._dirty
        if not dirty:
            return
        self._dirty = self._dirty_spare if self._dirty_spare is not None else []
        self._dirty_spare = None  # a nested flush (should one happen) allocates its own list
        try:
            for ws in dirty:
                ws._flush()
        finally:
            dirty.clear()
            if self._dirty_spare is None:
                self._dirty_spare = dirty
            if not self._dirty and self._published:
                # No subscriber holds a run any more (runs belong to dirty connections).
                self._published.clear()
                self._run_bytes = None

    cdef bytes _published_run(self, Py_ssize_t start, Py_ssize_t end):
        """Frames [start, end) of `_published` as one bytes object, shared by every subscriber
        holding that run."""
        if self._run_bytes is None or self._run_bytes_start != start or \
                self._run_bytes_end != end:
            if end - start == 1:
                self._run_bytes = self._published[start]
            elif start == 0 and end == len(self._published):
                self._run_bytes = b"".join(self._published)
            else:
                self._run_bytes = b"".join(self._published[start:end])
            self._run_bytes_start = start
            self._run_bytes_end = end
        return self._run_bytes

    # -- topics ---------------------------------------------------------------------------------

    cdef Py_ssize_t publish_message(self, str topic, object data, ServerWebSocket exclude,
                                    object compress) except -1:
        """Send `data` to every subscriber of `topic` but `exclude`; returns how many took it.

        The message is framed once, and compressed at most once per shared compressor: every
        subscriber gets the same bytes. Dedicated-mode subscribers get the plain frame (RFC 7692
        lets any message go uncompressed).
        """
        cdef dict subscribers = self.topics.get(topic)
        cdef ServerWebSocket ws
        cdef Py_ssize_t delivered = 0, n, plain_index = -1
        cdef bint text, held
        cdef Py_buffer view
        cdef const unsigned char *payload
        cdef bytes plain = None, packed = None
        cdef Deflater packed_by = None
        if not subscribers:
            return 0
        payload = message_payload(data, &n, &text, &view, &held)
        try:
            for ws in subscribers:
                if ws is exclude:
                    continue
                if ws._deflater_shared and _wants_compression(compress, n,
                                                              self.compression_threshold):
                    if packed_by is not ws._deflater:
                        packed_by = ws._deflater
                        packed = _compressed_frame(packed_by, text, payload, n)
                    if ws._queue_frame(packed) != 0:
                        delivered += 1
                    continue
                if plain is None:
                    plain = build_frame(OP_TEXT if text else OP_BINARY, payload, n, True,
                                        False, NULL)
                    plain_index = len(self._published)
                    self._published.append(plain)
                if ws._admit(PyBytes_GET_SIZE(plain)) == 0:
                    continue
                delivered += 1
                if ws._out_one is None and ws._out is None and \
                        (ws._run_end == plain_index or ws._run_start < 0):
                    # Extend (or start) its run of published frames: no list of its own.
                    if ws._run_start < 0:
                        ws._run_start = plain_index
                        ws._mark_dirty()
                    ws._run_end = plain_index + 1
                else:
                    ws._append_out(plain)
        finally:
            if held:
                PyBuffer_Release(&view)
        return delivered

    def publish(self, str topic not None, data, ServerWebSocket exclude=None, compress=None):
        """Frame `data` once and send it to every subscriber of `topic`. Returns the count."""
        return self.publish_message(topic, data, exclude, compress)

    cdef Deflater shared_deflater(self, int window_bits):
        cdef Deflater deflater = self._shared_deflaters.get(window_bits)
        if deflater is None:
            deflater = Deflater(window_bits=window_bits, no_context_takeover=True)
            self._shared_deflaters[window_bits] = deflater
        return deflater

    cdef Inflater shared_inflater(self):
        if self._shared_inflater is None:
            self._shared_inflater = Inflater(no_context_takeover=True,
                                             max_size=self.max_payload_length)
        return self._shared_inflater

    def subscriber_count(self, str topic not None):
        cdef dict subscribers = self.topics.get(topic)
        return len(subscribers) if subscribers else 0

    cdef void _subscribe(self, ServerWebSocket ws, str topic):
        cdef dict subscribers = self.topics.get(topic)
        if subscribers is None:
            subscribers = self.topics[topic] = {}
            if self.on_topic_change is not None:
                self.on_topic_change(topic, True)
        subscribers[ws] = None

    cdef void _unsubscribe(self, ServerWebSocket ws, str topic):
        cdef dict subscribers = self.topics.get(topic)
        if subscribers is not None:
            subscribers.pop(ws, None)
            if not subscribers:
                del self.topics[topic]
                if self.on_topic_change is not None:
                    self.on_topic_change(topic, False)


cdef inline bint _wants_compression(object compress, Py_ssize_t size, Py_ssize_t threshold):
    """Per-message opt-out/in: compress=False never, True always, None above the threshold."""
    if compress is None:
        return size >= threshold
    return compress is True


cdef bytes _compressed_frame(Deflater deflater, bint text, const unsigned char *payload,
                             Py_ssize_t n):
    """A permessage-deflate frame: RSV1 set, payload compressed (RFC 7692 section 6)."""
    cdef bytes packed = deflater.compress_buffer(payload, n)
    return build_frame(OP_TEXT if text else OP_BINARY,
                       <const unsigned char *>PyBytes_AS_STRING(packed), len(packed), True, True,
                       NULL)


cdef bytes _frame_header(int opcode, Py_ssize_t n):
    """The header of an unmasked, unfragmented, uncompressed frame of `n` payload bytes."""
    cdef bytes header = PyBytes_FromStringAndSize(NULL, frame_header_size(n, False))
    write_frame_header(<unsigned char *>PyBytes_AS_STRING(header), opcode, True, False, n, NULL)
    return header


cdef bytes _control_frame(int opcode, object data):
    """A ping or pong frame; `data` is str (UTF-8) or any bytes-like, at most 125 bytes."""
    cdef Py_ssize_t n
    cdef bint text, held
    cdef Py_buffer view
    cdef const unsigned char *payload = message_payload(data, &n, &text, &view, &held)
    try:
        if n > 125:
            raise ValueError("ping/pong payload is {} bytes; the limit is 125".format(n))
        return build_frame(opcode, payload, n, True, False, NULL)
    finally:
        if held:
            PyBuffer_Release(&view)


cdef bytes _close_frame(int code, str reason):
    """Our close frame; a reason over 123 bytes is cut at a code point boundary."""
    cdef bytes encoded = reason.encode("utf-8")
    if len(encoded) > 123:
        encoded = encoded[:123].decode("utf-8", "ignore").encode("utf-8")
    return build_close_frame(code, encoded, NULL)


cdef class ServerWebSocket(FrameHandler):
    """One WebSocket connection, as the handlers see it (Bun's ServerWebSocket, in Python).

    Arbitrary attributes may be set on it (`ws.is_alive = True`); it hashes by identity.
    """

    cdef dict __dict__
    cdef object __weakref__
    cdef Hub hub
    cdef readonly object transport
    cdef FrameParser parser
    cdef object _data
    cdef bytes _handshake         # the upgrade request, packed (see `request`)
    cdef readonly object protocol
    cdef readonly object remote_address
    cdef int _state
    cdef list _out                # frames queued since the last flush (two or more) ...
    cdef bytes _out_one           # ... or the one frame queued
    cdef int _run_start, _run_end # ... or a run of hub._published (see Hub); start -1: none
    cdef Py_ssize_t _out_bytes
    cdef bint _dirty
    cdef int _cork_depth
    cdef bint _backpressured
    cdef bint _want_drain
    cdef dict _topics
    cdef double _last_activity
    cdef bint _ping_sent
    cdef double _close_deadline
    cdef bint _close_reported
    cdef object _pending
    cdef object _task
    cdef bint _reading_paused
    cdef dict _listeners
    cdef Deflater _deflater       # permessage-deflate negotiated: our compressor (else None)
    cdef bint _deflater_shared    # ... the loop's shared one (no context takeover)

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3

    def __init__(self):
        raise TypeError("ServerWebSocket objects are created by the server")

    @property
    def data(self):
        """Per-connection user data: what the `upgrade` handler returned, else a dict."""
        if self._data is None:
            self._data = {}
        return self._data

    @data.setter
    def data(self, value):
        self._data = value

    @property
    def request(self):
        """The upgrade request, rebuilt from its raw form at each read (idle connections keep
        only one bytes object): keep what you need from it in `ws.data`."""
        return _unpack_request(self._handshake, self.hub.options.trust_proxy)

    # -- state ------------------------------------------------------------------------------------

    @property
    def ready_state(self):
        return self._state

    @property
    def readyState(self):
        return self._state

    @property
    def buffered_amount(self):
        """Bytes accepted by send() that the kernel has not taken yet."""
        cdef Py_ssize_t n = self._out_bytes
        if self.transport is not None:
            n += transport_buffered(self.transport)
        return n

    def getBufferedAmount(self):
        return self.buffered_amount

    @property
    def remoteAddress(self):
        return self.remote_address

    def __repr__(self):
        return "<ServerWebSocket {} {}>".format(
            ("CONNECTING", "OPEN", "CLOSING", "CLOSED")[self._state], self.remote_address)

    # -- sending ------------------------------------------------------------------------------------

    cdef int _queue_frame(self, bytes frame) except -2:
        """Queue a whole frame. Returns its size, -1 if it waits behind buffered data, 0 if dropped."""
        return self._queue_parts(frame, None)

    cdef int _queue_parts(self, bytes frame, bytes payload) except -2:
        """Queue a frame given whole (`payload` None) or as its header and its payload."""
        cdef Py_ssize_t size = PyBytes_GET_SIZE(frame)
        cdef int status
        if payload is not None:
            size += PyBytes_GET_SIZE(payload)
        status = self._admit(size)
        if status != 0:
            self._append_out(frame)
            if payload is not None:
                self._append_out(payload)
        return status

    cdef int _admit(self, Py_ssize_t size) except -2:
        """Decide the fate of a frame of `size` bytes about to be queued (Bun's send status:
        its size, -1 if it waits behind buffered data, 0 if dropped) and count it."""
        cdef Py_ssize_t buffered
        cdef int status
        if self._state != ST_OPEN:
            return 0
        if self._backpressured or self._out_bytes >= self.hub.backpressure_limit:
            buffered = self._out_bytes + transport_buffered(self.transport)
            if buffered >= self.hub.backpressure_limit:
                self.hub.dropped += 1
                self._want_drain = True
                if self.hub.close_on_backpressure_limit:
                    self._close(CLOSE_POLICY_VIOLATION, "backpressure limit exceeded")
                return 0
            status = -1
            self._want_drain = True
        else:
            status = <int>size if size < 0x7FFFFFFF else 0x7FFFFFFF
        self._out_bytes += size
        self.hub.messages_out += 1
        self.hub.bytes_out += size
        return status

    cdef inline void _append_out(self, bytes frame):
        """Queue `frame` for the next flush. The common single frame per flush needs no list."""
        if self._run_start >= 0:
            self._unshare_run()
        if self._out_one is None and self._out is None:
            self._out_one = frame
        elif self._out is None:
            self._out = [self._out_one, frame]
            self._out_one = None
        else:
            self._out.append(frame)
        self._mark_dirty()

    cdef inline void _mark_dirty(self):
        if not self._dirty:
            self._dirty = True
            self.hub._mark_dirty(self)

    cdef void _unshare_run(self):
        """Something else is queued after a run of published frames: the run becomes frames
        of this connection's own (order kept)."""
        cdef Py_ssize_t start = self._run_start, end = self._run_end
        self._run_start = self._run_end = -1
        if end - start == 1:
            self._out_one = self.hub._published[start]
        else:
            self._out = self.hub._published[start:end]

    cdef void _flush(self):
        cdef list out = self._out
        cdef bytes one = self._out_one
        cdef Py_ssize_t total = self._out_bytes
        self._dirty = False
        if self._run_start >= 0:
            one = self.hub._published_run(self._run_start, self._run_end)
            self._run_start = self._run_end = -1
        if out is None and one is None:
            return
        self._out = None
        self._out_one = None
        self._out_bytes = 0
        if self.transport is None:
            return
        if out is None:
            self.transport.write(one)
        else:
            write_frames(self.transport, out, total)
        # Sends were refused or deferred, yet the kernel took everything: drain at once
        # (resume_writing only follows a pause_writing).
        if self._want_drain and not self._backpressured:
            self.hub.loop.call_soon(self._drain_now)

    def _drain_now(self):
        if self._want_drain and not self._backpressured and self._state == ST_OPEN:
            self._want_drain = False
            if self.hub.h_drain is not None:
                self._dispatch(self.hub.h_drain, None, None)

    cdef bytes _message_frame(self, object data, object compress, int force_opcode):
        """Frame a message: str as text, bytes-like as binary (or `force_opcode`), compressed
        when negotiated and wanted."""
        cdef Py_ssize_t n
        cdef bint text, held
        cdef Py_buffer view
        cdef const unsigned char *payload = message_payload(data, &n, &text, &view, &held)
        if force_opcode:
            text = force_opcode == OP_TEXT
        try:
            if self._deflater is not None and _wants_compression(
                    compress, n, self.hub.compression_threshold):
                return _compressed_frame(self._deflater, text, payload, n)
            return build_frame(OP_TEXT if text else OP_BINARY, payload, n, True, False, NULL)
        finally:
            if held:
                PyBuffer_Release(&view)

    cdef int _send_message(self, object data, object compress, int force_opcode) except -2:
        cdef Py_ssize_t n
        if type(data) is bytes and force_opcode != OP_TEXT:
            n = PyBytes_GET_SIZE(data)
            if n >= ZERO_COPY_MIN and (self._deflater is None or not _wants_compression(
                    compress, n, self.hub.compression_threshold)):
                # Large and immutable: written after its own header, never copied.
                return self._queue_parts(_frame_header(OP_BINARY, n), data)
        return self._queue_frame(self._message_frame(data, compress, force_opcode))

    def send(self, data, compress=None):
        """Send a message: str as text, bytes-like as binary.

        Returns:
            The bytes written (>0) when the kernel is expected to take the frame at once, -1 when
            it was accepted but waits behind buffered data (`drain` fires once the buffer
            empties), 0 when it was dropped (already buffering `backpressure_limit` or more, or
            the connection is not open).
        """
        return self._send_message(data, compress, 0)

    def send_text(self, str data not None, compress=None):
        return self._queue_frame(self._message_frame(data, compress, 0))

    def send_binary(self, data, compress=None):
        return self._send_message(data, compress, OP_BINARY)

    def send_json(self, obj, compress=None):
        """Send `obj` as JSON (orjson) in a text frame, so a browser's JSON.parse reads it."""
        return self._queue_frame(self._message_frame(orjson.dumps(obj), compress, OP_TEXT))

    sendText = send_text
    sendBinary = send_binary
    sendJson = send_json

    def ping(self, data=b""):
        return self._queue_frame(_control_frame(OP_PING, data))

    def pong(self, data=b""):
        return self._queue_frame(_control_frame(OP_PONG, data))

    def cork(self):
        """Context manager batching the sends inside it into one write (they are batched per
        read anyway; this extends it to code running outside a read)."""
        return _Cork(self)

    # -- topics -------------------------------------------------------------------------------------

    def subscribe(self, str topic not None):
        if self._state == ST_CLOSED:
            return
        if self._topics is None:
            self._topics = {}
        if topic not in self._topics:
            self._topics[topic] = None
            self.hub._subscribe(self, topic)

    def unsubscribe(self, str topic not None):
        if self._topics is not None and topic in self._topics:
            del self._topics[topic]
            self.hub._unsubscribe(self, topic)

    def is_subscribed(self, str topic not None):
        return self._topics is not None and topic in self._topics

    isSubscribed = is_subscribed

    @property
    def subscriptions(self):
        return list(self._topics) if self._topics else []

    def publish(self, str topic not None, data, compress=None):
        """Send `data` to every subscriber of `topic` but this one (unless publish_to_self),
        and with an external broker to the other processes too. Returns how many subscribers
        of this process it reached."""
        cdef Hub hub = self.hub
        cdef Py_ssize_t delivered = hub.publish_message(
            topic, data, None if hub.publish_to_self else self, compress)
        if hub.on_publish is not None:
            hub.on_publish(topic, data, compress)
        return delivered

    cdef void _unsubscribe_all(self):
        if self._topics:
            for topic in self._topics:
                self.hub._unsubscribe(self, topic)
            self._topics = None

    # -- closing ------------------------------------------------------------------------------------

    def close(self, code=CLOSE_NORMAL, reason=""):
        """Start the closing handshake (RFC 6455 section 7.1.2)."""
        if code is None:
            code = CLOSE_NO_STATUS
            reason = ""
        elif not is_valid_close_code(code):
            raise ValueError("{!r} is not a close code that may be sent".format(code))
        if len(reason.encode("utf-8")) > 123:
            raise ValueError("close reason is over 123 bytes once encoded")
        self._close(code, reason)

    def terminate(self):
        """Drop the connection at once, without a closing handshake."""
        self._report_close(CLOSE_ABNORMAL, "terminated")
        self._abort()

    cdef void _close(self, int code, str reason):
        if self._state != ST_OPEN:
            return
        self._send_close(code, reason)
        self._close_deadline = self.hub.loop.time() + self.hub.close_timeout
        self._unsubscribe_all()

    cdef void _send_close(self, int code, str reason):
        """Queue our close frame behind what is queued (sends are refused from now on)."""
        self._state = ST_CLOSING
        self._append_out(_close_frame(code, reason))

    cdef void _closed_by_peer_or_error(self, int code, str reason):
        """The close handshake is over (or impossible): report it, write what is queued, and
        close the TCP connection, as the server does first (RFC 6455 section 7.1.1)."""
        self._report_close(code, reason)
        self._flush()
        if self.transport is not None:
            self.transport.close()

    cdef void _report_close(self, int code, str reason):
        """Call the `close` handler once, whatever ended the connection."""
        if self._close_reported:
            return
        self._close_reported = True
        self._state = ST_CLOSED
        self._unsubscribe_all()
        self.hub.websockets.discard(self)
        if self.hub.h_close is not None:
            self._dispatch(self.hub.h_close, code, reason)

    # -- frame events (FrameHandler) ----------------------------------------------------------------

    cdef int on_text(self, str text) except -1:
        self.hub.messages_in += 1
        if self._state == ST_OPEN and self.hub.h_message is not None:
            self._dispatch(self.hub.h_message, text, None)
        return 0

    cdef int on_binary(self, bytes data) except -1:
        self.hub.messages_in += 1
        if self._state == ST_OPEN and self.hub.h_message is not None:
            self._dispatch(self.hub.h_message, data, None)
        return 0

    cdef int on_ping(self, bytes data) except -1:
        if self._state == ST_OPEN:
            self._queue_frame(_control_frame(OP_PONG, data))  # RFC 6455 section 5.5.2
        if self.hub.h_ping is not None:
            self._dispatch(self.hub.h_ping, data, None)
        return 0

    cdef int on_pong(self, bytes data) except -1:
        self._ping_sent = False
        if self.hub.h_pong is not None:
            self._dispatch(self.hub.h_pong, data, None)
        if self._listeners is not None:
            for fn in self._listeners.get("pong", ()):
                self._dispatch_plain(fn, data)
        return 0

    cdef int on_close(self, int code, str reason) except -1:
        # RFC 6455 section 5.5.1: answer with a close frame (echoing the code), then the
        # server closes the TCP connection (section 7.1.1).
        if self._state == ST_OPEN:
            self._send_close(CLOSE_NORMAL if code == CLOSE_NO_STATUS else code, "")
        self._closed_by_peer_or_error(code, reason)
        return 0

    cdef int on_protocol_error(self, int code, str reason) except -1:
        if self._state == ST_OPEN:
            self._send_close(code, reason)
        self._closed_by_peer_or_error(code, reason)
        return 0

    # -- timers ------------------------------------------------------------------------------------

    cdef void _check_timers(self, double now):
        cdef Hub hub = self.hub
        if self._state == ST_CLOSING:
            if now >= self._close_deadline:
                self._report_close(CLOSE_ABNORMAL, "close timeout")
                self._abort()
            return
        if self._state != ST_OPEN or hub.idle_timeout <= 0:
            return
        cdef double idle = now - self._last_activity
        if idle >= hub.idle_timeout:
            self._close(CLOSE_GOING_AWAY, "idle timeout")
        elif hub.send_pings and not self._ping_sent and idle >= hub.idle_timeout / 2:
            self._ping_sent = True
            self._queue_frame(_control_frame(OP_PING, b""))

    # -- handler dispatch: sync handlers run at once; async ones in order, per connection ---------

    cdef void _dispatch(self, _Handler h, object a, object b):
        if self._task is None and not h.is_async:
            try:
                _invoke(h, self, a, b)
            except Exception as exc:
                self._call_failed(h, exc)
            return
        if self._pending is None:
            self._pending = collections.deque()
        self._pending.append((h, a, b))
        if self._task is None:
            self._task = self.hub.loop.create_task(self._run_pending())
        elif len(self._pending) >= MAX_PENDING_EVENTS and not self._reading_paused:
            self._reading_paused = True
            if self.transport is not None:
                self.transport.pause_reading()

    cdef void _dispatch_plain(self, object fn, object arg):
        try:
            result = fn.call(arg)
            if asyncio.iscoroutine(result):
                self.hub.loop.create_task(result)
        except Exception as exc:
            self._call_failed(None, exc)

    async def _run_pending(self):
        cdef _Handler h
        try:
            while self._pending:
                h, a, b = self._pending.popleft()
                try:
                    result = _invoke(h, self, a, b)
                    if h.is_async:
                        await result
                except Exception as exc:
                    self._call_failed(h, exc)
                if self._reading_paused and len(self._pending) < MAX_PENDING_EVENTS // 2:
                    self._reading_paused = False
                    if self.transport is not None and self._state != ST_CLOSED:
                        self.transport.resume_reading()
                self.hub._flush()
        finally:
            self._task = None

    cdef void _call_failed(self, _Handler h, object exc):
        """The one boundary for exceptions from user handlers."""
        cdef _Handler on_error = self.hub.h_error
        if on_error is not None and h is not on_error:
            try:
                result = _invoke(on_error, self, exc, None)
                if on_error.is_async:
                    self.hub.loop.create_task(result)
                return
            except Exception:
                log.exception("verb: the error handler raised")
        else:
            log.error("verb: WebSocket handler raised", exc_info=exc)
        if self._state == ST_OPEN:
            self._close(CLOSE_INTERNAL_ERROR, "internal error")

    # -- asyncio protocol: after the upgrade the transport calls the WebSocket directly --------

    def get_buffer(self, Py_ssize_t sizehint):
        return self.hub._read_view

    def buffer_updated(self, Py_ssize_t nbytes):
        cdef Hub hub = self.hub
        hub._reading += 1
        hub.bytes_in += nbytes
        try:
            self._last_activity = hub.now
            if self.parser is not None:
                self.parser.feed_buffer(<unsigned char *><char *>hub._read_buffer, nbytes)
        except Exception:
            log.exception("verb: connection failed")
            self._abort()
        finally:
            hub._reading -= 1
            if hub._reading == 0:
                hub._flush()

    def data_received(self, data):
        # Not called (both loops take the buffered path), but it must exist: uvloop's
        # set_protocol keeps the previous protocol's bound data_received when the new protocol
        # has none, which would keep the HTTP Connection alive as long as the WebSocket.
        _feed_by_copy(self.hub, self, data)

    def eof_received(self):
        return False  # close the transport

    def connection_lost(self, exc):
        self._report_close(CLOSE_ABNORMAL, "connection lost")
        self.transport = None
        self.parser = None
        self._deflater = None  # a dedicated compressor's zlib memory goes now
        self._dirty = False
        self._out = None
        self._out_one = None
        self._run_start = self._run_end = -1

    def pause_writing(self):
        self._backpressured = True

    def resume_writing(self):
        self._backpressured = False
        self._drain_now()

    cdef void _abort(self):
        if self.transport is not None:
            self.transport.abort()

    # -- Node-style listeners (the guide's ws.on("pong", fn)) ---------------------------------------

    def on(self, str event not None, fn):
        if event != "pong":
            raise ValueError("ws.on supports 'pong'; use app.websocket(...) handlers for others")
        if self._listeners is None:
            self._listeners = {}
        # Resolved once, like the handlers: a listener takes the pong's data or nothing (the
        # guide's `ws.on("pong", () => ...)`); a callable that can take neither fails here.
        self._listeners.setdefault(event, []).append(Handler(fn, "pong listener", 1))
        return self


cdef void _feed_by_copy(Hub hub, object protocol, object data):
    """Plain Protocol path: copy `data` into the shared read buffer, a buffer's worth at a time,
    and hand each part to `protocol.buffer_updated`."""
    cdef Py_ssize_t start = 0, n, total = len(data)
    view = memoryview(data).cast("B")
    while start < total:
        n = min(total - start, READ_BUFFER_SIZE)
        hub._read_view[:n] = view[start:start + n]
        protocol.buffer_updated(n)
        start += n


cdef class _Cork:
    cdef ServerWebSocket ws

    def __cinit__(self, ServerWebSocket ws):
        self.ws = ws

    def __enter__(self):
        self.ws.hub._reading += 1
        return self.ws

    def __exit__(self, *exc):
        self.ws.hub._reading -= 1
        if self.ws.hub._reading == 0:
            self.ws.hub._flush()
        return False


cdef class ConnectionBase:
    """The asyncio protocol of one TCP (or TLS) connection: HTTP/1.1, then maybe a WebSocket.

    Used through `Connection`, which adds asyncio.BufferedProtocol as a second base so that
    uvloop and asyncio both take their buffered-read path.
    """

    cdef Hub hub
    cdef readonly object transport
    cdef int mode
    cdef object http_parser
    cdef double deadline
    cdef int _busy               # HTTP requests being handled (async handlers)
    cdef bint _write_paused      # HTTP: reading paused until the peer takes our responses
    cdef object remote_address
    # The request being parsed.
    cdef list _headers
    cdef bytes _url
    cdef Py_ssize_t _url_size
    cdef Py_ssize_t _header_bytes
    cdef bytes _last_field
    cdef list _body
    cdef Py_ssize_t _body_size
    cdef int _error_status       # a limit was broken while parsing: answer this, then close
    cdef list _ready             # complete requests waiting to be handled, in order
    # The upgrade request: [Request, or None on the plain path; bytes read after it].
    cdef object _upgrade_request
    cdef bytes _method           # of the upgrade request
    cdef str _http_version       # of the upgrade request

    def __init__(self, Hub hub):
        self.hub = hub

    # -- asyncio protocol -----------------------------------------------------------------------

    def connection_made(self, transport):
        cdef Hub hub = self.hub
        self.transport = transport
        self.mode = MODE_HTTP
        # Report backpressure as soon as anything waits in the transport and drain once it is
        # empty (Bun's semantics for send() and `drain`); the default low mark is 16 bytes.
        # TLS transports (asyncio.sslproto, uvloop) pause at size >= high, plain ones at
        # size > high: high=1 for TLS makes both pause only when something is buffered.
        transport.set_write_buffer_limits(
            high=0 if transport.get_extra_info("sslcontext") is None else 1, low=0)
        peer = transport.get_extra_info("peername")
        self.remote_address = peer[0] if peer else None
        self.deadline = hub.loop.time() + hub.handshake_timeout
        hub.connections.add(self)
        hub.connections_total += 1
        if not hub.accepting:
            self._abort()
            return
        self._reset_request()
        self.http_parser = httptools.HttpRequestParser(self)

    def get_buffer(self, Py_ssize_t sizehint):
        return self.hub._read_view

    def buffer_updated(self, Py_ssize_t nbytes):
        cdef Hub hub = self.hub
        hub._reading += 1
        hub.bytes_in += nbytes
        try:
            if self.mode == MODE_HTTP:
                self._feed_http(bytes(hub._read_view[:nbytes]))
            elif self.mode == MODE_UPGRADING:
                self._upgrade_request[1] += bytes(hub._read_view[:nbytes])
        except Exception:
            log.exception("verb: connection failed")
            self._abort()
        finally:
            hub._reading -= 1
            if hub._reading == 0:
                hub._flush()

    def data_received(self, data):  # plain Protocol path (not used by asyncio or uvloop here)
        _feed_by_copy(self.hub, self, data)

    def eof_received(self):
        return False  # close the transport

    def connection_lost(self, exc):
        cdef Hub hub = self.hub
        self.mode = MODE_CLOSED
        hub.connections.discard(self)
        self.http_parser = None
        self.transport = None

    def pause_writing(self):
        if self.mode == MODE_HTTP and self.transport is not None and \
                not self.transport.is_closing() and \
                self.transport.get_extra_info("sslcontext") is None:
            # A client pipelining requests without reading the responses: read no more until
            # it takes them, or every response would be buffered here (unbounded memory).
            # Not over TLS: its transports call resume_writing only on their next read or
            # write, so paused reading would never resume.
            self._write_paused = True
            self.transport.pause_reading()

    def resume_writing(self):
        if self._write_paused:
            self._write_paused = False
            if self.transport is not None and self._busy == 0 and self.mode == MODE_HTTP:
                self.transport.resume_reading()

    # -- closing ------------------------------------------------------------------------------------

    cdef void _abort(self):
        if self.transport is not None:
            self.transport.abort()

    cdef void _close_transport(self):
        if self.transport is not None:
            self.transport.close()

    # -- HTTP ---------------------------------------------------------------------------------------

    cdef void _reset_request(self):
        self._headers = []
        self._url = b""
        self._url_size = 0
        self._header_bytes = 0
        self._last_field = None
        self._body = None
        self._body_size = 0
        self._error_status = 0

    cdef void _feed_http(self, bytes data):
        cdef Py_ssize_t offset
        try:
            self.http_parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            offset = exc.args[0] if exc.args else len(data)
            self._start_upgrade(data[offset:])
            return
        except httptools.HttpParserError as exc:
            status = self._error_status or 400
            self._reply_error(status, str(exc) if status == 400 else None)
            return
        if self._error_status:
            self._reply_error(self._error_status, None)

    cdef void _reply_error(self, int status, object message):
        if self.transport is not None:
            self.transport.write(error_response(status, message))
            self.transport.close()
        self.mode = MODE_CLOSED

    # httptools callbacks
    def on_message_begin(self):
        self._reset_request()

    def on_url(self, bytes url):
        self._url_size += len(url)
        if self._url_size > self.hub.options.max_request_line:
            self._error_status = 414
            raise ValueError("request line too long")
        self._url += url

    def on_header(self, bytes name, bytes value):
        cdef Py_ssize_t size = len(name) + len(value)
        self._header_bytes += size
        if size > self.hub.options.max_header_size or \
                len(self._headers) >= self.hub.options.max_headers:
            self._error_status = 431
            raise ValueError("request headers too large")
        self._headers.append((name, value))

    def on_body(self, bytes body):
        self._body_size += len(body)
        if self._body_size > self.hub.options.max_body:
            self._error_status = 413
            raise ValueError("request body too large")
        if self._body is None:
            self._body = [body]
        else:
            self._body.append(body)

    def on_message_complete(self):
        parser = self.http_parser
        if parser.should_upgrade():
            # The Request is built only if the plain upgrade path cannot take it.
            self._method = parser.get_method()
            self._http_version = parser.get_http_version()
            self._upgrade_request = [None, b""]
            return
        request = self._make_request(parser.get_method(), parser.get_http_version())
        if self._busy:
            # Pipelined behind a request still being handled: answer in order, later.
            if self._ready is None:
                self._ready = []
            self._ready.append((request, parser.should_keep_alive()))
            return
        self._handle_http(request, parser.should_keep_alive())

    cdef object _make_request(self, bytes method, str http_version):
        return Request(method.decode("ascii"), self._url, Headers(self._headers),
                       b"".join(self._body) if self._body else b"", self.remote_address,
                       http_version, self.hub.options.trust_proxy)

    cdef void _handle_http(self, object request, bint keep_alive):
        cdef Hub hub = self.hub
        response = Response()
        try:
            pending = hub.router.dispatch(request, response)
        except Exception as exc:
            self._http_failed(request, response, exc, keep_alive)
            return
        if pending is None:
            self._write_response(request, response, keep_alive)
            return
        # An async handler: finish it before reading further requests (keeps responses in order).
        self._busy += 1
        self.transport.pause_reading()
        hub.loop.create_task(self._finish_http(request, response, pending, keep_alive))

    async def _finish_http(self, request, response, pending, bint keep_alive):
        try:
            await pending
        except Exception as exc:
            self._http_failed(request, response, exc, keep_alive)
        else:
            self._write_response(request, response, keep_alive)
        finally:
            self._busy -= 1
        while self._ready and not self._busy and self.transport is not None:
            request, keep_alive = self._ready.pop(0)
            self._handle_http(request, keep_alive)
        if not self._busy and not self._write_paused and self.transport is not None and \
                self.mode == MODE_HTTP:
            self.transport.resume_reading()

    cdef void _http_failed(self, object request, object response, object exc, bint keep_alive):
        if isinstance(exc, HTTPError):
            if self.transport is not None:
                self.transport.write(error_response(exc.status, exc.message, exc.headers,
                                                    keep_alive=keep_alive))
                if not keep_alive:
                    self.transport.close()
            return
        log.error("verb: HTTP handler for %s %s raised", request.method, request.path,
                  exc_info=exc)
        if self.transport is not None:
            self.transport.write(error_response(500, None, keep_alive=keep_alive))
            if not keep_alive:
                self.transport.close()

    cdef void _write_response(self, object request, object response, bint keep_alive):
        if self.transport is None:
            return
        self.transport.write(response.to_bytes(head_request=request.method == "HEAD",
                                               keep_alive=keep_alive))
        if keep_alive:
            self.deadline = self.hub.loop.time() + self.hub.handshake_timeout
        else:
            self.transport.close()

    # -- WebSocket upgrade --------------------------------------------------------------------------

    cdef void _start_upgrade(self, bytes rest):
        cdef Hub hub = self.hub
        self._upgrade_request[1] = rest
        options = hub.options
        if hub.plain_upgrades:
            key = _plain_upgrade_key(self._method, self._http_version, self._headers,
                                     bool(options.protocols), hub.deflate_settings is not None)
            if key is not None:
                if not self._refused_at_capacity():
                    self._open_websocket(key, None, None, None, None, self.remote_address)
                return
        request = self._make_request(self._method, self._http_version)
        self._upgrade_request[0] = request
        headers = request.headers
        if not hub.websocket_enabled or not _handshake.is_upgrade_request(headers) or \
                (options.path is not None and request.path != options.path):
            # Not a WebSocket upgrade we serve: answer as plain HTTP, then close.
            self._handle_http(request, False)
            self.mode = MODE_CLOSED
            return
        if self._refused_at_capacity():
            return
        try:
            key = _handshake.check_request(request.method, request.http_version, headers,
                                           options)
        except _handshake.HandshakeError as exc:
            if self.transport is not None:
                self.transport.write(error_response(exc.status, exc.message, exc.headers))
                self.transport.close()
            self.mode = MODE_CLOSED
            return
        data = None
        if hub.h_upgrade is not None:
            self.mode = MODE_UPGRADING
            try:
                data = _invoke(hub.h_upgrade, request, None, None)
            except Exception as exc:
                self._upgrade_refused(exc)
                return
            if hub.h_upgrade.is_async:
                self.transport.pause_reading()
                hub.loop.create_task(self._finish_async_upgrade(request, key, data))
                return
        self._accept(request, key, data)

    cdef bint _refused_at_capacity(self):
        """True, having answered 503, when max_connections WebSockets are already open."""
        cdef Hub hub = self.hub
        if hub.max_connections is not None and len(hub.websockets) >= hub.max_connections:
            self._reply_error(503, "too many connections")
            return True
        return False

    async def _finish_async_upgrade(self, request, key, pending):
        try:
            data = await pending
        except Exception as exc:
            self._upgrade_refused(exc)
            return
        if self.transport is None:
            return
        self.transport.resume_reading()
        self._accept(request, key, data)
        self.hub._flush()

    cdef void _upgrade_refused(self, object exc):
        if isinstance(exc, HTTPError):
            self._reply_error(exc.status, exc.message)
        else:
            log.error("verb: upgrade handler raised", exc_info=exc)
            self._reply_error(500, None)

    cdef void _accept(self, object request, str key, object data):
        cdef Hub hub = self.hub
        if data is False:
            self._reply_error(403, None)
            return
        if self.transport is None:
            return
        options = hub.options
        subprotocol = _handshake.select_subprotocol(request.headers, options.protocols)
        extension = params = None
        if hub.deflate_settings is not None:
            offers = request.headers.get_all("sec-websocket-extensions")
            if offers:
                negotiated = _extensions.negotiate(offers, hub.deflate_settings)
                if negotiated is not None:
                    extension, params = negotiated
        self._open_websocket(key, subprotocol, extension, params, data,
                             request.ip if options.trust_proxy else self.remote_address)

    cdef void _open_websocket(self, str key, object subprotocol, object extension,
                              object params, object data, object remote_address):
        """Answer 101 and hand the transport to a new WebSocket (RFC 6455 section 4.2.2)."""
        cdef Hub hub = self.hub
        cdef ServerWebSocket ws
        if self.transport is None:
            return
        self.transport.write(_handshake.build_response(key, subprotocol, extension,
                                                       hub.options.headers))
        ws = WebSocketProtocol.__new__(WebSocketProtocol)
        ws.hub = hub
        ws._run_start = ws._run_end = -1
        ws.transport = self.transport
        ws.parser = FrameParser(ws, server=True, max_payload_length=hub.max_payload_length)
        if data is not None and data is not True:
            ws._data = data
        ws._handshake = _pack_request(self._method, self._url, self._http_version, self._headers,
                                      self.remote_address)
        ws.protocol = subprotocol
        ws.remote_address = remote_address
        ws._state = ST_OPEN
        ws._last_activity = hub.now
        if params is not None:
            _enable_deflate(hub, ws, params)
        # From here the transport reports to the WebSocket; this HTTP connection object goes.
        self.transport.set_protocol(ws)
        self.transport = None
        self.mode = MODE_WEBSOCKET
        self.http_parser = None
        self.deadline = 0
        hub.connections.discard(self)
        hub.websockets.add(ws)
        rest = self._upgrade_request[1]
        self._upgrade_request = None
        self._headers = None
        if hub.h_open is not None:
            ws._dispatch(hub.h_open, None, None)
        if rest and ws.parser is not None:
            ws.parser.feed(rest)



cdef void _enable_deflate(Hub hub, ServerWebSocket ws, object params):
    """Set up permessage-deflate for a connection from the agreed parameters (RFC 7692)."""
    if params.shared:
        ws._deflater = hub.shared_deflater(params.server_max_window_bits)
        ws._deflater_shared = True
        ws.parser.inflater = hub.shared_inflater()
    else:
        ws._deflater = Deflater(window_bits=params.server_max_window_bits,
                                no_context_takeover=params.server_no_context_takeover)
        ws.parser.inflater = Inflater(window_bits=max(9, params.client_max_window_bits),
                                      no_context_takeover=params.client_no_context_takeover,
                                      max_size=hub.max_payload_length)


class WebSocketProtocol(ServerWebSocket, asyncio.BufferedProtocol):
    """ServerWebSocket seen by the event loop as a BufferedProtocol: the transport's protocol
    once the upgrade is done (asyncio and uvloop take the buffered-read path for it)."""

    __slots__ = ()


cdef inline int _base64_value(unsigned char c) noexcept nogil:
    """The 6 bits a base64 character codes (RFC 4648 section 4), -1 for any other byte."""
    if 65 <= c <= 90:    # A-Z
        return c - 65
    if 97 <= c <= 122:   # a-z
        return c - 71
    if 48 <= c <= 57:    # 0-9
        return c + 4
    if c == 43:          # +
        return 62
    if c == 47:          # /
        return 63
    return -1


cpdef object _plain_upgrade_key(bytes method, str http_version, list headers,
                                bint server_has_protocols, bint server_has_extensions):
    """The Sec-WebSocket-Key of an ordinary, valid upgrade request, found in one pass over the
    raw header pairs; None for anything else (then `handshake.check_request` and the
    negotiation run on a full Request, and answer errors). What this accepts,
    `check_request` accepts with the same key (tests/test_handshake.py checks it): GET,
    HTTP/1.1, one Host, `Upgrade: websocket`, `Connection` listing `upgrade`, one
    `Sec-WebSocket-Version: 13`, one key of 24 base64 characters coding 16 bytes with zero
    trailing bits, and no subprotocol or extension offer the server would have to answer.
    """
    cdef Py_ssize_t hosts = 0, i
    cdef bint upgrade = False, connection = False, version = False
    cdef bytes name, value, key = None
    cdef const unsigned char *k
    if method != b"GET" or http_version != "1.1":
        return None
    for name, value in headers:
        name = name.lower()
        if name == b"host":
            hosts += 1
        elif name == b"upgrade":
            if upgrade or value.strip(b" \t").lower() != b"websocket":
                return None
            upgrade = True
        elif name == b"connection":
            for token in value.split(b","):
                if token.strip(b" \t").lower() == b"upgrade":
                    connection = True
        elif name == b"sec-websocket-version":
            if version or value.strip(b" \t") != b"13":
                return None
            version = True
        elif name == b"sec-websocket-key":
            if key is not None:
                return None
            key = value.strip(b" \t")
        elif name == b"sec-websocket-protocol":
            if server_has_protocols:
                return None
        elif name == b"sec-websocket-extensions":
            if server_has_extensions:
                return None
    if hosts != 1 or not (upgrade and connection and version) or key is None or len(key) != 24:
        return None
    # 16 bytes in base64: 21 characters, one whose last 4 bits are zero, then "==".
    k = <const unsigned char *>PyBytes_AS_STRING(key)
    for i in range(21):
        if _base64_value(k[i]) < 0:
            return None
    i = _base64_value(k[21])
    if i < 0 or i % 16 != 0 or k[22] != 61 or k[23] != 61:  # 61: "="
        return None
    return key.decode("ascii")


cdef bytes _pack_request(bytes method, bytes url, str http_version, list headers, object peer):
    """The upgrade request as one bytes object: "METHOD URL VERSION PEER" then header lines
    (`headers`: httptools' raw (name, value) bytes pairs). Header values cannot hold CR or LF
    (httptools refuses them), names cannot hold ":"."""
    parts = [method, b" ", url, b" ", "{} {}\r\n".format(http_version, peer or "").encode("latin-1")]
    for name, value in headers:
        parts.append(name)
        parts.append(b": ")
        parts.append(value)
        parts.append(b"\r\n")
    return b"".join(parts)


def _unpack_request(bytes packed, bint trust_proxy):
    head, _, lines = packed.partition(b"\r\n")
    method, url, version, peer = head.split(b" ", 3)
    pairs = []
    for line in lines.split(b"\r\n"):
        if line:
            name, _, value = line.partition(b": ")
            pairs.append((name, value))
    return Request(method, url, Headers(pairs), b"", peer.decode("latin-1") or None,
                   version.decode("ascii"), trust_proxy)
