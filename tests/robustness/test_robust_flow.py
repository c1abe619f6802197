"""Flow control: a client that stops reading costs the server at most backpressure_limit plus
one message, sends report it as documented, other clients are not held up, and peers that go
silent or never answer a close are cut on time."""

import asyncio
import socket
import threading
import time

import pytest
from websockets.sync.client import connect

from robust_util import (OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT, RawWS, SubprocessServer,
                         echo_ok, frame, report, reset_peak_rss, wait_for)
from verb import ServerProtocol, create_server

KIB = 1024
LIMIT = 1024 * KIB
BIG = b"\xab" * (64 * KIB)
FRAME = len(BIG) + 10  # a 64 KiB binary frame with its 10-byte header


def flow_app(**options):
    state = {"flood": [], "publish": [], "drains": 0, "ws": {}, "closed": []}
    app = create_server(ServerProtocol.WEBSOCKET)

    async def message(ws, m):
        if isinstance(m, bytes):
            ws.send(m)
            return
        command, _, arg = m.partition(":")
        if command == "name":
            state["ws"][arg] = ws
            ws.subscribe("news")
        elif command == "flood":  # n sends of 64 KiB, one per loop iteration
            for _ in range(int(arg)):
                before = ws.buffered_amount
                status = ws.send(BIG)
                state["flood"].append((before, status, ws.buffered_amount, ws.ready_state))
                await asyncio.sleep(0)
        elif command == "publish":  # n publishes of 64 KiB; watch the stuck subscriber
            stuck = state["ws"]["stuck"]
            for _ in range(int(arg)):
                delivered = ws.publish("news", BIG)
                state["publish"].append((delivered, stuck.buffered_amount))
                await asyncio.sleep(0)
        else:
            ws.send(m)

    def drain(ws):
        state["drains"] += 1

    app.websocket(message=message, drain=drain,
                  close=lambda ws, code, reason: state["closed"].append(code),
                  backpressure_limit=LIMIT, **options)
    return app, state


def _read_all(ws, quiet=1.0, limit=30.0):
    """Read frames until none arrives for `quiet` s; returns (data frames, close code)."""
    frames, deadline = 0, time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            opcode, payload = ws.recv_frame(timeout=quiet)
        except (socket.timeout, EOFError, ConnectionResetError):
            return frames, None
        if opcode == OP_CLOSE:
            return frames, int.from_bytes(payload[:2], "big")
        if opcode == OP_BINARY:
            frames += 1
    raise AssertionError("server kept sending")


def test_stuck_reader_is_bounded_send_reports_status_others_unaffected():
    app, state = flow_app()
    with app.run_in_thread() as srv:
        with RawWS(srv.port, rcvbuf=32 * KIB) as stuck, connect(
                srv.ws_url, proxy=None, compression=None) as other:
            stuck.send(frame(OP_TEXT, b"name:stuck"))
            other.send("name:other")
            wait_for(lambda: "stuck" in state["ws"] and "other" in state["ws"])
            stuck.send(frame(OP_TEXT, b"flood:400"))  # 25 MiB; then this client stops reading
            rtts = []
            while len(state["flood"]) < 400 and len(rtts) < 1000:
                start = time.perf_counter()
                other.send("rtt?")
                assert other.recv(timeout=2) == "rtt?"
                rtts.append(time.perf_counter() - start)
            wait_for(lambda: len(state["flood"]) == 400, timeout=10)
            for i in range(20):  # and once the stuck client sits at its limit
                start = time.perf_counter()
                other.send("rtt?")
                assert other.recv(timeout=2) == "rtt?"
                rtts.append(time.perf_counter() - start)

            flood = state["flood"]
            statuses = [s for _, s, _, _ in flood]
            peak = max(after for _, _, after, _ in flood)
            accepted = sum(1 for s in statuses if s != 0)
            report("stuck reader: peak buffered_amount (bytes), limit + one frame",
                   f"{peak} <= {LIMIT + FRAME}")
            report("stuck reader: sends >0 / -1 / 0", (sum(s > 0 for s in statuses),
                                                       statuses.count(-1), statuses.count(0)))
            report("other client: max echo round trip while the first is stuck (s)",
                   round(max(rtts), 4))
            assert peak <= LIMIT + FRAME, peak
            assert all(s > 0 or s in (-1, 0) for s in statuses)
            assert statuses[0] > 0 and -1 in statuses and 0 in statuses
            for before, status, _, _ in flood:  # Bun's contract, as DESIGN.md states it
                assert (status == 0) == (before >= LIMIT), (before, status)
                if status == -1:
                    assert before > 0
            assert max(rtts) < 2.0, max(rtts)
            assert srv.hub.stats()["backpressure_drops"] == statuses.count(0)

            # Publishing to the stuck subscriber is bounded the same way, and skips it.
            other.send("publish:100")
            wait_for(lambda: len(state["publish"]) == 100, timeout=10)
            pub_peak = max(b for _, b in state["publish"])
            delivered = sum(d for d, _ in state["publish"])
            report("stuck subscriber: peak buffered_amount during 100 publishes (bytes)", pub_peak)
            assert pub_peak <= LIMIT + FRAME, pub_peak
            assert delivered < 100  # over the limit, publish drops the message for it
            assert state["ws"]["other"].ready_state == 1

            # The stuck client reads again: it gets exactly what was accepted, then drain fires.
            drains_before = state["drains"]
            frames, code = _read_all(stuck)
            report("stuck reader: frames received / accepted", f"{frames}/{accepted + delivered}")
            assert code is None and frames == accepted + delivered
            wait_for(lambda: state["drains"] > drains_before)
            assert state["ws"]["stuck"].buffered_amount == 0


