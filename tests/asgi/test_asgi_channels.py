"""A Django Channels group chat under uvicorn (the reference), `verb asgi` and uvicorn with
verb's WebSocket protocol: the same messages, in the same order, and the same closes."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
from support.asgi_servers import AsgiProcess
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

SERVERS = ("uvicorn", "verb", "uvicorn+verb")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    started = {}
    try:
        for name in SERVERS:
            started[name] = AsgiProcess(name, "apps.channels_app:application",
                                        tmp_path_factory.mktemp("channels")).wait_ready()
        yield started
    finally:
        for server in started.values():
            server.stop()


async def chat(server) -> dict:
    seen = {}
    async with connect(server.ws_url + "/ws/chat/lobby") as ada, \
            connect(server.ws_url + "/ws/chat/lobby") as bob:
        seen["joined"] = [await ada.recv(), await bob.recv()]
        for text in ("one", "two", "three"):
            await ada.send(text)
        seen["ada"] = [await asyncio.wait_for(ada.recv(), 10) for _ in range(3)]
        seen["bob"] = [await asyncio.wait_for(bob.recv(), 10) for _ in range(3)]
        await bob.send("bye")
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(bob.recv(), 10)
        seen["bob_close"] = bob.close_code
    try:
        async with connect(server.ws_url + "/ws/chat/closed"):
            seen["closed_room"] = "accepted"
    except InvalidStatus as exc:
        seen["closed_room"] = exc.response.status_code
    with urllib.request.urlopen(server.url + "/hello", timeout=10) as response:
        seen["http"] = [response.status, json.loads(response.read())]
    return seen


def test_group_chat_is_the_same_on_every_server(servers):
    observed = {name: asyncio.run(chat(server)) for name, server in servers.items()}
    assert observed["uvicorn"]["ada"] == ["one", "two", "three"]
    for name in SERVERS[1:]:
        assert observed[name] == observed["uvicorn"], (name, observed)
