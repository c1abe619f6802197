"""Helpers of the robustness suite: hostile raw-socket clients, frames, subprocess servers.

Every client here talks to 127.0.0.1 only, and every loop is bounded in count and in time.
"""

from __future__ import annotations

import base64
import json
import os
import resource
import select
import socket
import struct
import subprocess
import sys
import time
import urllib.request

from websockets.sync.client import connect

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
MASK = b"\x11\x22\x33\x44"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def raise_nofile_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def upgrade_request(path="/", **overrides) -> bytes:
    headers = {
        "Host": "127.0.0.1",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
    }
    method = overrides.pop("method", "GET")
    extra = overrides.pop("extra_headers", ())
    for name, value in overrides.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    lines += [f"{k}: {v}" for k, v in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def header_of(response: bytes, name: str) -> str | None:
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


def raw_exchange(port, data, timeout=5.0) -> bytes:
    """Send `data`, read until the server closes (or `timeout`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def frame(opcode, payload=b"", fin=True, rsv1=False, mask=MASK, length=None) -> bytes:
    """A client frame (masked unless mask is None); `length` overrides the declared length."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    bit = 0x80 if mask is not None else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask is None:
        return head + payload
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if len(payload) < 4096 \
        else _mask_fast(payload, mask)
    return head + mask + masked


def _mask_fast(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


def close_payload(code, reason=b"") -> bytes:
    return struct.pack("!H", code) + reason


class RawWS:
    """A hand-driven WebSocket client on a blocking socket, for hostile behaviour."""

    def __init__(self, port, request=None, timeout=5.0, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.sock.sendall(request or upgrade_request())
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed during handshake: {self.buf!r}")
            self.buf += chunk
        self.response, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status = status_of(self.response)

    def send(self, data: bytes):
        self.sock.sendall(data)

    def _fill(self, need, deadline):
        while len(self.buf) < need:
            self.sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def recv_frame(self, timeout=5.0):
        """(opcode, payload) of the next server frame; EOFError when the server closed."""
        deadline = time.monotonic() + timeout
        self._fill(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        n = b1 & 0x7F
        pos = 2
        if n == 126:
            self._fill(4, deadline)
            n = struct.unpack("!H", self.buf[2:4])[0]
            pos = 4
        elif n == 127:
            self._fill(10, deadline)
            n = struct.unpack("!Q", self.buf[2:10])[0]
            pos = 10
        self._fill(pos + n, deadline)
        payload = self.buf[pos:pos + n]
        self.buf = self.buf[pos + n:]
        return b0 & 0x0F, payload

    def recv_until_close(self, timeout=5.0):
        """Read frames until a close frame; returns (close code or None, frames before it)."""
        deadline = time.monotonic() + timeout
        frames = []
        while True:
            opcode, payload = self.recv_frame(max(0.001, deadline - time.monotonic()))
            if opcode == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return code, frames
            frames.append((opcode, payload))

    def wait_eof(self, timeout=5.0) -> bool:
        """True once the server has closed the TCP connection (EOF or reset) within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if not chunk:
                return True
        return False

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def echo_ok(port, text="ping?", timeout=5.0) -> float:
    """A well-behaved client (websockets) connects, echoes once; returns the round trip (s)."""
    with connect(f"ws://127.0.0.1:{port}/", proxy=None, open_timeout=timeout,
                 compression=None) as ws:
        start = time.perf_counter()
        ws.send(text)
        assert ws.recv(timeout=timeout) == text
        return time.perf_counter() - start


def wait_for(predicate, timeout=5.0, interval=0.01):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within {:.1f} s".format(timeout))
        time.sleep(interval)


# --- a server in a subprocess, for RSS measurements ------------------------------------------

def rss_bytes(pid, field="VmRSS") -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak_rss(pid) -> bool:
    """Reset VmHWM (peak RSS) of `pid` to its current RSS (Linux clear_refs, value 5)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class SubprocessServer:
    """`serve.py` in a child process: an echo server with `options`, plus GET /stats."""

    def __init__(self, **options):
        env = dict(os.environ)
        env.pop("VERB_PORT", None)
        env.pop("VERB_HOST", None)
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "serve.py"), json.dumps(options)],
            stdout=subprocess.PIPE, env=env, text=True)
        line = self.proc.stdout.readline()  # "verb: listening on http://127.0.0.1:PORT"
        if "listening on" not in line:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])
        self.pid = self.proc.pid

    def stats(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=5) as r:
            return json.loads(r.read())

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def peak_rss(self) -> int:
        return rss_bytes(self.pid, "VmHWM")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def wait_readable(sock, timeout) -> bool:
    return bool(select.select([sock], [], [], timeout)[0])


def b64_key(i: int) -> str:
    return base64.b64encode(i.to_bytes(16, "big")).decode()


def report(name, value):
    """Print a measured figure (visible with -s; each assertion message carries it too)."""
    print(f"\n[figure] {name}: {value}", flush=True)


# --- asyncio raw clients, for many connections at once -----------------------------------------

async def aio_read_frame(reader):
    """(opcode, payload) of the next server frame (unmasked)."""
    head = await reader.readexactly(2)
    n = head[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    return head[0] & 0x0F, await reader.readexactly(n)


async def aio_open(port, path="/"):
    """Open a WebSocket by hand; returns (reader, writer, status)."""
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(upgrade_request(path))
    head = await reader.readuntil(b"\r\n\r\n")
    return reader, writer, status_of(head)


async def aio_echo(reader, writer, payload: bytes):
    writer.write(frame(OP_TEXT, payload))
    opcode, data = await aio_read_frame(reader)
    assert (opcode, data) == (OP_TEXT, payload), (opcode, data[:50])


async def aio_close(reader, writer, code=1000):
    """Closing handshake from the client side; returns the server's close code."""
    writer.write(frame(OP_CLOSE, close_payload(code)))
    while True:
        opcode, data = await aio_read_frame(reader)
        if opcode == OP_CLOSE:
            break
    await reader.read()  # EOF: the server closes the TCP connection
    writer.close()
    return struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
