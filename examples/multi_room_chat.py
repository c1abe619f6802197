"""Chat rooms with member tracking (the Verb WebSocket guide, "Multi-Room Chat").

A client may be in several rooms at once. Messages are JSON objects with a "type":
    {"type": "join", "room": r, "username": u}
        -> you: {"type": "joined", "room": r, "members": [the names in it, sorted]}
        -> the room's other members: {"type": "user_joined", "room": r, "username": u}
    {"type": "leave", "room": r}
        -> you: {"type": "left", "room": r}
        -> the others: {"type": "user_left", "room": r, "username": u}
    {"type": "message", "room": r, "text": t}
        -> every member, you included: {"type": "message", "room": r, "username": u,
                                        "text": t, "timestamp": <ms>}
    {"type": "ping"} -> {"type": "pong", "timestamp": <ms>}
Errors come back as {"type": "error", "message": ...}. A disconnect leaves every room.
`rooms` maps each room name to the set of its members; a room is deleted with its last member.

    python examples/multi_room_chat.py     # or: verb run examples/multi_room_chat.py
"""

import json
import time

from verb import ServerProtocol, create_server

MAX_NAME = 32
MAX_ROOM = 64

app = create_server(ServerProtocol.WEBSOCKET)

rooms = {}  # room name -> set of the ServerWebSocket objects in it (they hash by identity)


def now_ms():
    return int(time.time() * 1000)


def broadcast_to_room(room, data, exclude=None):
    text = json.dumps(data)
    for member in rooms.get(room, ()):
        if member is not exclude:
            member.send(text)


def join_room(ws, room):
    members = rooms.setdefault(room, set())
    if ws in members:
        ws.send_json({"type": "error", "message": f"Already in room {room}"})
        return
    members.add(ws)
    ws.rooms.append(room)
    ws.send_json({"type": "joined", "room": room,
                  "members": sorted(member.username for member in members)})
    broadcast_to_room(room, {"type": "user_joined", "room": room, "username": ws.username},
                      exclude=ws)


def leave_room(ws, room):
    members = rooms.get(room)
    if not members or ws not in members:
        return False
    members.discard(ws)
    ws.rooms.remove(room)
    if members:
        broadcast_to_room(room, {"type": "user_left", "room": room, "username": ws.username})
    else:
        del rooms[room]  # the last member left: forget the room
    return True


def on_open(ws):
    ws.username = "Anonymous"
    ws.rooms = []  # names of the rooms this client is in


def on_message(ws, message):
    try:
        data = json.loads(message)
    except ValueError:
        ws.send_json({"type": "error", "message": "Invalid JSON"})
        return
    if not isinstance(data, dict):
        ws.send_json({"type": "error", "message": "Messages must be JSON objects"})
        return
    kind = data.get("type")
    if kind == "ping":
        ws.send_json({"type": "pong", "timestamp": now_ms()})
        return
    room = data.get("room")
    if kind not in ("join", "leave", "message"):
        ws.send_json({"type": "error", "message": "Unknown message type"})
    elif not isinstance(room, str) or not room or len(room) > MAX_ROOM:
        ws.send_json({"type": "error", "message": "A room name is required"})
    elif kind == "join":
        if data.get("username"):
            ws.username = str(data["username"])[:MAX_NAME]
        join_room(ws, room)
    elif kind == "leave":
        if leave_room(ws, room):
            ws.send_json({"type": "left", "room": room})
        else:
            ws.send_json({"type": "error", "message": f"Not in room {room}"})
    elif room not in ws.rooms:
        ws.send_json({"type": "error", "message": f"Not in room {room}"})
    else:
        broadcast_to_room(room, {"type": "message", "room": room, "username": ws.username,
                                 "text": str(data.get("text", "")), "timestamp": now_ms()})


def on_close(ws, code, reason):
    for room in list(ws.rooms):
        leave_room(ws, room)


app.websocket(open=on_open, message=on_message, close=on_close)

if __name__ == "__main__":
    app.listen(3000)
