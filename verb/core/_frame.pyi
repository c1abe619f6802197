from typing import Optional, Union

from verb.core._deflate import Inflater
from verb.core.events import BinaryMessage, Close, Ping, Pong, ProtocolError, TextMessage

_BytesLike = Union[bytes, bytearray, memoryview]
_Event = Union[TextMessage, BinaryMessage, Ping, Pong, Close, ProtocolError]

TEXT: int
BINARY: int
CONTINUATION: int
CLOSE: int
PING: int
PONG: int
DEFAULT_MAX_PAYLOAD_LENGTH: int
# Ready states (RFC 6455 sections 4 and 7), as the browser's WebSocket.readyState.
CONNECTING: int
OPEN: int
CLOSING: int
CLOSED: int

def valid_close_code(code: int) -> bool: ...
def check_close(code: Optional[int], reason: str) -> int: ...

class FrameHandler: ...

class EventCollector(FrameHandler):
    events: list[_Event]

class FrameParser:
    handler: FrameHandler
    server: bool
    max_payload_length: int
    close_code: int
    close_reason: Optional[str]
    def __init__(
        self,
        handler: FrameHandler,
        *,
        server: bool = ...,
        max_payload_length: Optional[int] = ...,
        inflater: Optional[Inflater] = ...,
    ) -> None: ...
    inflater: Optional[Inflater]
    @property
    def failed(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    @property
    def buffered(self) -> int: ...
    @property
    def allocated(self) -> int: ...
    def feed(self, data: _BytesLike) -> None: ...
    def feed_inplace(self, buffer: Union[bytearray, memoryview]) -> None: ...

def encode_frame(
    opcode: int,
    data: Union[str, _BytesLike],
    *,
    fin: bool = ...,
    rsv1: bool = ...,
    mask: Union[None, bool, bytes] = ...,
) -> bytes: ...
def encode_message(
    data: Union[str, _BytesLike], *, fragment_size: int = ..., mask: Union[None, bool, bytes] = ...
) -> list[bytes]: ...
def encode_close(
    code: Optional[int] = ..., reason: str = ..., *, mask: Union[None, bool, bytes] = ...
) -> bytes: ...
def parse(
    data: _BytesLike, *, server: bool = ..., max_payload_length: Optional[int] = ...
) -> list[_Event]: ...
