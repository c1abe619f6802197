"""Error handling and connection health checks (the Verb WebSocket guide, "Error Handling").

Messages are JSON objects with a "type":
    {"type": "echo", "data": x} -> {"type": "echo", "data": x}
    {"type": "fail"}            -> the handler raises; the `error` handler answers
                                   {"type": "error", "message": "Internal server error"} and the
                                   connection stays open
Bad input never escapes the message handler: not JSON -> {"type": "error", "message":
"Invalid JSON"}; no "type" -> {"type": "error", "message": "Missing message type"}; an unknown
type -> {"type": "error", "message": "Unknown message type: <type>"}.

Health checks: every HEARTBEAT_INTERVAL_MS milliseconds (env HEARTBEAT_INTERVAL_MS, default
30000) each client that has not answered the previous round's ping is terminated; the others
are marked not alive and pinged again. A pong marks a client alive.

    python examples/error_handling.py     # or: verb run examples/error_handling.py
"""

import json
import os

from verb import ServerProtocol, WebSocket, create_server, set_interval

HEARTBEAT_INTERVAL_MS = int(os.environ.get("HEARTBEAT_INTERVAL_MS", "30000"))

app = create_server(ServerProtocol.WEBSOCKET)

clients = set()  # every open connection, for the health checks


class MessageError(Exception):
    """A bad message: its text goes back to the client."""


def handle_message(ws, data):
    if not isinstance(data, dict) or "type" not in data:
        raise MessageError("Missing message type")
    if data["type"] == "echo":
        ws.send_json({"type": "echo", "data": data.get("data")})
    elif data["type"] == "fail":
        raise RuntimeError("something broke while handling the message")
    else:
        raise MessageError(f"Unknown message type: {data['type']}")


def on_open(ws):
    ws.is_alive = True
    clients.add(ws)

    def heartbeat():
        ws.is_alive = True  # the peer answered a ping

    ws.on("pong", heartbeat)


def on_message(ws, message):
    try:
        data = json.loads(message)
    except ValueError:
        ws.send_json({"type": "error", "message": "Invalid JSON"})
        return
    try:
        handle_message(ws, data)
    except MessageError as exc:
        ws.send_json({"type": "error", "message": str(exc)})
    # Anything else propagates: verb hands it to on_error below.


def on_error(ws, error):
    print(f"WebSocket error: {error!r}", flush=True)
    if ws.ready_state == WebSocket.OPEN:
        ws.send_json({"type": "error", "message": "Internal server error"})


def on_close(ws, code, reason):
    clients.discard(ws)
    print(f"Client disconnected: {code} - {reason}", flush=True)


def check_connections():
    for ws in list(clients):
        if not ws.is_alive:
            print("Terminating a dead connection", flush=True)
            ws.terminate()  # no pong since the last round: drop it without a closing handshake
            continue
        ws.is_alive = False
        ws.ping()


heartbeat_timer = set_interval(check_connections, HEARTBEAT_INTERVAL_MS)

app.websocket(open=on_open, message=on_message, error=on_error, close=on_close)

if __name__ == "__main__":
    app.listen(3000)
