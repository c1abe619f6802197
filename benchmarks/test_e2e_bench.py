"""Smoke test of the end-to-end benchmark harness (benchmarks/e2e.py), verb only.

Builds the C load generator and runs a tiny round of every workload against the verb peer
(benchmarks/peers/verb_server.py), asserting behaviour only: messages echoed and verified,
deliveries complete and in order, handshakes counted, idle connections opened and closed
cleanly. No timing assertions. Needs Linux and a C compiler; other peers are not needed.
Also checks that the load generator notices a server that corrupts its echoes, and runs it
against the C reference server (benchmarks/loadgen/cecho.c), and runs e2e.py itself with two
variants (--variant, both this interpreter) for one short round of echo64.

    python -m pytest benchmarks/test_e2e_bench.py -q
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import e2e  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="epoll and /proc: Linux"),
    pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                       reason="no C compiler"),
]

CC = shutil.which("cc") or shutil.which("gcc")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    return {"loadgen": e2e.compile_c("loadgen", CC, out, werror=True),
            "cecho": e2e.compile_c("cecho", CC, out, werror=True)}


def server(name, build, mode, tmp_path, extra=()):
    return e2e.ServerProcess(name, lambda port: e2e.server_command(name, build, mode, port, extra),
                             tmp_path / f"{name}-{mode}.log", cpu=None)


def loadgen(build, srv, *args):
    return e2e.run_loadgen(build["loadgen"], list(args), srv.port, srv.pid, cpu=None, timeout=60)


def no_errors(result):
    bad = {k: v for k, v in result["errors"].items() if v}
    assert not bad, result
    return True


def check_echo(result, conns):
    assert result["messages"] > 0 and result["msgs_per_s"] > 0
    assert result["verify"] is True
    assert no_errors(result)
    assert result["clean_closes"] == conns  # every connection closed with a close handshake
    assert result["client_cpu_s"] >= 0 and result["server_cpu_s"] >= 0


@pytest.mark.parametrize("size", [1, 64, 200, 70_000])
def test_echo(build, tmp_path, size):
    # 200 and 70,000 bytes take the 16-bit and 64-bit length forms of the frame header.
    with server("verb", build, "echo", tmp_path) as srv:
        result = loadgen(build, srv, "--mode", "echo", "--conns", "4", "--inflight", "3",
                         "--size", str(size), "--duration", "0.3", "--warmup", "0.1")
    check_echo(result, 4)
    assert result["size"] == size


def test_latency_and_handshake_share_a_server(build, tmp_path):
    with server("verb", build, "echo", tmp_path) as srv:
        lat = loadgen(build, srv, "--mode", "latency", "--duration", "0.3", "--warmup", "0.1")
        hs = loadgen(build, srv, "--mode", "handshake", "--concurrency", "4",
                     "--duration", "0.3", "--warmup", "0.1")
    check_echo(lat, 1)
    assert lat["samples"] == lat["messages"] > 0
    assert 0 < lat["p50_us"] <= lat["p90_us"] <= lat["p99_us"] <= lat["p999_us"] <= lat["max_us"]
    assert hs["handshakes"] > 0 and hs["handshakes_per_s"] > 0
    assert no_errors(hs)
    assert hs["clean_closes"] >= hs["handshakes"]  # warm-up handshakes closed cleanly too


def test_broadcast(build, tmp_path):
    with server("verb", build, "broadcast", tmp_path) as srv:
        result = loadgen(build, srv, "--mode", "broadcast", "--conns", "50", "--batch", "3",
                         "--size", "100", "--duration", "0.3")
    assert result["complete"] is True
    assert result["messages_published"] > 0
    assert result["deliveries"] == result["expected_deliveries"] == \
        50 * result["messages_published"]
    assert no_errors(result)
    assert result["clean_closes"] == 51  # subscribers and the trigger connection


@pytest.mark.parametrize("deflate", [False, True])
def test_idle(build, tmp_path, deflate):
    extra = ("--compression", "shared") if deflate else ()
    args = ["--mode", "idle", "--conns", "50"] + (["--deflate"] if deflate else [])
    with server("verb", build, "echo", tmp_path, extra) as srv:
        result = e2e.run_idle(build["loadgen"], args, srv, cpu=None, timeout=60)
    assert result["ready_line_open"] == result["open_after_hold"] == 50
    assert result["echoes"] == 50
    assert result["deflate_negotiated"] == (50 if deflate else 0)
    assert result["rss_after_kib"] > 0 and result["kib_per_conn"] is not None
    assert no_errors(result)
    assert result["clean_closes"] == 50


CORRUPTING_SERVER = """
import sys
from verb import create_server, ServerProtocol
app = create_server(ServerProtocol.WEBSOCKET)
app.websocket(message=lambda ws, m: ws.send(m if len(m) < 8 else m[::-1]), idle_timeout=0)
app.listen(int(sys.argv[sys.argv.index("--port") + 1]), host="127.0.0.1")
"""


def test_loadgen_notices_corrupted_echoes(build, tmp_path):
    # The server reverses every payload of 8 bytes or more: same length, wrong bytes.
    # A file, not -c: `python -c` run from the checkout would import its source tree, not the
    # installed verb the other peers use.
    script = tmp_path / "corrupting.py"
    script.write_text(CORRUPTING_SERVER)
    srv = e2e.ServerProcess("corrupting", lambda port: [sys.executable, str(script),
                                                        "--port", str(port)],
                            tmp_path / "corrupting.log", cpu=None)
    with srv:
        result = loadgen(build, srv, "--mode", "echo", "--conns", "2", "--size", "64",
                         "--duration", "0.2", "--warmup", "0")
        unchecked = loadgen(build, srv, "--mode", "echo", "--conns", "2", "--size", "64",
                            "--duration", "0.2", "--warmup", "0", "--no-verify")
    assert result["errors"]["verify"] > 0
    assert result["errors"]["length"] == 0
    assert unchecked["errors"]["verify"] == 0 and unchecked["messages"] > 0


def test_c_reference_server(build, tmp_path):
    with server("c", build, "echo", tmp_path) as srv:
        echo = loadgen(build, srv, "--mode", "echo", "--conns", "4", "--size", "70000",
                       "--duration", "0.3", "--warmup", "0.1")
        bcast = loadgen(build, srv, "--mode", "broadcast", "--conns", "20", "--batch", "2",
                        "--duration", "0.2")
    check_echo(echo, 4)
    assert bcast["complete"] is True and bcast["deliveries"] > 0
    assert no_errors(bcast)


def test_loadgen_usage_errors(build):
    done = subprocess.run([build["loadgen"], "--mode", "nonsense", "--port", "1"],
                          capture_output=True, text=True)
    assert done.returncode == 64 and "usage" in done.stderr
    # Nothing listens on the port: the loadgen reports the failure as JSON and exits by itself.
    done = subprocess.run([build["loadgen"], "--mode", "echo", "--conns", "2", "--port",
                           str(e2e.free_port()), "--timeout", "2"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert '"error"' in done.stdout and '"connect": 2' in done.stdout


def run_e2e(tmp_path, *args, timeout=120):
    return subprocess.run([sys.executable, e2e.__file__, "--results", str(tmp_path / "results"),
                           "--no-chart", "--no-pin", *args], check=False,
                          capture_output=True, text=True, timeout=timeout)


def test_variants_side_by_side(tmp_path):
    # Two builds of verb A/B: here both rows run this interpreter's verb.
    python = os.path.abspath(sys.executable)
    done = run_e2e(tmp_path, "--variant", f"base={python}", "--variant", f"new={python}",
                   "--servers", "verb", "--workloads", "echo64", "--rounds", "1", "--quick")
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads((tmp_path / "results" / "latest.json").read_text())
    assert doc["servers"] == ["verb[base]", "verb[new]"]
    assert [(v["name"], v["server"], v["python"]) for v in doc["variants"]] == [
        ("base", "verb[base]", python), ("new", "verb[new]", python)]
    assert all(v["verb_dir"] and not v.get("error") for v in doc["variants"])
    assert doc["medians"]["echo64/verb[base]"] > 0 and doc["medians"]["echo64/verb[new]"] > 0
    assert doc["ratios"]["echo64/verb[new]/verb[base]"] > 0
    assert doc["ratios"]["echo64/verb[new]/verb[base]/cpu"] is not None
    assert len(doc["variant_ratio_rounds"]["echo64/verb[new]/verb[base]"]) == 1
    assert not doc["errors"], doc["errors"]
    assert "vs verb[base]" in done.stdout and "| verb[new] |" in done.stdout


def test_unusable_variant_stops_the_run_at_start(tmp_path):
    # No such file, and an interpreter that cannot import verb (-I -S: no site-packages).
    no_site = tmp_path / "python-no-site"
    no_site.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n')
    no_site.chmod(0o755)
    done = run_e2e(tmp_path, "--variant", f"gone={tmp_path / 'nothing'}", "--variant",
                   f"bare={no_site}", "--servers", "verb", "--workloads", "echo64", timeout=60)
    assert done.returncode == 2
    assert "--variant gone=" in done.stderr and "no such interpreter" in done.stderr
    assert "--variant bare=" in done.stderr and "cannot import verb" in done.stderr
    assert not (tmp_path / "results").exists()


def test_callgrind_echo_session_against_a_limited_peer():
    """callgrind_echo.py's client and peer plumbing (without valgrind, which CI lacks): the peer
    given a never-hit VERB_BENCH_RATE_LIMIT echoes every message of an exact-count session."""
    import callgrind_echo

    port = callgrind_echo.free_port()
    with callgrind_echo.peer_server(sys.executable, json.dumps({"messages": 1e9}), port) as server:
        callgrind_echo.echo_session(port, 200, 1024)  # raises on a missing or changed echo
        assert server.poll() is None
