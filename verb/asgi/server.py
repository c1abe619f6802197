"""verb's ASGI server: `verb asgi MODULE:APP`, `verb.asgi.run(app, ...)`.

The app runs on verb's connection layer (`verb.asgi._asgi`): one `Hub` per server, compiled
frames and write batching, HTTP/1.1 through httptools. Flags keep uvicorn's names and defaults
where uvicorn has them (`Config`); verb's own options (compression mode, backpressure limit,
connection and rate limits, origins) have their own.

What the process does, in order: load the app, run the lifespan startup (exit status 3 when it
fails), listen, serve until SIGINT or SIGTERM, then stop accepting, close every WebSocket with
1012 (service restart), wait for open requests at most `timeout_graceful_shutdown`, run the
lifespan shutdown, and re-raise the signal (as uvicorn does).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import socket
import ssl as ssl_module
import sys
from dataclasses import dataclass, field, fields
from typing import Any

from verb.asgi._asgi import AsgiConfig, AsgiConnectionBase, on_close, on_drain, on_message, on_open
from verb.server._server import Hub
from verb.server.options import Handlers, Options
from verb.server.serving import bound_socket, new_loop

log = logging.getLogger("verb.asgi")

EXIT_STARTUP_FAILED = 3  # uvicorn's status when the lifespan startup fails


class AsgiConnection(AsgiConnectionBase, asyncio.BufferedProtocol):
    """AsgiConnectionBase seen by the event loop as a BufferedProtocol (its read path)."""

    __slots__ = ()


class LifespanFailed(RuntimeError):
    """The app's lifespan startup (or, with lifespan="on", its support for it) failed."""


@dataclass
class Config:
    """The server's settings. Names and defaults are uvicorn's where uvicorn has them."""

    app: Any
    host: str = "127.0.0.1"
    port: int = 8000
    uds: str | None = None
    fd: int | None = None
    workers: int | None = None
    loop: str = "auto"                        # auto | uvloop | asyncio
    ws_max_size: int = 16 * 1024 * 1024
    ws_max_queue: int = 32
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float | None = 20.0
    ws_per_message_deflate: bool = True
    lifespan: str = "auto"                    # auto | on | off
    root_path: str = ""
    proxy_headers: bool = True
    forwarded_allow_ips: str | None = None
    limit_concurrency: int | None = None
    backlog: int = 2048
    timeout_keep_alive: float = 5.0
    timeout_graceful_shutdown: float | None = None
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None
    log_level: str | None = None
    access_log: bool = True
    factory: bool = False
    app_dir: str | None = "."
    server_header: bool = True
    # verb's own
    ws_compression: str = "shared"            # permessage-deflate mode: shared | dedicated
    compression_threshold: int | None = None  # smallest message compressed (None: verb's default)
    backpressure_limit: int = 16 * 1024 * 1024
    max_connections: int | None = None
    max_body: int = 16 * 1024 * 1024
    origins: tuple[str, ...] | None = None
    rate_limit: dict | None = None
    max_connections_per_ip: int | None = None
    handshake_rate: dict | None = None
    metrics: str | None = None                # serve Prometheus metrics at this path
    state: dict = field(default_factory=dict)

    def options(self) -> Options:
        """The connection layer's options for these settings."""
        interval = self.ws_ping_interval or 0.0
        timeout = self.ws_ping_timeout or 0.0
        return Options(
            max_payload_length=self.ws_max_size,
            # Ping after `interval` quiet seconds; close if nothing comes `timeout` later.
            idle_timeout=interval + timeout if interval > 0 else 0,
            send_pings=interval > 0,
            compression=self.ws_compression if self.ws_per_message_deflate else None,
            **({} if self.compression_threshold is None
               else {"compression_threshold": self.compression_threshold}),
            backpressure_limit=self.backpressure_limit,
            max_connections=self.max_connections if self.max_connections is not None
            else self.limit_concurrency,
            rate_limit=self.rate_limit,
            max_connections_per_ip=self.max_connections_per_ip,
            handshake_rate=self.handshake_rate,
            origins=self.origins,
            handshake_timeout=self.timeout_keep_alive,
            max_body=self.max_body,
            stop_timeout=self.timeout_graceful_shutdown
            if self.timeout_graceful_shutdown is not None else 10.0,
        )


