"""The Verb WebSocket guide's "Testing" section, in Python with pytest and verb.testing."""

import asyncio

from websockets.asyncio.client import connect as async_connect

from verb import ServerProtocol, create_server
from verb.testing import connect, serve


def echo_app():
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, message: ws.send(f"Echo: {message}"))
    return app


def test_websocket_echo():
    with serve(echo_app()) as server, connect(server) as ws:
        ws.send("test")
        assert ws.recv(timeout=5) == "Echo: test"


def test_websocket_echo_listen_and_stop(monkeypatch):
    # The guide's variant: listen inside a running loop, then `await server.stop()`.
    monkeypatch.delenv("VERB_PORT", raising=False)  # listen() would take them over its
    monkeypatch.delenv("VERB_HOST", raising=False)  # arguments

    async def main():
        server = echo_app().listen(0)  # a free port on localhost; serves in the background
        try:
            async with async_connect(server.ws_url, proxy=None, open_timeout=5) as ws:
                await ws.send("test")
                assert await asyncio.wait_for(ws.recv(), 5) == "Echo: test"
        finally:
            await asyncio.wait_for(server.stop(), 15)

    asyncio.run(main())
