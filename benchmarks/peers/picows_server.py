"""picows peer (WSListener, uvloop); no native fan-out: a loop of transport.send.

    python benchmarks/peers/picows_server.py --port 9001 [--mode echo|broadcast]
"""

import os
import sys

import uvloop
from picows import WSListener, WSMsgType, ws_create_server

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import MAX_SIZE, parse_args, parse_go, payloads, raise_nofile  # noqa: E402

subscribers = set()


def close(transport, frame):
    transport.send_close(frame.get_close_code(), frame.get_close_message())
    transport.disconnect()


class Echo(WSListener):
    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.CLOSE:
            close(transport, frame)
        else:
            transport.send(frame.msg_type, frame.get_payload_as_memoryview())


class Subscriber(WSListener):
    def on_ws_connected(self, transport):
        subscribers.add(transport)

    def on_ws_disconnected(self, transport):
        subscribers.discard(transport)

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.CLOSE:
            close(transport, frame)


class Trigger(WSListener):
    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.CLOSE:
            close(transport, frame)
        elif frame.msg_type == WSMsgType.TEXT:
            text = frame.get_payload_as_ascii_text()
            if text == "count":
                transport.send(WSMsgType.TEXT, str(len(subscribers)).encode())
                return
            go = parse_go(text)
            if go:
                for payload in payloads(*go):
                    for sub in subscribers:
                        sub.send(WSMsgType.BINARY, payload)
        else:
            transport.send(frame.msg_type, frame.get_payload_as_memoryview())


async def main(args):
    if args.mode == "echo":
        def factory(request):
            return Echo()
    else:
        def factory(request):
            return Subscriber() if request.path == b"/sub" else Trigger()
    server = await ws_create_server(factory, args.host, args.port, max_frame_size=MAX_SIZE,
                                    backlog=4096)
    print(f"picows: listening on {args.host}:{args.port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    arguments = parse_args("picows benchmark peer")
    raise_nofile()
    uvloop.run(main(arguments))
