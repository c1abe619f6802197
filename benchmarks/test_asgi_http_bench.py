"""Plain HTTP under ASGI: GET /json of the Starlette app in peers/asgi_server.py, under
`verb asgi` and under uvicorn (httptools), driven by wrk (Debian's; scripts/bootstrap.sh
--test installs it).

Each server is pinned to CPU 0 and wrk (one thread, 64 connections) to CPU 1; rounds alternate
the servers, and the same-round ratio verb/uvicorn of requests/s is recorded (median over
rounds) with each server's figures. Asserted: every response was 2xx and each server answered.
VERB_HTTP_BENCH_S (3) sets the seconds per run; with --benchmark-disable one short round runs.

    .venv/bin/python -m pytest benchmarks/test_asgi_http_bench.py -s
"""

import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import e2e  # noqa: E402

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux: pinning")

PEER = Path(__file__).resolve().parent / "peers" / "asgi_server.py"
SECONDS = float(os.environ.get("VERB_HTTP_BENCH_S", "3"))
SERVERS = ("verb", "uvicorn")


def wrk(port: int, seconds: float) -> dict:
    exe = shutil.which("wrk")
    if exe is None:
        raise AssertionError("wrk is not installed: scripts/bootstrap.sh --test installs it")
    done = subprocess.run([exe, "-t1", "-c64", f"-d{max(1, round(seconds))}s", f"http://127.0.0.1:{port}/json"],
                          capture_output=True, text=True, timeout=seconds + 60,
                          preexec_fn=e2e.pin(e2e.CLIENT_CPU))
    out = done.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    assert done.returncode == 0 and rate and total, out + done.stderr
    assert "Non-2xx" not in out and "Socket errors" not in out, out
    return {"requests_per_s": float(rate.group(1)), "requests": int(total.group(1))}


def one_run(server: str, seconds: float, log_dir: Path) -> dict:
    command = lambda port: [sys.executable, str(PEER), "--server", server, "--port", str(port)]
    with e2e.ServerProcess(f"asgi-{server}", command, log_dir / f"{server}.log") as process:
        return wrk(process.port, seconds)


def test_http_json_requests_per_second(benchmark, tmp_path):
    rounds = 1 if benchmark.disabled else 3
    seconds = 1.0 if benchmark.disabled else SECONDS
    figures = {name: [] for name in SERVERS}

    def measure():
        for rnd in range(rounds):
            order = SERVERS if rnd % 2 == 0 else SERVERS[::-1]
            for name in order:
                figures[name].append(one_run(name, seconds, tmp_path))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    for name in SERVERS:
        assert all(run["requests"] > 0 for run in figures[name]), figures
    ratios = [v["requests_per_s"] / u["requests_per_s"]
              for v, u in zip(figures["verb"], figures["uvicorn"])]
    benchmark.extra_info.update({
        "verb asgi req/s": round(statistics.median(r["requests_per_s"] for r in figures["verb"])),
        "uvicorn req/s": round(statistics.median(r["requests_per_s"] for r in figures["uvicorn"])),
        "verb/uvicorn (median same-round)": round(statistics.median(ratios), 3),
    })
