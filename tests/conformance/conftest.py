"""Echo servers for the conformance suite, one per configuration, shared by the whole session."""

import pytest

from verb import ServerProtocol, create_server

MIB = 1 << 20
# 4 MiB messages are the largest the suite sends (group 9); leave headroom.
MAX_PAYLOAD = 8 * MIB


LOOPS = ["uvloop", "asyncio"]


def _echo_server(loop="uvloop", **options):
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, message: ws.send(message), **options)
    return app.run_in_thread(use_uvloop=loop == "uvloop")


@pytest.fixture(scope="session", params=LOOPS)
def server(request):
    """Plain echo server, compression off, on each event loop."""
    with _echo_server(request.param, max_payload_length=MAX_PAYLOAD) as srv:
        yield srv


@pytest.fixture(scope="session",
                params=[(mode, loop) for mode in ("shared", "dedicated") for loop in LOOPS],
                ids=lambda p: "-".join(p))
def deflate_server(request):
    """Echo server with permessage-deflate in the given mode, on each event loop."""
    mode, loop = request.param
    with _echo_server(loop, max_payload_length=MAX_PAYLOAD, compression=mode) as srv:
        srv.compression_mode = mode
        yield srv


SMALL_LIMIT = 1000


@pytest.fixture(scope="session", params=LOOPS)
def small_server(request):
    """Echo server with max_payload_length=1000, compression "dedicated" offered."""
    with _echo_server(request.param, max_payload_length=SMALL_LIMIT,
                      compression="dedicated") as srv:
        yield srv
