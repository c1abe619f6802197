# Contract of the connection layer (verb.server._server): the cdef classes its three parts
# define (hub.pxi, websocket.pxi, connection.pxi, included by _server.pyx), so that another
# front-end can cimport the hub and the WebSocket without the Verb app.
#
# Dependency inside the module, one way only: the hub holds WebSockets and sees HTTP
# connections only as HubConnection; a WebSocket knows its hub; the HTTP connection knows both
# and opens WebSockets through open_websocket().

from verb.core._deflate cimport Deflater, Inflater
from verb.core._frame cimport FrameHandler, FrameParser

cdef enum:
    # What an HTTP connection is doing.
    MODE_HTTP = 0
    MODE_UPGRADING = 1       # waiting for an async upgrade handler
    MODE_WEBSOCKET = 2
    MODE_CLOSED = 3
    # Reading pauses when this many events of one connection wait for its async handlers.
    MAX_PENDING_EVENTS = 64
    # bytes payloads from this size on are sent after their own header instead of being
    # copied into a frame (they are immutable: the transport may hold them until written).
    ZERO_COPY_MIN = 64 * 1024


# Idle addresses the per-address table keeps (see PeerTable).
cdef enum:
    PEER_IDLE_CAP = 10000
    # Rate-limit actions, in the order of verb.server.options.RATE_LIMIT_ACTIONS.
    ACTION_CLOSE = 0
    ACTION_DROP = 1
    ACTION_PAUSE = 2
    # Input a paused connection may hold (what was left of its last read, normally at most one
    # read buffer); a transport that delivers more while paused gets the connection closed.
    MAX_UNPARSED = 1024 * 1024
    # Who ended a connection, for the close counters.
    SIDE_SERVER = 0
    SIDE_CLIENT = 1
    SIDE_ABNORMAL = 2
    # Buckets of the ping round-trip histogram (PING_RTT_BOUNDS in hub.pxi).
    RTT_BUCKETS = 14


cdef class _Bucket:
    cdef double rate, capacity, tokens
    cdef double byte_rate, byte_capacity, byte_tokens   # byte_rate 0: bytes not limited
    cdef double control_tokens
    cdef double last
    cdef int action
    cdef object limit              # the RateLimit it was made from
    cdef double limited_at         # when the `limited` handler was last called ("drop")
    # "pause": the message waiting for tokens, the input left unparsed, the resume timer.
    cdef object held
    cdef Py_ssize_t held_size
    cdef bytearray unparsed
    cdef object resume_handle

    cdef void _refill(self, double now) noexcept
    cdef bint admit(self, Py_ssize_t size) noexcept
    cdef bint admit_control(self) noexcept
    cdef double wait(self, Py_ssize_t size) noexcept
    cdef str describe(self)


cdef class _Peer:
    cdef int open                  # upgrades in progress + open WebSockets
    cdef double tokens, last       # handshake-rate bucket


cdef class PeerTable:
    cdef int max_per_ip            # 0: no limit
    cdef double rate, burst        # handshake rate per address; rate 0: no limit
    cdef Py_ssize_t idle_cap
    cdef dict peers                # address -> _Peer, idle ones in the order they went idle
    cdef Py_ssize_t idle

    cdef object admit(self, object address)
    cdef void release(self, object address, _Peer peer)
    cdef void _make_room(self)


cdef class _Handler:
    """A user handler resolved once: function, how many arguments it takes, sync or async."""
    cdef object fn
    cdef int arity
    cdef bint is_async


cdef class HubConnection:
    """An HTTP connection as the hub sees it (timeouts, shutdown, pending output)."""
    cdef Hub hub
    cdef readonly object transport
    cdef double deadline          # handshake or keep-alive deadline (loop time), 0 for none
    cdef int _busy                # HTTP requests being handled (async handlers)

    cdef void _abort(self)


cdef class Hub:
    cdef readonly object loop
    cdef readonly object options
    cdef readonly object router
    cdef readonly object app
    cdef readonly bint websocket_enabled
    # Upgrades may take the plain path (_plain_upgrade_key): no upgrade handler, no path or
    # origin restriction, no proxy headers to read.
    cdef readonly bint plain_upgrades
    # Fail a connection for a protocol error one loop iteration late, so that answers to the
    # messages before it (from async handlers or an ASGI app) go out first.
    cdef public bint settle_before_failing
    cdef _Handler h_open, h_message, h_close, h_error, h_drain, h_ping, h_pong, h_upgrade
    cdef _Handler h_limited
    # Rate limits: a RateLimit (every connection), a callable picking one per connection, or
    # None; the per-address table (None without max_connections_per_ip and handshake_rate).
    cdef object rate_limit
    cdef readonly PeerTable peers

    cdef readonly set connections   # HubConnection objects not (yet) upgraded
    cdef readonly set websockets
    cdef dict topics
    # Cluster hooks (verb.cluster.pubsub), None without an external broker:
    # on_topic_change(topic, active) when a topic gets its first local subscriber (True) or
    # loses its last (False); on_publish(topic, data, compress) after ws.publish has delivered
    # locally.
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
    cdef object max_payload_length  # int, or None for no limit (as the parser takes it)
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

    # Statistics (`stats()`; verb.server.metrics exports them).
    cdef public unsigned long long messages_in, messages_out, bytes_in, bytes_out, dropped
    cdef public unsigned long long connections_total
    cdef public unsigned long long compressed_bytes_in, compressed_bytes_out
    cdef public unsigned long long limited_closes, limited_drops, limited_pauses
    cdef public unsigned long long handler_errors, publishes, deliveries, subscriptions
    cdef dict handshakes           # status -> count (101 for accepted upgrades)
    cdef dict closes               # (code, side) -> count
    cdef unsigned long long rtt_counts[RTT_BUCKETS + 1]   # the last one: above every bound
    cdef double rtt_sum

    cdef void _mark_dirty(self, ServerWebSocket ws)
    cdef void _flush(self)
    cdef bytes _published_run(self, Py_ssize_t start, Py_ssize_t end)
    cdef Py_ssize_t publish_message(self, str topic, object data, ServerWebSocket exclude,
                                    object compress) except -1
    cdef Deflater shared_deflater(self, int window_bits)
    cdef Inflater shared_inflater(self)
    cdef void _subscribe(self, ServerWebSocket ws, str topic)
    cdef void _unsubscribe(self, ServerWebSocket ws, str topic)
    cdef void count_handshake(self, int status)
    cdef void observe_rtt(self, double seconds)


