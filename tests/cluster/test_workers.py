"""verb.cluster.workers: N processes on one port (SO_REUSEPORT), supervised.

`verb run app.py --workers N --broker redis://...` and `app.listen(port, workers=N)`:
connections spread over the worker pids, a publish crosses workers through Redis, a worker
killed with SIGKILL is restarted, SIGTERM stops them all (WebSockets closed with 1001), a
worker that cannot start stops the lot with a clear error.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from support.cluster import (
    TEST_APP,
    RedisServer,
    VerbProcess,
    alive,
    assert_nothing_more,
    children,
    client,
    command,
    free_port,
    receive_until,
    stop_process_tree,
    wait_until,
)
from websockets.exceptions import ConnectionClosed

from verb import ServerProtocol, create_server
from verb.cluster import workers as workers_module
from verb.app.app import _workers


@pytest.fixture
def processes():
    started = []
    try:
        yield started
    finally:
        for process in started:
            process.stop()


def worker_pids(supervisor: VerbProcess, count: int, without=None) -> set[int]:
    """Wait until the supervisor has `count` children (none of them `without`)."""
    def ready():
        pids = children(supervisor.pid)
        return pids if len(pids) == count and without not in pids else None
    return wait_until(ready, timeout=20, message=f"{count} worker processes")


def test_workers_share_the_port_and_publish_crosses_workers(tmp_path, redis_server, processes):
    supervisor = VerbProcess(tmp_path / "verb", broker=redis_server.url, workers=3)
    processes.append(supervisor)
    supervisor.wait_ready()
    pids = worker_pids(supervisor, 3)
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(client(supervisor.ws_url)) for _ in range(24)]
        served_by = {}
        for ws in clients:
            _, pid, worker = command(ws, "pid", "pid ").split()
            served_by[ws] = int(pid)
            assert worker in {"0", "1", "2"}
        used = set(served_by.values())
        assert used <= pids
        assert len(used) >= 2, "the kernel put every connection on one worker"
        http_workers = {supervisor.get_json("/pid")["worker"] for _ in range(30)}
        assert http_workers <= {0, 1, 2} and len(http_workers) >= 2

        for ws in clients:
            assert command(ws, "sub room", "subscribed") == "subscribed room"
        wait_until(lambda: redis_server.numsub("room") == len(used),
                   message="one Redis subscription per worker with subscribers")
        publisher, *others = clients
        for i in range(20):
            publisher.send(f"pub room m{i}")
        publisher.send(f"pubbin room {bytes(range(8)).hex()}")
        for ws in others:
            assert receive_until(ws, bytes(range(8))) == [f"m{i}" for i in range(20)] + [
                bytes(range(8))]
        assert_nothing_more(publisher)
        assert_nothing_more(others[0])
        # Cluster-wide count: every worker answers.
        assert command(publisher, "count room", "count ").split()[2] == "24"
    assert supervisor.stop() == 0


def test_a_killed_worker_is_restarted_and_sigterm_stops_all(tmp_path, redis_server, processes):
    supervisor = VerbProcess(tmp_path / "verb", broker=redis_server.url, workers=2)
    processes.append(supervisor)
    supervisor.wait_ready()
    first = worker_pids(supervisor, 2)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    second = worker_pids(supervisor, 2, without=victim)
    (replacement,) = second - first
    wait_until(lambda: supervisor.get_json("/pid")["pid"] == replacement, timeout=20,
               message="the replacement to serve")
    assert "was killed by SIGKILL" in supervisor.log()
    # The replacement is a full worker: it takes part in pub/sub across workers.
    with contextlib.ExitStack() as stack:
        check_replacement_and_stop(supervisor, redis_server, stack, second)


def check_replacement_and_stop(supervisor, redis_server, stack, second):
    clients = []
    while len({pid for _, pid in clients}) < 2:
        assert len(clients) < 60, "connections never reached both workers"
        ws = stack.enter_context(client(supervisor.ws_url))
        clients.append((ws, int(command(ws, "pid", "pid ").split()[1])))
    for ws, _ in clients:
        command(ws, "sub room", "subscribed")
    wait_until(lambda: redis_server.numsub("room") == 2, message="both workers subscribed")
    clients[0][0].send("apppub room hello")
    for ws, _ in clients:
        assert receive_until(ws, "hello") == ["hello"]

    # SIGTERM: every worker closes its WebSockets with 1001 and exits, then the supervisor.
    supervisor.proc.send_signal(signal.SIGTERM)
    for ws, _ in clients:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=20)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert supervisor.proc.wait(timeout=30) == 0
    for pid in second:
        wait_until(lambda pid=pid: not alive(pid), message=f"worker {pid} to exit")
    assert "SIGTERM: stopping 2 workers" in supervisor.log()


def test_listen_with_workers_from_a_program(tmp_path):
    program = TEST_APP.replace(
        'app.listen(int(os.environ.get("TEST_PORT", "3000")))',
        'app.listen(int(os.environ["TEST_PORT"]), "127.0.0.1", workers=2)')
    (tmp_path / "app.py").write_text(program)
    port = free_port()
    log = tmp_path / "out.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=tmp_path, stdout=out,
                                stderr=subprocess.STDOUT,
                                env=dict(os.environ, TEST_PORT=str(port), PYTHONUNBUFFERED="1"))
    try:
        wait_until(lambda: len(children(proc.pid)) == 2, message="2 workers")
        import json
        import urllib.request

        def worker_ids():
            seen = set()
            for _ in range(30):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/pid", timeout=5) as r:
                    seen.add(json.loads(r.read())["worker"])
            return seen == {0, 1}

        wait_until(worker_ids, timeout=20, message="both worker ids to answer")
        text = log.read_text()
        assert "with 2 workers" in text
        assert "2 workers without a broker: a publish reaches only the subscribers" in text
    finally:
        stop_process_tree(proc, signal.SIGINT, timeout=30)
    assert proc.returncode == 0, log.read_text()


def test_a_worker_that_cannot_start_stops_them_all(tmp_path, processes):
    unused = RedisServer(tmp_path / "unused")  # not started: nothing listens on its port
    supervisor = VerbProcess(tmp_path / "verb", broker=unused.url, workers=2)
    processes.append(supervisor)
    assert supervisor.proc.wait(timeout=60) == 1
    log = supervisor.log()
    assert "could not start" in log and "cannot reach the Redis broker" in log
    assert "Traceback" not in log


def test_one_worker_is_a_plain_server(tmp_path, processes):
    process = VerbProcess(tmp_path / "verb", workers=1)
    processes.append(process)
    process.wait_ready()
    assert process.get_json("/pid") == {"pid": process.pid, "worker": None}
    assert "workers" not in process.log()


def test_workers_need_linux_and_no_running_loop(monkeypatch):
    monkeypatch.setattr(workers_module.sys, "platform", "darwin")
    with pytest.raises(RuntimeError, match="SO_REUSEPORT .* Linux only"):
        workers_module.check_supported()
    app = create_server(ServerProtocol.WEBSOCKET)

    async def inside_a_loop():
        app.listen(0, workers=2)

    with pytest.raises(RuntimeError, match="outside a running event loop"):
        asyncio.run(inside_a_loop())


@pytest.mark.parametrize("value", [0, -1, 1.5, "x", True])
def test_workers_must_be_a_positive_int(value):
    with pytest.raises(ValueError, match="workers must be an int >= 1"):
        _workers(value)
    assert _workers("3") == 3 and _workers(None) == 1 and _workers(2) == 2


def test_verb_run_rejects_zero_workers(tmp_path):
    (tmp_path / "app.py").write_text(textwrap.dedent(TEST_APP))
    result = subprocess.run([sys.executable, "-m", "verb", "run", "app.py", "--workers", "0"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2 and "--workers must be at least 1" in result.stderr


def test_the_readme_scale_out_command_runs_the_chat_across_workers(tmp_path, redis_server,
                                                                  processes):
    """`verb run examples/chat.py --workers 2 --broker redis://...` (README, "Scaling out"):
    users on both workers hear each other and the user count is the cluster's."""
    import json
    from pathlib import Path

    chat = Path(__file__).resolve().parents[2] / "examples" / "chat.py"
    supervisor = VerbProcess(tmp_path / "chat", broker=redis_server.url, workers=2,
                             app_source=chat.read_text())
    processes.append(supervisor)
    wait_until(lambda: supervisor.get("/"), message="the chat page")
    worker_pids(supervisor, 2)

    def join(ws, name):
        ws.send(json.dumps({"type": "join", "username": name}))
        while True:
            message = json.loads(ws.recv(timeout=10))
            if message["type"] == "user_count":
                return message["count"]

    with contextlib.ExitStack() as stack:
        users = [stack.enter_context(client(supervisor.ws_url + "/ws")) for _ in range(20)]
        for index, ws in enumerate(users):
            join(ws, f"user{index}")
        # 20 connections spread over 2 workers (all on one: probability 2**-19).
        wait_until(lambda: redis_server.numsub("chat") == 2, message="both workers in the chat")
        last = stack.enter_context(client(supervisor.ws_url + "/ws"))
        assert join(last, "last") == 21
        users[0].send(json.dumps({"type": "message", "text": "hello everyone"}))
        for ws in [*users, last]:
            deadline = time.monotonic() + 10
            while True:
                assert time.monotonic() < deadline
                message = json.loads(ws.recv(timeout=10))
                if message["type"] == "message":
                    assert message["text"] == "hello everyone"
                    assert message["username"] == "user0"
                    break


