"""The floor of memory per idle connection on uvloop: what any uvloop server pays.

A protocol that answers the upgrade (Sec-WebSocket-Accept computed, nothing checked) and
echoes the idle workload's one small message, keeping nothing per connection but uvloop's
transport and this two-slot object. Not a WebSocket server (frames under 126 bytes only,
arriving whole): a yardstick for the `idle` figures of benchmarks/e2e.py. Measure it as e2e.py
measures the others, e.g. 10,000 connections:

    python benchmarks/uvloop_floor.py --port 9501 &          # note its PID
    grep VmRSS /proc/<PID>/status                            # before
    benchmarks/.build/loadgen --mode idle --port 9501 --conns 10000 --hold 30
    grep VmRSS /proc/<PID>/status                            # once it prints {"ready": ...}

(RSS after - RSS before) / 10,000 was 1,273 bytes here (uvloop 0.23, CPython 3.11), against
2,131 for verb's echo peer measured the same way.
"""

import asyncio
import base64
import hashlib
import os
import sys

import uvloop

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))
from _common import parse_args, raise_nofile  # noqa: E402

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Floor(asyncio.Protocol):
    __slots__ = ("transport", "upgraded")

    def connection_made(self, transport):
        self.transport = transport
        self.upgraded = False

    def data_received(self, data):
        if not self.upgraded:
            start = data.find(b"Sec-WebSocket-Key: ") + 19
            key = data[start:data.find(b"\r", start)]
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                                 b"\r\n\r\n")
            self.upgraded = True
            return
        opcode, size, key = data[0] & 0x0F, data[1] & 0x7F, data[2:6]
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(data[6:6 + size]))
        self.transport.write(bytes([0x80 | opcode, size]) + payload)
        if opcode == 0x8:
            self.transport.close()


async def main(args):
    server = await asyncio.get_running_loop().create_server(Floor, args.host, args.port,
                                                            backlog=4096)
    print(f"uvloop floor: listening on {args.host}:{args.port}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    arguments = parse_args("uvloop memory floor")
    raise_nofile()
    uvloop.run(main(arguments))
