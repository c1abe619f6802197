"""Apps that misbehave, for tests/asgi/test_asgi_hostile.py: one that never reads, one that
never accepts, one that raises at once; `echo` beside them shows the others still served."""

import asyncio

from apps.raw_app import app as echo  # noqa: F401 - served at /echo by `app`

accepted_but_deaf = 0


async def app(scope, receive, send):
    global accepted_but_deaf
    if scope["type"] != "websocket":
        return await echo(scope, receive, send)
    path = scope["path"]
    if path == "/deaf":          # accepts, then never receives again
        await receive()
        await send({"type": "websocket.accept"})
        accepted_but_deaf += 1
        await asyncio.sleep(3600)
    elif path == "/never-accepts":
        await receive()
        await asyncio.sleep(3600)
    elif path == "/raises":
        raise RuntimeError("this app raises at once")
    else:
        await echo(scope, receive, send)