def test_workers_do_not_outlive_a_killed_supervisor(tmp_path, processes):
    supervisor = VerbProcess(tmp_path / "verb", workers=2)
    processes.append(supervisor)
    supervisor.wait_ready()
    pids = worker_pids(supervisor, 2)
    supervisor.proc.kill()  # SIGKILL: no chance to stop its workers itself
    supervisor.proc.wait(timeout=10)
    for pid in pids:
        wait_until(lambda pid=pid: not alive(pid), timeout=20,
                   message=f"worker {pid} to exit after its supervisor")


def test_one_scrape_reports_every_worker(tmp_path, processes):
    """With 3 workers, whichever worker SO_REUSEPORT hands a scrape to answers with the series
    of all three (label `worker`), and their sum is what the clients sent."""
    from prometheus_client.parser import text_string_to_metric_families

    supervisor = VerbProcess(tmp_path, workers=3, env={"VERB_METRICS": "/metrics"})
    processes.append(supervisor)
    supervisor.wait_ready()
    worker_pids(supervisor, 3)
    seen_workers = set()

    for _ in range(30):  # new connections: spread over the workers by the kernel
        with client(supervisor.ws_url) as ws:
            ws.send("pid")
            seen_workers.add(ws.recv(timeout=10).split()[2])
    assert len(seen_workers) == 3

    def received_by_worker():
        text = supervisor.get("/metrics").decode()
        counts = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "verb_messages_received_total":
                    counts[sample.labels["worker"]] = sample.value
        return counts

    # Each worker's snapshot is at most SNAPSHOT_INTERVAL old; every scrape (any worker)
    # soon reports all three, summing to the 30 messages sent.
    wait_until(lambda: sum(received_by_worker().values()) == 30, timeout=10,
               message="30 messages over the workers' series")
    for _ in range(10):
        counts = received_by_worker()
        assert set(counts) == {"0", "1", "2"} and sum(counts.values()) == 30
