"""A Prometheus scrape while 5,000 WebSockets are open and a publish storm runs (issue 14).

The server (benchmarks/peers/verb_scrape_server.py: the broadcast peer plus `/metrics` and a
stall probe) is pinned to one core; the C load generator holds VERB_SCRAPE_CONNS (5000)
subscribers on the other and keeps a publish storm going (`go 1 64`: each publish reaches every
subscriber, the next sent as soon as the last is delivered) for at most
VERB_SCRAPE_STORM_S (8) seconds. Meanwhile this test scrapes `/metrics` (the benchmarked call,
one round per 50 ms). The server reports how long each scrape's handler held the loop (it is
synchronous: that is the stall it causes) and how late a 1 ms timer ran, split by whether a
scrape ran at the time; both go to `extra_info` and the summary line. Asserted: every scrape
answers 200 with every subscriber open, every delivery arrives, the storm outlasts the scrapes.

    .venv/bin/python -m pytest benchmarks/test_scrape_bench.py -s
"""

import json
import os
import shutil
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import e2e  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="epoll and /proc: Linux"),
    pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                       reason="no C compiler"),
]

PEER = Path(__file__).resolve().parent / "peers" / "verb_scrape_server.py"
CONNS = int(os.environ.get("VERB_SCRAPE_CONNS", "5000"))
STORM_S = float(os.environ.get("VERB_SCRAPE_STORM_S", "8"))
ROUNDS = 40


def get(port: int, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return response.status, response.read()


def sample(body: bytes, name: str) -> float:
    for line in body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} missing from the scrape")


def test_scrape_during_publish_storm(benchmark, tmp_path):
    loadgen = e2e.compile_c("loadgen", shutil.which("cc") or shutil.which("gcc"), tmp_path)
    command = lambda port: [sys.executable, str(PEER), "--port", str(port), "--mode", "broadcast"]
    with e2e.ServerProcess("verb-scrape", command, tmp_path / "server.log") as server:
        result = {}

        def storm():
            try:
                result.update(e2e.run_loadgen(
                    loadgen, ["--mode", "broadcast", "--conns", str(CONNS), "--batch", "1",
                              "--size", "64", "--duration", str(STORM_S), "--timeout", "30"],
                    server.port, server.pid, timeout=120))
            except Exception as exc:  # reported by the main thread
                result["error"] = exc

        thread = threading.Thread(target=storm)
        thread.start()
        try:
            deadline = time.monotonic() + 60
            while True:  # until every subscriber is open and publishes flow
                _, body = get(server.port, "/metrics")
                if sample(body, "verb_websockets") >= CONNS and \
                        sample(body, "verb_deliveries_total") > 0:
                    break
                assert thread.is_alive() and time.monotonic() < deadline, \
                    f"the storm did not start: {result or 'no loadgen result'}"
                time.sleep(0.1)
            get(server.port, "/stall")  # the probe starts afresh

            scrapes = []

            def scrape():
                status, body = get(server.port, "/metrics")
                scrapes.append((status, sample(body, "verb_websockets"),
                                sample(body, "verb_deliveries_total")))

            benchmark.pedantic(scrape, rounds=ROUNDS, iterations=1,
                               setup=lambda: time.sleep(0.05))
            while len(scrapes) < ROUNDS:   # --benchmark-disable runs the function once
                time.sleep(0.05)
                scrape()
            storm_running = thread.is_alive()
            _, body = get(server.port, "/stall")
            stall = json.loads(body)
        finally:
            thread.join(timeout=150)
    assert "error" not in result, result.get("error")
    assert storm_running, f"the storm ended before the scrapes did: raise VERB_SCRAPE_STORM_S"
    assert result["complete"] and result["deliveries"] > 0, result
    assert not any(result["errors"].values()), result["errors"]
    assert all(status == 200 and open_ >= CONNS for status, open_, _ in scrapes), scrapes
    deliveries = [d for _, _, d in scrapes]
    assert deliveries == sorted(deliveries) and deliveries[-1] > deliveries[0], deliveries
    assert len(stall["scrape_ms"]) == len(scrapes) and stall["ticks"] > 0, stall

    during, otherwise = stall["lag_ms_during_scrapes"], stall["lag_ms_otherwise"]
    benchmark.extra_info.update({
        "connections": CONNS,
        "deliveries/s": round(result["deliveries_per_s"]),
        "scrape ms median": statistics.median(stall["scrape_ms"]),
        "scrape ms max": max(stall["scrape_ms"]),
        "lag>2ms during scrapes": len(during),
        "max lag ms during scrapes": max(during, default=0),
        "lag>2ms otherwise": len(otherwise),
        "max lag ms otherwise": max(otherwise, default=0),
    })
