"""An echo server for the robustness tests that measure a server's memory from outside.

Usage: python serve.py '{"max_payload_length": 1048576, ...}'  (options as JSON; with
"async_handler": true the echo handler is async)
Prints "verb: listening on http://127.0.0.1:PORT", serves until SIGTERM (graceful stop).
GET /stats answers app.stats() as JSON.
"""

import asyncio
import json
import resource
import sys

from verb import ServerProtocol, create_server


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    options = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    app = create_server(ServerProtocol.WEBSOCKET)
    if options.pop("async_handler", False):  # an async echo that yields to the loop once
        async def message(ws, data):
            await asyncio.sleep(0)
            ws.send(data)
    else:
        def message(ws, data):
            ws.send(data)
    app.websocket(message=message, **options)
    app.get("/stats", lambda req, res: res.json(app.stats()))
    app.listen(0, "127.0.0.1")


if __name__ == "__main__":
    main()
