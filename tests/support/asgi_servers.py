"""ASGI servers as subprocesses on a free loopback port: verb's (`verb asgi`) and uvicorn, the
reference the differential suite compares verb with."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.cluster import free_port, stop_process_tree

APPS_DIR = Path(__file__).resolve().parent.parent / "asgi"

# name -> the command line serving "module:attribute" on a port, given extra flags.
SERVERS = {
    "uvicorn": lambda target, port, extra: [
        sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
        "--ws", "websockets-sansio", "--http", "httptools", "--loop", "uvloop", *extra],
    "uvicorn+verb": lambda target, port, extra: [
        sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
        "--ws", "verb.asgi:WebSocketProtocol", "--http", "httptools", "--loop", "uvloop", *extra],
    "verb": lambda target, port, extra: [
        sys.executable, "-m", "verb", "asgi", target, "--host", "127.0.0.1", "--port",
        str(port), *extra],
}


# The uvicorn the differential suite was validated against (its behaviour is the reference,
# and older releases differ: root_path in WebSocket scopes, spec_version, duplicate headers in
# denial responses). It needs Python 3.11; on 3.9 and 3.10 the test extra leaves it out.
REFERENCE_UVICORN = (0, 55)


def reference_uvicorn_missing() -> str | None:
    """Why the reference uvicorn cannot run here, or None."""
    try:
        import uvicorn
    except ImportError:
        return "uvicorn is not installed (the test extra installs it from Python 3.11 on)"
    version = tuple(int(part) for part in uvicorn.__version__.split(".")[:2])
    if version < REFERENCE_UVICORN:
        return (f"uvicorn {uvicorn.__version__} is older than the reference "
                f"{'.'.join(map(str, REFERENCE_UVICORN))} the suite compares with")
    return None


class AsgiProcess:
    """One server (`name` in SERVERS) serving `target` from tests/asgi, output in a file.
    A uvicorn-based server skips the test where the reference uvicorn is not available
    (Python 3.9 and 3.10), with the reason."""

    def __init__(self, name: str, target: str, log_dir: Path, extra=(), env=None):
        if name.startswith("uvicorn"):
            missing = reference_uvicorn_missing()
            if missing is not None:
                pytest.skip(missing)
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.output = log_dir / f"{name}-{self.port}.log"
        self._log = open(self.output, "wb")  # noqa: SIM115 - closed in stop()
        environment = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        self.proc = subprocess.Popen(SERVERS[name](target, self.port, list(extra)),
                                     cwd=APPS_DIR, env=environment, stdout=self._log,
                                     stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> AsgiProcess:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited early ({self.proc.returncode}):\n"
                                     f"{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.name} did not listen on {self.port}:\n"
                                         f"{self.log()}") from None
                time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, timeout: float = 20.0) -> int:
        stop_process_tree(self.proc, sig, timeout)
        self._log.close()
        return self.proc.returncode

    def __enter__(self):
        return self.wait_ready()

    def __exit__(self, *exc):
        self.stop()
        return False


def exchange(port: int, request: bytes, until=b"\r\n\r\n", timeout=10.0) -> bytes:
    """Send raw bytes, read until `until` is seen in the reply or the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        deadline = time.monotonic() + timeout
        while until not in data and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data
