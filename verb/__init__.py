"""verb: a Cython-accelerated WebSocket engine with the Verb framework's server API.

    from verb import create_server, ServerProtocol
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, message: ws.send(f"Echo: {message}"))
    app.listen(3000)
"""

__version__ = "0.1.0"

from verb.app.app import App, Server, ServerProtocol, create_server, createServer  # noqa: E402
from verb.app.timers import (  # noqa: E402
    clear_interval,
    clear_timeout,
    set_interval,
    set_timeout,
)
from verb.client.client import (  # noqa: E402
    ClientWebSocket,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    connect,
    reconnecting,
)
from verb.core._frame import CLOSED, CLOSING, CONNECTING, OPEN  # noqa: E402
from verb.core.errors import HandshakeError, HTTPError  # noqa: E402
from verb.server._server import ServerWebSocket  # noqa: E402
from verb.server.http import Request, Response  # noqa: E402
from verb.server.options import Options  # noqa: E402

setInterval = set_interval
setTimeout = set_timeout
clearInterval = clear_interval
clearTimeout = clear_timeout


class WebSocket:
    """ready_state constants, as `WebSocket.OPEN` in the browser API and the Verb guide."""

    CONNECTING = CONNECTING
    OPEN = OPEN
    CLOSING = CLOSING
    CLOSED = CLOSED


__all__ = [
    "App", "ClientWebSocket", "ConnectionClosed", "ConnectionClosedError", "ConnectionClosedOK",
    "HTTPError", "HandshakeError", "Options", "Request", "Response", "Server", "ServerProtocol",
    "ServerWebSocket", "WebSocket", "connect", "reconnecting",
    "clearInterval", "clearTimeout", "clear_interval", "clear_timeout", "createServer",
    "create_server", "setInterval", "setTimeout", "set_interval", "set_timeout",
]
