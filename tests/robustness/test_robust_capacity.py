"""Capacity: thousands of concurrent connections, a clean 503 past max_connections, and
connection churn without leaking memory or protocol objects."""

import asyncio
import gc
import time
import weakref

import pytest
from websockets.sync.client import connect

from robust_util import (SubprocessServer, aio_close, aio_echo, aio_open, echo_ok,
                         raise_nofile_limit, raw_exchange, report, status_of, upgrade_request,
                         wait_for)
from verb import ServerProtocol, create_server

MIB = 1 << 20


def _new_loop():
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(coro, timeout):
    """Run `coro` on a fresh loop, cancelled after `timeout` s: every load loop stops."""
    loop = _new_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))
    finally:
        loop.close()


@pytest.mark.slow
def test_5000_concurrent_websockets_all_echo(full_tier):
    n = 12000 if full_tier else 5000
    assert raise_nofile_limit() >= n + 100
    with SubprocessServer() as srv:
        async def main():
            gate = asyncio.Semaphore(200)  # connect at most 200 at a time (listen backlog)

            async def open_one(i):
                async with gate:
                    return await aio_open(srv.port)

            conns = await asyncio.gather(*(open_one(i) for i in range(n)))
            assert all(status == 101 for _, _, status in conns)
            stats = await asyncio.to_thread(srv.stats)
            rss = srv.rss()
            await asyncio.gather(*(aio_echo(r, w, b"hello %d" % i)
                                   for i, (r, w, _) in enumerate(conns)))
            codes = await asyncio.gather(*(aio_close(r, w) for r, w, _ in conns))
            return stats, rss, codes

        start = time.monotonic()
        stats, rss, codes = run(main(), timeout=90)
        elapsed = time.monotonic() - start
        report("concurrent WebSockets open at once (server stats), server RSS (MiB)",
               (stats["websockets"], round(rss / MIB, 1)))
        report(f"{n} open + echo + close took (s)", round(elapsed, 2))
        assert stats["websockets"] == n, stats
        assert codes == [1000] * n
        wait_for(lambda: srv.stats()["websockets"] == 0, timeout=10)
        assert echo_ok(srv.port) < 2


def test_max_connections_excess_gets_503_cleanly():
    limit = 20
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, m: ws.send(m), max_connections=limit)
    with app.run_in_thread() as srv:
        async def main():
            conns = [await aio_open(srv.port) for _ in range(limit)]
            assert [s for _, _, s in conns] == [101] * limit
            refused = []
            for _ in range(10):
                start = time.monotonic()
                response = await asyncio.to_thread(raw_exchange, srv.port, upgrade_request(), 5)
                refused.append((status_of(response), time.monotonic() - start,
                                response.endswith(b"\n")))
            for i, (r, w, _) in enumerate(conns):
                await aio_echo(r, w, b"still here %d" % i)
            await aio_close(*conns[0][:2])
            await asyncio.to_thread(wait_for, lambda: srv.hub.stats()["websockets"] < limit)
            again = await aio_open(srv.port)
            for r, w, _ in conns[1:] + [again]:
                await aio_close(r, w)
            return refused, again[2]

        refused, again = run(main(), timeout=30)
        report(f"max_connections={limit}: 10 excess attempts -> statuses",
               sorted({s for s, _, _ in refused}))
        report("503 answered and closed within (s)", round(max(t for _, t, _ in refused), 4))
        assert [s for s, _, _ in refused] == [503] * 10
        assert all(t < 1.0 and complete for _, t, complete in refused)  # closed, not hung
        assert again == 101  # a freed slot is usable again
        wait_for(lambda: srv.hub.stats()["websockets"] == 0)


