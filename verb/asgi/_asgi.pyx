"""The ASGI front-end on verb's connection layer: HTTP and WebSocket scopes for an ASGI app.

`AsgiConnectionBase` is the server's `ConnectionBase` (HTTP/1.1 parsing, limits, pipelining,
the upgrade checks and the 101 answer) with two steps replaced: a complete HTTP request runs
the app's `http` scope (`HttpCycle`), and a WebSocket upgrade runs its `websocket` scope
(`AsgiWebSocket`) until the app accepts, closes or denies it. Once accepted, the WebSocket is
the hub's ordinary `ServerWebSocket` (compiled frames, masking, UTF-8, deflate, write
batching); its events reach the app through the session's receive queue, built here without a
Task per message: the hub's handlers append the event dict and wake the one waiting receive().

Specification: ASGI HTTP & WebSocket spec 2.5 (https://asgi.readthedocs.io/en/latest/specs/www.html);
where the spec leaves a choice, uvicorn's behaviour is followed (tests/asgi compare them).
"""

import asyncio
import email.utils
import logging
import time
from urllib.parse import unquote

import httptools

from verb.core import extensions as _extensions
from verb.core import handshake as _handshake
from verb.core._frame cimport ST_CLOSED, ST_OPEN
from verb.core.errors import HandshakeError
from verb.core.headers import Headers
from verb.server._server cimport (
    MODE_CLOSED, MODE_HTTP, MODE_UPGRADING, ConnectionBase, Hub, ServerWebSocket,
)
from verb.server._transport cimport transport_buffered
from verb.server.http import status_line

log = logging.getLogger("verb.asgi")
access_log = logging.getLogger("verb.asgi.access")

# Session states.
cdef enum:
    S_CONNECTING = 0      # upgrade request received, app not answered yet
    S_OPEN = 1            # accepted: the ServerWebSocket carries it
    S_RESPONDING = 2      # denied with websocket.http.response.*, body being sent
    S_CLOSED = 3          # closed, denied or disconnected

# A send() waits for the peer while more than this is buffered for it (the transport's
# write buffer plus frames queued in the hub): ASGI's send is where an app feels backpressure.
cdef Py_ssize_t WRITE_HIGH_WATER = 64 * 1024


class ClientDisconnected(OSError):
    """send() on a connection that is gone (ASGI spec 2.4: an OSError subclass)."""


cdef object _date_cache = [0, b""]


cdef bytes _date_header():
    """`date: <IMF-fixdate>\\r\\n`, formatted once per second."""
    cdef long now = <long>time.time()
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = b"date: " + email.utils.formatdate(now, usegmt=True).encode() + b"\r\n"
    return _date_cache[1]


cdef class AsgiConfig:
    """What every connection of one ASGI server shares: the app and the scope's constants."""
    cdef readonly object app
    cdef readonly str root_path
    cdef readonly dict state             # lifespan state, copied into each scope
    cdef readonly bytes server_header    # b"server: verb\r\n", or b"" (--no-server-header)
    cdef readonly bint access_log
    cdef readonly int ws_max_queue
    cdef readonly str metrics_path       # answered by verb itself (Prometheus), or None
    cdef readonly object metrics         # () -> (body, content type)
    cdef object done                     # a done future of the server's loop (see send())
    cdef object server_addr              # the listening address, one tuple for every scope

    def __init__(self, app, root_path="", state=None, server_header=True, access_log=True,
                 ws_max_queue=32, metrics_path=None, metrics=None):
        self.app = app
        self.metrics_path = metrics_path
        self.metrics = metrics
        self.root_path = root_path
        self.state = state if state is not None else {}
        self.server_header = b"server: verb\r\n" if server_header else b""
        self.access_log = access_log
        self.ws_max_queue = ws_max_queue


cdef tuple _address(object info):
    if isinstance(info, tuple) and len(info) >= 2:
        return (info[0], info[1])
    return None


