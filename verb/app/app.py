"""The Verb server API in Python: create_server, routes, app.websocket, listen.

    from verb import create_server, ServerProtocol
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, message: ws.send(f"Echo: {message}"))
    app.listen(3000)

The app holds the configuration; each running server gets a `Hub` (compiled, one per event loop)
that the connections share. With a broker (`broker="redis://..."`), publishes also reach the
subscribers of other processes (`verb.cluster.pubsub`); `app.listen(port, workers=N)` runs N
processes sharing the port (`verb.cluster.workers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
import os
import signal
import socket
import ssl
import tempfile
import threading

from verb.app import timers
from verb.app.monitoring import Monitoring
from verb.app.routing import Router
from verb.cluster import workers as cluster_workers
from verb.cluster.pubsub import Broker, BrokerLink, broker_from_url
from verb.server import metrics
from verb.server._server import Hub
from verb.server.options import Options, split_websocket_config
from verb.server.serving import Connection, bound_socket, new_loop, run

log = logging.getLogger("verb")


class ServerProtocol(str, enum.Enum):
    """What `create_server` serves. WEBSOCKET serves HTTP routes beside WebSockets."""

    HTTP = "http"
    HTTPS = "https"
    WEBSOCKET = "websocket"
    WEBSOCKETS = "websockets"

    @classmethod
    def _missing_(cls, value):
        if isinstance(value, str):
            for member in cls:
                if member.value == value.lower():
                    return member
        supported = ", ".join(m.name for m in cls)
        raise ValueError(f"unsupported server protocol {value!r}; supported: {supported}")

    @property
    def tls(self):
        return self in (ServerProtocol.HTTPS, ServerProtocol.WEBSOCKETS)


def create_server(protocol=ServerProtocol.HTTP, *, tls=None, **options) -> App:
    """Create an app (Verb's `createServer`).

    Args:
        protocol: a `ServerProtocol` or its value ("http", "https", "websocket", "websockets").
        tls: for HTTPS/WEBSOCKETS: {"cert": path or PEM text, "key": path or PEM text,
            "passphrase": optional}, or an `ssl.SSLContext`.
        **options: server-wide options (see `verb.server.options.Options`), e.g. max_body.
    """
    return App(ServerProtocol(protocol), tls, Options.from_kwargs(**options))


createServer = create_server


class App:
    """Routes, WebSocket handlers and options, and the servers running them."""

    listen_calls = 0  # blocking listen() calls in this process (how `verb run` knows one ran)
    #: Which worker this process is (0 to N-1) under `listen(..., workers=N)`; None otherwise.
    #: Also in the environment as VERB_WORKER_ID.
    worker_id = None

    def __init__(self, protocol: ServerProtocol, tls, options: Options):
        if protocol.tls and tls is None:
            raise ValueError(
                f"ServerProtocol.{protocol.name} needs a certificate: pass "
                'tls={"cert": "cert.pem", "key": "key.pem"} to create_server')
        self.protocol = protocol
        self._ssl = _ssl_context(tls) if tls is not None else None
        self.config = options
        self.router = Router()
        self._handlers = None
        self._servers: list[Server] = []
        self._on_start: list = []
        self._on_stop: list = []
        self._link: BrokerLink | None = None  # while servers run with an external broker
        self._monitoring: Monitoring | None = None
        for method in ("get", "post", "put", "patch", "delete", "head", "options", "all"):
            setattr(self, method, self._route_adder(method.upper()))

    # -- routes -------------------------------------------------------------------------------

    def _route_adder(self, method):
        def add(path, handler=None):
            if handler is None:  # decorator form: @app.get("/")
                def decorator(fn):
                    self.router.add(method, path, fn)
                    return fn
                return decorator
            self.router.add(method, path, handler)
            return self
        add.__name__ = method.lower()
        add.__doc__ = f"Route {method} requests for `path` to `handler(req, res)`."
        return add

    def use(self, *args):
        """Add middleware `fn(req, res, next)`, optionally under a path prefix."""
        self.router.use(*args)
        return self

    # -- WebSockets -----------------------------------------------------------------------------

    def websocket(self, config=None, **kwargs):
        """Register WebSocket handlers and options (keyword arguments or one dict)."""
        handlers, option_kwargs = split_websocket_config(config, **kwargs)
        self.config = Options.from_kwargs(base=self.config, **option_kwargs)
        self._handlers = handlers
        return self

    def publish(self, topic: str, data) -> int:
        """Send `data` to every subscriber of `topic`: at once to those of this process, and
        through the broker, when there is one, to those of the others.

        Returns:
            How many subscribers of this process it reached.
        """
        delivered = sum(s.hub.publish(topic, data) for s in self._servers if s.hub is not None)
        if self._link is not None:
            self._link.publish(topic, data)
        return delivered

    def subscriber_count(self, topic: str) -> int:
        """Subscribers of `topic` in this process (local count; with workers or a broker, see
        `cluster_subscriber_count`)."""
        return sum(s.hub.subscriber_count(topic) for s in self._servers if s.hub is not None)

    subscriberCount = subscriber_count

    async def cluster_subscriber_count(self, topic: str, timeout: float = 1.0) -> int:
        """Subscribers of `topic` in every process connected to the broker (the local count
        without an external broker). Asks each process over the broker and sums the answers;
        processes that do not answer within `timeout` seconds are not counted. Await it on
        the loop the app serves on.

        Raises:
            verb.cluster.pubsub.BrokerUnavailable: the broker cannot be reached.
        """
        link = self._link
        if link is None:
            return self.subscriber_count(topic)
        count = await link.broker.cluster_subscriber_count(topic, timeout)
        return self.subscriber_count(topic) if count is None else count

    clusterSubscriberCount = cluster_subscriber_count

    @property
    def broker(self) -> Broker | None:
        """The external broker while servers run with one (a `verb.cluster.pubsub.RedisBroker`),
        else None: publishes stay in this process (the in-process broker, the Hub itself)."""
        return self._link.broker if self._link is not None else None

    def _new_broker(self) -> Broker | None:
        broker = self.config.broker
        if isinstance(broker, str):
            broker = broker_from_url(broker, required=self.config.broker_required)
        return broker if broker is not None and broker.external else None

    async def _attach_broker(self, hub) -> None:
        loop = asyncio.get_running_loop()
        link = self._link
        if link is None:
            broker = self._new_broker()
            if broker is None:
                return
            link = self._link = BrokerLink(broker, loop)
            try:
                await link.attach(hub)
            except BaseException:
                self._link = None
                raise
            return
        if link.loop is not loop:
            raise RuntimeError("with a broker, all the servers of an app run on one event loop")
        await link.attach(hub)

    async def _detach_broker(self, hub) -> None:
        link = self._link
        if link is not None and await link.detach(hub) and self._link is link:
            self._link = None

    def stats(self) -> dict:
        """What the servers of this process count, summed (the figures `app.metrics` serves):
        open connections and WebSockets, messages and bytes in/out, handshakes by status,
        closes by code and side, drops, rate-limit actions, publishes, the ping round trips,
        and the broker's figures under "broker" when there is one."""
        total = metrics.stats_of(server.hub for server in self._servers
                                 if server.hub is not None)
        if self._link is not None:
            total["broker"] = self._link.broker.stats()
        return total

    def metrics(self, path: str = "/metrics"):
        """Serve the metrics at `path` (GET), in Prometheus' text format: an ordinary route,
        so middleware (`app.use`) can guard it. With `listen(workers=N)`, any worker answers
        with every worker's series (label `worker`)."""
        if self._monitoring is not None:
            raise RuntimeError(f"app.metrics was already called (path {self._monitoring.path})")
        self._monitoring = Monitoring(self, path)
        self.router.add("GET", path, self._monitoring.handle)
        return self

    # -- lifecycle ------------------------------------------------------------------------------

    def on_start(self, fn):
        self._on_start.append(fn)
        return fn

    def on_stop(self, fn):
        self._on_stop.append(fn)
        return fn

    onStart = on_start
    onStop = on_stop

    async def start(self, port: int = 0, host: str = "127.0.0.1") -> Server:
        """Bind and serve in the background on the running loop; returns the server."""
        server = self._bind(port, host)
        await server._serve()
        return server

    def listen(self, port: int = 3000, host: str = "localhost", callback=None, *,
               workers: int | None = None):
        """Serve on `port` (Verb's `app.listen`).

        Inside a running event loop, binds at once, serves in the background and returns the
        `Server`. Otherwise runs an event loop (uvloop when installed) until SIGINT/SIGTERM.

        With `workers=N` (N > 1; Linux), forks N worker processes that share the port
        (SO_REUSEPORT), each with its own event loop; this process supervises them:
        restarts one that dies, and stops them all on SIGINT/SIGTERM (see `verb.cluster.workers`).
        Give them a broker (`broker="redis://..."`) so that a publish reaches the
        subscribers of every worker, not only those of the worker that made it.

        The VERB_PORT, VERB_HOST, VERB_WORKERS and VERB_BROKER environment variables, when
        set, override `port`, `host`, `workers` and the `broker` option (`verb run --port`,
        `--host`, `--workers`, `--broker` set them); VERB_METRICS (`--metrics PATH`) serves
        the metrics at that path unless `app.metrics` was called.
        """
        port = int(os.environ.get("VERB_PORT", port))
        host = os.environ.get("VERB_HOST", host)
        workers = _workers(os.environ.get("VERB_WORKERS", workers))
        if "VERB_BROKER" in os.environ:
            self.config = Options.from_kwargs(base=self.config,
                                              broker=os.environ["VERB_BROKER"] or None)
        if os.environ.get("VERB_METRICS") and self._monitoring is None:
            self.metrics(os.environ["VERB_METRICS"])
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            if workers > 1:
                raise RuntimeError(
                    "app.listen(..., workers=N) forks worker processes and must be called "
                    "outside a running event loop (a forked child cannot reuse the loop)")
            server = self._bind(port, host)
            server._task = loop.create_task(server._serve())
            if callback is not None:
                callback()
            return server
        App.listen_calls += 1
        if workers > 1:
            self._supervise(port, host, workers, callback)
            return None
        run(self._serve_forever(port, host, callback))
        return None

    def _supervise(self, port, host, count, callback):
        """Run `count` worker processes (verb.cluster.workers), each serving this app."""
        cluster_workers.check_supported()
        if self._new_broker() is None:
            log.warning("verb: %d workers without a broker: a publish reaches only the "
                        "subscribers of the worker that made it (pass --broker "
                        "redis://HOST:PORT/DB or broker=... to reach all)", count)

        def serve(worker_id, bound_port, started):
            self.worker_id = worker_id
            return self._serve_forever(bound_port, host, callback, reuse_port=True,
                                       started=started)

        cluster_workers.supervise(serve, port, host, count,
                          scheme="https" if self.protocol.tls else "http",
                          stop_timeout=self.config.stop_timeout)

    def run_in_thread(self, port: int = 0, host: str = "127.0.0.1", use_uvloop: bool = True):
        """Context manager: serve in a background thread; yields the running `Server`.

        `use_uvloop=False` runs plain asyncio (uvloop is used only where installed anyway).
        """
        return _ThreadedServer(self, port, host, use_uvloop)

    async def _serve_forever(self, port, host, callback, reuse_port=False, started=None):
        server = self._bind(port, host, reuse_port)
        await server._serve()
        if started is not None:
            started()
        if self.worker_id is None:
            print(f"verb: listening on {server.url}", flush=True)
        else:
            print(f"verb: worker {self.worker_id} (pid {os.getpid()}) listening on {server.url}",
                  flush=True)
        if callback is not None:
            callback()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await server.stop()

    def _bind(self, port, host, reuse_port=False) -> Server:
        sock = bound_socket(port, host, reuse_port)
        try:
            sock.listen(1024)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        server = Server(self, sock)
        self._servers.append(server)
        return server


def _workers(value) -> int:
    if value is None:
        return 1
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = 0
    if isinstance(value, bool) or count < 1 or (not isinstance(value, str) and count != value):
        raise ValueError(f"workers must be an int >= 1, got {value!r}")
    return count


class Server:
    """A running server: `.port`, `.url`, `.stop()`."""

    def __init__(self, app: App, sock: socket.socket):
        self.app = app
        self._sock = sock
        self.host, self.port = sock.getsockname()[:2]
        scheme = "https" if app.protocol.tls else "http"
        self.url = f"{scheme}://{self.host}:{self.port}"
        self.ws_url = f"{'wss' if app.protocol.tls else 'ws'}://{self.host}:{self.port}"
        self.hub = None
        self._server = None
        self._task = None
        self._stopping = None

    async def _serve(self):
        loop = asyncio.get_running_loop()
        app = self.app
        self.hub = Hub(loop, app.config, app._handlers, app.router, app)
        hub = self.hub
        try:
            await app._attach_broker(hub)
        except BaseException:
            self.hub = None
            self._sock.close()
            if self in app._servers:
                app._servers.remove(self)
            raise
        self._server = await loop.create_server(
            lambda: Connection(hub), sock=self._sock, ssl=app._ssl, backlog=1024)
        hub.start()
        if app._monitoring is not None:
            app._monitoring.server_started(self, loop)
        timers.start_pending(loop)
        for fn in app._on_start:
            await _maybe_await(fn, self)

    def stop(self):
        """Stop gracefully: stop accepting, close every WebSocket with 1001, wait for buffers
        to drain (at most `stop_timeout`), then drop what is left. Returns an awaitable; the
        stop proceeds even if it is not awaited."""
        return asyncio.ensure_future(self._stop_once())

    async def _stop_once(self):
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self):
        if self._task is not None:
            await self._task
        hub = self.hub
        if hub is None:
            self._sock.close()
            return
        loop = asyncio.get_running_loop()
        hub.stop_accepting()
        self._server.close()
        hub.close_all()
        deadline = loop.time() + self.app.config.stop_timeout
        while (hub.websockets or hub.pending_output()) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        hub.shutdown()
        if self.app._monitoring is not None:
            self.app._monitoring.server_stopped(self)
        await self.app._detach_broker(hub)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 1.0)
        if self in self.app._servers:
            self.app._servers.remove(self)
        for fn in self.app._on_stop:
            await _maybe_await(fn, self)

    def __repr__(self):
        return f"<verb.Server {self.url}>"


