"""Echo servers for the conformance suite, one per configuration, shared by the whole session."""

import pytest

from verb import ServerProtocol, create_server

MIB = 1 << 20
# 4 MiB messages are the largest the suite sends (group 9); leave headroom.
MAX_PAYLOAD = 8 * MIB


def _echo_server(**options):
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, message: ws.send(message), **options)
    return app.run_in_thread()


@pytest.fixture(scope="session")
def server():
    """Plain echo server, compression off."""
    with _echo_server(max_payload_length=MAX_PAYLOAD) as srv:
        yield srv


@pytest.fixture(scope="session", params=["shared", "dedicated"])
def deflate_server(request):
    """Echo server with permessage-deflate in the given mode."""
    with _echo_server(max_payload_length=MAX_PAYLOAD, compression=request.param) as srv:
        srv.compression_mode = request.param
        yield srv
