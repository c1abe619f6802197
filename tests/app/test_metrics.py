"""`app.metrics(path)`: the hub's figures in Prometheus' text format, the same figures as
`app.stats()`, read by a real Prometheus (Debian's package) after a known load.

The figures are parsed with prometheus-client's own parser (the format's reference)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.cluster import free_port, wait_until

import verb
from verb import HTTPError, ServerProtocol, create_server

TIMEOUT = 30.0


def run(coro, timeout=TIMEOUT):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def scrape(url) -> dict:
    """{(name, frozenset(labels)): value} of every sample at `url`."""
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def metrics_app(**options):
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, message: ws.send(message), **options)
    app.metrics()
    return app


async def known_load(url, messages=50, refused=True):
    """`messages` echoes of 100 bytes on one connection that the client closes, then (with
    `refused`) an upgrade the app's upgrade handler refuses."""
    async with verb.connect(url) as ws:
        for _ in range(messages):
            ws.send(b"x" * 100)
        for _ in range(messages):
            await ws.recv()
    if refused:
        with pytest.raises(verb.HandshakeError):
            await verb.connect(url + "/?refuse=1")


def test_metrics_report_a_known_load():
    def upgrade(req):
        if req.query.get("refuse"):
            raise HTTPError(403, "no")
        return {}

    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, message: ws.send(message), upgrade=upgrade)
    app.metrics("/metrics")
    with app.run_in_thread() as server:
        run(known_load(server.ws_url))
        wait_until(lambda: app.stats()["websockets"] == 0)
        samples = scrape(server.url + "/metrics")
        stats = app.stats()
    assert value(samples, "verb_messages_received_total") == 50
    assert value(samples, "verb_messages_sent_total") == 50
    assert value(samples, "verb_handshakes_total", status="101", outcome="accepted") == 1
    assert value(samples, "verb_handshakes_total", status="403", outcome="rejected") == 1
    assert value(samples, "verb_closes_total", code="1000", side="client") == 1
    assert value(samples, "verb_websockets") == 0
    assert value(samples, "verb_connections_accepted_total") >= 3  # 2 upgrades + the scrape
    assert value(samples, "verb_received_bytes_total") > 50 * 100
    assert value(samples, "verb_event_loop_lag_seconds_count") >= 0
    assert value(samples, "process_resident_memory_bytes") > 0
    # app.stats() has the same figures.
    assert stats["messages_in"] == 50 and stats["handshakes"] == {"101": 1, "403": 1}
    assert stats["closes"] == {"1000": {"client": 1}}


def test_closes_by_side_errors_and_publishes_are_counted():
    def message(ws, m):
        if m == "boom":
            raise RuntimeError("handler failure")
        if m == "bye":
            ws.close(4000, "bye")
        if m == "sub":
            ws.subscribe("t")
            ws.publish("t", "to others")

    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=message, error=lambda ws, exc: None)
    app.metrics()

    async def main(url):
        async with verb.connect(url) as a, verb.connect(url) as b:
            b.send("sub")
            a.send("sub")
            assert await b.recv() == "to others"
            a.send("boom")
            a.send("bye")
            await a.wait_closed()
            return a.close_code

    with app.run_in_thread() as server:
        assert run(main(server.ws_url)) == 4000
        wait_until(lambda: app.stats()["websockets"] == 0)
        samples = scrape(server.url + "/metrics")
    assert value(samples, "verb_closes_total", code="4000", side="server") == 1
    assert value(samples, "verb_closes_total", code="1000", side="client") == 1
    assert value(samples, "verb_handler_errors_total") == 1
    assert value(samples, "verb_publishes_total") == 2
    assert value(samples, "verb_deliveries_total") == 1  # a's publish reached b
    assert value(samples, "verb_subscriptions") == 0 and value(samples, "verb_topics") == 0


def test_ping_round_trips_and_rate_limit_actions_are_exported():
    app = metrics_app(idle_timeout=0.4, send_pings=True,
                      rate_limit={"messages": 5, "per": 60, "action": "drop"})

    async def main(url):
        async with verb.connect(url) as ws:
            for _ in range(8):
                ws.send("m")
            await asyncio.sleep(0.5)  # idle: the server pings, our client answers
            return [await ws.recv() for _ in range(5)]

    with app.run_in_thread() as server:
        assert run(main(server.ws_url)) == ["m"] * 5
        samples = scrape(server.url + "/metrics")
    assert value(samples, "verb_rate_limited_total", action="drop") == 3
    assert value(samples, "verb_ping_rtt_seconds_count") >= 1
    assert value(samples, "verb_ping_rtt_seconds_bucket", le="+Inf") >= 1
    assert 0 < value(samples, "verb_ping_rtt_seconds_sum") < 1