def load_app(target: str, factory: bool = False, app_dir: str | None = ".") -> Any:
    """The ASGI app named by "module:attribute" (attribute may be dotted), called first when
    `factory`. Raises ValueError naming what could not be found."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f'the app must be given as "module:attribute", got {target!r}')
    if app_dir is not None:
        sys.path.insert(0, os.path.abspath(app_dir))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name.split(".")[0] and exc.name != module_name:
            raise
        raise ValueError(f"could not import module {module_name!r}") from None
    app = module
    for part in attribute.split("."):
        try:
            app = getattr(app, part)
        except AttributeError:
            raise ValueError(f"attribute {attribute!r} not found in module {module_name!r}") \
                from None
    if factory:
        app = app()
    if not callable(app):
        raise ValueError(f"{target} is not callable: {app!r}")
    return app


def proxy_headers_app(app, trusted: str | None):
    """The app behind X-Forwarded-For / X-Forwarded-Proto, trusted from `trusted` client
    addresses (comma-separated, "*" for any; default 127.0.0.1), as uvicorn's middleware."""
    hosts = {h.strip() for h in (trusted or os.environ.get("FORWARDED_ALLOW_IPS")
                                 or "127.0.0.1").split(",") if h.strip()}
    anyone = "*" in hosts

    async def proxied(scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            if anyone or (client and client[0] in hosts):
                headers = dict(scope["headers"])
                proto = headers.get(b"x-forwarded-proto")
                if proto is not None:
                    proto = proto.decode("latin-1").strip().lower()
                    if scope["type"] == "websocket":
                        proto = {"http": "ws", "https": "wss"}.get(proto, proto)
                    scope["scheme"] = proto
                forwarded = headers.get(b"x-forwarded-for")
                if forwarded is not None:
                    host = forwarded.decode("latin-1").split(",")[-1].strip()
                    if host:
                        scope["client"] = (host, 0)
        return await app(scope, receive, send)

    return proxied


class Lifespan:
    """The lifespan scope: startup before listening, shutdown after the last connection."""

    def __init__(self, app, mode: str, state: dict):
        self.app, self.mode, self.state = app, mode, state
        self.events: asyncio.Queue = asyncio.Queue()
        self.replies: asyncio.Queue = asyncio.Queue()
        self.task = None
        self.unsupported = False

    async def _receive(self):
        return await self.events.get()

    async def _send(self, message):
        await self.replies.put(message)

    async def _main(self):
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"},
                 "state": self.state}
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:  # noqa: BLE001 - reported as a failed or unsupported lifespan
            await self.replies.put({"type": "lifespan.error", "error": exc})
        else:
            await self.replies.put({"type": "lifespan.returned"})

    async def startup(self) -> None:
        if self.mode == "off":
            return
        self.task = asyncio.ensure_future(self._main())
        await self.events.put({"type": "lifespan.startup"})
        reply = await self.replies.get()
        kind = reply["type"]
        if kind == "lifespan.startup.complete":
            log.info("Application startup complete.")
            return
        if kind == "lifespan.startup.failed":
            raise LifespanFailed(reply.get("message") or "lifespan startup failed")
        # The app raised or returned at once: it does not speak lifespan.
        self.unsupported = True
        if self.mode == "on":
            error = reply.get("error")
            raise LifespanFailed(f"the app does not support the lifespan protocol: {error!r}")
        log.info("ASGI 'lifespan' protocol appears unsupported.")

    async def shutdown(self) -> None:
        if self.task is None or self.unsupported:
            return
        await self.events.put({"type": "lifespan.shutdown"})
        reply = await self.replies.get()
        if reply["type"] == "lifespan.shutdown.failed":
            log.error("Application shutdown failed: %s", reply.get("message", ""))
        elif reply["type"] == "lifespan.error":
            log.error("Exception in lifespan shutdown", exc_info=reply["error"])
        else:
            log.info("Application shutdown complete.")