async def _churn(port, cycles, concurrency, deadline):
    """`cycles` connect/echo/close cycles, `concurrency` at a time, stopping at `deadline`."""
    done = 0
    counter = iter(range(cycles))

    async def worker():
        nonlocal done
        for i in counter:
            if time.monotonic() > deadline:
                return
            reader, writer, status = await aio_open(port)
            assert status == 101
            await aio_echo(reader, writer, b"churn %d" % i)
            assert await aio_close(reader, writer) == 1000
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


@pytest.mark.slow
def test_20000_connection_churn_rss_bounded_and_stats_return_to_zero(full_tier):
    warmup, total = 2000, (200_000 if full_tier else 20_000)
    with SubprocessServer() as srv:
        start = time.monotonic()
        done = run(_churn(srv.port, warmup, 50, time.monotonic() + 30), timeout=40)
        assert done == warmup
        wait_for(lambda: srv.stats()["connections"] <= 1, timeout=10)
        rss_warm = srv.rss()
        t0 = time.monotonic()
        budget = 100 * total / 20_000  # ~6,000 cycles/s measured here: a wide margin
        done = run(_churn(srv.port, total - warmup, 50, time.monotonic() + budget),
                   timeout=budget + 10)
        rate = done / (time.monotonic() - t0)
        stats = wait_for(lambda: (s := srv.stats())["connections"] <= 1 and s, timeout=10)
        rss_end = srv.rss()
        growth = rss_end - rss_warm
        report("churn: cycles, cycles/s", (warmup + done, round(rate)))
        report(f"churn: server RSS after warm-up / after {total} cycles / growth (MiB)",
               (round(rss_warm / MIB, 2), round(rss_end / MIB, 2), round(growth / MIB, 2)))
        assert done == total - warmup
        assert stats["websockets"] == 0 and stats["connections"] <= 1, stats  # 1: this GET
        assert stats["connections_total"] >= total
        assert growth < 20 * MIB, growth
        assert time.monotonic() - start < budget + 50


def _verb_objects():
    names = ("WebSocketProtocol", "Connection", "FrameParser", "Request")
    counts = dict.fromkeys(names, 0)
    for obj in gc.get_objects():
        kind = type(obj)
        name = kind.__name__
        if name in counts and kind.__module__.startswith("verb"):
            counts[name] += 1
    return counts


def test_churn_leaves_no_protocol_objects_behind():
    seen = weakref.WeakSet()
    opened = []
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, m: ws.send(m),
                  open=lambda ws: (seen.add(ws), opened.append(1)))
    with app.run_in_thread() as srv:
        run(_churn(srv.port, 50, 10, time.monotonic() + 10), timeout=20)  # warm up
        wait_for(lambda: srv.hub.stats()["connections"] == 0)
        gc.collect()
        baseline = _verb_objects()
        # The census sees these objects while a connection is open.
        with connect(srv.ws_url, proxy=None, compression=None) as ws:
            ws.send("x")
            assert ws.recv(timeout=5) == "x"
            during = _verb_objects()
        assert during["WebSocketProtocol"] > baseline["WebSocketProtocol"], during
        # After the upgrade the transport reports to the WebSocket: the HTTP connection
        # object and the parsed request are gone (memory per idle connection).
        assert during["Connection"] == baseline["Connection"], during
        assert during["Request"] == baseline["Request"], during
        wait_for(lambda: srv.hub.stats()["connections"] == 0)
        done = run(_churn(srv.port, 2000, 20, time.monotonic() + 30), timeout=40)
        wait_for(lambda: srv.hub.stats()["connections"] == 0)
        stats = srv.hub.stats()
        gc.collect()
        after = _verb_objects()
        alive = len(seen)
    report("in-process churn: cycles, verb objects before/after (gc)", (done, baseline, after))
    report("in-process churn: ServerWebSockets opened / still alive (weakrefs)",
           (len(opened), alive))
    assert done == 2000
    assert len(opened) == 2000 + 50 + 1 and alive == 0
    assert stats["websockets"] == 0 and stats["connections"] == 0, stats
    for name, count in after.items():
        assert count <= baseline[name], (name, baseline, after)
