"""Connection limits and inactivity cleanup (the Verb WebSocket guide, "Connection Management").

At most MAX_CONNECTIONS clients (env MAX_CONNECTIONS, default 1000) are served; one more is
told {"type": "error", "message": "Server at capacity"} and closed with 1013 "Server
overloaded". A client is welcomed with {"type": "welcome", "id": n, "connections": count}; each
message refreshes its activity time and is answered {"type": "ack", "received": message}.
Every CLEANUP_INTERVAL_MS (env, default 30000) clients silent for more than
INACTIVITY_TIMEOUT_MS (env, default 300000) get {"type": "timeout", "message": ...} and are
closed with 1000 "Inactive connection". GET /stats reports the counters as JSON.

(`app.websocket(max_connections=...)` refuses the excess earlier, with an HTTP 503 instead of
a WebSocket; this example keeps the guide's counter so the client learns why.)

    python examples/connection_management.py     # or: verb run examples/connection_management.py
"""

import itertools
import os
import time

from verb import ServerProtocol, create_server, set_interval

MAX_CONNECTIONS = int(os.environ.get("MAX_CONNECTIONS", "1000"))
CLEANUP_INTERVAL_MS = int(os.environ.get("CLEANUP_INTERVAL_MS", "30000"))
INACTIVITY_TIMEOUT_MS = int(os.environ.get("INACTIVITY_TIMEOUT_MS", "300000"))

app = create_server(ServerProtocol.WEBSOCKET)

connections = {}  # ServerWebSocket -> {"id", "connected_at", "last_activity"}
stats = {"total": 0, "rejected": 0, "timed_out": 0}
next_id = itertools.count(1)


def on_open(ws):
    if len(connections) >= MAX_CONNECTIONS:
        stats["rejected"] += 1
        ws.send_json({"type": "error", "message": "Server at capacity"})
        ws.close(1013, "Server overloaded")
        return
    now = time.monotonic()
    info = {"id": next(next_id), "connected_at": now, "last_activity": now}
    connections[ws] = info
    stats["total"] += 1
    ws.send_json({"type": "welcome", "id": info["id"], "connections": len(connections)})


def on_message(ws, message):
    info = connections.get(ws)
    if info is None:
        return  # a refused or timed-out connection, on its way out
    info["last_activity"] = time.monotonic()
    ws.send_json({"type": "ack", "received": message if isinstance(message, str) else
                  f"<{len(message)} bytes>"})


def on_close(ws, code, reason):
    connections.pop(ws, None)


def cleanup_inactive():
    deadline = time.monotonic() - INACTIVITY_TIMEOUT_MS / 1000
    for ws, info in list(connections.items()):
        if info["last_activity"] < deadline:
            del connections[ws]  # no longer counted, even before its close completes
            stats["timed_out"] += 1
            ws.send_json({"type": "timeout", "message": "Closed for inactivity"})
            ws.close(1000, "Inactive connection")


cleanup_timer = set_interval(cleanup_inactive, CLEANUP_INTERVAL_MS)


@app.get("/stats")
def get_stats(req, res):
    res.json({"active": len(connections), "max": MAX_CONNECTIONS, **stats})


app.websocket(open=on_open, message=on_message, close=on_close)

if __name__ == "__main__":
    app.listen(3000)
