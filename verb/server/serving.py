"""The plumbing every front-end serves with: the listening socket, the event loop, and the
asyncio protocol class of a new connection.

`Connection` is the compiled `ConnectionBase` with asyncio's BufferedProtocol as a second base,
so that uvloop and asyncio both read into the hub's shared buffer.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine
from typing import Any

from verb.server._server import ConnectionBase

__all__ = ["Connection", "bound_socket", "new_loop", "run"]


class Connection(ConnectionBase, asyncio.BufferedProtocol):
    """ConnectionBase seen by the event loop as a BufferedProtocol (its read path)."""

    __slots__ = ()


def bound_socket(port: int, host: str, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to (host, port); with `reuse_port`, SO_REUSEPORT (Linux: the kernel
    spreads connections over the listening sockets of the processes sharing the port)."""
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int from 0 to 65535, got {port!r}")
    if host == "localhost":
        host = "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def new_loop() -> asyncio.AbstractEventLoop:
    """A new uvloop event loop, or asyncio's where uvloop is not installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run `coro` to completion on a new loop (see `new_loop`), then close the loop."""
    loop = new_loop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)
    finally:
        asyncio.set_event_loop(None)
        loop.close()