class Server:
    """One listening ASGI server on the running loop."""

    def __init__(self, config: Config, app):
        self.config = config
        self.app = app
        self.hub = None
        self.server = None
        self.lifespan = None
        self.sock = None
        self.lag = None

    @staticmethod
    def _handlers() -> Handlers:
        """The hub's handlers: each WebSocket's events into its ASGI session."""
        return Handlers(open=on_open, message=on_message, close=on_close, drain=on_drain)

    def _listening_socket(self, reuse_port: bool = False) -> socket.socket:
        config = self.config
        if config.fd is not None:
            sock = socket.socket(fileno=config.fd)
        elif config.uds is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(config.uds)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(config.uds)
        else:
            sock = bound_socket(config.port, config.host, reuse_port)
        sock.listen(config.backlog)
        sock.setblocking(False)
        return sock

    def _ssl(self):
        if not self.config.ssl_certfile:
            return None
        context = ssl_module.SSLContext(ssl_module.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.config.ssl_certfile, self.config.ssl_keyfile)
        return context

    async def start(self, sock: socket.socket | None = None) -> None:
        """Run the lifespan startup, then listen (on `sock` if given)."""
        config = self.config
        loop = asyncio.get_running_loop()
        self.lifespan = Lifespan(self.app, config.lifespan, config.state)
        await self.lifespan.startup()
        options = config.options()
        self.hub = hub = Hub(loop, options, self._handlers(), None)
        hub.settle_before_failing = True  # the app answers a loop iteration after a message
        shared = AsgiConfig(self.app, config.root_path, config.state, config.server_header,
                            config.access_log, config.ws_max_queue, config.metrics,
                            self._metrics(loop) if config.metrics else None)
        self.sock = sock if sock is not None else self._listening_socket()
        self.server = await loop.create_server(lambda: AsgiConnection(hub, shared),
                                               sock=self.sock, ssl=self._ssl(),
                                               backlog=config.backlog)
        hub.start()

    def _metrics(self, loop):
        """The exposition of this server's figures (the hub's counters, the loop's lag)."""
        from verb.server import metrics
        self.lag = metrics.LoopLagProbe(loop)
        self.lag.start()

        def entries():
            stats = self.hub.stats() if self.hub is not None else {}
            metrics.merge_stats(stats, {"loop_lag": self.lag.histogram})
            return [({}, stats)]

        registry = metrics.new_registry(entries, workers=False)
        return lambda: metrics.expose(registry)

    @property
    def address(self):
        return self.sock.getsockname() if self.sock is not None else None

    async def stop(self) -> None:
        """Stop accepting, close WebSockets with 1012, let requests finish (at most the
        graceful timeout), then drop what is left and run the lifespan shutdown."""
        hub = self.hub
        if hub is not None:
            loop = asyncio.get_running_loop()
            hub.stop_accepting()
            self.server.close()
            hub.close_all(1012, "server shutting down")
            deadline = loop.time() + hub.options.stop_timeout
            while (hub.websockets or hub.pending_output() or _busy(hub)) and \
                    loop.time() < deadline:
                await asyncio.sleep(0.01)
            hub.shutdown()
            if self.lag is not None:
                self.lag.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1.0)
            self.hub = None
        if self.lifespan is not None:
            await self.lifespan.shutdown()
            self.lifespan = None


def _busy(hub) -> bool:
    """Requests still being answered (idle keep-alive connections were closed by close_all,
    and a connection closes after its response once the hub stops accepting)."""
    return any(conn.transport is not None for conn in hub.connections)


def _wrap(config: Config):
    app = config.app
    if isinstance(app, str):
        app = load_app(app, config.factory, config.app_dir)
    elif config.factory:
        app = app()
    if config.proxy_headers:
        app = proxy_headers_app(app, config.forwarded_allow_ips)
    return app


async def serve(config: Config, sock: socket.socket | None = None, started=None) -> int | None:
    """Serve until SIGINT/SIGTERM; returns the signal number that stopped it."""
    server = Server(config, _wrap(config))
    loop = asyncio.get_running_loop()
    try:
        await server.start(sock)
    except LifespanFailed as exc:
        log.error("%s", exc)
        await server.stop()
        raise
    if started is not None:
        started()
    host, port = (server.address[:2] if isinstance(server.address, tuple)
                  else (server.address, None))
    scheme = "https" if config.ssl_certfile else "http"
    where = f"unix socket {host}" if port is None else f"{scheme}://{host}:{port}"
    print(f"verb asgi: listening on {where} (pid {os.getpid()})", flush=True)
    stopped = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda s=sig: stopped.done() or stopped.set_result(s))
    try:
        received = await stopped
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await server.stop()
    return received


def _new_loop(kind: str):
    if kind == "asyncio":
        return asyncio.new_event_loop()
    if kind == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    return new_loop()


def run(app, **kwargs) -> None:
    """Serve the ASGI `app` (an object or "module:attribute") with `Config(**kwargs)` until
    SIGINT/SIGTERM; then re-raise that signal, as uvicorn does. Exits with status 3 when the
    lifespan startup fails."""
    config = Config(app=app, **kwargs)
    if config.workers and config.workers > 1:
        _run_workers(config)
        return
    loop = _new_loop(config.loop)
    asyncio.set_event_loop(loop)
    try:
        received = loop.run_until_complete(serve(config))
    except LifespanFailed:
        sys.exit(EXIT_STARTUP_FAILED)
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    if received is not None:
        signal.signal(received, signal.SIG_DFL)
        os.kill(os.getpid(), received)


def _run_workers(config: Config) -> None:
    from verb.cluster import workers

    async def serve_worker(worker_id, port, started):
        config.port = port
        sock = Server(config, None)._listening_socket(reuse_port=True)
        try:
            await serve(config, sock, started)
        except LifespanFailed:
            sys.exit(EXIT_STARTUP_FAILED)

    workers.supervise(serve_worker, config.port, config.host, config.workers,
                      scheme="https" if config.ssl_certfile else "http",
                      stop_timeout=config.options().stop_timeout)


def config_fields() -> list[str]:
    return [f.name for f in fields(Config)]


def json_option(text: str | None):
    return None if text is None else json.loads(text)
