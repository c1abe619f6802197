"""A FastAPI chat: GET / is the page, /ws/chat the WebSocket every page joins; each message
goes to every page as "name: text" (tests/asgi/test_asgi_browser.py opens it in Chromium)."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse

app = FastAPI()
members: set = set()

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>FastAPI chat on verb</title></head>
<body>
<p id="status">connecting…</p>
<input id="name" placeholder="name"> <input id="text" placeholder="message">
<button id="send">send</button>
<ul id="messages"></ul>
<script>
const ws = new WebSocket(`ws://${location.host}/ws/chat`);
const status = document.getElementById("status");
ws.onopen = () => { status.textContent = "connected"; };
ws.onclose = (event) => { status.textContent = "closed " + event.code; };
ws.onmessage = (event) => {
  const data = JSON.parse(event.data);
  if (data.online !== undefined) { status.textContent = data.online + " online"; return; }
  const item = document.createElement("li");
  item.textContent = data.name + ": " + data.text;
  document.getElementById("messages").appendChild(item);
};
document.getElementById("send").onclick = () => {
  ws.send(JSON.stringify({name: document.getElementById("name").value,
                          text: document.getElementById("text").value}));
  document.getElementById("text").value = "";
};
</script>
</body></html>
"""


@app.get("/")
async def page():
    return HTMLResponse(PAGE)


async def broadcast(data):
    for member in list(members):
        try:
            await member.send_json(data)
        except (WebSocketDisconnect, RuntimeError, OSError):
            members.discard(member)


@app.websocket("/ws/chat")
async def chat(ws: WebSocket):
    await ws.accept()
    members.add(ws)
    await broadcast({"online": len(members)})
    try:
        while True:
            data = await ws.receive_json()
            await broadcast({"name": str(data.get("name"))[:40], "text": str(data.get("text"))})
    except WebSocketDisconnect:
        members.discard(ws)
        await broadcast({"online": len(members)})
