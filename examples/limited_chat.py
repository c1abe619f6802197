"""A chat with the guide's best practices built in: a message limit per user and /metrics.

Clients connect to ws://localhost:3000/?user=NAME. Every user may send MESSAGES_PER_SECOND
messages a second (env, default 5; bursts of twice that); "admin" is not limited. A message over
the limit is dropped and its sender told {"type": "limited", "retry": "slow down"} (at most once
a second); the others reach every user as {"type": "chat", "user": NAME, "text": ...}.
At most CONNECTIONS_PER_IP (env, default 10) WebSockets per client address; the next upgrade
gets HTTP 429. GET /metrics serves the server's figures in Prometheus' text format.

    python examples/limited_chat.py              # or: verb run examples/limited_chat.py
"""

import os

import orjson

from verb import ServerProtocol, create_server

MESSAGES_PER_SECOND = float(os.environ.get("MESSAGES_PER_SECOND", "5"))
CONNECTIONS_PER_IP = int(os.environ.get("CONNECTIONS_PER_IP", "10"))

app = create_server(ServerProtocol.WEBSOCKET)


def upgrade(req):
    user = req.query.get("user", "").strip()
    return {"user": user or "anonymous"}


def limit_for(ws):
    """One limit per user, picked once per connection (after upgrade, before open)."""
    if ws.data["user"] == "admin":
        return None
    return {"messages": MESSAGES_PER_SECOND, "per": 1.0, "burst": 2 * MESSAGES_PER_SECOND,
            "action": "drop"}


def on_open(ws):
    ws.subscribe("chat")


def on_message(ws, message):
    text = message if isinstance(message, str) else message.decode("utf-8", "replace")
    chat = {"type": "chat", "user": ws.data["user"], "text": text}
    app.publish("chat", orjson.dumps(chat).decode())  # to every user, the sender too


def on_limited(ws, message):
    ws.send_json({"type": "limited", "retry": "slow down"})


app.websocket(upgrade=upgrade, open=on_open, message=on_message, limited=on_limited,
              rate_limit=limit_for, max_connections_per_ip=CONNECTIONS_PER_IP)
app.metrics("/metrics")

if __name__ == "__main__":
    app.listen(3000)
