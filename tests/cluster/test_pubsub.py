"""verb.cluster.pubsub: publishes across processes through a real redis-server.

Separate server processes (`verb run --broker redis://...`) with `websockets` clients on each:
publish on one reaches the other (text and binary, in order, exactly once, the publisher's own
subscribers once); Redis restarting mid-stream (resubscription, delivery resumes, the outage
and the publishes not sent are counted); Redis cutting a slow subscriber; topic churn leaving
no stale Redis subscriptions; the broker interface, options and errors in-process.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from support.cluster import (
    RedisServer,
    VerbProcess,
    assert_nothing_more,
    client,
    command,
    receive_until,
    wait_until,
)

from verb import ServerProtocol, create_server
from verb.server.options import Options
from verb.cluster.pubsub import (
    Broker,
    BrokerUnavailable,
    InProcessBroker,
    RedisBroker,
    broker_from_url,
)


@pytest.fixture
def spawn(tmp_path):
    """spawn(**kwargs) -> a started VerbProcess; all stopped at the end."""
    started = []

    def start(**kwargs):
        process = VerbProcess(tmp_path / f"verb{len(started)}", **kwargs)
        started.append(process)
        return process.wait_ready()

    try:
        yield start
    finally:
        for process in started:
            process.stop()


def subscribe_all(clients, topic):
    for ws in clients:
        assert command(ws, f"sub {topic}", "subscribed") == f"subscribed {topic}"


# -- across processes ---------------------------------------------------------------------------

def test_publish_on_one_process_reaches_the_other(redis_server, spawn):
    one = spawn(broker=redis_server.url)
    two = spawn(broker=redis_server.url)
    assert one.get_json("/pid")["pid"] != two.get_json("/pid")["pid"]
    with client(one.ws_url) as publisher, client(one.ws_url) as neighbour, \
            client(two.ws_url) as remote_a, client(two.ws_url) as remote_b:
        subscribe_all([publisher, neighbour, remote_a, remote_b], "room")
        wait_until(lambda: redis_server.numsub("room") == 2, message="both processes subscribed")
        expected = []
        for i in range(100):
            if i % 2:
                publisher.send(f"pubbin room {bytes([i, 0, 255, i]).hex()}")
                expected.append(bytes([i, 0, 255, i]))
            else:
                publisher.send(f"pub room text {i} é ✓")
                expected.append(f"text {i} é ✓")
        publisher.send("pub room end")
        expected.append("end")
        # Each subscriber: every message once, in order, text as text and binary as binary.
        for ws in (neighbour, remote_a, remote_b):
            assert receive_until(ws, "end") == expected
        # ws.publish does not reach the publishing connection (publish_to_self is off)...
        assert command(publisher, "pid", "pid ").startswith("pid ")
        # ... and app.publish (HTTP route on process two) reaches everyone, once.
        assert two.post("/publish/room", b"from the app") == {"local": 2}
        for ws in (publisher, neighbour, remote_a, remote_b):
            assert receive_until(ws, "from the app") == ["from the app"]
        for ws in (publisher, neighbour, remote_a, remote_b):
            assert_nothing_more(ws)
        # The publisher's own process dropped the echoes of its publishes coming back.
        stats = one.get_json("/stats")["broker"]
        assert stats["echoes_dropped"] >= 101 and stats["unsent"] == 0
        assert two.get_json("/stats")["broker"]["received"] >= 101


def test_subscriber_counts_local_and_cluster(redis_server, spawn):
    one = spawn(broker=redis_server.url)
    two = spawn(broker=redis_server.url)
    with client(one.ws_url) as a, client(two.ws_url) as b, client(two.ws_url) as c:
        subscribe_all([a, b, c], "room")
        wait_until(lambda: redis_server.numsub("room") == 2, message="both processes subscribed")
        assert command(a, "count room", "count ") == "count 1 3"
        assert command(b, "count room", "count ") == "count 2 3"
        assert command(b, "count nobody", "count ") == "count 0 0"


def test_a_process_subscribes_to_redis_only_while_it_has_subscribers(redis_server, spawn):
    one = spawn(broker=redis_server.url)
    assert redis_server.topic_channels() == set()
    with client(one.ws_url) as a, client(one.ws_url) as b:
        subscribe_all([a, b], "room")
        wait_until(lambda: redis_server.topic_channels() == {"room"}, message="subscription")
        assert redis_server.numsub("room") == 1  # one Redis subscription per process
        command(a, "unsub room", "unsubscribed")
        assert redis_server.numsub("room") == 1  # b is still there
    # b closed without unsubscribing: the process has no subscriber left.
    wait_until(lambda: redis_server.topic_channels() == set(), message="unsubscription")


def test_topic_churn_leaves_no_stale_redis_subscriptions(redis_server, spawn):
    one = spawn(broker=redis_server.url)
    two = spawn(broker=redis_server.url)
    topics = [f"topic-{i}" for i in range(300)]
    with client(one.ws_url) as a, client(two.ws_url) as b:
        for round_ in range(3):
            for topic in topics:
                a.send(f"sub {topic}")
                if round_ != 1:
                    b.send(f"sub {topic}")
            for index, topic in enumerate(topics):
                if index % 3 or round_ < 2:
                    a.send(f"unsub {topic}")
                    b.send(f"unsub {topic}")
            for ws in (a, b):
                assert command(ws, "pid", "pid ")  # every command above was handled
        kept = {topic for index, topic in enumerate(topics) if index % 3 == 0}
        # Connections that close while subscribed.
        for _ in range(3):
            with client(one.ws_url) as c:
                for topic in topics[:50]:
                    c.send(f"sub {topic}")
                assert command(c, "pid", "pid ")
        wait_until(lambda: redis_server.topic_channels() == kept, timeout=20,
                   message="Redis subscriptions == the topics still subscribed")
        for topic in list(kept)[:5]:
            assert redis_server.numsub(topic) == 2
        # Delivery still works for a kept topic, and not for a dropped one.
        kept_topic = min(kept)
        a.send(f"pub {kept_topic} still here")
        assert receive_until(b, "still here")[-1] == "still here"
    wait_until(lambda: redis_server.topic_channels() == set(), timeout=20,
               message="no subscriptions once every client left")


# -- faults ---------------------------------------------------------------------------------------

def test_redis_restart_mid_stream_resubscribes_and_delivery_resumes(redis_server, spawn):
    one = spawn(broker=redis_server.url)
    two = spawn(broker=redis_server.url)
    with client(one.ws_url) as publisher, client(one.ws_url) as local, \
            client(two.ws_url) as remote:
        subscribe_all([publisher, local, remote], "room")
        wait_until(lambda: redis_server.numsub("room") == 2, message="both processes subscribed")
        publisher.send("pub room before")
        assert receive_until(remote, "before") == ["before"]
        assert receive_until(local, "before") == ["before"]

        redis_server.stop()
        wait_until(lambda: not one.get_json("/stats")["broker"]["connected"],
                   message="process one to notice the outage")
        # Local delivery keeps working; these cannot reach process two (at-most-once).
        for i in range(5):
            publisher.send(f"pub room during {i}")
        assert receive_until(local, "during 4") == [f"during {i}" for i in range(5)]

        redis_server.start()
        wait_until(lambda: redis_server.numsub("room") == 2, timeout=30,
                   message="both processes to resubscribe after the restart")
        wait_until(lambda: one.get_json("/stats")["broker"]["connected"], message="reconnection")
        publisher.send("pub room after")
        # Process two missed the messages published during the outage, then gets the rest.
        assert receive_until(remote, "after") == ["after"]
        assert receive_until(local, "after") == ["after"]

    stats = one.get_json("/stats")["broker"]
    assert stats["reconnects"] >= 1
    (outage_seconds, unsent), *_ = stats["outages"]
    assert unsent >= 5 and outage_seconds > 0
    log = one.log()
    assert "Redis broker connection lost" in log
    assert "Redis broker reconnected after a" in log and "publishes were not sent" in log
    print(f"measured outage: {outage_seconds:.3f} s, publishes not sent: {unsent}")
    print(log)


def test_redis_cutting_a_slow_subscriber_is_handled_as_a_reconnection(redis_server, spawn):
    one = spawn(broker=redis_server.url)
    with redis_server.client() as admin:
        admin.config_set("client-output-buffer-limit", "pubsub 256kb 128kb 1")
    with client(one.ws_url) as ws:
        subscribe_all([ws], "big")
        wait_until(lambda: redis_server.numsub("big") == 1, message="subscription")
        # Block the process's event loop, so that it stops reading from Redis...
        blocker = threading.Thread(target=one.get, args=("/block?seconds=4", 30))
        blocker.start()
        try:
            wait_until(lambda: redis_server.numsub("big") == 1, message="still subscribed")
            chunk = b"x" * (256 * 1024)
            # ... and flood the channel past the kernel's socket buffers and Redis's limit.
            sent = 0
            while redis_server.numsub("big") and sent < 400:
                redis_server.publish_foreign("big", chunk)
                sent += 1
            assert redis_server.numsub("big") == 0, "Redis did not cut the slow subscriber"
        finally:
            blocker.join(timeout=30)
        with redis_server.client() as admin:
            assert int(admin.info("stats").get("client_output_buffer_limit_disconnections",
                                               1)) >= 1
        wait_until(lambda: redis_server.numsub("big") == 1, timeout=30,
                   message="resubscription after Redis cut the connection")
        redis_server.publish_foreign("big", b"after the cut", text=True)
        # What the process had already read before the cut may come first.
        received = receive_until(ws, "after the cut", timeout=30)
        assert all(message == chunk for message in received[:-1])
    assert one.get_json("/stats")["broker"]["reconnects"] >= 1


def test_redis_down_at_start_is_a_clear_error(tmp_path):
    port = RedisServer(tmp_path / "unused").port  # nothing listens there
    url = f"redis://127.0.0.1:{port}/0"
    process = VerbProcess(tmp_path / "verb", broker=url)
    try:
        code = process.proc.wait(timeout=30)
    finally:
        process.stop()
    log = process.log()
    assert code == 1, log
    assert f"cannot reach the Redis broker at {url}" in log and "broker_required=False" in log
    assert "Traceback" not in log


def test_redis_down_at_start_degraded_when_not_required(tmp_path):
    redis_server = RedisServer(tmp_path / "redis")  # started later
    process = VerbProcess(tmp_path / "verb", broker=redis_server.url,
                          env={"TEST_BROKER_REQUIRED": "0"}).wait_ready()
    try:
        assert "starting without it" in process.log()
        with client(process.ws_url) as a, client(process.ws_url) as b:
            subscribe_all([a, b], "room")
            a.send("pub room local only")
            assert receive_until(b, "local only") == ["local only"]
            redis_server.start()
            wait_until(lambda: redis_server.numsub("room") == 1, timeout=30,
                       message="subscription once Redis is up")
            redis_server.publish_foreign("room", b"from elsewhere", text=True)
            assert receive_until(b, "from elsewhere") == ["from elsewhere"]
        stats = process.get_json("/stats")["broker"]
        assert stats["connected"] and stats["outages"][0][1] == 1
    finally:
        process.stop()
        redis_server.stop()


# -- in-process: interface, options, errors -----------------------------------------------------

def test_broker_option_validation():
    assert Options().broker is None and Options().broker_required is True
    assert Options.from_kwargs(broker="redis://h:1/0").broker == "redis://h:1/0"
    assert Options.from_kwargs(broker="").broker is None
    with pytest.raises(ValueError, match="Redis URL"):
        Options.from_kwargs(broker="http://h")
    with pytest.raises(TypeError, match="broker"):
        Options.from_kwargs(broker=3)
    broker = InProcessBroker()
    assert Options.from_kwargs(broker=broker).broker is broker
    assert isinstance(broker_from_url("redis://h:1/0"), RedisBroker)
    assert isinstance(broker_from_url("memory://"), InProcessBroker)
    with pytest.raises(ValueError, match="unsupported broker URL"):
        broker_from_url("nats://h")


def test_redis_url_channel_prefix_is_ours_and_passwords_are_hidden():
    broker = RedisBroker("redis://u:secret@h:1/2?channel_prefix=app1:&socket_timeout=3")
    assert broker.channel_prefix == "app1:"
    assert broker.url == "redis://u:secret@h:1/2?socket_timeout=3"
    assert "secret" not in broker._safe_url()


def test_missing_redis_py_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("redis"):
            raise ImportError("No module named 'redis'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"pip install 'verb-ws\[redis\]'"):
        RedisBroker("redis://127.0.0.1:1/0")


def test_in_process_broker_hands_publishes_back():
    received = []
    broker = InProcessBroker()
    assert not broker.external
    asyncio.run(broker.start(lambda *args: received.append(args)))
    broker.publish("t", "é".encode(), True)
    broker.publish("t", b"\x00", False, True)
    assert received == [("t", "é", None), ("t", b"\x00", True)]


def test_without_a_broker_publish_stays_in_process():
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, m: None)
    with app.run_in_thread():
        assert app.broker is None
        assert app.publish("room", "x") == 0
        loop_result = asyncio.run(app.cluster_subscriber_count("room"))
        assert loop_result == 0


class RecordingBroker(Broker):
    """A custom broker: records what the app asks of it."""

    external = True

    def __init__(self):
        self.calls = []

    async def start(self, deliver, local_count=None):
        self.deliver = deliver
        self.calls.append("start")

    def subscribe(self, topic):
        self.calls.append(("subscribe", topic))

    def unsubscribe(self, topic):
        self.calls.append(("unsubscribe", topic))

    def publish(self, topic, payload, is_text, compress=None):
        self.calls.append(("publish", topic, payload, is_text, compress))

    async def close(self):
        self.calls.append("close")


def test_a_custom_broker_sees_first_and_last_subscribers_and_publishes():
    broker = RecordingBroker()
    app = create_server(ServerProtocol.WEBSOCKET, broker=broker)

    def on_message(ws, message):
        command_, _, rest = message.partition(" ")
        if command_ == "sub":
            ws.subscribe(rest)
        elif command_ == "unsub":
            ws.unsubscribe(rest)
        elif command_ == "pub":
            ws.publish("room", rest, compress=False)
        ws.send("done")

    app.websocket(message=on_message)
    with app.run_in_thread() as server, client(server.ws_url) as a, client(server.ws_url) as b:
        for ws, text in ((a, "sub room"), (b, "sub room"), (a, "unsub room"),
                         (a, "pub hi")):  # b gets "hi" behind its "done"
            ws.send(text)
            assert ws.recv(timeout=5) == "done"
        assert app.publish("room", b"\x01") == 1
        # A message from another process reaches the local subscriber.
        server.hub.loop.call_soon_threadsafe(broker.deliver, "room", "remote", None)
        assert b.recv(timeout=5) == "hi"
        assert b.recv(timeout=5) == b"\x01"
        assert b.recv(timeout=5) == "remote"
        assert app.broker is broker
    assert broker.calls == [
        "start", ("subscribe", "room"), ("publish", "room", b"hi", True, False),
        ("publish", "room", b"\x01", False, None), ("unsubscribe", "room"), "close"]


def test_broker_errors_in_callbacks_never_reach_the_connection(caplog):
    class FailingBroker(RecordingBroker):
        def subscribe(self, topic):
            raise RuntimeError("subscribe failed")

        def publish(self, *args, **kwargs):
            raise RuntimeError("publish failed")

    app = create_server(ServerProtocol.WEBSOCKET, broker=FailingBroker())

    def on_message(ws, message):
        ws.subscribe("room")
        ws.publish("room", message)
        ws.send("still fine")

    app.websocket(message=on_message)
    with caplog.at_level(logging.ERROR, logger="verb.pubsub"), app.run_in_thread() as server:
        with client(server.ws_url) as ws:
            ws.send("x")
            assert ws.recv(timeout=5) == "still fine"
    assert "subscription update failed" in caplog.text and "publishing through" in caplog.text


def test_redis_broker_in_process_round_trip(redis_server):
    """Two apps in one process, each with its own RedisBroker (as two workers would be)."""
    apps = []
    for _ in range(2):
        app = create_server(ServerProtocol.WEBSOCKET, broker=redis_server.url)
        app.websocket(message=lambda ws, m: ws.subscribe(m) or ws.send("ok"))
        apps.append(app)
    with apps[0].run_in_thread() as one, apps[1].run_in_thread() as two:
        with client(one.ws_url) as a, client(two.ws_url) as b:
            for ws in (a, b):
                ws.send("room")
                assert ws.recv(timeout=5) == "ok"
            wait_until(lambda: redis_server.numsub("room") == 2, message="subscriptions")
            loop = one.hub.loop
            future = asyncio.run_coroutine_threadsafe(
                apps[0].cluster_subscriber_count("room"), loop)
            assert future.result(timeout=10) == 2
            loop.call_soon_threadsafe(apps[0].publish, "room", "hello")
            assert a.recv(timeout=5) == "hello"
            assert b.recv(timeout=5) == "hello"
            assert_nothing_more(a)
    assert apps[0].broker is None


def test_redis_broker_start_failure_raises_broker_unavailable():
    async def main():
        broker = RedisBroker("redis://127.0.0.1:1/0", connect_timeout=1)
        with pytest.raises(BrokerUnavailable, match="cannot reach the Redis broker"):
            await broker.start(lambda *args: None)
        await broker.close()

    asyncio.run(main())


@pytest.mark.parametrize("to_self", [False, True])
def test_publish_to_self_across_processes(redis_server, to_self):
    """ws.publish reaches the publishing connection once with publish_to_self, never without;
    other processes' subscribers get it once either way."""
    apps = []
    for _ in range(2):
        app = create_server(ServerProtocol.WEBSOCKET, broker=redis_server.url,
                            publish_to_self=to_self)

        def on_message(ws, message):
            if message == "sub":
                ws.subscribe("room")
                ws.send("ok")
            else:
                ws.publish("room", message)

        app.websocket(message=on_message)
        apps.append(app)
    with apps[0].run_in_thread() as one, apps[1].run_in_thread() as two, \
            client(one.ws_url) as publisher, client(two.ws_url) as remote:
        for ws in (publisher, remote):
            ws.send("sub")
            assert ws.recv(timeout=5) == "ok"
        wait_until(lambda: redis_server.numsub("room") == 2, message="subscriptions")
        publisher.send("first")
        publisher.send(b"\x00second")
        assert [remote.recv(timeout=5), remote.recv(timeout=5)] == ["first", b"\x00second"]
        if to_self:
            assert [publisher.recv(timeout=5), publisher.recv(timeout=5)] == [
                "first", b"\x00second"]
        assert_nothing_more(publisher)
        assert_nothing_more(remote)
