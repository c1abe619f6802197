"""A raw-socket WebSocket client for conformance tests (RFC 6455, RFC 7692).

Independent of verb's code and of the `websockets` library: it builds every frame by hand so a
test can send what a well-behaved client never would (reserved bits, reserved opcodes, lying
lengths, fragmented control frames, bytes trickled one TCP write at a time), and it reads the
server's frames back in order together with how the TCP connection ended.

Every read has a timeout; nothing here blocks forever.
"""

from __future__ import annotations

import base64
import hashlib
import os
import select
import socket
import struct
import time
import zlib
from dataclasses import dataclass, field

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

RSV1 = 4
RSV2 = 2
RSV3 = 1

DEFAULT_TIMEOUT = 5.0

# How the TCP connection ended, as seen by `read_until_close`.
EOF = "eof"  # orderly shutdown (FIN)
RESET = "reset"  # connection reset (RST)
OPEN = "open"  # still open when the read timed out


class HandshakeFailed(AssertionError):
    pass


class ReadTimeout(AssertionError):
    """No complete frame arrived in time (an assertion: a test expected one)."""


@dataclass
class Frame:
    opcode: int
    payload: bytes
    fin: bool = True
    rsv: int = 0

    @property
    def close_code(self) -> int | None:
        """The status code of a close frame (None when its payload is empty)."""
        assert self.opcode == OP_CLOSE
        if len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]

    @property
    def close_reason(self) -> bytes:
        return self.payload[2:]

    def __repr__(self) -> str:  # short payloads in failure messages
        p = self.payload if len(self.payload) <= 40 else self.payload[:40] + b"..."
        return f"Frame(op={self.opcode}, fin={self.fin}, rsv={self.rsv}, len={len(self.payload)}, {p!r})"