def test_the_metrics_route_is_an_ordinary_route_middleware_can_guard():
    app = metrics_app()

    def guard(req, res, next):
        if req.path == "/metrics" and req.headers.get("authorization") != "Bearer s3cret":
            raise HTTPError(401)
        next()

    app.use(guard)
    with app.run_in_thread() as server:
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(server.url + "/metrics", timeout=5)
        info.value.close()  # an HTTPError holds the response's socket
        assert info.value.code == 401
        request = urllib.request.Request(server.url + "/metrics",
                                         headers={"Authorization": "Bearer s3cret"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert b"verb_websockets" in response.read()


def test_metrics_options_are_checked():
    app = create_server(ServerProtocol.WEBSOCKET)
    with pytest.raises(ValueError, match='the metrics path must start with "/"'):
        app.metrics("metrics")
    app.metrics("/m")
    with pytest.raises(RuntimeError, match="already called"):
        app.metrics("/other")


def test_verb_run_metrics_flag(tmp_path):
    (tmp_path / "app.py").write_text(
        "from verb import create_server, ServerProtocol\n"
        "app = create_server(ServerProtocol.WEBSOCKET)\n"
        "app.websocket(message=lambda ws, m: ws.send(m))\n")
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for name in ("VERB_PORT", "VERB_HOST", "VERB_METRICS", "VERB_WORKERS"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "verb", "run", "app.py", "--host", "127.0.0.1", "--port",
         str(port), "--metrics", "/stats/prom"], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/stats/prom"
        samples = wait_until(lambda: _try_scrape(url), timeout=20, message="verb run --metrics")
        assert ("verb_websockets", frozenset()) in samples
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _try_scrape(url):
    try:
        return scrape(url)
    except OSError:
        return None


# --- a real Prometheus ---------------------------------------------------------------------------


def prometheus_binary():
    path = shutil.which("prometheus") or (os.path.exists("/usr/bin/prometheus")
                                          and "/usr/bin/prometheus")
    if not path:
        pytest.fail("Debian's prometheus is needed (scripts/bootstrap.sh --test installs it)")
    return path


def test_a_real_prometheus_scrapes_what_the_test_sent(tmp_path):
    app = metrics_app()
    with app.run_in_thread() as server:
        run(known_load(server.ws_url, messages=123, refused=False))
        wait_until(lambda: app.stats()["websockets"] == 0)
        port = free_port()
        prometheus_log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 - closed below
        (tmp_path / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n"
            "scrape_configs:\n  - job_name: verb\n    metrics_path: /metrics\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{server.port}']\n")
        proc = subprocess.Popen(
            [prometheus_binary(), f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=prometheus_log)
        try:
            def query(expression):
                url = (f"http://127.0.0.1:{port}/api/v1/query?"
                       + urllib.parse.urlencode({"query": expression}))
                try:
                    with urllib.request.urlopen(url, timeout=5) as response:
                        result = json.loads(response.read())["data"]["result"]
                except urllib.error.HTTPError as exc:   # Prometheus still starting
                    exc.close()                        # (it holds the response's socket)
                    return None
                except OSError:
                    return None
                return float(result[0]["value"][1]) if result else None

            received = wait_until(lambda: query("verb_messages_received_total"), timeout=30,
                                  message="Prometheus has scraped verb")
            assert received == 123
            assert query("verb_messages_sent_total") == 123
            assert query('verb_handshakes_total{status="101"}') == 1
            assert query('verb_closes_total{side="client",code="1000"}') == 1
            assert query('up{job="verb"}') == 1
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            prometheus_log.close()



def test_process_figures_leave_out_open_fds_and_keep_the_rest():
    """process_open_fds lists /proc/self/fd at every scrape (milliseconds at thousands of
    connections): verb's process collector has every other process_* figure."""
    from verb.server.metrics import ProcessFigures

    names = {sample.name for family in ProcessFigures(registry=None).collect()
             for sample in family.samples}
    assert names == {"process_virtual_memory_bytes", "process_resident_memory_bytes",
                     "process_start_time_seconds", "process_cpu_seconds_total",
                     "process_max_fds"}
