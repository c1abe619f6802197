"""Cross-process fan-out: deliveries/s with 2 workers + Redis vs one process, in the same run.

N subscribers (default 1,000; VERB_FANOUT_SUBSCRIBERS) subscribe to one topic; a publisher
connection then sends P publishes (default 200; VERB_FANOUT_PUBLISHES) of a 64-byte text
message with `ws.publish`. Timed from the first publish written until every subscriber has
received every message; rate = N * P / time; each setup runs ROUNDS such bursts
(VERB_FANOUT_ROUNDS, default 7) over the same connections and reports the median rate.

- "single": one `verb run` process, the in-process broker (the Hub).
- "workers+redis": `verb run --workers 2 --broker redis://...` with its own redis-server: the
  kernel spreads the subscribers over the two workers; each publish is delivered by the
  publisher's worker at once and reaches the other through Redis.

The subscribers are raw sockets on one uvloop/asyncio loop in this process that only count
bytes (each delivery is a 66-byte frame), so the client side costs little next to the server.
On a 2-core machine the workers, Redis and this load generator share the cores: read the ratio
with that in mind. Every wait is bounded (VERB_FANOUT_TIMEOUT seconds, default 60).
Run: .venv/bin/python -m pytest benchmarks/test_fanout_bench.py --benchmark-only -s
"""

from __future__ import annotations

import asyncio
import base64
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.cluster import RedisServer, VerbProcess, wait_until

SUBSCRIBERS = int(os.environ.get("VERB_FANOUT_SUBSCRIBERS", "1000"))
PUBLISHES = int(os.environ.get("VERB_FANOUT_PUBLISHES", "200"))
ROUNDS = int(os.environ.get("VERB_FANOUT_ROUNDS", "7"))
TIMEOUT = float(os.environ.get("VERB_FANOUT_TIMEOUT", "60"))
MESSAGE = "x" * 64
FRAME = 2 + len(MESSAGE)  # server frames are unmasked: 2-byte header + payload
REPLY = 2 + len("subscribed room")

APP = """
import os
from verb import create_server, ServerProtocol

app = create_server(ServerProtocol.WEBSOCKET, idle_timeout=0, max_connections=100000)

@app.get("/pid")
def pid(req, res):
    res.json({"pid": os.getpid(), "worker": app.worker_id})

def on_message(ws, message):
    command, _, rest = message.partition(" ")
    if command == "sub":
        ws.subscribe(rest)
        ws.send("subscribed " + rest)
    elif command == "pub":
        topic, _, text = rest.partition(" ")
        ws.publish(topic, text)

app.websocket(message=on_message)
"""


def masked_text(text: str) -> bytes:
    payload = text.encode()
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload  # zero mask key