@dataclass
class Deflate:
    """Negotiated permessage-deflate parameters, from the server's response (RFC 7692 §7)."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15
    _compressor: object = field(default=None, repr=False)
    _decompressor: object = field(default=None, repr=False)

    @classmethod
    def parse(cls, value: str) -> Deflate:
        params = [p.strip() for p in value.split(";")]
        assert params[0] == "permessage-deflate", value
        d = cls()
        seen = set()
        for p in params[1:]:
            name, _, arg = p.partition("=")
            name, arg = name.strip(), arg.strip().strip('"')
            assert name not in seen, f"duplicate parameter in {value!r}"
            seen.add(name)
            if name == "server_no_context_takeover":
                assert not arg, value
                d.server_no_context_takeover = True
            elif name == "client_no_context_takeover":
                assert not arg, value
                d.client_no_context_takeover = True
            elif name == "server_max_window_bits":
                assert arg.isdigit() and 8 <= int(arg) <= 15, value
                d.server_max_window_bits = int(arg)
            elif name == "client_max_window_bits":
                assert arg.isdigit() and 8 <= int(arg) <= 15, value
                d.client_max_window_bits = int(arg)
            else:
                raise AssertionError(f"unknown parameter {name!r} in {value!r}")
        return d

    def compress(self, data: bytes) -> bytes:
        """One message, compressed as RFC 7692 §7.2.1 says (sync flush, tail removed)."""
        if self._compressor is None or self.client_no_context_takeover:
            # zlib cannot make an 8-bit raw deflate window; 9 stays within any limit >= 9.
            bits = max(9, self.client_max_window_bits)
            self._compressor = zlib.compressobj(6, zlib.DEFLATED, -bits)
        out = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(b"\x00\x00\xff\xff")
        return out[:-4]

    def decompress(self, data: bytes) -> bytes:
        """One message from the server. A fresh inflater per message when the server promised
        not to take over context, and a window no larger than it may use, so a server that
        breaks either promise fails to decode here."""
        if self._decompressor is None or self.server_no_context_takeover:
            bits = max(9, self.server_max_window_bits)
            self._decompressor = zlib.decompressobj(-bits)
        # zlib checks a back-reference against what it holds (the window plus the output of the
        # current call), not against windowBits: small output steps make the window bind, so a
        # distance beyond the agreed window (+ 256 bytes) is "invalid distance too far back".
        d = self._decompressor
        out, buf = [], data + b"\x00\x00\xff\xff"
        while True:
            chunk = d.decompress(buf, 256)
            out.append(chunk)
            buf = d.unconsumed_tail
            if not buf and len(chunk) < 256:  # input used up and no output pending
                break
        return b"".join(out)


def build_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    masked: bool = True,
    length: int | None = None,
) -> bytes:
    """One frame's bytes. `length` overrides the declared payload length (a lie, for tests);
    `mask` fixes the masking key (random by default); `masked=False` sends it unmasked."""
    declared = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0xF)
    mbit = 0x80 if masked else 0
    if declared < 126:
        head = struct.pack("!BB", b0, mbit | declared)
    elif declared < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, declared)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, declared)
    if not masked:
        return head + payload
    if mask is None:
        mask = os.urandom(4)
    assert len(mask) == 4
    return head + mask + apply_mask(payload, mask)


def apply_mask(data: bytes, mask: bytes) -> bytes:
    if not data:
        return b""
    n = len(data)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ key).to_bytes(n, "big")


def close_payload(code: int | None = None, reason: bytes = b"") -> bytes:
    return b"" if code is None else struct.pack("!H", code) + reason


class Client:
    """One WebSocket connection to a server on loopback.

    Args:
        port: the server's port on 127.0.0.1.
        extensions: value of Sec-WebSocket-Extensions to offer, or None.
        timeout: default seconds to wait on any read.
    """

    def __init__(self, port: int, *, host: str = "127.0.0.1", path: str = "/",
                 extensions: str | None = None, timeout: float = DEFAULT_TIMEOUT):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = bytearray()
        self._eof: str | None = None  # EOF or RESET once seen
        self.send_failed = False  # a write hit a closed connection
        self.deflate: Deflate | None = None
        self.last_compressed = False  # whether read_message's last message had RSV1
        self.response_headers: dict[str, str] = {}
        self._handshake(host, port, path, extensions)

    # -- opening handshake (RFC 6455 §4.1) -------------------------------------------------------

    def _handshake(self, host, port, path, extensions):
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if extensions is not None:
            lines.append(f"Sec-WebSocket-Extensions: {extensions}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self._buf:
            if not self._fill(deadline):
                raise HandshakeFailed(f"connection ended during handshake: {bytes(self._buf)!r}")
        head, _, rest = bytes(self._buf).partition(b"\r\n\r\n")
        self._buf = bytearray(rest)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or parts[0] != "HTTP/1.1" or parts[1] != "101":
            raise HandshakeFailed(f"expected 101, got {status_line!r}")
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            headers[name] = (headers[name] + ", " if name in headers else "") + value.strip()
        self.response_headers = headers
        expected = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            raise HandshakeFailed(f"bad Sec-WebSocket-Accept {headers.get('sec-websocket-accept')!r}")
        if headers.get("upgrade", "").lower() != "websocket":
            raise HandshakeFailed(f"bad Upgrade {headers.get('upgrade')!r}")
        if "upgrade" not in headers.get("connection", "").lower():
            raise HandshakeFailed(f"bad Connection {headers.get('connection')!r}")
        ext = headers.get("sec-websocket-extensions")
        if ext is not None:
            if extensions is None:
                raise HandshakeFailed(f"extension accepted though none offered: {ext!r}")
            self.deflate = Deflate.parse(ext)

    # -- sending ------------------------------------------------------------------------------

    def send_raw(self, data: bytes, *, pieces: int | list[int] | None = None,
                 delay: float = 0.0, stop_on_close: bool = False) -> int:
        """Write bytes, whole or split into pieces (`pieces` = piece size, or a list of sizes),
        sleeping `delay` between pieces. Returns how many bytes were written; a write to a
        connection the server has closed is recorded in `send_failed`, not raised.
        With `stop_on_close`, stops as soon as the server has sent anything (e.g. a close frame)
        and leaves what arrived readable."""
        if pieces is None:
            sizes = [len(data)]
        elif isinstance(pieces, int):
            sizes = [pieces] * (len(data) // pieces + (1 if len(data) % pieces else 0))
        else:
            sizes = list(pieces) + [len(data) - sum(pieces)]
        sent = 0
        for i, size in enumerate(sizes):
            if size <= 0:
                continue
            if i and delay:
                time.sleep(delay)
            if stop_on_close and self._readable():
                return sent
            try:
                self.sock.sendall(data[sent:sent + size])
            except (BrokenPipeError, ConnectionResetError):
                self.send_failed = True
                return sent
            sent += size
        return sent

    def send_frame(self, opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0,
                   mask: bytes | None = None, masked: bool = True, length: int | None = None,
                   pieces=None, delay: float = 0.0) -> int:
        return self.send_raw(build_frame(opcode, payload, fin=fin, rsv=rsv, mask=mask,
                                         masked=masked, length=length),
                             pieces=pieces, delay=delay)

    def send_message(self, data: bytes | str, *, binary: bool | None = None,
                     fragment: int | None = None, compress: bool = False,
                     pieces=None, delay: float = 0.0) -> int:
        """A data message, optionally compressed (RSV1 on the first frame) and fragmented into
        frames of `fragment` bytes. All frames go out in one write unless `pieces` splits it."""
        if isinstance(data, str):
            data, binary = data.encode(), bool(binary)
        elif binary is None:
            binary = True
        if compress:
            assert self.deflate is not None, "permessage-deflate was not negotiated"
            data = self.deflate.compress(data)
        return self.send_raw(self.message_frames(data, OP_BINARY if binary else OP_TEXT,
                                                 fragment=fragment, rsv=RSV1 if compress else 0),
                             pieces=pieces, delay=delay)

    @staticmethod
    def message_frames(data: bytes, opcode: int, *, fragment: int | None = None,
                       rsv: int = 0) -> bytes:
        if not fragment or len(data) <= fragment:
            return build_frame(opcode, data, rsv=rsv)
        out = []
        for i in range(0, len(data), fragment):
            last = i + fragment >= len(data)
            out.append(build_frame(opcode if i == 0 else OP_CONT, data[i:i + fragment],
                                   fin=last, rsv=rsv if i == 0 else 0))
        return b"".join(out)

    def send_close(self, code: int | None = 1000, reason: bytes = b"") -> int:
        return self.send_frame(OP_CLOSE, close_payload(code, reason))

    # -- receiving ----------------------------------------------------------------------------

    def _readable(self) -> bool:
        if self._buf or self._eof:
            return True
        r, _, _ = select.select([self.sock], [], [], 0)
        return bool(r)

    def _fill(self, deadline: float) -> bool:
        """Read more bytes; False once the connection has ended. Raises ReadTimeout."""
        if self._eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ReadTimeout("timed out waiting for data")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            raise ReadTimeout("timed out waiting for data") from None
        except ConnectionResetError:
            self._eof = RESET
            return False
        if not chunk:
            self._eof = EOF
            return False
        self._buf += chunk
        return True

    def _need(self, n: int, deadline: float) -> bool:
        while len(self._buf) < n:
            if not self._fill(deadline):
                return False
        return True

    def read_frame(self, timeout: float | None = None) -> Frame | None:
        """The server's next frame, or None when the connection ended (see `ended`).
        A partial frame at EOF raises; a server frame that is masked raises (RFC 6455 §5.1)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        if not self._need(2, deadline):
            assert not self._buf, f"connection ended inside a frame header: {bytes(self._buf)!r}"
            return None
        b0, b1 = self._buf[0], self._buf[1]
        assert not b1 & 0x80, "server sent a masked frame"
        n = b1 & 0x7F
        pos = 2
        if n == 126:
            assert self._need(4, deadline), "connection ended inside a frame header"
            n = struct.unpack_from("!H", self._buf, 2)[0]
            pos = 4
        elif n == 127:
            assert self._need(10, deadline), "connection ended inside a frame header"
            n = struct.unpack_from("!Q", self._buf, 2)[0]
            pos = 10
        assert self._need(pos + n, deadline), "connection ended inside a frame payload"
        payload = bytes(self._buf[pos:pos + n])
        del self._buf[:pos + n]
        return Frame(opcode=b0 & 0xF, payload=payload, fin=bool(b0 & 0x80), rsv=(b0 >> 4) & 7)

    @property
    def ended(self) -> str | None:
        """EOF or RESET once the server's side of the connection has been seen to end."""
        return self._eof

    def read_message(self, timeout: float | None = None) -> tuple[int, bytes]:
        """The next data message (reassembled, decompressed), skipping nothing: a control frame
        or the end of the connection here is a test failure."""
        first = self.read_frame(timeout)
        assert first is not None, f"connection ended ({self._eof}) instead of a message"
        assert first.opcode in (OP_TEXT, OP_BINARY), f"expected a data frame, got {first}"
        parts, compressed = [first.payload], bool(first.rsv & RSV1)
        assert first.rsv & ~RSV1 == 0 and (not compressed or self.deflate), first
        frame = first
        while not frame.fin:
            frame = self.read_frame(timeout)
            assert frame is not None, "connection ended inside a fragmented message"
            assert frame.opcode == OP_CONT and frame.rsv == 0, f"expected continuation: {frame}"
            parts.append(frame.payload)
        data = b"".join(parts)
        self.last_compressed = compressed
        if compressed:
            data = self.deflate.decompress(data)
        if first.opcode == OP_TEXT:
            data.decode("utf-8")  # the server's text must be UTF-8 (RFC 6455 §5.6)
        return first.opcode, data

    def read_until_close(self, timeout: float | None = None,
                         reply: bool = True) -> tuple[list[Frame], Frame | None, str]:
        """Read frames until the server's close frame, answer it (when `reply`), then wait for
        the TCP connection to end. Returns (frames before the close, the close frame or None if
        the connection ended without one, how it ended: EOF, RESET or OPEN)."""
        frames = []
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                frame = self.read_frame(max(0.0, deadline - time.monotonic()))
            except ReadTimeout:
                return frames, None, OPEN
            if frame is None:
                return frames, None, self._eof
            if frame.opcode == OP_CLOSE:
                break
            frames.append(frame)
        if reply and not self.send_failed:
            code = frame.close_code
            self.send_raw(build_frame(OP_CLOSE, close_payload(code)))
        try:
            extra = self.read_frame(max(0.1, deadline - time.monotonic()))
        except ReadTimeout:
            return frames, frame, OPEN
        assert extra is None, f"frame after the server's close frame: {extra}"
        return frames, frame, self._eof

    def expect_close(self, code: int | None, timeout: float | None = None) -> list[Frame]:
        """Assert the server sends a close frame with `code` (None: an empty close payload)
        and then closes the TCP connection. Returns the frames that came before it."""
        frames, close, how = self.read_until_close(timeout)
        assert close is not None, f"no close frame; connection {how}; frames before: {frames}"
        assert close.fin and close.rsv == 0, close
        assert close.close_code == code, f"close code {close.close_code}, expected {code} ({close})"
        # RFC 6455 §5.5 and §5.5.1: the server's own close frame is well-formed too.
        assert len(close.payload) != 1 and len(close.payload) <= 125, close
        close.close_reason.decode("utf-8")  # raises on a reason that is not UTF-8
        assert how in (EOF, RESET), f"TCP connection still {how} after the close frame"
        return frames

    def close_normally(self, timeout: float | None = None) -> list[Frame]:
        """Start the closing handshake with 1000 and check the server echoes it and hangs up."""
        self.send_close(1000)
        return self.expect_close(1000, timeout)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> Client:  # noqa: PYI034
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- running a case ---------------------------------------------------------------------------


