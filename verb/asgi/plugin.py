"""verb's WebSocket engine inside uvicorn: `uvicorn main:app --ws verb.asgi:WebSocketProtocol`.

uvicorn's HTTP protocol hands an upgrade over by creating `ws_protocol_class(config=,
server_state=, app_state=)`, calling its `connection_made(transport)`, switching the transport
to it and feeding it the request again (`data_received`). `WebSocketProtocol` answers with a
verb ASGI connection on the hub of the running loop (one per loop and uvicorn config, made on
first use with uvicorn's WebSocket settings), so from the upgrade on the connection is verb's:
compiled frames, write batching, the same `websocket` scope as `verb asgi`.

For uvicorn's graceful shutdown, one tracker per hub sits in `server_state.connections`: its
`shutdown()` closes the hub's WebSockets with 1012, and it leaves the set once they are gone.
"""

from __future__ import annotations

import asyncio
import weakref

from verb.asgi._asgi import AsgiConfig
from verb.asgi.server import AsgiConnection, Config, Server
from verb.server._server import Hub

# loop -> {id(uvicorn config): (hub, shared config)}
_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _Tracker:
    """The hub's WebSockets as one connection in uvicorn's server_state.connections."""

    def __init__(self, hub, connections: set):
        self.hub = hub
        self.connections = connections

    def shutdown(self) -> None:
        self.hub.stop_accepting()
        self.hub.close_all(1012, "server shutting down")
        asyncio.ensure_future(self._leave_when_closed())

    async def _leave_when_closed(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.hub.options.close_timeout
        while self.hub.websockets and loop.time() < deadline:
            await asyncio.sleep(0.02)
        self.hub.shutdown()
        self.connections.discard(self)


def _hub_for(config, server_state, app_state):
    loop = asyncio.get_running_loop()
    per_loop = _hubs.setdefault(loop, {})
    entry = per_loop.get(id(config))
    if entry is None:
        if not config.loaded:
            config.load()
        ours = Config(app=config.loaded_app, ws_max_size=config.ws_max_size,
                      ws_max_queue=config.ws_max_queue,
                      ws_ping_interval=config.ws_ping_interval,
                      ws_ping_timeout=config.ws_ping_timeout,
                      ws_per_message_deflate=config.ws_per_message_deflate,
                      root_path=config.root_path, access_log=config.access_log,
                      server_header=False)  # uvicorn's own default headers are not added here
        hub = Hub(loop, ours.options(), Server._handlers(), None)
        hub.settle_before_failing = True  # the app answers a loop iteration after a message
        hub.start()
        shared = AsgiConfig(config.loaded_app, config.root_path, app_state, False,
                            config.access_log, config.ws_max_queue)
        entry = per_loop[id(config)] = (hub, shared)
        server_state.connections.add(_Tracker(hub, server_state.connections))
    return entry


def WebSocketProtocol(config, server_state, app_state, _loop=None):  # noqa: N802 - a class to uvicorn
    """The protocol uvicorn switches an upgrading connection to (see the module docstring)."""
    hub, shared = _hub_for(config, server_state, app_state)
    return AsgiConnection(hub, shared)