cdef class ServerWebSocket(FrameHandler):
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
    cdef bint _backpressured
    cdef bint _want_drain
    cdef dict _topics
    cdef double _last_activity
    cdef double _ping_sent_at     # monotonic time of our unanswered keepalive ping, 0: none
    cdef bint _closed_by_server   # we sent the first close frame
    cdef _Bucket _bucket          # rate limit (None: not limited)
    cdef _Peer _peer              # its entry in hub.peers (None: not counted)
    cdef double _close_deadline
    cdef bint _close_reported
    cdef object _pending
    cdef object _task
    cdef bint _reading_paused
    cdef dict _listeners
    cdef Deflater _deflater       # permessage-deflate negotiated: our compressor (else None)
    cdef bint _deflater_shared    # ... the loop's shared one (no context takeover)

    cdef int _queue_frame(self, bytes frame) except -2
    cdef int _queue_parts(self, bytes frame, bytes payload) except -2
    cdef int _admit(self, Py_ssize_t size) except -2
    cdef void _append_out(self, bytes frame)
    cdef void _mark_dirty(self)
    cdef void _unshare_run(self)
    cdef void _flush(self)
    cdef int _send_message(self, object data, object compress, int force_opcode) except -2
    cdef void _unsubscribe_all(self)
    cdef void _close(self, int code, str reason)
    cdef void _send_close(self, int code, str reason)
    cdef void _closed_by_peer_or_error(self, int code, str reason)
    cdef void _report_close(self, int code, str reason)
    cdef void _check_timers(self, double now)
    cdef void _dispatch(self, _Handler h, object a, object b)
    cdef void _dispatch_plain(self, object fn, object arg)
    cdef void _call_failed(self, _Handler h, object exc)
    cdef void _abort(self)
    cdef int _feed(self, const unsigned char *data, Py_ssize_t n) except -1
    cdef int _over_limit(self, object message) except -1
    cdef int _set_rate_limit(self, object limit) except -1
    cdef void _release_peer(self)


cdef ServerWebSocket open_websocket(Hub hub, object transport, object subprotocol,
                                    object deflate_params, object data, bytes handshake,
                                    object remote_address, bytes rest, _Peer peer)


cdef class ConnectionBase(HubConnection):
    cdef int mode
    cdef object http_parser
    cdef bint _write_paused      # HTTP: reading paused until the peer takes our responses
    cdef object remote_address
    # The request being parsed.
    cdef list _headers
    cdef bytes _url
    cdef Py_ssize_t _url_size
    cdef Py_ssize_t _header_bytes
    cdef list _body
    cdef Py_ssize_t _body_size
    cdef int _error_status       # a limit was broken while parsing: answer this, then close
    cdef list _ready             # complete requests waiting to be handled, in order
    # The upgrade request: [Request, or None on the plain path; bytes read after it].
    cdef object _upgrade_request
    cdef bytes _method           # of the upgrade request
    cdef str _http_version       # of the upgrade request
    cdef _Peer _peer             # counted in hub.peers while the upgrade is in progress
    cdef object _peer_address

    cdef void _reset_request(self)
    cdef void _feed_http(self, bytes data)
    cdef void _reply_error(self, int status, object message, object headers=*)
    cdef object _make_request(self, bytes method, str http_version)
    cdef void _handle_http(self, object request, bint keep_alive)
    cdef void _http_failed(self, object request, object response, object exc, bint keep_alive)
    cdef void _write_response(self, object request, object response, bint keep_alive)
    cdef void _start_upgrade(self, bytes rest)
    cdef bint _refused_at_capacity(self)
    cdef bint _refused_for_address(self, object address)
    cdef void _refuse_upgrade(self, int status, object message, object headers)
    cdef void _release_peer(self)
    cdef void _upgrade_refused(self, object exc)
    cdef void _accept(self, object request, str key, object data)
    cdef void _open_websocket(self, str key, object subprotocol, object extension,
                              object params, object data, object remote_address,
                              object headers)
