from typing import Optional, Union

_BytesLike = Union[bytes, bytearray, memoryview]

ZLIB_VERSION: str
DEFAULT_WINDOW_BITS: int
DEFAULT_LEVEL: int
DEFAULT_MEM_LEVEL: int
CLOSE_INVALID_DATA: int
CLOSE_MESSAGE_TOO_BIG: int

class DeflateError(Exception):
    close_code: int
    reason: str
    def __init__(self, close_code: int, reason: str) -> None: ...

class Deflater:
    window_bits: int
    no_context_takeover: bool
    level: int
    mem_level: int
    def __init__(
        self,
        window_bits: int = ...,
        no_context_takeover: bool = ...,
        level: int = ...,
        mem_level: int = ...,
    ) -> None: ...
    def compress(self, data: _BytesLike) -> bytes: ...
    def reset(self) -> None: ...
    def release(self) -> None: ...
    @property
    def memory(self) -> int: ...

class Inflater:
    window_bits: int
    no_context_takeover: bool
    max_size: int
    error: Optional[str]
    def __init__(
        self,
        window_bits: int = ...,
        no_context_takeover: bool = ...,
        max_size: Optional[int] = ...,
    ) -> None: ...
    def decompress(self, data: _BytesLike, max_size: Optional[int] = ...) -> bytes: ...
    def feed(self, data: _BytesLike) -> None: ...
    def finish(self) -> bytes: ...
    def reset(self) -> None: ...
    def release(self) -> None: ...
    @property
    def buffered(self) -> int: ...
    @property
    def memory(self) -> int: ...
    @property
    def peak_buffer(self) -> int: ...
