# The HTTP/1.1 connection and the WebSocket upgrade.


cdef class ConnectionBase(HubConnection):
    """The asyncio protocol of one TCP (or TLS) connection: HTTP/1.1, then maybe a WebSocket.

    Used through `Connection`, which adds asyncio.BufferedProtocol as a second base so that
    uvloop and asyncio both take their buffered-read path.
    """

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
        feed_by_copy(self, data)

    def eof_received(self):
        return False  # close the transport

    def connection_lost(self, exc):
        cdef Hub hub = self.hub
        self._release_peer()  # an upgrade was in progress
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

    # -- HTTP ---------------------------------------------------------------------------------------

    cdef void _reset_request(self):
        self._headers = []
        self._url = b""
        self._url_size = 0
        self._header_bytes = 0
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

    cdef void _reply_error(self, int status, object message, object headers=None):
        if self.transport is not None:
            self.transport.write(error_response(status, message, headers))
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
                if not self._refused_at_capacity() and \
                        not self._refused_for_address(self.remote_address):
                    self._open_websocket(key, None, None, None, None, self.remote_address,
                                         hub.options.headers)
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
        if self._refused_at_capacity() or self._refused_for_address(
                request.ip if options.trust_proxy else self.remote_address):
            return
        try:
            key = _handshake.check_request(request.method, request.http_version, headers,
                                           options)
        except HandshakeError as exc:
            self._refuse_upgrade(exc.status, exc.message, exc.headers)
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
            self._refuse_upgrade(503, "too many connections", None)
            return True
        return False

    cdef bint _refused_for_address(self, object address):
        """True, having answered 429 with Retry-After, when `address` is at its
        max_connections_per_ip or over its handshake_rate; else the upgrade is counted as in
        progress for it."""
        cdef PeerTable peers = self.hub.peers
        if peers is None:
            return False
        admitted = peers.admit(address)
        if type(admitted) is _Peer:
            self._peer = admitted
            self._peer_address = address
            return False
        self._refuse_upgrade(429, "too many connections or upgrades from this address",
                             (("Retry-After", str(admitted)),))
        return True

    cdef void _refuse_upgrade(self, int status, object message, object headers):
        """Answer an upgrade with an error status, counted, and close."""
        self.hub.count_handshake(status)
        self._release_peer()
        self._reply_error(status, message, headers)

    cdef void _release_peer(self):
        if self._peer is not None:
            self.hub.peers.release(self._peer_address, self._peer)
            self._peer = None

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
            self._refuse_upgrade(exc.status, exc.message, None)
        else:
            log.error("verb: upgrade handler raised", exc_info=exc)
            self._refuse_upgrade(500, None, None)

    cdef void _accept(self, object request, str key, object data):
        cdef Hub hub = self.hub
        if data is False:
            self._refuse_upgrade(403, None, None)
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
                             request.ip if options.trust_proxy else self.remote_address,
                             options.headers)

    cdef void _open_websocket(self, str key, object subprotocol, object extension,
                              object params, object data, object remote_address,
                              object headers):
        """Answer 101 (with `headers`, (name, value) str pairs) and hand the transport to a
        new WebSocket (RFC 6455 section 4.2.2)."""
        cdef Hub hub = self.hub
        if self.transport is None:
            return
        self.transport.write(_handshake.build_response(key, subprotocol, extension, headers))
        transport = self.transport
        handshake = _pack_request(self._method, self._url, self._http_version, self._headers,
                                  self.remote_address)
        rest = self._upgrade_request[1]
        # From here the transport reports to the WebSocket; this HTTP connection object goes.
        self.transport = None
        self.mode = MODE_WEBSOCKET
        self.http_parser = None
        self.deadline = 0
        self._upgrade_request = None
        self._headers = None
        hub.connections.discard(self)
        peer = self._peer
        self._peer = None
        open_websocket(hub, transport, subprotocol, params, data, handshake, remote_address, rest,
                       peer)




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

