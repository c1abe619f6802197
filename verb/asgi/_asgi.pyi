"""Stub of verb.asgi._asgi (compiled): the ASGI front-end's connection and scopes."""

from typing import Any, Awaitable, Callable, Optional

class ClientDisconnected(OSError):
    """send() on a connection that is gone (ASGI spec 2.4: an OSError subclass)."""

class AsgiConfig:
    app: Any
    root_path: str
    state: dict
    server_header: bytes
    access_log: bool
    ws_max_queue: int
    metrics_path: Optional[str]
    metrics: Optional[Callable[[], tuple[bytes, str]]]
    def __init__(self, app: Any, root_path: str = ..., state: Optional[dict] = ...,
                 server_header: bool = ..., access_log: bool = ..., ws_max_queue: int = ...,
                 metrics_path: Optional[str] = ...,
                 metrics: Optional[Callable[[], tuple[bytes, str]]] = ...) -> None: ...

class AsgiConnectionBase:
    def __init__(self, hub: Any, config: AsgiConfig) -> None: ...

class AsgiWebSocket:
    scope: dict
    def receive(self) -> Awaitable[dict]: ...
    def send(self, message: dict) -> Awaitable[None]: ...

def on_open(ws: Any) -> None: ...
def on_message(ws: Any, message: Any) -> None: ...
def on_close(ws: Any, code: int, reason: str) -> None: ...
def on_drain(ws: Any) -> None: ...
