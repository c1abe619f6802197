"""`verb demo`: a chat server with rooms, its page served on the same port.

Open http://localhost:3000 in two browser tabs: each joins a room and sees the other's messages,
the room's user count and joins/leaves. Messages are JSON: {"type": "join"|"message", ...}.
"""

import orjson

from verb import ServerProtocol, create_server

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>verb chat</title>
<style>
  body { font: 15px system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; }
  #log { border: 1px solid #ccc; height: 20rem; overflow-y: auto; padding: .5rem; }
  #log p { margin: .2rem 0; }
  .sys { color: #777; font-style: italic; }
  form { display: flex; gap: .5rem; margin-top: .5rem; }
  #text { flex: 1; }
</style>
</head>
<body>
<h1>verb chat</h1>
<p>Room <input id="room" value="lobby" size="10"> as <input id="name" size="10">
<button id="join">Join</button> <span id="count"></span></p>
<div id="log"></div>
<form id="send"><input id="text" autocomplete="off" placeholder="Say something">
<button>Send</button></form>
<script>
const log = document.getElementById("log");
const show = (text, cls) => {
  const p = document.createElement("p");
  p.textContent = text;
  if (cls) p.className = cls;
  log.appendChild(p);
  log.scrollTop = log.scrollHeight;
};
document.getElementById("name").value = "guest" + Math.floor(Math.random() * 1000);
const scheme = location.protocol === "https:" ? "wss://" : "ws://";
const ws = new WebSocket(scheme + location.host + "/chat");
ws.onopen = () => { show("connected", "sys"); join(); };
ws.onclose = () => show("disconnected", "sys");
ws.onmessage = (event) => {
  const msg = JSON.parse(event.data);
  if (msg.type === "message") show(msg.name + ": " + msg.text);
  else if (msg.type === "count") document.getElementById("count").textContent =
    msg.room + ": " + msg.users + " online";
  else if (msg.type === "system") show(msg.text, "sys");
};
function join() {
  ws.send(JSON.stringify({type: "join", room: document.getElementById("room").value,
                          name: document.getElementById("name").value}));
}
document.getElementById("join").onclick = join;
document.getElementById("send").onsubmit = (event) => {
  event.preventDefault();
  const text = document.getElementById("text");
  if (text.value) ws.send(JSON.stringify({type: "message", text: text.value}));
  text.value = "";
};
</script>
</body>
</html>
"""

app = create_server(ServerProtocol.WEBSOCKET)
app.get("/", lambda req, res: res.html(PAGE))


def _announce(room):
    app.publish(room, _json({"type": "count", "room": room,
                             "users": app.subscriber_count(room)}))


def _json(obj):
    return orjson.dumps(obj).decode()


def _leave(ws):
    room = ws.data.get("room")
    if room:
        ws.unsubscribe(room)
        app.publish(room, _json({"type": "system", "text": f"{ws.data['name']} left"}))
        _announce(room)


def _message(ws, message):
    try:
        msg = orjson.loads(message)
    except orjson.JSONDecodeError:
        ws.send_json({"type": "system", "text": "messages must be JSON"})
        return
    if msg.get("type") == "join":
        _leave(ws)
        room = str(msg.get("room") or "lobby")[:50]
        ws.data["room"] = room
        ws.data["name"] = str(msg.get("name") or "guest")[:30]
        ws.subscribe(room)
        app.publish(room, _json({"type": "system", "text": f"{ws.data['name']} joined {room}"}))
        _announce(room)
    elif msg.get("type") == "message" and ws.data.get("room"):
        app.publish(ws.data["room"], _json({"type": "message", "name": ws.data["name"],
                                            "text": str(msg.get("text", ""))[:1000]}))


app.websocket(path="/chat", message=_message, close=lambda ws: _leave(ws))

if __name__ == "__main__":
    app.listen(3000)
