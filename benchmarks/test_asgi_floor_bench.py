"""The floor an ASGI app sets: the Starlette echo endpoint of peers/asgi_server.py driven by an
in-memory fake server (no sockets, no frames), per message.

Two floors: `app only` hands every receive() its event at once (the app's own Python: Starlette's
WebSocket.receive/send_bytes and the endpoint); `with one wake-up` makes each receive() wait
on a future resolved from the event loop, as a real server's receive must when no data is
there (the asyncio Task step every ASGI server pays). What a server adds on top of these is
its own cost; README's ASGI table puts them beside the end-to-end figures.

    .venv/bin/python -m pytest benchmarks/test_asgi_floor_bench.py
"""

import asyncio
import collections
import os
import sys

import pytest

try:
    import uvloop  # the loop every server in the comparison runs on
except ImportError:  # pragma: no cover - uvloop is a dependency of verb
    uvloop = None

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))
pytest.importorskip("starlette")
from asgi_server import app  # noqa: E402

MESSAGES = 2000
PAYLOAD = b"x" * 1024
SCOPE = {"type": "websocket", "asgi": {"version": "3.0", "spec_version": "2.4"},
         "http_version": "1.1", "scheme": "ws", "server": ("127.0.0.1", 1),
         "client": ("127.0.0.1", 2), "root_path": "", "path": "/", "raw_path": b"/",
         "query_string": b"", "headers": [], "subprotocols": [], "state": {}}


def session(wake: bool):
    """One connection of MESSAGES binary messages; returns how many echoes the app sent."""
    loop = uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()
    events = collections.deque([{"type": "websocket.connect"}])
    events.extend({"type": "websocket.receive", "bytes": PAYLOAD} for _ in range(MESSAGES))
    events.append({"type": "websocket.disconnect", "code": 1000, "reason": ""})
    sent = []

    async def receive():
        if wake:
            future = loop.create_future()
            loop.call_soon(future.set_result, None)
            await future
        return events.popleft()

    async def send(message):
        sent.append(message["type"])

    try:
        loop.run_until_complete(app(dict(SCOPE), receive, send))
    finally:
        loop.close()
    return sent


@pytest.mark.parametrize("wake", [False, True], ids=["app only", "with one wake-up"])
def test_starlette_echo_floor(benchmark, wake):
    sent = benchmark.pedantic(session, args=(wake,), rounds=5, iterations=1)
    assert sent[0] == "websocket.accept" and sent.count("websocket.send") == MESSAGES
    if benchmark.stats is not None:  # None with --benchmark-disable (CI's smoke run)
        median = benchmark.stats.stats.median
        benchmark.extra_info["messages/s"] = round(MESSAGES / median)
        benchmark.extra_info["us/message"] = round(median / MESSAGES * 1e6, 3)
