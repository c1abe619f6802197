cdef class ServerWebSocket(FrameHandler):
    """One WebSocket connection, as the handlers see it (Bun's ServerWebSocket, in Python).

    Arbitrary attributes may be set on it (`ws.is_alive = True`); it hashes by identity.
    """

    CONNECTING = ST_CONNECTING
    OPEN = ST_OPEN
    CLOSING = ST_CLOSING
    CLOSED = ST_CLOSED

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

    cdef void _append_out(self, bytes frame):
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

    cdef void _mark_dirty(self):
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

    cdef int _send_message(self, object data, object compress, int force_opcode) except -2:
        cdef Py_ssize_t n
        cdef bytes frame
        cdef int status
        if type(data) is bytes and force_opcode != OP_TEXT:
            n = PyBytes_GET_SIZE(data)
            if n >= ZERO_COPY_MIN and (self._deflater is None or not wants_compression(
                    compress, n, self.hub.compression_threshold)):
                # Large and immutable: written after its own header, never copied.
                return self._queue_parts(frame_header(OP_BINARY, n), data)
        frame = message_frame(data, force_opcode, self._deflater, compress,
                              self.hub.compression_threshold, NULL)
        status = self._queue_frame(frame)
        if self._deflater is not None and status != 0 and \
                (<const unsigned char *>PyBytes_AS_STRING(frame))[0] & 0x40:  # RSV1: compressed
            self.hub.compressed_bytes_out += PyBytes_GET_SIZE(frame)
        return status

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
        return self._send_message(data, compress, OP_TEXT)

    def send_binary(self, data, compress=None):
        return self._send_message(data, compress, OP_BINARY)

    def send_json(self, obj, compress=None):
        """Send `obj` as JSON (orjson) in a text frame, so a browser's JSON.parse reads it."""
        return self._send_message(orjson.dumps(obj), compress, OP_TEXT)

    sendText = send_text
    sendBinary = send_binary
    sendJson = send_json

    def ping(self, data=b""):
        return self._queue_frame(control_frame(OP_PING, data, NULL))

    def pong(self, data=b""):
        return self._queue_frame(control_frame(OP_PONG, data, NULL))

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

    def close(self, code=CLOSE_NORMAL, str reason not None=""):
        """Start the closing handshake (RFC 6455 section 7.1.2)."""
        self._close(check_close(code, reason), reason)

    def terminate(self):
        """Drop the connection at once, without a closing handshake."""
        self._report_close(CLOSE_ABNORMAL, "terminated")
        self._abort()

    cdef void _close(self, int code, str reason):
        if self._state != ST_OPEN:
            return
        self._closed_by_server = True
        self._send_close(code, reason)
        self._close_deadline = self.hub.loop.time() + self.hub.close_timeout
        self._unsubscribe_all()

    cdef void _send_close(self, int code, str reason):
        """Queue our close frame behind what is queued (sends are refused from now on)."""
        self._state = ST_CLOSING
        self._append_out(close_frame(code, reason, NULL))

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
        self._release_peer()
        if self._bucket is not None and self._bucket.resume_handle is not None:
            self._bucket.resume_handle.cancel()
            self._bucket.resume_handle = None
        key = (code, SIDE_ABNORMAL if code == CLOSE_ABNORMAL else
               SIDE_SERVER if self._closed_by_server else SIDE_CLIENT)
        self.hub.closes[key] = self.hub.closes.get(key, 0) + 1
        if self.hub.h_close is not None:
            self._dispatch(self.hub.h_close, code, reason)

    # -- frame events (FrameHandler) ----------------------------------------------------------------

    cdef int on_text(self, str text) except -1:
        cdef Hub hub = self.hub
        hub.messages_in += 1
        hub.compressed_bytes_in += self.parser.compressed_size
        if self._bucket is not None and not self._bucket.admit(self.parser.message_size):
            return self._over_limit(text)
        if self._state == ST_OPEN and hub.h_message is not None:
            self._dispatch(hub.h_message, text, None)
        return 0
    cdef int on_binary(self, bytes data) except -1:
        cdef Hub hub = self.hub
        hub.messages_in += 1
        hub.compressed_bytes_in += self.parser.compressed_size
        if self._bucket is not None and not self._bucket.admit(self.parser.message_size):
            return self._over_limit(data)
        if self._state == ST_OPEN and hub.h_message is not None:
            self._dispatch(hub.h_message, data, None)
        return 0

    cdef int on_ping(self, bytes data) except -1:
        if self._bucket is not None and not self._bucket.admit_control():
            return self._over_limit(None)
        if self._state == ST_OPEN:
            self._queue_frame(control_frame(OP_PONG, data, NULL))  # RFC 6455 section 5.5.2
        if self.hub.h_ping is not None:
            self._dispatch(self.hub.h_ping, data, None)
        return 0

    cdef int on_pong(self, bytes data) except -1:
        if self._bucket is not None and not self._bucket.admit_control():
            return self._over_limit(None)
        if self._ping_sent_at > 0:
            self.hub.observe_rtt(monotonic() - self._ping_sent_at)
            self._ping_sent_at = 0
        if self.hub.h_pong is not None:
            self._dispatch(self.hub.h_pong, data, None)
        if self._listeners is not None:
            for fn in self._listeners.get("pong", ()):
                self._dispatch_plain(fn, data)
        return 0

    cdef int on_close(self, int code, str reason) except -1:
        # RFC 6455 section 5.5.1: answer with a close frame echoing the code and reason (as
        # websockets and uvicorn do), then the server closes the TCP connection (7.1.1).
        if self._state == ST_OPEN:
            if code == CLOSE_NO_STATUS:
                self._send_close(CLOSE_NORMAL, "")
            else:
                self._send_close(code, reason)
        self._closed_by_peer_or_error(code, reason)
        return 0

    cdef int on_protocol_error(self, int code, str reason) except -1:
        if self._state == ST_OPEN and self.hub.settle_before_failing:
            # The handlers answer the messages parsed before the error a loop iteration later
            # (async handlers, ASGI apps): fail after that iteration, so that their answers go
            # out before our close frame (Autobahn's "strict"). The parser has stopped.
            if self.transport is not None:
                self.transport.pause_reading()
            self.hub.loop.call_soon(self._fail_settled, code, reason)
            return 0
        if self._state == ST_OPEN:
            self._closed_by_server = True
            self._send_close(code, reason)
        self._closed_by_peer_or_error(code, reason)
        return 0

    def _fail_settled(self, int code, str reason):
        if self._state == ST_OPEN:
            self._closed_by_server = True
            self._send_close(code, reason)
        if not self._close_reported:
            self._closed_by_peer_or_error(code, reason)

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
        elif hub.send_pings and self._ping_sent_at == 0 and idle >= hub.idle_timeout / 2:
            self._ping_sent_at = monotonic()
            self._queue_frame(control_frame(OP_PING, b"", NULL))

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
                    if self.transport is not None and self._state != ST_CLOSED and \
                            not self.parser.paused:  # else the rate limit resumes it
                        self.transport.resume_reading()
                self.hub._flush()
        finally:
            self._task = None

    cdef void _call_failed(self, _Handler h, object exc):
        """The one boundary for exceptions from user handlers."""
        cdef _Handler on_error = self.hub.h_error
        self.hub.handler_errors += 1
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
                self._feed(<unsigned char *><char *>hub._read_buffer, nbytes)
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
        feed_by_copy(self, data)

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

    # -- input and rate limits (the buckets are in limits.pxi) ------------------------------------

    cdef int _feed(self, const unsigned char *data, Py_ssize_t n) except -1:
        """Parse `n` bytes of input; what a rate-limit pause leaves unparsed is kept (at most
        MAX_UNPARSED bytes) until the bucket refills."""
        cdef Py_ssize_t taken
        cdef _Bucket bucket = self._bucket
        if bucket is not None and bucket.unparsed is not None:
            # Paused, yet the transport delivered more (TLS may): queue it behind the rest.
            bucket.unparsed += PyBytes_FromStringAndSize(<const char *>data, n)
            if len(bucket.unparsed) > MAX_UNPARSED:
                bucket.unparsed = None
                self._close(CLOSE_POLICY_VIOLATION, bucket.describe())
            return 0
        taken = self.parser.feed_buffer(<unsigned char *>data, n)
        if taken < n and self.parser is not None and bucket is not None:
            bucket.unparsed = bytearray(PyBytes_FromStringAndSize(<const char *>data + taken,
                                                                  n - taken))
        return 0

    cdef int _over_limit(self, object message) except -1:
        """A message (None: a control frame) over the connection's rate limit."""
        cdef Hub hub = self.hub
        cdef _Bucket bucket = self._bucket
        cdef double now
        if self._state != ST_OPEN:
            return 0
        if bucket.action == ACTION_CLOSE:
            hub.limited_closes += 1
            self._close(CLOSE_POLICY_VIOLATION,
                        "rate limit exceeded: control frames" if message is None
                        else bucket.describe())
        elif bucket.action == ACTION_DROP or message is None:
            # Control frames over their allowance are dropped whatever the action: a paused
            # connection must not hold them, and a flood of pings gets no pongs.
            hub.limited_drops += 1
            now = monotonic()
            if message is not None and hub.h_limited is not None and \
                    now - bucket.limited_at >= 1.0:
                bucket.limited_at = now
                self._dispatch(hub.h_limited, message, None)
        else:
            hub.limited_pauses += 1
            bucket.held = message
            bucket.held_size = self.parser.message_size
            self.parser.pause()
            if self.transport is not None:
                self.transport.pause_reading()
            bucket.resume_handle = hub.loop.call_later(
                bucket.wait(self.parser.message_size), self._resume_limited)
        return 0

    def _resume_limited(self):
        """The paused connection's bucket has refilled: deliver the held message, parse what
        was left unparsed, and read again unless that paused it once more."""
        cdef _Bucket bucket = self._bucket
        cdef Hub hub = self.hub
        cdef bytearray rest
        bucket.resume_handle = None
        if self._state != ST_OPEN or self.parser is None:
            return
        message = bucket.held
        if not bucket.admit(bucket.held_size):
            bucket.resume_handle = hub.loop.call_later(bucket.wait(bucket.held_size),
                                                       self._resume_limited)
            return
        bucket.held = None
        self.parser.resume()
        hub._reading += 1
        try:
            if hub.h_message is not None:
                self._dispatch(hub.h_message, message, None)
            rest = bucket.unparsed
            bucket.unparsed = None
            if rest and self.parser is not None:
                self._feed(<const unsigned char *>PyByteArray_AS_STRING(rest), len(rest))
        finally:
            hub._reading -= 1
            if hub._reading == 0:
                hub._flush()
        if self.transport is not None and self.parser is not None and \
                not self.parser.paused and not self._reading_paused:
            self.transport.resume_reading()

    cdef int _set_rate_limit(self, object limit) except -1:
        """Limit this connection by `limit` (a RateLimit, a dict of its form, or None)."""
        if limit is None:
            self._bucket = None
            return 0
        self._bucket = _Bucket(RateLimit.from_dict("rate_limit", limit), monotonic())
        return 0

    cdef void _release_peer(self):
        if self._peer is not None:
            self.hub.peers.release(self.remote_address, self._peer)
            self._peer = None


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



