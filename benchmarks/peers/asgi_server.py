"""ASGI peer: one Starlette app (a WebSocket echo endpoint at any path, GET /json) under the
ASGI server named by --server, so that every row runs the same app code.

    python benchmarks/peers/asgi_server.py --port 9001 --server verb|uvicorn|uvicorn-verb|
        uvicorn-wsproto|granian|hypercorn|daphne [--mode echo]

verb:            `verb asgi` (verb.asgi.run)
uvicorn:         uvicorn with httptools and websockets-sansio (its default WebSocket stack)
uvicorn-verb:    uvicorn with `--ws verb.asgi:WebSocketProtocol` (verb's engine for WebSockets)
uvicorn-wsproto: uvicorn with wsproto
granian, hypercorn, daphne: their ASGI servers, one worker/process, default settings
Compression off, access logs off, frames up to 64 MiB, as the other peers.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import MAX_SIZE, raise_nofile  # noqa: E402

from starlette.applications import Starlette  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route, WebSocketRoute  # noqa: E402


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


async def hello(request):
    return JSONResponse({"message": "hello", "items": [1, 2, 3]})


app = Starlette(routes=[Route("/json", hello), WebSocketRoute("/", echo),
                        WebSocketRoute("/{path:path}", echo)])


async def raw_app(scope, receive, send):
    """The same echo as a raw ASGI app (--app raw): what the server itself costs per
    connection, without a framework's objects."""
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"message":"hello"}'})
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "bytes": message.get("bytes"),
                    "text": message.get("text")})


def main():
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--mode", choices=("echo",), default="echo")
    parser.add_argument("--server", required=True)
    parser.add_argument("--app", choices=("starlette", "raw"),
                        default=os.environ.get("VERB_BENCH_ASGI_APP", "starlette"))
    args = parser.parse_args()
    global app
    if args.app == "raw":
        app = raw_app
    raise_nofile()
    os.chdir(os.path.dirname(os.path.abspath(__file__)))  # where "asgi_server:app" imports from
    server = args.server
    if server == "verb":
        import verb.asgi
        verb.asgi.run(app, host=args.host, port=args.port, ws_max_size=MAX_SIZE,
                      ws_per_message_deflate=False, ws_ping_interval=None, access_log=False,
                      lifespan="off")
    elif server.startswith("uvicorn"):
        import uvicorn
        ws = {"uvicorn": "websockets-sansio", "uvicorn-verb": "verb.asgi:WebSocketProtocol",
              "uvicorn-wsproto": "wsproto"}[server]
        uvicorn.run(app, host=args.host, port=args.port, ws=ws, http="httptools", loop="uvloop",
                    ws_max_size=MAX_SIZE, ws_per_message_deflate=False, ws_ping_interval=None,
                    access_log=False, log_level="warning", lifespan="off")
    elif server == "granian":
        os.execvp(sys.executable, [sys.executable, "-m", "granian", "--interface", "asgi",
                                   "--host", args.host, "--port", str(args.port), "--workers",
                                   "1", "--log-level",
                                   "warning",
                                   "asgi_server:raw_app" if args.app == "raw" else "asgi_server:app"])
    elif server == "hypercorn":
        os.execvp(sys.executable, [sys.executable, "-m", "hypercorn", "--bind",
                                   f"{args.host}:{args.port}", "--workers", "1",
                                   "--worker-class", "uvloop", "--log-level", "warning",
                                   "asgi_server:raw_app" if args.app == "raw" else "asgi_server:app"])
    elif server == "daphne":
        os.execvp(sys.executable, [sys.executable, "-m", "daphne", "-b", args.host, "-p",
                                   str(args.port), "--websocket_timeout", "-1",
                                   "asgi_server:raw_app" if args.app == "raw" else "asgi_server:app"])
    else:
        parser.error(f"unknown server {server!r}")


if __name__ == "__main__":
    main()