# Lower-cased header names, shared by every scope that has them (each idle connection keeps its
# scope: one bytes object per name instead of one per connection). Bounded: past the cap,
# names are lower-cased per request.
cdef dict _lower_names = {}
cdef Py_ssize_t LOWER_NAMES_CAP = 512


cdef list _scope_headers(list raw):
    """httptools' (name, value) pairs as ASGI wants them: names lower-cased, order and
    duplicates kept."""
    cdef list headers = []
    for name, value in raw:
        lower = _lower_names.get(name)
        if lower is None:
            lower = name.lower()
            if len(_lower_names) < LOWER_NAMES_CAP:
                _lower_names[name] = lower
        headers.append((lower, value))
    return headers


cdef class _Target:
    """The request target split as the scope wants it (httptools' URL parser, as uvicorn)."""
    cdef str path
    cdef bytes raw_path, query

    def __cinit__(self, bytes url, str root_path):
        parsed = httptools.parse_url(url)
        raw_path = parsed.path or b"/"
        self.query = parsed.query or b""
        self.path = root_path + _unquote(raw_path.decode("ascii", "surrogateescape"))
        self.raw_path = root_path.encode("ascii") + raw_path


cdef str _unquote(str path):
    return unquote(path) if "%" in path else path


cdef class HttpRequest:
    """One parsed HTTP request: its scope, body and whether the connection stays open."""
    cdef dict scope
    cdef bytes body


# -- HTTP ----------------------------------------------------------------------------------------

cdef class HttpCycle:
    """One request/response of the `http` scope: receive() hands over the body, send() writes
    the response (Content-Length when the app gives it or sends one body, chunked otherwise)."""
    cdef AsgiConnectionBase conn
    cdef dict scope
    cdef bytes body
    cdef bint keep_alive
    cdef bint body_sent          # receive() has handed the body over
    cdef bint started, complete, chunked, head
    cdef int status
    cdef object disconnected     # future, resolved when the client goes

    def __cinit__(self, AsgiConnectionBase conn, HttpRequest request, bint keep_alive):
        self.conn = conn
        self.scope = request.scope
        self.body = request.body
        self.keep_alive = keep_alive
        self.head = request.scope["method"] == "HEAD"

    async def receive(self):
        if not self.body_sent:
            self.body_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        if self.conn.transport is not None and not self.complete:
            if self.disconnected is None:
                self.disconnected = self.conn.hub.loop.create_future()
            await self.disconnected
        return {"type": "http.disconnect"}

    cdef void lost(self):
        if self.disconnected is not None and not self.disconnected.done():
            self.disconnected.set_result(None)

    async def send(self, message):
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            self._start(message)
        elif kind == "http.response.body":
            if not self.started:
                raise RuntimeError("http.response.body before http.response.start")
            if self.complete:
                raise RuntimeError("http.response.body after the response was complete")
            self._body(message.get("body", b""), message.get("more_body", False))
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} in an http scope")
        transport = self.conn.transport
        if transport is None:
            raise ClientDisconnected("the client has disconnected")

    cdef void _start(self, dict message):
        cdef int status = message["status"]
        if not 100 <= status <= 599:
            raise RuntimeError(f"invalid HTTP status {status!r}")
        self.started = True
        self.status = status
        cdef list parts = [status_line(status)]
        cdef bint has_length = False
        for name, value in message.get("headers", ()):
            lname = bytes(name).lower()
            if lname == b"content-length":
                has_length = True
            elif lname == b"connection" and bytes(value).lower() == b"close":
                self.keep_alive = False
            parts.append(bytes(name) + b": " + bytes(value) + b"\r\n")
        if not has_length and status >= 200 and status not in (204, 304) and not self.head:
            if self.scope["http_version"] == "1.1":
                self.chunked = True
                parts.append(b"transfer-encoding: chunked\r\n")
            else:
                self.keep_alive = False   # HTTP/1.0: the end of the body is the close
        parts.append(self.conn.config.server_header)
        parts.append(_date_header())
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        self.conn._head = b"".join(parts)

    cdef void _body(self, object body, bint more_body):
        cdef AsgiConnectionBase conn = self.conn
        cdef bytes head = conn._head
        cdef bytes data = bytes(body)
        if head is not None:
            conn._head = None
            if not self.chunked and not more_body and b"content-length" not in head.lower() and \
                    self.status >= 200 and self.status not in (204, 304) and not self.head:
                head += b"content-length: %d\r\n" % len(data)
            elif self.chunked and not more_body and not self.head:
                # One body after all: a length is cheaper for the client than chunks.
                head = head.replace(b"transfer-encoding: chunked\r\n",
                                    b"content-length: %d\r\n" % len(data))
                self.chunked = False
            head += b"\r\n"
        transport = conn.transport
        if transport is None:
            self.complete = not more_body
            return
        if self.head or self.status in (204, 304):
            data = b""
        if self.chunked:
            if data:
                data = b"%x\r\n%s\r\n" % (len(data), data)
            if not more_body:
                data += b"0\r\n\r\n"
        if head is not None:
            transport.write(head + data)
        elif data:
            transport.write(data)
        if not more_body:
            self.complete = True