cdef ServerWebSocket open_websocket(Hub hub, object transport, object subprotocol,
                                    object deflate_params, object data, bytes handshake,
                                    object remote_address, bytes rest, _Peer peer):
    """The one place a WebSocket is made: after the 101 answer went out on `transport`, a new
    OPEN WebSocket takes the transport over, joins the hub, gets its rate limit (the
    `rate_limit` callable runs here, after `upgrade`, before `open`), its `open` event, then
    parses `rest` (bytes that arrived behind the upgrade request).

    Args:
        subprotocol: the subprotocol agreed, or None.
        deflate_params: the agreed permessage-deflate parameters, or None.
        data: what the upgrade handler returned (None or True: `ws.data` starts as a dict).
        handshake: the upgrade request, packed (see `ServerWebSocket.request`).
        remote_address: the client's address (after trust_proxy).
        peer: its entry in hub.peers, which the WebSocket releases when it closes (or None).
    """
    cdef bytearray buf
    cdef ServerWebSocket ws = WebSocketProtocol.__new__(WebSocketProtocol)
    ws.hub = hub
    ws._run_start = ws._run_end = -1
    ws.transport = transport
    ws.parser = FrameParser(ws, server=True, max_payload_length=hub.max_payload_length)
    if data is not None and data is not True:
        ws._data = data
    ws._handshake = handshake
    ws.protocol = subprotocol
    ws.remote_address = remote_address
    ws._state = ST_OPEN
    ws._last_activity = hub.now
    if deflate_params is not None:
        _enable_deflate(hub, ws, deflate_params)
    ws._peer = peer
    transport.set_protocol(ws)
    hub.websockets.add(ws)
    hub.count_handshake(101)
    limit = hub.rate_limit
    if limit is not None:
        if type(limit) is RateLimit:
            ws._bucket = _Bucket(limit, monotonic())
        else:
            try:
                ws._set_rate_limit(limit(ws))
            except Exception as exc:
                ws._call_failed(None, exc)  # the error handler, then 1011
    if hub.h_open is not None and ws._state == ST_OPEN:
        ws._dispatch(hub.h_open, None, None)
    if rest and ws.parser is not None:
        buf = bytearray(rest)  # parsed in place: a copy of ours
        ws._feed(<const unsigned char *>PyByteArray_AS_STRING(buf), len(buf))
    return ws


cdef void _enable_deflate(Hub hub, ServerWebSocket ws, object params):
    """Set up permessage-deflate for a connection from the agreed parameters (RFC 7692)."""
    if params.shared:
        ws._deflater = hub.shared_deflater(params.server_max_window_bits)
        ws._deflater_shared = True
        ws.parser.inflater = hub.shared_inflater()
    else:
        ws._deflater = Deflater(window_bits=params.server_max_window_bits,
                                no_context_takeover=params.server_no_context_takeover)
        # No max_size: the parser sets the limit before it inflates a message.
        ws.parser.inflater = Inflater(window_bits=max(9, params.client_max_window_bits),
                                      no_context_takeover=params.client_no_context_takeover)


class WebSocketProtocol(ServerWebSocket, asyncio.BufferedProtocol):
    """ServerWebSocket seen by the event loop as a BufferedProtocol: the transport's protocol
    once the upgrade is done (asyncio and uvloop take the buffered-read path for it)."""

    __slots__ = ()


