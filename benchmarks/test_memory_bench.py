"""Memory per idle open connection: RSS delta of a verb server process / N connections.

N connections (default 1,000; VERB_MEMORY_CONNECTIONS to change) are opened with the
`websockets` asyncio client, each exchanges one message (so a dedicated-mode connection has
its compressor and decompressor allocated), then all sit idle while the server's RSS is read
from /proc. Modes: no compression, permessage-deflate "shared" and "dedicated".
Run: .venv/bin/python -m pytest benchmarks/test_memory_bench.py --benchmark-only -s
"""

import asyncio
import os
import resource
import subprocess
import sys
import time

import pytest
from websockets.asyncio.client import connect

N = int(os.environ.get("VERB_MEMORY_CONNECTIONS", "1000"))

SERVER = """
import resource, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
from verb import create_server, ServerProtocol
mode = None if sys.argv[1] == "off" else sys.argv[1]
app = create_server(ServerProtocol.WEBSOCKET)
app.websocket(message=lambda ws, message: ws.send(message), compression=mode,
              idle_timeout=0, max_connections=100000)
app.listen(0, host="127.0.0.1", callback=None)
"""


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def start_server(mode):
    proc = subprocess.Popen([sys.executable, "-c", SERVER, mode], stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    line = proc.stdout.readline()  # "verb: listening on http://127.0.0.1:PORT"
    assert "listening on" in line, line
    return proc, int(line.rsplit(":", 1)[1])


async def open_idle(port, compression):
    message = '{"type": "update", "payload": "' + "abcdefgh" * 64 + '"}'
    clients = []
    for _ in range(N):
        ws = await connect(f"ws://127.0.0.1:{port}/", compression=compression, proxy=None,
                           ping_interval=None, open_timeout=10)
        await ws.send(message)
        assert await asyncio.wait_for(ws.recv(), 10) == message
        clients.append(ws)
    return clients


@pytest.mark.parametrize("mode", ["off", "shared", "dedicated"])
def test_memory_per_idle_connection(benchmark, mode):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    proc, port = start_server(mode)
    result = {}
    try:
        time.sleep(0.2)
        before = rss_kib(proc.pid)

        async def measure():
            clients = await open_idle(port, None if mode == "off" else "deflate")
            await asyncio.sleep(0.5)
            result["after"] = rss_kib(proc.pid)
            await asyncio.gather(*(ws.close() for ws in clients))

        benchmark.pedantic(lambda: asyncio.run(measure()), rounds=1, iterations=1)
        per = (result["after"] - before) * 1024 / N
        benchmark.extra_info.update({"connections": N, "rss_before_KiB": before,
                                     "rss_after_KiB": result["after"],
                                     "bytes_per_connection": round(per)})
        print(f"\n{mode}: {N} idle connections, RSS {before} -> {result['after']} KiB, "
              f"{per:.0f} bytes per connection")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
