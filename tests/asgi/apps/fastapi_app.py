"""A FastAPI app using every WebSocket feature ASGI has, plus JSON, streaming and form-upload
HTTP routes (tests/asgi/test_differential.py runs it under uvicorn and under verb)."""

import asyncio
import contextlib

from fastapi import FastAPI, File, Form, Request, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from starlette.responses import Response

disconnects = []  # (code, reason) the app saw, for /last-disconnect


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"started": "yes"}


app = FastAPI(lifespan=lifespan)


@app.get("/json")
async def json_route(q: str = ""):
    return {"hello": "world", "items": [1, 2, 3], "q": q}


@app.get("/stream")
async def stream():
    async def chunks():
        for i in range(5):
            yield f"chunk {i}\n".encode()
            await asyncio.sleep(0)
    return StreamingResponse(chunks(), media_type="text/plain")


@app.post("/form")
async def form(name: str = Form(...), upload: UploadFile = File(...)):
    data = await upload.read()
    return {"name": name, "filename": upload.filename, "size": len(data), "head": data[:8].hex()}


@app.get("/state")
async def state(request: Request):
    return {"started": request.state.started}


@app.get("/scope")
async def http_scope(request: Request):
    scope = request.scope
    return {"path": scope["path"], "root_path": scope["root_path"],
            "raw_path": scope["raw_path"].decode(), "query_string": scope["query_string"].decode(),
            "scheme": scope["scheme"], "http_version": scope["http_version"],
            "method": scope["method"], "client_host": scope["client"][0],
            "server_host": scope["server"][0],
            "headers": [[n.decode(), v.decode()] for n, v in scope["headers"]]}


@app.get("/last-disconnect")
async def last_disconnect():
    return {"disconnects": disconnects[-1:]}


@app.get("/boom")
async def boom():
    raise RuntimeError("boom")


@app.websocket("/ws/echo")
async def echo(ws: WebSocket):
    await ws.accept()
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                disconnects.append((message.get("code"), message.get("reason", "")))
                return
            if message.get("text") is not None:
                await ws.send_text(message["text"])
            else:
                await ws.send_bytes(message["bytes"])
    except WebSocketDisconnect as exc:
        disconnects.append((exc.code, exc.reason))


@app.websocket("/ws/sub")
async def sub(ws: WebSocket):
    offered = ws.scope["subprotocols"]
    await ws.accept(subprotocol=offered[-1] if offered else None,
                    headers=[(b"x-custom", b"custom value")])
    await ws.send_json({"offered": offered})
    await ws.close()


@app.websocket("/ws/json")
async def json_ws(ws: WebSocket):
    await ws.accept()
    data = await ws.receive_json()
    await ws.send_json({"got": data})
    await ws.close(code=1000)


@app.websocket("/ws/close")
async def close_ws(ws: WebSocket):
    await ws.accept()
    await ws.close(code=4001, reason="bye now")


@app.websocket("/ws/deny")
async def deny(ws: WebSocket):
    await ws.close()


@app.websocket("/ws/denial")
async def denial(ws: WebSocket):
    await ws.send_denial_response(Response("no token", status_code=401,
                                           headers={"x-why": "token"}))


@app.websocket("/ws/raise-before")
async def raise_before(ws: WebSocket):
    raise RuntimeError("before accept")


@app.websocket("/ws/raise-after")
async def raise_after(ws: WebSocket):
    await ws.accept()
    await ws.send_text("accepted")
    raise RuntimeError("after accept")


@app.websocket("/ws/scope")
async def ws_scope(ws: WebSocket):
    await ws.accept()
    scope = ws.scope
    await ws.send_json({"path": scope["path"], "root_path": scope["root_path"],
                        "raw_path": scope["raw_path"].decode(),
                        "query_string": scope["query_string"].decode(),
                        "scheme": scope["scheme"], "http_version": scope["http_version"],
                        "subprotocols": scope["subprotocols"],
                        "client_host": scope["client"][0], "server_host": scope["server"][0],
                        "state": scope.get("state", {}).get("started"),
                        "spec_version": scope["asgi"].get("spec_version"),
                        "headers": [[n.decode(), v.decode()] for n, v in scope["headers"]
                                    if n not in (b"sec-websocket-key", b"host")]})
    await ws.close()


@app.websocket("/ws/after-close")
async def after_close(ws: WebSocket):
    await ws.accept()
    await ws.close()
    try:
        await ws.send({"type": "websocket.send", "text": "late"})
    except OSError as exc:
        disconnects.append(("send after close", type(exc).__mro__[1].__name__))
    except RuntimeError as exc:
        disconnects.append(("send after close", "RuntimeError"))
