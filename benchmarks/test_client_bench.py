"""Client benchmarks: verb's client beside the `websockets` and picows clients, against one verb
echo server. Run:

    .venv/bin/python -m pytest benchmarks/test_client_bench.py --benchmark-only

The server runs in a subprocess (uvloop, a Python `message` handler doing `ws.send(message)`),
pinned to CPU 0 where the machine has two or more; the clients run in this process on uvloop,
pinned to CPU 1 for the module. Each client keeps one connection and runs the same workloads
with 1 KiB binary messages, each message received as a `bytes` object:

- round trips: send one message, wait for its echo, repeat (1 in flight);
- pipelined: 1,000 messages with WINDOW in flight (a new one sent per echo received).

Each library is driven through its usual API: `ws.send` / `await ws.recv()` for verb,
`await ws.send` / `await ws.recv()` for websockets, and picows' `on_ws_frame` callback (with
`frame.get_payload_as_bytes()`, so every client makes the same `bytes` per message).
`extra_info` holds messages/s from the mean and the median round, and the client's CPU time
per message (this process's CPU time over the measured rounds). `test_client_interleaved_ratios`
runs the clients in turn, round after round, and records each one's median messages/s and
verb's ratios to the others: on a shared machine, compare those. picows is optional (it is not
in the `test` extra): its benchmarks are skipped with a message when it is missing.
"""

import asyncio
import os
import socket
import subprocess
import sys
import time

import pytest

uvloop = pytest.importorskip("uvloop")

PAYLOAD = os.urandom(1024)
PIPELINED = 1000
WINDOW = 64
ROUND_TRIPS = 500
ROUNDS = 15

SERVER = """
import sys
from verb import ServerProtocol, create_server
app = create_server(ServerProtocol.WEBSOCKET, idle_timeout=0)
app.websocket(message=lambda ws, message: ws.send(message))
app.listen(int(sys.argv[1]), "127.0.0.1")  # prints "verb: listening on ..." once bound
"""


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server_url():
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    port = _free_port()
    preexec = None
    if len(cpus) >= 2:
        def preexec():
            os.sched_setaffinity(0, {cpus[0]})
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], stdout=subprocess.PIPE,
                            text=True, preexec_fn=preexec)
    try:
        line = proc.stdout.readline()
        assert "listening" in line, f"the benchmark server did not start: {line!r}"
        if len(cpus) >= 2:
            os.sched_setaffinity(0, {cpus[1]})
        yield f"ws://127.0.0.1:{port}/"
    finally:
        if len(cpus) >= 2:
            os.sched_setaffinity(0, set(cpus))
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------------------------
# One driver per client library: open(url), run(total, window), close().


class VerbDriver:
    name = "verb"

    async def open(self, url):
        import verb
        self.ws = await verb.connect(url, max_queue=WINDOW * 2)

    async def run(self, total, window):
        ws = self.ws
        payload = PAYLOAD
        sent = 0
        while sent < window:
            ws.send(payload)
            sent += 1
        for _ in range(total):
            message = await ws.recv()
            assert len(message) == 1024
            if sent < total:
                ws.send(payload)
                sent += 1

    async def close(self):
        await self.ws.close()


class WebsocketsDriver:
    name = "websockets"

    async def open(self, url):
        from websockets.asyncio.client import connect
        self.ws = await connect(url, compression=None, proxy=None, max_queue=WINDOW * 2)

    async def run(self, total, window):
        ws = self.ws
        payload = PAYLOAD
        sent = 0
        while sent < window:
            await ws.send(payload)
            sent += 1
        for _ in range(total):
            message = await ws.recv()
            assert len(message) == 1024
            if sent < total:
                await ws.send(payload)
                sent += 1

    async def close(self):
        await self.ws.close()


class PicowsDriver:
    name = "picows"

    async def open(self, url):
        picows = pytest.importorskip(
            "picows", reason="picows is not installed (pip install picows): its client is "
            "not benchmarked")

        class Listener(picows.WSListener):
            def on_ws_connected(self, transport):
                self.transport = transport

            def on_ws_frame(self, transport, frame):
                if frame.msg_type != picows.WSMsgType.BINARY:
                    return
                message = frame.get_payload_as_bytes()
                assert len(message) == 1024
                if self.to_send:
                    self.to_send -= 1
                    transport.send(picows.WSMsgType.BINARY, PAYLOAD)
                self.remaining -= 1
                if self.remaining == 0:
                    self.waiter.set_result(None)

        self.binary = picows.WSMsgType.BINARY
        self.transport, self.listener = await picows.ws_connect(Listener, url)

    async def run(self, total, window):
        listener = self.listener
        listener.waiter = asyncio.get_running_loop().create_future()
        listener.remaining = total
        listener.to_send = total - window
        for _ in range(window):
            self.transport.send(self.binary, PAYLOAD)
        await listener.waiter

    async def close(self):
        self.transport.send_close()
        self.transport.disconnect()
        await self.transport.wait_disconnected()


