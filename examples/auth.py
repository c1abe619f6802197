"""Authentication after connecting (the Verb WebSocket guide, "Authentication").

A new client is told {"type": "auth_required"} and has AUTH_TIMEOUT_MS milliseconds (env
AUTH_TIMEOUT_MS, default 10000) to send {"type": "auth", "token": ...}:
    a known token    -> {"type": "auth_success", "user": name, "role": "admin"|"user"}
    an unknown token -> {"type": "auth_failed", "message": "Invalid token"}, then close 1008
    no auth in time  -> {"type": "auth_timeout", ...}, then close 1008 "Authentication timeout"
Before authenticating, any other message gets {"type": "error", "message":
"Authentication required"}. Once authenticated:
    {"type": "admin_command", "command": c} -> admins: {"type": "admin_result", "command": c,
                                                        "result": "ok", "by": name}
                                               others: {"type": "error",
                                                        "message": "Permission denied"}
    {"type": "message", "text": t}          -> {"type": "message", "user": name, "text": t}

`query_token_app()` builds the other way to do it: the token travels in the URL
(ws://host/?token=...) and the `upgrade` hook refuses a bad one with 401 before the WebSocket
opens (browsers cannot set headers on a WebSocket request, but they can set its URL).

    python examples/auth.py            # in-band authentication
    python examples/auth.py --query    # token in the query string
"""

import json
import os
import sys

from verb import HTTPError, ServerProtocol, WebSocket, clear_timeout, create_server, set_timeout

AUTH_TIMEOUT_MS = int(os.environ.get("AUTH_TIMEOUT_MS", "10000"))

# Stand-in for a real token check (a database, a JWT verification...).
TOKENS = {
    "admin-token": {"user": "alice", "role": "admin"},
    "user-token": {"user": "bob", "role": "user"},
}


def verify_token(token):
    """The user record for `token`, or None."""
    return TOKENS.get(token) if isinstance(token, str) else None


app = create_server(ServerProtocol.WEBSOCKET)


def on_open(ws):
    ws.authenticated = False
    ws.user = None
    ws.send_json({"type": "auth_required"})
    ws.auth_timer = set_timeout(auth_timed_out, AUTH_TIMEOUT_MS, ws)


def auth_timed_out(ws):
    if not ws.authenticated and ws.ready_state == WebSocket.OPEN:
        ws.send_json({"type": "auth_timeout", "message": "Authentication timeout"})
        ws.close(1008, "Authentication timeout")


def on_message(ws, message):
    try:
        data = json.loads(message)
    except ValueError:
        ws.send_json({"type": "error", "message": "Invalid JSON"})
        return
    kind = data.get("type") if isinstance(data, dict) else None
    if not ws.authenticated:
        if kind != "auth":
            ws.send_json({"type": "error", "message": "Authentication required"})
            return
        clear_timeout(ws.auth_timer)
        user = verify_token(data.get("token"))
        if user is None:
            ws.send_json({"type": "auth_failed", "message": "Invalid token"})
            ws.close(1008, "Authentication failed")
            return
        ws.authenticated = True
        ws.user = user
        ws.send_json({"type": "auth_success", "user": user["user"], "role": user["role"]})
        return
    handle_authenticated(ws, kind, data)


def handle_authenticated(ws, kind, data):
    if kind == "admin_command":
        if ws.user["role"] != "admin":
            ws.send_json({"type": "error", "message": "Permission denied"})
            return
        ws.send_json({"type": "admin_result", "command": data.get("command"), "result": "ok",
                      "by": ws.user["user"]})
    elif kind == "message":
        ws.send_json({"type": "message", "user": ws.user["user"], "text": data.get("text")})
    elif kind == "auth":
        ws.send_json({"type": "error", "message": "Already authenticated"})
    else:
        ws.send_json({"type": "error", "message": "Unknown message type"})


def on_close(ws, code, reason):
    clear_timeout(getattr(ws, "auth_timer", None))


app.websocket(open=on_open, message=on_message, close=on_close)


def query_token_app():
    """The variant: authenticate the upgrade request itself (ws://host/?token=...)."""
    query_app = create_server(ServerProtocol.WEBSOCKET)

    def upgrade(req):
        user = verify_token(req.query.get("token"))
        if user is None:
            raise HTTPError(401, "Invalid or missing token")
        return {"user": user}  # becomes ws.data

    def on_query_open(ws):
        ws.user = ws.data["user"]
        ws.send_json({"type": "auth_success", "user": ws.user["user"], "role": ws.user["role"]})

    def on_query_message(ws, message):
        try:
            data = json.loads(message)
        except ValueError:
            ws.send_json({"type": "error", "message": "Invalid JSON"})
            return
        handle_authenticated(ws, data.get("type") if isinstance(data, dict) else None, data)

    query_app.websocket(upgrade=upgrade, open=on_query_open, message=on_query_message)
    return query_app


if __name__ == "__main__":
    (query_token_app() if "--query" in sys.argv[1:] else app).listen(3000)