cdef class AsgiConnectionBase(ConnectionBase):
    """ConnectionBase running an ASGI app (see the module docstring); used through
    `verb.asgi.server.AsgiConnection`, which adds asyncio.BufferedProtocol."""
    cdef AsgiConfig config
    cdef HttpCycle cycle      # the request being answered
    cdef AsgiWebSocket session  # the upgrade the app has not answered yet
    cdef bytes _head          # response head waiting for the first body (one write for both)
    cdef object _server_addr, _client_addr
    cdef str _scheme

    def __init__(self, Hub hub, AsgiConfig config):
        self.hub = hub
        self.config = config

    def connection_made(self, transport):
        ConnectionBase.connection_made(self, transport)
        server_addr = _address(transport.get_extra_info("sockname"))
        if server_addr != self.config.server_addr:
            self.config.server_addr = server_addr
        self._server_addr = self.config.server_addr
        self._client_addr = _address(transport.get_extra_info("peername"))
        self._scheme = "http" if transport.get_extra_info("sslcontext") is None else "https"

    def connection_lost(self, exc):
        ConnectionBase.connection_lost(self, exc)
        if self.cycle is not None:
            self.cycle.lost()
        if self.session is not None:   # gone (or timed out) before the app answered
            self.session.closed(1006, "")
            self.session = None

    def on_headers_complete(self):
        # Expect: 100-continue: the body is read before the app runs, so say continue now.
        for name, value in self._headers:
            if name.lower() == b"expect" and value.lower() == b"100-continue":
                if self.transport is not None:
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                break

    cdef dict _base_scope(self, str kind, str spec_version):
        cdef _Target target = _Target(self._url, self.config.root_path)
        return {
            "type": kind,
            "asgi": {"version": "3.0", "spec_version": spec_version},
            "http_version": self._http_version if kind == "websocket" else None,
            "scheme": self._scheme if kind == "http" else ("ws" if self._scheme == "http" else "wss"),
            "server": self._server_addr,
            "client": self._client_addr,
            "root_path": self.config.root_path,
            "path": target.path,
            "raw_path": target.raw_path,
            "query_string": target.query,
            "headers": _scope_headers(self._headers),
            "state": dict(self.config.state),
        }

    cdef object _make_request(self, bytes method, str http_version):
        cdef HttpRequest request = HttpRequest.__new__(HttpRequest)
        request.scope = self._base_scope("http", "2.4")
        request.scope["http_version"] = http_version
        request.scope["method"] = method.decode("ascii")
        request.body = b"".join(self._body) if self._body else b""
        return request

    cdef void _handle_http(self, object request, bint keep_alive):
        cdef AsgiConfig config = self.config
        if config.metrics_path is not None and \
                (<HttpRequest>request).scope["path"] == config.metrics_path:
            self._answer_metrics(keep_alive)
            return
        cdef HttpCycle cycle = HttpCycle(self, <HttpRequest>request, keep_alive)
        self._busy += 1
        self.cycle = cycle
        if self.transport is not None:
            self.transport.pause_reading()
        self.hub.loop.create_task(self._run_http(cycle))

    async def _run_http(self, HttpCycle cycle):
        try:
            await self.config.app(cycle.scope, cycle.receive, cycle.send)
        except ClientDisconnected:
            pass
        except BaseException as exc:
            log.error("Exception in ASGI application", exc_info=exc)
            if not cycle.started:
                self._http_error(cycle, 500)
            elif not cycle.complete and self.transport is not None:
                self.transport.close()     # the response cannot be finished
            if not isinstance(exc, Exception):
                raise
        else:
            if not cycle.started:
                log.error("ASGI callable returned without starting response.")
                self._http_error(cycle, 500)
            elif not cycle.complete:
                log.error("ASGI callable returned without completing response.")
                if self.transport is not None:
                    self.transport.close()
        finally:
            self._busy -= 1
            self.cycle = None
            self._head = None
        if self.config.access_log:
            self._log_access(cycle)
        if self.transport is None:
            return
        if not cycle.keep_alive or not self.hub.accepting:  # closing, or the server stops
            self.transport.close()
            self.mode = MODE_CLOSED
            return
        self.deadline = self.hub.loop.time() + self.hub.handshake_timeout
        while self._ready and not self._busy and self.transport is not None:
            request, keep_alive = self._ready.pop(0)
            self._handle_http(request, keep_alive)
        if not self._busy and not self._write_paused and self.transport is not None and \
                self.mode == MODE_HTTP:
            self.transport.resume_reading()

    cdef void _answer_metrics(self, bint keep_alive):
        """The Prometheus exposition, answered before the app (--metrics PATH)."""
        body, content_type = self.config.metrics()
        if self.transport is None:
            return
        self.transport.write(b"".join((
            status_line(200), b"content-type: ", content_type.encode("latin-1"), b"\r\n",
            b"content-length: %d\r\n" % len(body), b"cache-control: no-store\r\n",
            self.config.server_header, _date_header(),
            b"\r\n" if keep_alive else b"connection: close\r\n\r\n", body)))
        if not keep_alive:
            self.transport.close()
            self.mode = MODE_CLOSED

    cdef void _http_error(self, HttpCycle cycle, int status):
        cycle.started = cycle.complete = True
        cycle.status = status
        if self.transport is not None:
            body = b"Internal Server Error"
            self.transport.write(b"".join((
                status_line(status), b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: %d\r\n" % len(body), self.config.server_header,
                _date_header(), b"connection: close\r\n\r\n", body)))
        cycle.keep_alive = False

    cdef void _log_access(self, HttpCycle cycle):
        scope = cycle.scope
        client = scope["client"]
        query = scope["query_string"]
        access_log.info('%s - "%s %s%s HTTP/%s" %d',
                        "%s:%d" % client if client else "-", scope["method"], scope["path"],
                        "?" + query.decode("ascii", "replace") if query else "",
                        scope["http_version"], cycle.status)

    # -- WebSocket ------------------------------------------------------------------------------

    cdef void _start_upgrade(self, bytes rest):
        cdef Hub hub = self.hub
        self._upgrade_request[1] = rest
        headers = Headers(self._headers)
        if not _handshake.is_upgrade_request(headers):
            # Not a WebSocket upgrade (h2c, ...): answer as plain HTTP, then close.
            self._handle_http(self._make_request(self._method, self._http_version), False)
            self.mode = MODE_CLOSED
            return
        if self._refused_at_capacity() or self._refused_for_address(self.remote_address):
            return
        try:
            key = _handshake.check_request(self._method.decode("ascii"), self._http_version,
                                           headers, hub.options)
        except HandshakeError as exc:
            self._refuse_upgrade(exc.status, exc.message, exc.headers)
            return
        self.mode = MODE_UPGRADING
        self.transport.pause_reading()
        session = AsgiWebSocket(self, key, headers)
        self.session = session
        hub.loop.create_task(session.run())

    cdef void accept(self, AsgiWebSocket session, object subprotocol, object extra):
        """The app accepted: answer 101 and hand the transport to a ServerWebSocket."""
        cdef Hub hub = self.hub
        self.session = None
        headers = list(hub.options.headers)
        for name, value in extra:
            headers.append((bytes(name).decode("latin-1"), bytes(value).decode("latin-1")))
        extension = params = None
        if hub.deflate_settings is not None:
            offers = session.headers.get_all("sec-websocket-extensions")
            if offers:
                negotiated = _extensions.negotiate(offers, hub.deflate_settings)
                if negotiated is not None:
                    extension, params = negotiated
        self._open_websocket(session.key, subprotocol, extension, params, session,
                             self.remote_address, headers)

    cdef void deny(self, int status, list headers, bytes body):
        """Answer the upgrade with an HTTP response instead (close before accept: 403, or
        the websocket.http.response extension), then close."""
        self.session = None
        cdef list parts = [status_line(status)]
        cdef bint has_type = False, has_length = False
        for name, value in headers:
            lname = name.lower()
            has_type = has_type or lname == b"content-type"
            has_length = has_length or lname == b"content-length"
            parts.append(name + b": " + value + b"\r\n")
        if not has_type:
            parts.append(b"content-type: text/plain; charset=utf-8\r\n")
        if not has_length:
            parts.append(b"content-length: %d\r\n" % len(body))
        parts.append(self.config.server_header)
        parts.append(_date_header())
        parts.append(b"connection: close\r\n\r\n")
        parts.append(body)
        self.hub.count_handshake(status)
        self._release_peer()
        if self.transport is not None:
            self.transport.write(b"".join(parts))
            self.transport.close()
        self.mode = MODE_CLOSED