def test_close_on_backpressure_limit_closes_the_stuck_connection_1008():
    app, state = flow_app(close_on_backpressure_limit=True, close_timeout=2.0)
    with app.run_in_thread() as srv:
        with RawWS(srv.port, rcvbuf=32 * KIB) as stuck:
            stuck.send(frame(OP_TEXT, b"name:stuck"))
            stuck.send(frame(OP_TEXT, b"flood:100"))
            wait_for(lambda: len(state["flood"]) == 100, timeout=10)
            flood = state["flood"]
            first_drop = next(i for i, (_, s, _, _) in enumerate(flood) if s == 0)
            assert flood[first_drop][3] == 2  # CLOSING right at the first refused send
            assert all(s == 0 for _, s, _, _ in flood[first_drop:])
            peak = max(after for _, _, after, _ in flood)
            frames, code = _read_all(stuck)
            report("close_on_backpressure_limit: close code, frames read before it, peak buffered",
                   (code, frames, peak))
            assert code == 1008
            assert frames == first_drop
            assert peak <= LIMIT + FRAME + 64, peak
            stuck.send(frame(OP_CLOSE, (1008).to_bytes(2, "big")))
            wait_for(lambda: state["closed"] == [1008])
        assert echo_ok(srv.port) < 2


@pytest.mark.parametrize("close_timeout", [1.0])
def test_peer_that_never_answers_a_close_is_cut_after_close_timeout(close_timeout):
    app = create_server(ServerProtocol.WEBSOCKET)
    closed = []
    app.websocket(message=lambda ws, m: ws.close(1000, "bye"),
                  close=lambda ws, code, reason: closed.append((code, reason)),
                  close_timeout=close_timeout)
    with app.run_in_thread() as srv:
        with RawWS(srv.port) as ws:
            ws.send(frame(OP_TEXT, b"close me"))
            code, _ = ws.recv_until_close()
            start = time.monotonic()
            assert code == 1000
            assert ws.wait_eof(close_timeout + 3)  # never answered
            elapsed = time.monotonic() - start
        report("unanswered close: connection cut after (s)", round(elapsed, 3))
        assert close_timeout - 0.05 <= elapsed <= close_timeout + 1.5, elapsed
        wait_for(lambda: closed)
        assert closed[0][0] == 1006
        assert srv.hub.stats()["websockets"] == 0