DRIVERS = {"verb": VerbDriver, "websockets": WebsocketsDriver, "picows": PicowsDriver}


@pytest.fixture(params=list(DRIVERS))
def client(request, server_url):
    loop = uvloop.new_event_loop()
    driver = DRIVERS[request.param]()
    try:
        loop.run_until_complete(asyncio.wait_for(driver.open(server_url), 10))
    except BaseException:
        loop.close()
        raise
    yield loop, driver
    loop.run_until_complete(asyncio.wait_for(driver.close(), 10))
    loop.close()


def _record(benchmark, messages, cpu_seconds):
    stats = benchmark.stats
    if stats is None:  # --benchmark-disable
        return
    benchmark.extra_info["messages/s"] = round(messages / stats.stats.mean)
    benchmark.extra_info["messages/s (median)"] = round(messages / stats.stats.median)
    benchmark.extra_info["client CPU us/message"] = round(cpu_seconds / (messages * ROUNDS) * 1e6,
                                                          2)


def _bench(benchmark, client, total, window):
    loop, driver = client
    cpu = [0.0]

    def one_round():
        start = time.process_time()
        loop.run_until_complete(asyncio.wait_for(driver.run(total, window), 60))
        cpu[0] += time.process_time() - start

    one_round()  # warm-up
    cpu[0] = 0.0
    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    _record(benchmark, total, cpu[0])


def test_client_round_trips_1kib(benchmark, client):
    """1 message in flight: latency-bound (server and client each wake once per message)."""
    benchmark.group = f"client round trips, 1 KiB, {ROUND_TRIPS} per round"
    _bench(benchmark, client, ROUND_TRIPS, 1)


def test_client_pipelined_1kib(benchmark, client):
    """WINDOW messages in flight: the client's per-message CPU cost shows."""
    benchmark.group = f"client pipelined, 1 KiB, {PIPELINED} per round, {WINDOW} in flight"
    _bench(benchmark, client, PIPELINED, WINDOW)


@pytest.mark.parametrize("workload", ["round_trips", "pipelined"])
def test_client_interleaved_ratios(benchmark, server_url, workload):
    """Every client in turn, round after round (A/B interleaved), so that the machine's load
    swings hit them alike; extra_info has each client's median messages/s and verb's ratios.
    The timing pytest-benchmark shows for this test is the whole interleaved run."""
    total, window = (ROUND_TRIPS, 1) if workload == "round_trips" else (PIPELINED, WINDOW)
    benchmark.group = f"client interleaved, 1 KiB, {workload}"
    loop = uvloop.new_event_loop()
    drivers = []
    try:
        for name, cls in DRIVERS.items():
            driver = cls()
            try:
                loop.run_until_complete(asyncio.wait_for(driver.open(server_url), 10))
            except pytest.skip.Exception:
                continue
            drivers.append(driver)
        times = {driver.name: [] for driver in drivers}

        def run_all():
            for _ in range(ROUNDS):
                for driver in drivers:
                    start = time.perf_counter()
                    loop.run_until_complete(asyncio.wait_for(driver.run(total, window), 60))
                    times[driver.name].append(time.perf_counter() - start)

        for driver in drivers:  # warm-up
            loop.run_until_complete(asyncio.wait_for(driver.run(total, window), 60))
        benchmark.pedantic(run_all, rounds=1, iterations=1)
        rates = {name: total / sorted(t)[len(t) // 2] for name, t in times.items()}
        for name, rate in rates.items():
            benchmark.extra_info[f"{name} messages/s"] = round(rate)
        for name in rates:
            if name != "verb":
                benchmark.extra_info[f"verb/{name}"] = round(rates["verb"] / rates[name], 2)
        for driver in drivers:
            loop.run_until_complete(asyncio.wait_for(driver.close(), 10))
    finally:
        loop.close()