cdef class AsgiWebSocket:
    """The `websocket` scope of one connection: receive() and send() for the app."""
    cdef AsgiConnectionBase conn       # until accepted or denied
    cdef ServerWebSocket ws            # once accepted
    cdef readonly dict scope
    cdef str key
    cdef object headers
    cdef int state
    cdef list queue                    # events the app has not received yet (None: none; at
                                       # most max_queue, so a list's pop(0) is cheap enough)
    cdef object loop
    cdef object waiter                 # the receive() waiting for an event, or None
    cdef object done                   # a done future: what send() returns when it is done
    cdef object drained                # a send() waiting for the peer to read, or None
    cdef dict disconnect               # the disconnect event, once known
    cdef int max_queue
    cdef bint reading_paused
    cdef int response_status
    cdef list response_headers
    cdef list response_body

    def __cinit__(self, AsgiConnectionBase conn, str key, object headers):
        self.conn = conn
        self.key = key
        self.headers = headers
        self.loop = conn.hub.loop
        if conn.config.done is None:
            conn.config.done = _ready(self.loop, None)
        self.done = conn.config.done
        self.max_queue = conn.config.ws_max_queue
        scope = conn._base_scope("websocket", "2.5")
        subprotocols = []
        for value in headers.get_all("sec-websocket-protocol"):
            subprotocols.extend(token.strip() for token in value.split(",") if token.strip())
        scope["subprotocols"] = subprotocols
        scope["extensions"] = {"websocket.http.response": {}}
        self.scope = scope
        self.queue = [{"type": "websocket.connect"}]

    async def run(self):
        try:
            result = await self.conn.config.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException as exc:
            log.error("Exception in ASGI application", exc_info=exc)
            self._failed()
            if not isinstance(exc, Exception):
                raise
        else:
            if self.state == S_CONNECTING:
                log.error("ASGI callable returned without completing handshake.")
                self._failed()
            elif result is not None:
                log.error("ASGI callable should return None, but returned %r.", result)
            if self.state == S_OPEN and self.ws is not None and self.ws._state == ST_OPEN:
                self.ws.close(1000, "")
            elif self.state == S_RESPONDING:
                self._finish_response()

    cdef void _failed(self):
        """The app raised or returned: 500 before the handshake, 1011 after it."""
        if self.state == S_CONNECTING or self.state == S_RESPONDING:
            if self.conn is not None and self.state == S_CONNECTING:
                self.conn.deny(500, [], b"Internal Server Error")
            elif self.conn is not None and self.conn.transport is not None:
                self.conn.transport.close()   # a denial response left half sent
            self.state = S_CLOSED
            self.conn = None
        elif self.state == S_OPEN and self.ws is not None and self.ws._state == ST_OPEN:
            self.ws.close(1011, "")

    # -- receive -------------------------------------------------------------------------------

    def receive(self):
        """The next event, as an awaitable: a done future when one is queued (the app goes on
        without a suspension), else the future the next push() resolves. Plain def, not a
        coroutine: no coroutine object per message."""
        queue = self.queue
        if queue:
            event = queue.pop(0)
            if not queue:
                self.queue = None            # an idle connection keeps no list
            if self.reading_paused:
                self._resume_reading()
            return _ready(self.loop, event)
        if self.disconnect is not None:
            return _ready(self.loop, self.disconnect)
        if self.reading_paused:
            self._resume_reading()
        waiter = self.loop.create_future()
        self.waiter = waiter
        return waiter

    cdef void _resume_reading(self):
        if self.queue is None or len(self.queue) < self.max_queue // 2 + 1:
            self.reading_paused = False
            if self.ws is not None and self.ws.transport is not None and \
                    self.ws._state == ST_OPEN and not self.ws.parser.paused:
                self.ws.transport.resume_reading()

    cdef void push(self, dict event):
        waiter = self.waiter
        if waiter is not None and not waiter.done() and not self.queue:
            self.waiter = None
            waiter.set_result(event)
            return
        if self.queue is None:
            self.queue = [event]
        else:
            self.queue.append(event)
        if len(self.queue) >= self.max_queue and not self.reading_paused and \
                self.ws is not None and self.ws.transport is not None:
            self.reading_paused = True
            self.ws.transport.pause_reading()

    cdef void closed(self, int code, str reason):
        if self.disconnect is None:
            self.disconnect = {"type": "websocket.disconnect", "code": code, "reason": reason}
            self.push(self.disconnect)
        self.state = S_CLOSED
        self.conn = None
        self.headers = self.key = None
        self.woken()

    cdef void woken(self):
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    # -- send ----------------------------------------------------------------------------------

    def send(self, message):
        """Send an ASGI event; returns an awaitable (a done future when the event is sent, a
        coroutine when it must wait for the peer to read). Plain def on the hot path."""
        kind = message["type"]
        cdef ServerWebSocket ws
        if self.state == S_OPEN and kind == "websocket.send":
            # The hot path: one message, written through the hub's batch.
            ws = self.ws
            data = message.get("bytes")
            if data is None:
                data = message.get("text")
                if data is None:
                    raise RuntimeError("websocket.send needs 'bytes' or 'text'")
            elif type(data) is not bytes:
                data = bytes(data)
            if ws._state != ST_OPEN:
                raise ClientDisconnected("cannot send: the WebSocket is closed")
            if _buffered(ws) > WRITE_HIGH_WATER:
                return self._send_when_drained(ws, data)
            ws._send_message(data, None, 0)
        else:
            self._send_other(kind, message)
        return self.done

    async def _send_when_drained(self, ServerWebSocket ws, data):
        while ws._state == ST_OPEN and _buffered(ws) > WRITE_HIGH_WATER:
            ws._want_drain = True    # the hub calls on_drain once the peer has read it
            self.drained = self.loop.create_future()
            try:
                await self.drained
            finally:
                self.drained = None
        if ws._state != ST_OPEN:
            raise ClientDisconnected("cannot send: the WebSocket is closed")
        ws._send_message(data, None, 0)

    cdef void _send_other(self, str kind, dict message):
        cdef int state = self.state
        if state == S_OPEN:
            if kind == "websocket.close":
                self._close(message)
            else:
                raise RuntimeError(f"Expected ASGI message 'websocket.send' or 'websocket.close', "
                                   f"but got {kind!r}.")
        elif state == S_CONNECTING:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self.state = S_CLOSED
                self.disconnect = {"type": "websocket.disconnect", "code": 1006, "reason": ""}
                conn, self.conn = self.conn, None
                conn.deny(403, [], b"")
            elif kind == "websocket.http.response.start":
                status = message["status"]
                if not 100 <= status <= 599:
                    raise RuntimeError(f"Invalid HTTP status code {status!r} in response.")
                self.state = S_RESPONDING
                self.response_status = status
                self.response_headers = [(bytes(n), bytes(v)) for n, v in message.get("headers", ())]
                self.response_body = []
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' or "
                    f"'websocket.http.response.start' but got {kind!r}.")
        elif state == S_RESPONDING:
            if kind != "websocket.http.response.body":
                raise RuntimeError(f"Expected ASGI message 'websocket.http.response.body' but "
                                   f"got {kind!r}.")
            self.response_body.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                self._finish_response()
        else:
            raise ClientDisconnected(f"cannot send {kind!r}: the WebSocket is closed")

    cdef void _accept(self, dict message):
        cdef AsgiConnectionBase conn = self.conn
        if conn.transport is None:
            raise ClientDisconnected("the client went away before the handshake completed")
        subprotocol = message.get("subprotocol")
        self.state = S_OPEN
        self.conn = None
        conn.transport.resume_reading()
        conn.accept(self, subprotocol, message.get("headers", ()))
        self.headers = self.key = None       # the handshake is over: an idle connection keeps
                                             # only its scope
        if self.ws is None:          # the transport went while answering
            self.closed(1006, "")
        elif conn.config.access_log:
            client = self.scope["client"]
            access_log.info('%s - "WebSocket %s" [accepted]',
                            "%s:%d" % client if client else "-", self.scope["path"])

    cdef void _finish_response(self):
        self.state = S_CLOSED
        self.disconnect = {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.deny(self.response_status, self.response_headers, b"".join(self.response_body))

    cdef void _close(self, dict message):
        code = message.get("code")
        reason = message.get("reason") or ""
        if code is None:
            code = 1000
        self.ws.close(code, reason)
        if self.disconnect is None:
            self.disconnect = {"type": "websocket.disconnect", "code": code, "reason": reason}
            self.push(self.disconnect)
        self.state = S_CLOSED


cdef object _ready(object loop, object value):
    """A future that is already done with `value` (awaiting it does not suspend)."""
    future = loop.create_future()
    future.set_result(value)
    return future


cdef inline Py_ssize_t _buffered(ServerWebSocket ws) except -1:
    """What waits for the peer: frames queued in the hub, plus the transport's buffer (only
    looked up when the transport said it is backpressured)."""
    if ws._backpressured and ws.transport is not None:
        return ws._out_bytes + transport_buffered(ws.transport)
    return ws._out_bytes


# -- the hub's handlers: the WebSocket's events into the session ---------------------------------

def on_open(ServerWebSocket ws):
    (<AsgiWebSocket>ws._data).ws = ws


def on_message(ServerWebSocket ws, message):
    cdef AsgiWebSocket session = <AsgiWebSocket>ws._data
    if type(message) is str:
        session.push({"type": "websocket.receive", "text": message})
    else:
        session.push({"type": "websocket.receive", "bytes": message})


def on_close(ServerWebSocket ws, int code, str reason):
    (<AsgiWebSocket>ws._data).closed(code, reason)


def on_drain(ServerWebSocket ws):
    (<AsgiWebSocket>ws._data).woken()