class _ThreadedServer:
    """A server on its own event loop in a daemon thread, for synchronous code and tests."""

    def __init__(self, app, port, host, use_uvloop):
        self.app, self.port, self.host = app, port, host
        self.use_uvloop = use_uvloop
        self.loop = None
        self.server = None
        self._thread = None

    def __enter__(self) -> Server:
        ready = threading.Event()
        failure = []

        def run():
            self.loop = new_loop() if self.use_uvloop else asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            try:
                self.server = self.loop.run_until_complete(self.app.start(self.port, self.host))
            except BaseException as exc:  # report bind errors to the caller's thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self.loop.run_forever()
            self.loop.close()

        self._thread = threading.Thread(target=run, name="verb-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self.server

    def __exit__(self, *exc):
        future = asyncio.run_coroutine_threadsafe(self.server._stop_once(), self.loop)
        future.result(timeout=self.app.config.stop_timeout + 5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        return False


async def _maybe_await(fn, *args):
    result = fn(*args) if _arity(fn) else fn()
    if inspect.isawaitable(result):
        await result


def _arity(fn):
    try:
        return len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return 1


def _ssl_context(tls) -> ssl.SSLContext:
    if isinstance(tls, ssl.SSLContext):
        return tls
    if not isinstance(tls, dict) or "cert" not in tls or "key" not in tls:
        raise ValueError('tls must be {"cert": ..., "key": ...} or an ssl.SSLContext')
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with contextlib.ExitStack() as stack:
        cert = _pem_path(tls["cert"], stack)
        key = _pem_path(tls["key"], stack)
        context.load_cert_chain(cert, key, password=tls.get("passphrase"))
    return context


def _pem_path(value, stack) -> str:
    """A file path for `value`: a path as is; PEM text (str or bytes) via a temporary file."""
    if isinstance(value, bytes):
        value = value.decode("ascii")
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if "-----BEGIN" in value:
        handle = stack.enter_context(tempfile.NamedTemporaryFile("w", suffix=".pem"))
        handle.write(value)
        handle.flush()
        return handle.name
    return value
