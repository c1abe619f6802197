"""Basic echo server (the Verb WebSocket guide, "Basic WebSocket Server").

Every client is welcomed on connect, each message comes back as "Echo: <message>", and
disconnects are logged. The page at http://localhost:3000/ talks to the server from a browser.

    python examples/basic_echo.py          # or: verb run examples/basic_echo.py --port 3000
"""

from verb import ServerProtocol, create_server

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>WebSocket Demo</title>
<style>
  body { font: 15px system-ui, sans-serif; max-width: 36rem; margin: 2rem auto; }
  #messages { border: 1px solid #ccc; min-height: 10rem; padding: .5rem; }
  #messages div { margin: .2rem 0; }
  form { display: flex; gap: .5rem; margin-top: .5rem; }
  #messageInput { flex: 1; }
</style>
</head>
<body>
<h1>WebSocket Demo</h1>
<div id="messages"></div>
<form id="form">
  <input type="text" id="messageInput" placeholder="Type a message..." autocomplete="off">
  <button>Send</button>
</form>
<script>
  // Same host and port as the page: works wherever the server runs (and over wss:// too).
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host);
  const messages = document.getElementById("messages");

  ws.onmessage = (event) => {
    const line = document.createElement("div");
    line.textContent = event.data;
    messages.appendChild(line);
  };

  document.getElementById("form").onsubmit = (event) => {
    event.preventDefault();
    const input = document.getElementById("messageInput");
    if (input.value) ws.send(input.value);
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


def on_open(ws):
    print("Client connected", flush=True)
    ws.send("Welcome to WebSocket server!")


def on_message(ws, message):
    print("Received:", message, flush=True)
    ws.send(f"Echo: {message}")


def on_close(ws, code, reason):
    print(f"Client disconnected: {code} - {reason}", flush=True)


app.websocket(open=on_open, message=on_message, close=on_close)

if __name__ == "__main__":
    app.listen(3000)
