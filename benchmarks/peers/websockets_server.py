"""websockets peer (asyncio implementation, uvloop), fan-out with websockets.broadcast.

    python benchmarks/peers/websockets_server.py --port 9001 [--mode echo|broadcast]
"""

import asyncio
import os
import sys

import uvloop
from websockets.asyncio.server import broadcast, serve

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import MAX_SIZE, parse_args, parse_go, payloads, raise_nofile  # noqa: E402

subscribers = set()


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def pubsub(ws):
    if ws.request.path == "/sub":
        subscribers.add(ws)
        try:
            await ws.wait_closed()
        finally:
            subscribers.discard(ws)
        return
    async for message in ws:
        if not isinstance(message, str):
            await ws.send(message)
        elif message == "count":
            await ws.send(str(len(subscribers)))
        else:
            go = parse_go(message)
            if go:
                for payload in payloads(*go):
                    broadcast(subscribers, payload)


async def main(args):
    handler = echo if args.mode == "echo" else pubsub
    async with serve(handler, args.host, args.port, compression=None, max_size=MAX_SIZE,
                     ping_interval=None, backlog=4096):
        print(f"websockets: listening on {args.host}:{args.port}", flush=True)
        await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    arguments = parse_args("websockets benchmark peer")
    raise_nofile()
    uvloop.run(main(arguments))