def upgrade_request(port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode()


class Counter(asyncio.Protocol):
    """A WebSocket client that only counts the bytes it receives after the handshake."""

    def __init__(self, port):
        self.port = port
        self.open = asyncio.get_running_loop().create_future()
        self.head = b""
        self.received = 0
        self.target = 0
        self.reached = None

    def connection_made(self, transport):
        self.transport = transport
        transport.write(upgrade_request(self.port))

    def data_received(self, data):
        if not self.open.done():
            self.head += data
            head, sep, rest = self.head.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self.open.set_exception(AssertionError(head[:200]))
                return
            self.open.set_result(None)
            data = rest
        self.received += len(data)
        if self.reached is not None and self.received >= self.target:
            self.reached.set_result(None)
            self.reached = None

    def wait_for(self, total):
        self.target = total
        if self.received >= total:
            return asyncio.sleep(0)
        self.reached = asyncio.get_running_loop().create_future()
        return self.reached

    def connection_lost(self, exc):
        if self.reached is not None and not self.reached.done():
            self.reached.set_exception(ConnectionError("subscriber connection lost"))


async def fan_out(port: int, redis_server=None, processes: int = 1) -> dict:
    loop = asyncio.get_running_loop()

    async def connect():
        _, protocol = await loop.create_connection(lambda: Counter(port), "127.0.0.1", port)
        await asyncio.wait_for(protocol.open, TIMEOUT)
        return protocol

    subscribers = []
    for start in range(0, SUBSCRIBERS, 100):
        subscribers += await asyncio.gather(*(connect() for _ in
                                              range(start, min(SUBSCRIBERS, start + 100))))
    for protocol in subscribers:
        protocol.transport.write(masked_text("sub room"))
    await asyncio.wait_for(asyncio.gather(*(p.wait_for(REPLY) for p in subscribers)), TIMEOUT)
    if redis_server is not None:
        await loop.run_in_executor(None, lambda: wait_until(
            lambda: redis_server.numsub("room") == processes, timeout=TIMEOUT,
            message="every worker subscribed in Redis"))
    publisher = await connect()
    burst = b"".join(masked_text(f"pub room {MESSAGE}") for _ in range(PUBLISHES))
    times = []
    for round_ in range(1, ROUNDS + 1):
        target = REPLY + round_ * PUBLISHES * FRAME
        started = time.perf_counter()
        publisher.transport.write(burst)
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait_for(target) for p in subscribers)),
                                   TIMEOUT)
        except asyncio.TimeoutError:
            got = sum((p.received - REPLY) // FRAME for p in subscribers)
            raise AssertionError(f"only {got:,} of {SUBSCRIBERS * PUBLISHES * round_:,} "
                                 f"deliveries after {TIMEOUT} s") from None
        times.append(time.perf_counter() - started)
    await asyncio.sleep(0.2)  # anything beyond the target would be a duplicate
    deliveries = sum((p.received - REPLY) // FRAME for p in subscribers)
    assert deliveries == SUBSCRIBERS * PUBLISHES * ROUNDS  # exactly once each
    assert all((p.received - REPLY) % FRAME == 0 for p in subscribers)
    for protocol in [*subscribers, publisher]:
        protocol.transport.close()
    elapsed = statistics.median(times)
    return {"seconds": elapsed, "rate": SUBSCRIBERS * PUBLISHES / elapsed,
            "best": SUBSCRIBERS * PUBLISHES / min(times)}


def new_loop():
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(coro):
    loop = new_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def test_fanout_two_workers_with_redis_vs_single_process(benchmark, tmp_path):
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    redis_server = RedisServer(tmp_path / "redis").start()
    single = VerbProcess(tmp_path / "single", app_source=APP)
    workers = None
    try:
        single.wait_ready()
        workers = VerbProcess(tmp_path / "workers", app_source=APP, workers=2,
                              broker=redis_server.url)
        workers.wait_ready()
        wait_until(lambda: len({workers.get_json("/pid")["pid"] for _ in range(20)}) == 2,
                   message="both workers serving")
        results = {}

        def measure():
            results["single"] = run(fan_out(single.port))
            results["workers"] = run(fan_out(workers.port, redis_server, processes=2))

        benchmark.pedantic(measure, rounds=1, iterations=1)
    finally:
        if workers is not None:
            workers.stop()
        single.stop()
        redis_server.stop()
    single_rate = results["single"]["rate"]
    workers_rate = results["workers"]["rate"]
    benchmark.extra_info.update({
        "subscribers": SUBSCRIBERS,
        "publishes": PUBLISHES,
        "single deliveries/s": round(single_rate),
        "2 workers+redis deliveries/s": round(workers_rate),
        "ratio workers/single": round(workers_rate / single_rate, 2),
        "single best": round(results["single"]["best"]),
        "workers best": round(results["workers"]["best"]),
    })
    print(f"\nfan-out {SUBSCRIBERS} subscribers x {PUBLISHES} publishes, median of {ROUNDS}: "
          "single process "
          f"{single_rate:,.0f} deliveries/s ({results['single']['seconds']:.3f} s); 2 workers + "
          f"Redis {workers_rate:,.0f} deliveries/s ({results['workers']['seconds']:.3f} s); "
          f"ratio {workers_rate / single_rate:.2f}")
