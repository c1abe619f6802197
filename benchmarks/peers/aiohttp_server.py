"""aiohttp peer (web.WebSocketResponse, uvloop); no native fan-out: a loop of send_bytes.

    python benchmarks/peers/aiohttp_server.py --port 9001 [--mode echo|broadcast]
"""

import asyncio
import os
import sys

import uvloop
from aiohttp import WSMsgType, web

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import MAX_SIZE, parse_args, parse_go, payloads, raise_nofile  # noqa: E402

subscribers = set()


def new_ws():
    return web.WebSocketResponse(compress=False, max_msg_size=MAX_SIZE, autoping=True,
                                 heartbeat=None)


async def echo(request):
    ws = new_ws()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
        elif msg.type == WSMsgType.TEXT:
            await ws.send_str(msg.data)
    return ws


async def pubsub(request):
    ws = new_ws()
    await ws.prepare(request)
    if request.path == "/sub":
        subscribers.add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            subscribers.discard(ws)
        return ws
    async for msg in ws:
        if msg.type == WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
        elif msg.type == WSMsgType.TEXT:
            if msg.data == "count":
                await ws.send_str(str(len(subscribers)))
            else:
                go = parse_go(msg.data)
                if go:
                    for payload in payloads(*go):
                        for sub in list(subscribers):
                            if not sub.closed:
                                await sub.send_bytes(payload)
    return ws


async def main(args):
    app = web.Application()
    app.router.add_get("/{tail:.*}", echo if args.mode == "echo" else pubsub)
    runner = web.AppRunner(app, access_log=None, handle_signals=True)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, backlog=4096)
    await site.start()
    print(f"aiohttp: listening on {args.host}:{args.port}", flush=True)
    try:
        await asyncio.get_running_loop().create_future()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    arguments = parse_args("aiohttp benchmark peer")
    raise_nofile()
    uvloop.run(main(arguments))
