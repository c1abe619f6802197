"""JSON messages with tuned options (the Verb WebSocket guide, "Advanced Configuration").

Messages are JSON objects with a "type":
    {"type": "ping"}                  -> {"type": "pong", "timestamp": <ms since the epoch>}
    {"type": "chat", "message": ...}  -> {"type": "chat", "message": ..., "timestamp": ...}
                                         to every connected client
    any other type                    -> {"type": "error", "message": "Unknown message type"}
    not JSON                          -> {"type": "error", "message": "Invalid JSON"}

    python examples/advanced_config.py     # or: verb run examples/advanced_config.py
"""

import json
import time

from verb import ServerProtocol, create_server

app = create_server(ServerProtocol.WEBSOCKET)

BROADCAST = "broadcast"  # the topic every client joins, so a chat message reaches all of them


def now_ms():
    return int(time.time() * 1000)  # JavaScript's Date.now()


def on_open(ws):
    ws.subscribe(BROADCAST)


def on_message(ws, message):
    try:
        data = json.loads(message)
    except ValueError:  # json.JSONDecodeError, or bytes that are not UTF-8
        ws.send_json({"type": "error", "message": "Invalid JSON"})
        return
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "ping":
        ws.send_json({"type": "pong", "timestamp": now_ms()})
    elif kind == "chat":
        app.publish(BROADCAST, json.dumps(
            {"type": "chat", "message": data.get("message"), "timestamp": now_ms()}))
    else:
        ws.send_json({"type": "error", "message": "Unknown message type"})


def on_close(ws, code, reason):
    print(f"Client disconnected: {code} - {reason}", flush=True)


app.websocket(
    open=on_open,
    message=on_message,
    close=on_close,
    max_payload_length=1024 * 1024,   # 1 MiB: larger messages close the connection (1009)
    idle_timeout=60,                  # seconds of silence before the server closes (1001)
    compression=True,                 # permessage-deflate, when negotiated
    backpressure_limit=512 * 1024,    # drop sends while 512 KiB wait for a slow client
    protocols=["chat", "json"],       # subprotocols, in order of preference
    headers={"X-Server": "verb"},     # extra headers on the 101 response
)

if __name__ == "__main__":
    app.listen(3000)
