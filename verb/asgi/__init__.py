"""The ASGI front-end: FastAPI, Starlette, Django Channels and other ASGI apps on verb's engine.

`verb asgi MODULE:APP` (or `verb.asgi.run(app, ...)`) serves an ASGI app;
`uvicorn MODULE:APP --ws verb.asgi:WebSocketProtocol` puts verb's WebSockets under uvicorn. Layer: above
`verb.server` (it drives the shared connection layer and its hub) and `verb.core`; beside
`verb.app`, which it does not import.
"""

from verb.asgi._asgi import ClientDisconnected
from verb.asgi.plugin import WebSocketProtocol
from verb.asgi.server import Config, load_app, run, serve

__all__ = ["ClientDisconnected", "Config", "WebSocketProtocol", "load_app", "run", "serve"]
