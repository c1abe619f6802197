"""Chat with user counts over one topic (the Verb WebSocket guide, "Chat Application").

Open http://localhost:3000/ in two browser tabs, join under two names and talk. Every client
that joined is subscribed to the "chat" topic; the server publishes to it:
    {"type": "user_joined", "username": ...}            when someone joins
    {"type": "user_left", "username": ...}              when someone who joined disconnects
    {"type": "user_count", "count": <subscribers>}      after each join and leave
    {"type": "message", "username": ..., "text": ..., "timestamp": <ms>}
Clients send {"type": "join", "username": ...} once, then {"type": "message", "text": ...}.
Anything else gets {"type": "error", "message": ...}.

    python examples/chat.py     # or: verb run examples/chat.py --port 3000

Scaled out (README, "Scaling out"): `verb run examples/chat.py --workers 2 --broker
redis://127.0.0.1:6379/0`; messages reach users on every worker and the user count is the
cluster's (`app.cluster_subscriber_count`).
"""

import json
import time

from verb import ServerProtocol, create_server

TOPIC = "chat"
MAX_NAME = 32
MAX_TEXT = 1000

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Verb chat</title>
<style>
  body { font: 15px system-ui, sans-serif; max-width: 34rem; margin: 1.5rem auto; color: #222; }
  h1 { font-size: 1.3rem; margin: 0 0 .8rem; }
  #status { color: #777; font-size: .9rem; float: right; }
  #messages { border: 1px solid #ccc; border-radius: 4px; height: 16rem; overflow-y: auto;
              padding: .5rem; background: #fafafa; }
  #messages p { margin: .2rem 0; }
  #messages .system { color: #777; font-style: italic; }
  #messages b { color: #0b5cad; }
  form { display: flex; gap: .5rem; margin: .5rem 0; }
  form input { flex: 1; padding: .3rem; }
</style>
</head>
<body>
<h1>Verb chat <span id="status">connecting&hellip;</span></h1>
<form id="join-form">
  <input id="username" placeholder="Your name" autocomplete="off" maxlength="32">
  <button id="join">Join</button>
</form>
<div id="messages"></div>
<form id="message-form">
  <input id="text" placeholder="Type a message..." autocomplete="off" disabled>
  <button id="send" disabled>Send</button>
</form>
<script>
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + "/ws");
  const messages = document.getElementById("messages");
  const status = document.getElementById("status");
  let users = 0;

  function show(text, className, username) {
    const p = document.createElement("p");
    if (className) p.className = className;
    if (username) {
      const b = document.createElement("b");
      b.textContent = username + ": ";
      p.appendChild(b);
    }
    p.appendChild(document.createTextNode(text));
    messages.appendChild(p);
    messages.scrollTop = messages.scrollHeight;
  }

  ws.onopen = () => { status.textContent = "connected"; };
  ws.onclose = () => { status.textContent = "disconnected"; };
  ws.onmessage = (event) => {
    const data = JSON.parse(event.data);
    switch (data.type) {
      case "user_joined": show(data.username + " joined the chat", "system"); break;
      case "user_left": show(data.username + " left the chat", "system"); break;
      case "user_count":
        users = data.count;
        status.textContent = users + (users === 1 ? " user" : " users") + " online";
        break;
      case "message": show(data.text, "", data.username); break;
      case "error": show("Error: " + data.message, "system"); break;
    }
  };

  document.getElementById("join-form").onsubmit = (event) => {
    event.preventDefault();
    const username = document.getElementById("username").value.trim();
    if (!username) return;
    ws.send(JSON.stringify({ type: "join", username }));
    for (const id of ["username", "join"]) document.getElementById(id).disabled = true;
    for (const id of ["text", "send"]) document.getElementById(id).disabled = false;
    document.getElementById("text").focus();
  };

  document.getElementById("message-form").onsubmit = (event) => {
    event.preventDefault();
    const input = document.getElementById("text");
    if (input.value) ws.send(JSON.stringify({ type: "message", text: input.value }));
    input.value = "";
  };
</script>
</body>
</html>
"""

app = create_server(ServerProtocol.WEBSOCKET)


@app.get("/")
def index(req, res):
    res.html(PAGE)


def broadcast(data):
    app.publish(TOPIC, json.dumps(data))


async def broadcast_user_count():
    try:  # every worker's subscribers (this process's alone without a broker)
        count = await app.cluster_subscriber_count(TOPIC)
    except ConnectionError:  # the broker is unreachable for now: what this process knows
        count = app.subscriber_count(TOPIC)
    broadcast({"type": "user_count", "count": count})


def on_open(ws):
    ws.username = None  # set by the "join" message


async def on_message(ws, message):
    try:
        data = json.loads(message)
    except ValueError:
        ws.send_json({"type": "error", "message": "Invalid JSON"})
        return
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "join":
        username = str(data.get("username") or "").strip()[:MAX_NAME]
        if not username:
            ws.send_json({"type": "error", "message": "A username is required"})
        elif ws.username is not None:
            ws.send_json({"type": "error", "message": "Already joined"})
        else:
            ws.username = username
            ws.subscribe(TOPIC)
            broadcast({"type": "user_joined", "username": username})
            await broadcast_user_count()
    elif kind == "message":
        if ws.username is None:
            ws.send_json({"type": "error", "message": "Join the chat first"})
            return
        broadcast({"type": "message", "username": ws.username,
                   "text": str(data.get("text", ""))[:MAX_TEXT],
                   "timestamp": int(time.time() * 1000)})
    else:
        ws.send_json({"type": "error", "message": "Unknown message type"})


async def on_close(ws, code, reason):
    # The server has already unsubscribed the closed connection: the count excludes it.
    if ws.username is not None:
        broadcast({"type": "user_left", "username": ws.username})
        await broadcast_user_count()


app.websocket(path="/ws", open=on_open, message=on_message, close=on_close)

if __name__ == "__main__":
    app.listen(3000)