def messages(frames: list[Frame], deflate: Deflate | None = None) -> list[tuple[int, bytes]]:
    """Frames as (opcode, payload) messages: data fragments joined (and inflated when RSV1 is
    set), control frames left where they came, in order."""
    out: list[tuple[int, bytes]] = []
    pending: list[Frame] = []
    for f in frames:
        if f.opcode >= 8:
            assert f.fin and f.rsv == 0, f"bad control frame from the server: {f}"
            out.append((f.opcode, f.payload))
            continue
        if pending:
            assert f.opcode == OP_CONT and f.rsv == 0, f"expected a continuation: {f}"
        else:
            assert f.opcode in (OP_TEXT, OP_BINARY), f"continuation without start: {f}"
            assert f.rsv & ~RSV1 == 0, f"unexpected reserved bits: {f}"
        pending.append(f)
        if f.fin:
            data = b"".join(p.payload for p in pending)
            if pending[0].rsv & RSV1:
                assert deflate is not None, "RSV1 set without permessage-deflate"
                data = deflate.decompress(data)
            if pending[0].opcode == OP_TEXT:
                data.decode("utf-8")  # the server's text must be UTF-8 (RFC 6455 §5.6)
            out.append((pending[0].opcode, data))
            pending = []
    assert not pending, "the server's message was left unfinished"
    return out


def exchange(client: Client, data: bytes, expected: list[tuple[int, bytes]],
             close: int | None, **send_kwargs) -> None:
    """Send `data`, then check the server's answer is exactly `expected` (as `messages`),
    followed by its close frame with code `close` and the end of the TCP connection.
    With `close=None` the server is expected not to fail the connection: the client then
    closes with 1000 and the server must echo 1000."""
    client.send_raw(data, **send_kwargs)
    if close is None:
        client.send_close(1000)
        close = 1000
    frames = client.expect_close(close)
    assert messages(frames, client.deflate) == expected