def test_silent_peer_is_pinged_then_closed_by_idle_timeout():
    idle = 1.0
    app = create_server(ServerProtocol.WEBSOCKET)
    closed = []
    app.websocket(message=lambda ws, m: ws.send(m), idle_timeout=idle, close_timeout=1.0,
                  close=lambda ws, code, reason: closed.append(code))
    with app.run_in_thread() as srv:
        with RawWS(srv.port) as silent, connect(srv.ws_url, proxy=None,
                                                compression=None) as polite:
            start = time.monotonic()
            opcode, _ = silent.recv_frame(timeout=idle + 2)
            t_ping = time.monotonic() - start
            assert opcode == OP_PING
            code, frames = silent.recv_until_close(timeout=idle + 2)
            t_close = time.monotonic() - start
            assert silent.wait_eof(3)
            t_cut = time.monotonic() - start
            report("silent peer: ping at / close 1001 at / cut at (s)",
                   (round(t_ping, 3), round(t_close, 3), round(t_cut, 3)))
            assert frames == [] and code == 1001
            # The sweep runs every idle/8 s and its clock may lag by one interval.
            assert idle / 2 - 0.2 <= t_ping < t_close
            assert idle - 0.2 <= t_close <= idle + 1.5, t_close
            # The websockets client answers pings: it stays open through 2 idle timeouts.
            time.sleep(max(0.0, 2 * idle - (time.monotonic() - start)) + 0.5)
            polite.send("alive?")
            assert polite.recv(timeout=2) == "alive?"
        wait_for(lambda: len(closed) == 2)


