# The hub: what the connections of one server on one event loop share.

# Idle client addresses the per-address table keeps (see PeerTable).
MAX_IDLE_PEERS = PEER_IDLE_CAP

# Upper bounds (seconds) of the ping round-trip histogram's buckets (Prometheus `le`).
PING_RTT_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0)
cdef double _RTT_BOUNDS[RTT_BUCKETS]
for _i, _bound in enumerate(PING_RTT_BOUNDS):
    _RTT_BOUNDS[_i] = _bound


cdef class _Handler:
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
            self.h_limited = _resolve(handlers.limited)
            self.settle_before_failing = self.h_message is not None and self.h_message.is_async
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
        self.rate_limit = options.rate_limit
        if options.max_connections_per_ip is not None or options.handshake_rate is not None:
            self.peers = PeerTable(options.max_connections_per_ip, options.handshake_rate,
                                   PEER_IDLE_CAP)
        self.handshakes = {}
        self.closes = {}
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
        cdef HubConnection conn
        cdef ServerWebSocket ws
        for ws in list(self.websockets):
            ws._close(code, reason)
        for conn in list(self.connections):
            if conn._busy == 0:  # not upgraded, no request being handled
                conn._abort()
        self._flush()

    def shutdown(self):
        """Drop every connection at once and stop the sweep."""
        cdef HubConnection conn
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
        cdef HubConnection conn
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
        """What the hub counts, as verb.server.metrics exports it: gauges (connections,
        websockets, topics, subscriptions, peers), counters, handshakes by status, closes by
        code and side, and the ping round-trip histogram; str keys only (JSON-ready)."""
        cdef int i
        closes = {}  # JSON-friendly: {"1000": {"client": n, ...}, ...}
        for (code, side), n in self.closes.items():
            closes.setdefault(str(code), {})[("server", "client", "abnormal")[side]] = n
        return {
            "connections": len(self.connections) + len(self.websockets),
            "websockets": len(self.websockets),
            "connections_total": self.connections_total,
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "compressed_bytes_in": self.compressed_bytes_in,
            "compressed_bytes_out": self.compressed_bytes_out,
            "backpressure_drops": self.dropped,
            "rate_limited": {"close": self.limited_closes, "drop": self.limited_drops,
                             "pause": self.limited_pauses},
            "handler_errors": self.handler_errors,
            "publishes": self.publishes,
            "deliveries": self.deliveries,
            "topics": len(self.topics),
            "subscriptions": self.subscriptions,
            "peers": len(self.peers) if self.peers is not None else 0,
            "handshakes": {str(status): n for status, n in self.handshakes.items()},
            "closes": closes,
            "ping_rtt": {"bounds": PING_RTT_BOUNDS,
                         "counts": [self.rtt_counts[i] for i in range(RTT_BUCKETS + 1)],
                         "sum": self.rtt_sum},
        }

    cdef void count_handshake(self, int status):
        self.handshakes[status] = self.handshakes.get(status, 0) + 1

    cdef void observe_rtt(self, double seconds):
        cdef int i = 0
        while i < RTT_BUCKETS and seconds > _RTT_BOUNDS[i]:
            i += 1
        self.rtt_counts[i] += 1
        self.rtt_sum += seconds

    # -- timeouts: one sweep per loop serves every connection's deadlines -----------------------

    def _sweep(self):
        cdef double now = self.loop.time()
        cdef HubConnection conn
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

    cdef void _mark_dirty(self, ServerWebSocket ws):
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
        self.publishes += 1
        payload = message_payload(data, &n, &text, &view, &held)
        try:
            for ws in subscribers:
                if ws is exclude:
                    continue
                if ws._deflater_shared and wants_compression(compress, n,
                                                             self.compression_threshold):
                    if packed_by is not ws._deflater:
                        packed_by = ws._deflater
                        packed = compressed_frame(packed_by, text, payload, n, NULL)
                    if ws._queue_frame(packed) != 0:
                        delivered += 1
                        self.compressed_bytes_out += PyBytes_GET_SIZE(packed)
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
            self.deliveries += delivered
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
            # No max_size: each parser sets the limit before it inflates a message.
            self._shared_inflater = Inflater(no_context_takeover=True)
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
        self.subscriptions += 1

    cdef void _unsubscribe(self, ServerWebSocket ws, str topic):
        cdef dict subscribers = self.topics.get(topic)
        if subscribers is not None:
            if subscribers.pop(ws, 0) is None:
                self.subscriptions -= 1
            if not subscribers:
                del self.topics[topic]
                if self.on_topic_change is not None:
                    self.on_topic_change(topic, False)




cdef class HubConnection:
    """The part of an HTTP connection the hub uses; ConnectionBase (connection.pxi) is the rest."""

    cdef void _abort(self):
        if self.transport is not None:
            self.transport.abort()
