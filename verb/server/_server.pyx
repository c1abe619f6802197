"""Connection layer: an asyncio BufferedProtocol (uvloop or plain asyncio) driving the frame core.

One port serves HTTP/1.1 (httptools) and WebSocket upgrades. Per event loop one `Hub` owns what
connections share: the read buffer every connection reads into (BufferedProtocol), the
timeout sweep that serves every connection's handshake, idle and close deadlines, the topic
registry, the write batch, and the statistics.

Writes are batched: a send appends the frame to its connection's output list and marks the
connection dirty; the hub writes every dirty connection's frames with one transport call at the
end of the current read (or, for sends made outside a read, once per loop iteration).

Errors never escape into the event loop: a user handler's exception is caught in
`ServerWebSocket._call_failed`, goes to the `error` handler or the log, and at worst closes that
one connection with 1011.

One extension module in three parts (uvloop's layout): the classes are bound both ways (the hub
holds WebSockets and flushes them; a WebSocket queues through its hub), so separate modules
cimporting each other would only move the cycle, and cdef calls between the parts stay direct
C calls. The classes are declared in _server.pxd; the parts, in the order they build on each
other:
  limits.pxi      rate limits: a connection's token bucket, the per-address table
  hub.pxi         Hub: connections, topics and publish, write batching, the timeout sweep, stats
  websocket.pxi   ServerWebSocket (what every handler receives) and open_websocket(), its factory
  connection.pxi  ConnectionBase: HTTP/1.1, the upgrade (full and plain paths), the 101 answer
"""

import asyncio
import collections
import logging

from cpython.buffer cimport PyBuffer_Release
from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE

from verb.core._frame cimport (
    CLOSE_ABNORMAL, CLOSE_GOING_AWAY, CLOSE_INTERNAL_ERROR, CLOSE_NORMAL, CLOSE_NO_STATUS,
    CLOSE_POLICY_VIOLATION, OP_BINARY, OP_PING, OP_PONG, OP_TEXT, ST_CLOSED, ST_CLOSING,
    ST_CONNECTING, ST_OPEN, build_frame, check_close, close_frame, compressed_frame, control_frame,
    frame_header, message_frame, message_payload, wants_compression,
)
from libc.math cimport ceil
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from verb.server._transport cimport (
    READ_BUFFER_SIZE, feed_by_copy, transport_buffered, write_frames,
)

import httptools
import orjson

from verb.core import extensions as _extensions
from verb.core import handshake as _handshake
from verb.core.errors import HandshakeError, HTTPError
from verb.core.headers import Headers
from verb.server.http import Request, Response, error_response
from verb.server.options import RATE_LIMIT_ACTIONS, Handler, RateLimit

log = logging.getLogger("verb")

include "limits.pxi"
include "hub.pxi"
include "websocket.pxi"
include "connection.pxi"