def test_http_pipelining_client_that_never_reads_costs_bounded_memory():
    # 20 MiB of pipelined GETs, none of whose responses are read: the server must stop reading
    # rather than buffer every response (each one larger than its request).
    mib = 1 << 20
    with SubprocessServer() as srv:
        echo_ok(srv.port)
        time.sleep(0.2)
        rss_before = srv.rss()
        assert reset_peak_rss(srv.pid)
        request = b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n" * 2000
        sent, start = 0, time.monotonic()
        with socket.create_connection(("127.0.0.1", srv.port)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(0.5)
            while sent < 20 * mib and time.monotonic() - start < 10:
                try:
                    sock.sendall(request)
                except (socket.timeout, ConnectionResetError, BrokenPipeError):
                    break  # the server stopped reading (or dropped us): good
                sent += len(request)
            growth = srv.peak_rss() - rss_before
            assert echo_ok(srv.port) < 2  # others are served meanwhile
            sock.settimeout(2)
            head = sock.recv(65536)
        report("pipelining non-reader: request bytes sent (MiB), server peak RSS growth (MiB)",
               (round(sent / mib, 1), round(growth / mib, 1)))
        assert head.startswith(b"HTTP/1.1 200"), head[:50]
        assert growth < 32 * mib, growth


@pytest.mark.parametrize("use_uvloop", [True, False], ids=["uvloop", "asyncio"])
def test_http_pipelining_non_reader_is_paused_then_every_request_is_answered(use_uvloop):
    one = b"GET /r HTTP/1.1\r\nHost: x\r\n\r\n"
    app = create_server(ServerProtocol.WEBSOCKET)
    app.get("/r", lambda req, res: res.text("ok " * 20))
    app.websocket(message=lambda ws, m: ws.send(m))
    runner = app.run_in_thread(use_uvloop=use_uvloop)
    srv = runner.__enter__()

    async def buffered():
        return max((c.transport.get_write_buffer_size() for c in srv.hub.connections
                    if c.transport is not None), default=0)

    def server_buffered():
        return asyncio.run_coroutine_threadsafe(buffered(), runner.loop).result(5)

    try:
        blob = one * 4000
        sent, stalls, peak, start = 0, 0, 0, time.monotonic()
        with socket.create_connection(("127.0.0.1", srv.port)) as sock:
            sock.setblocking(False)
            while stalls < 5 and sent < 40 << 20 and time.monotonic() - start < 10:
                try:
                    sent += sock.send(blob[sent % len(blob):])
                    stalls = 0
                except BlockingIOError:
                    stalls += 1
                    peak = max(peak, server_buffered())
                    time.sleep(0.05)
            peak = max(peak, server_buffered())
            # Now read every response (in a thread), finish the partial request, add a last one.
            sock.setblocking(True)
            sock.settimeout(20)
            data = bytearray()

            def read_all():
                while time.monotonic() - start < 30:
                    try:
                        chunk = sock.recv(1 << 20)
                    except OSError:
                        return
                    if not chunk:
                        return
                    data.extend(chunk)

            reader = threading.Thread(target=read_all)
            reader.start()
            tail = one[sent % len(one):] if sent % len(one) else b""
            sock.sendall(tail + b"GET /r HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            expected = -(-sent // len(one)) + 1
            reader.join(30)
        answered = data.count(b"HTTP/1.1 200")
        report(f"pipelining non-reader ({'uvloop' if use_uvloop else 'asyncio'}): requests "
               f"sent, peak server write buffer (KiB), answered",
               (expected, peak // 1024, answered))
        assert answered == expected
        assert peak < 8 << 20, peak
        assert echo_ok(srv.port) < 2
    finally:
        runner.__exit__(None, None, None)


def test_ping_flood_from_a_non_reader_is_bounded_by_backpressure_limit():
    # Every ping asks for a pong; a peer that pings without reading must not grow our buffer.
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, m: ws.send(m), backpressure_limit=256 * KIB)
    with app.run_in_thread() as srv:
        with RawWS(srv.port, rcvbuf=4096) as flooder:
            ping = frame(OP_PING, b"p" * 125)
            sent, start = 0, time.monotonic()
            flooder.sock.settimeout(0.5)
            while sent < 200_000 and time.monotonic() - start < 10:
                try:
                    flooder.send(ping * 500)
                except socket.timeout:
                    break
                sent += 500
            ws = next(iter(srv.hub.websockets))
            peak = ws.buffered_amount
            drops = srv.hub.stats()["backpressure_drops"]
            report("ping flood: pings sent, server buffered (bytes), pongs dropped",
                   (sent, peak, drops))
            assert peak <= 256 * KIB + 127, peak
            assert drops > 0
            assert echo_ok(srv.port) < 2


def test_message_flood_to_an_async_handler_is_bounded():
    # Tiny messages arrive far faster than an async handler takes them: the server pauses
    # reading once events pile up (MAX_PENDING_EVENTS) instead of queueing without bound.
    n = 30000
    mib = 1 << 20
    with SubprocessServer(async_handler=True) as srv:
        echo_ok(srv.port)
        time.sleep(0.2)
        rss_before = srv.rss()
        assert reset_peak_rss(srv.pid)
        with RawWS(srv.port) as ws:
            data = b"".join(frame(OP_BINARY, b"%05d" % i) for i in range(n))
            got = []

            def read():
                try:
                    while len(got) < n:
                        got.append(ws.recv_frame(timeout=20)[1])
                except (socket.timeout, EOFError, OSError):
                    pass

            reader = threading.Thread(target=read)
            reader.start()
            start = time.monotonic()
            ws.sock.settimeout(20)
            ws.send(data)
            reader.join(30)
            elapsed = time.monotonic() - start
        growth = srv.peak_rss() - rss_before
        report("async-handler flood: messages echoed in order, seconds, peak RSS growth (MiB)",
               (len(got), round(elapsed, 2), round(growth / mib, 1)))
        assert got == [b"%05d" % i for i in range(n)]
        assert growth < 32 * mib, growth


@pytest.mark.parametrize("use_uvloop", [True, False], ids=["uvloop", "asyncio"])
def test_tls_sends_without_backpressure_report_bytes_and_fire_no_drain(use_uvloop):
    # Over TLS as over TCP, a send that the kernel takes at once returns its size: not -1
    # (backpressure) with a spurious `drain`, when nothing is buffered at all.
    import ssl

    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    app = create_server(ServerProtocol.WEBSOCKETS, tls={
        "cert": cert.cert_chain_pems[0].bytes().decode(),
        "key": cert.private_key_pem.bytes().decode()})
    statuses, drains = [], []

    async def ticker(ws):
        for _ in range(6):  # sends outside a read, each after the previous one left
            statuses.append((ws.send("tick"), ws.buffered_amount))
            await asyncio.sleep(0.05)

    app.websocket(open=lambda ws: asyncio.get_running_loop().create_task(ticker(ws)),
                  drain=lambda ws: drains.append(1))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with app.run_in_thread(use_uvloop=use_uvloop) as srv:
        with connect(srv.ws_url, ssl=context, proxy=None, compression=None) as ws:
            for _ in range(6):
                assert ws.recv(timeout=5) == "tick"
            time.sleep(0.1)
    report("TLS sends outside a read: (status, buffered_amount), drains", (statuses, len(drains)))
    assert [s for s, _ in statuses] == [6] * 6
    assert drains == []
