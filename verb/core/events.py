"""Python event objects of the frame core, for tests, tools and the pure-Python adapter.

The hot path never builds these: the connection layer receives events through the compiled
`FrameHandler` callbacks. `verb.core._frame.EventCollector` turns those callbacks into these objects so
tests can compare the compiled parser with a slow reference parser event by event.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class TextMessage:
    data: str


@dataclass(frozen=True)
class BinaryMessage:
    data: bytes


@dataclass(frozen=True)
class Ping:
    data: bytes


@dataclass(frozen=True)
class Pong:
    data: bytes


@dataclass(frozen=True)
class Close:
    """A close frame from the peer. `code` is 1005 when the frame carried no status code."""

    code: int
    reason: str


@dataclass(frozen=True)
class ProtocolError:
    """The peer broke the protocol; send a close frame with `code`, then stop reading."""

    code: int
    reason: str
