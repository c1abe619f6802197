"""User-space instructions per echoed message of the verb peer, counted by callgrind.

    .venv/bin/python benchmarks/callgrind_echo.py [--size 1024] [--counts 2000,10000]
        [--variant NAME=RATE_LIMIT_JSON ...] [--repeat 2]

Wall-clock A/B runs of a few-percent cost drown in this machine's noise; callgrind counts
instructions, which do not depend on what else runs. The server (benchmarks/peers/verb_server.py,
echo mode, compression off) runs under `valgrind --tool=callgrind`; a blocking client in this
process sends exactly N binary messages of --size bytes on one connection, one in flight (so each
read holds one frame and the server's path does not depend on timing), checks every echo, and
closes. The server's total instructions for two counts N1 < N2 differ by (N2 - N1) messages'
worth: start-up, imports, the handshake and shutdown cancel out. Each variant gives the server
a VERB_BENCH_RATE_LIMIT (JSON; "" for none), e.g. `limited={"messages": 1e9}`, a limit that is
configured but never hit. Prints one line per variant and the ratio to the first. Linux only;
needs valgrind. Bounded: every socket operation has a timeout, and the server is stopped by PID.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEER = HERE / "peers" / "verb_server.py"
MASK = b"\x37\xfa\x21\x3d"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("server closed the connection after %d of %d bytes" % (len(data), n))
        data += chunk
    return bytes(data)


def masked_frame(payload: bytes, opcode: int = 0x2) -> bytes:
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return header + MASK + masked


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    b0, b1 = recv_exact(sock, 2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", recv_exact(sock, 2))
    elif n == 127:
        (n,) = struct.unpack("!Q", recv_exact(sock, 8))
    return b0 & 0x0F, recv_exact(sock, n)


def echo_session(port: int, count: int, size: int) -> None:
    """Upgrade, send `count` messages one at a time checking each echo, close cleanly."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("no 101 from the server")
            response += chunk
        if not response.startswith(b"HTTP/1.1 101"):
            raise ConnectionError("upgrade refused: %r" % response.split(b"\r\n", 1)[0])
        payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
        frame = masked_frame(payload)
        for i in range(count):
            sock.sendall(frame)
            opcode, echo = read_frame(sock)
            if opcode != 0x2 or echo != payload:
                raise AssertionError("echo %d differs (opcode %d, %d bytes)" % (i, opcode, len(echo)))
        sock.sendall(masked_frame(struct.pack("!H", 1000), opcode=0x8))
        opcode, _ = read_frame(sock)
        if opcode != 0x8:
            raise AssertionError("expected the server's close frame, got opcode %d" % opcode)
    finally:
        sock.close()


@contextlib.contextmanager
def peer_server(python: str, rate_limit: str, port: int, wrapper: list[str] = ()):
    """Run the verb echo peer on `port` (under `wrapper`, e.g. valgrind), stopped on exit."""
    env = dict(os.environ, VERB_BENCH_RATE_LIMIT=rate_limit)
    cmd = [*wrapper, python, str(PEER), "--port", str(port), "--mode", "echo", "--compression", "off"]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("server did not start: %s" % server.stderr.read().decode()[-2000:])
                time.sleep(0.2)
        yield server
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def server_instructions(python: str, rate_limit: str, count: int, size: int, workdir: str) -> int:
    """The server's total user-space instructions (callgrind's summary) for one session."""
    port = free_port()
    out = os.path.join(workdir, "callgrind.%d.%d.out" % (count, port))
    valgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, "--dump-line=no"]
    with peer_server(python, rate_limit, port, valgrind):
        echo_session(port, count, size)
    with open(out) as f:
        for line in f:
            match = re.match(r"(?:summary|totals):\s+(\d+)", line)
            if match:
                return int(match.group(1))
    raise RuntimeError("no instruction total in " + out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter that imports verb")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--counts", default="2000,10000", help="N1,N2 (messages per session)")
    parser.add_argument("--repeat", type=int, default=2, help="sessions per count and variant")
    parser.add_argument("--variant", action="append", default=[],
                        help='NAME=RATE_LIMIT_JSON (repeatable); default: none= and '
                             'limited={"messages": 1e9}')
    args = parser.parse_args()
    n1, n2 = (int(x) for x in args.counts.split(","))
    variants = [v.split("=", 1) for v in args.variant] or [
        ["none", ""], ["limited", json.dumps({"messages": 1e9})]]
    results = {}
    with tempfile.TemporaryDirectory(prefix="verb-callgrind.") as workdir:
        for repeat in range(args.repeat):
            for name, rate_limit in variants:  # interleaved, as bench.sh's rounds are
                low = server_instructions(args.python, rate_limit, n1, args.size, workdir)
                high = server_instructions(args.python, rate_limit, n2, args.size, workdir)
                per_message = (high - low) / (n2 - n1)
                results.setdefault(name, []).append(per_message)
                print("%-10s repeat %d: %d and %d instructions for %d and %d messages: %.1f per message"
                      % (name, repeat + 1, low, high, n1, n2, per_message), flush=True)
    first = min(results[variants[0][0]])
    for name, _ in variants:
        best = min(results[name])
        print("%-10s %.1f instructions per message (min of %d), %.4fx %s"
              % (name, best, len(results[name]), best / first, variants[0][0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
