"""verb: a Cython-accelerated WebSocket engine with the Verb framework's server API.

    from verb import create_server, ServerProtocol
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, message: ws.send(f"Echo: {message}"))
    app.listen(3000)
"""

__version__ = "0.1.0"

from verb.app import App, Server, ServerProtocol, create_server, createServer  # noqa: E402
from verb.client import (  # noqa: E402
    ClientWebSocket,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeError,
    connect,
    reconnecting,
)
from verb.http import HTTPError, Request, Response  # noqa: E402
from verb.timers import (  # noqa: E402
    clear_interval,
    clear_timeout,
    set_interval,
    set_timeout,
)

setInterval = set_interval
setTimeout = set_timeout
clearInterval = clear_interval
clearTimeout = clear_timeout


class WebSocket:
    """ready_state constants, as `WebSocket.OPEN` in the browser API and the Verb guide."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


__all__ = [
    "App", "ClientWebSocket", "ConnectionClosed", "ConnectionClosedError", "ConnectionClosedOK",
    "HandshakeError", "connect", "reconnecting", "HTTPError", "Request", "Response", "Server", "ServerProtocol", "WebSocket",
    "clearInterval", "clearTimeout", "clear_interval", "clear_timeout", "createServer",
    "create_server", "setInterval", "setTimeout", "set_interval", "set_timeout",
]
