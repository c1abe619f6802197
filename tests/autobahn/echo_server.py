"""Echo server for the Autobahn fuzzing client (tests/autobahn/run.py starts it).

Usage: python echo_server.py [shared|dedicated|off] [verb|asgi]

The second argument picks the front-end: verb's own API (default), or `asgi`: a Starlette echo
endpoint served by `verb asgi` (verb.asgi.run), the same engine under an ASGI app.

Listens on a free port on 127.0.0.1 (the port is printed as "verb: listening on ...") and echoes
every message back. Limits are raised so that the 9.x (large message) cases fit, and compression
applies to every message (threshold 0) so that the 12.x/13.x cases exercise permessage-deflate.
"""

import sys

from verb import ServerProtocol, create_server

MiB = 1024 * 1024


def serve_asgi(mode):
    import verb.asgi
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    async def echo(ws):
        await ws.accept()
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await ws.send_bytes(message["bytes"])
            else:
                await ws.send_text(message["text"])

    app = Starlette(routes=[WebSocketRoute("/{path:path}", echo), WebSocketRoute("/", echo)])
    verb.asgi.run(app, host="127.0.0.1", port=0, ws_max_size=64 * MiB,
                  ws_per_message_deflate=mode != "off",
                  ws_compression=mode if mode != "off" else "shared", compression_threshold=0,
                  ws_ping_interval=None, backpressure_limit=256 * MiB, lifespan="off",
                  access_log=False)


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "off"
    if mode not in ("shared", "dedicated", "off"):
        sys.exit(f"echo_server: unknown compression mode {mode!r}")
    front = sys.argv[2] if len(sys.argv) > 2 else "verb"
    if front == "asgi":
        serve_asgi(mode)
        return
    if front != "verb":
        sys.exit(f"echo_server: unknown front-end {front!r}")
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(
        message=lambda ws, message: ws.send(message),
        max_payload_length=64 * MiB,
        compression=None if mode == "off" else mode,
        compression_threshold=0,
        idle_timeout=0,
        backpressure_limit=256 * MiB,
    )
    app.listen(0, host="127.0.0.1")


if __name__ == "__main__":
    main()
