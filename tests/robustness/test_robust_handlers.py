"""Faulty handlers: an exception in any handler reaches `error` (the connection stays open for
it to decide) or, without one, closes that one connection with 1011 (500 for upgrade); the
server and every other connection carry on."""

import asyncio
import logging
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from robust_util import echo_ok, report, wait_for
from verb import ServerProtocol, create_server

KINDS = ["open", "message", "close", "drain", "ping", "pong", "upgrade"]


class Boom(Exception):
    pass


def faulty_app(kind, with_error, is_async=False):
    errors = []
    calls = []
    app = create_server(ServerProtocol.WEBSOCKET)

    def maybe_raise(name, request):
        # Only connections to /boom fault: the bystanders on / must not be touched.
        if request.path == "/boom":
            calls.append(name)
            if name == kind:
                raise Boom(name)

    def message(ws, m):
        if m == "fill":  # a burst over the backpressure limit, so that drain fires
            for _ in range(8):
                ws.send(b"x" * 65536)
            return
        if m == "hello":
            maybe_raise("message", ws.request)
        ws.send(m)

    handlers = dict(
        open=lambda ws: maybe_raise("open", ws.request),
        message=message,
        close=lambda ws, code, reason: maybe_raise("close", ws.request),
        drain=lambda ws: maybe_raise("drain", ws.request),
        ping=lambda ws, data: maybe_raise("ping", ws.request),
        pong=lambda ws, data: maybe_raise("pong", ws.request),
        upgrade=lambda req: maybe_raise("upgrade", req),
    )
    if is_async:
        sync_fn = handlers[kind]

        async def async_fn(*args):
            await asyncio.sleep(0)
            return sync_fn(*args)

        handlers[kind] = async_fn
    if with_error:
        handlers["error"] = lambda ws, exc: errors.append((ws.ready_state, exc))
    app.websocket(backpressure_limit=128 * 1024, **handlers)
    return app, errors, calls


def _provoke(kind, ws):
    """Make the server call the `kind` handler on the connection `ws` (already open)."""
    if kind == "message":
        ws.send("hello")
    elif kind == "ping":
        ws.ping(b"p")
    elif kind == "pong":
        ws.pong(b"unsolicited")
    elif kind == "drain":
        ws.send("fill")
        for _ in range(2):  # 2 x 64 KiB were accepted (the limit is 128 KiB); read them
            ws.recv(timeout=5)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("kind", KINDS)
def test_handler_exception_reaches_error_handler_and_connection_stays_open(kind, is_async):
    app, errors, calls = faulty_app(kind, with_error=True, is_async=is_async)
    with app.run_in_thread() as srv:
        with connect(srv.ws_url, proxy=None, compression=None) as bystander:
            if kind == "upgrade":
                with pytest.raises(InvalidStatus) as info:
                    connect(srv.ws_url + "/boom", proxy=None, compression=None, open_timeout=5)
                assert info.value.response.status_code == 500
                assert errors == []  # no WebSocket yet: `error` is not involved
            else:
                with connect(srv.ws_url + "/boom", proxy=None, compression=None) as ws:
                    _provoke(kind, ws)
                    if kind != "close":
                        wait_for(lambda: errors, timeout=5)
                        state, exc = errors[0]
                        assert isinstance(exc, Boom) and str(exc) == kind
                        assert state == 1  # still OPEN: `error` decides
                        ws.send("still open?")  # the same connection keeps working
                        while (reply := ws.recv(timeout=5)) != "still open?":
                            assert isinstance(reply, bytes)  # leftovers of "fill"
                if kind == "close":
                    wait_for(lambda: errors, timeout=5)
                    assert isinstance(errors[0][1], Boom)
            bystander.send("bystander")
            assert bystander.recv(timeout=5) == "bystander"
        assert echo_ok(srv.port) < 2
    report(f"{kind} ({'async' if is_async else 'sync'}) raised -> error handler calls",
           len(errors))


@pytest.mark.parametrize("kind", KINDS)
def test_handler_exception_without_error_handler_closes_1011_or_500(kind, caplog):
    caplog.set_level(logging.CRITICAL, logger="verb")  # the tracebacks are expected here
    app, errors, calls = faulty_app(kind, with_error=False)
    with app.run_in_thread() as srv:
        with connect(srv.ws_url, proxy=None, compression=None) as bystander:
            if kind == "upgrade":
                with pytest.raises(InvalidStatus) as info:
                    connect(srv.ws_url + "/boom", proxy=None, compression=None, open_timeout=5)
                code = info.value.response.status_code
                assert code == 500
            elif kind == "close":
                with connect(srv.ws_url + "/boom", proxy=None, compression=None) as ws:
                    ws.send("x")
                    assert ws.recv(timeout=5) == "x"
                wait_for(lambda: calls.count("close") == 1)
                code = None
            else:
                with connect(srv.ws_url + "/boom", proxy=None, compression=None) as ws:
                    start = time.monotonic()
                    with pytest.raises(ConnectionClosed) as info:
                        _provoke(kind, ws)
                        while time.monotonic() - start < 5:
                            ws.recv(timeout=5)
                    code = info.value.rcvd.code if info.value.rcvd else None
                    assert code == 1011, info.value
            bystander.send("bystander")
            assert bystander.recv(timeout=5) == "bystander"
        assert echo_ok(srv.port) < 2
    report(f"{kind} raised, no error handler -> close code / status", code)
