"""The `verb` command line: `verb run` serves a program's app (its own listen, or the app it
defines) with --port overriding, and `python -m verb` is the same command."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from websockets.sync.client import connect


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, proc, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.stdout.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("server did not start listening")


def run_verb(args, tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "verb", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(proc):
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, out


PROGRAM_WITH_LISTEN = textwrap.dedent("""
    from verb import create_server, ServerProtocol
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, message: ws.send("listen: " + message))
    app.listen(3000)
""")

PROGRAM_WITHOUT_LISTEN = textwrap.dedent("""
    from verb import create_server, ServerProtocol
    chat = create_server(ServerProtocol.WEBSOCKET)
    chat.websocket(message=lambda ws, message: ws.send("found: " + message))
""")


@pytest.mark.parametrize("program,target,reply", [
    (PROGRAM_WITH_LISTEN, "prog.py", "listen: hi"),
    (PROGRAM_WITHOUT_LISTEN, "prog.py", "found: hi"),
    (PROGRAM_WITHOUT_LISTEN, "prog.py:chat", "found: hi"),
])
def test_verb_run_serves_the_program_on_the_given_port(tmp_path, program, target, reply):
    (tmp_path / "prog.py").write_text(program)
    port = free_port()
    proc = run_verb(["run", target, "--host", "127.0.0.1", "--port", str(port)], tmp_path)
    try:
        wait_for_port(port, proc)
        with connect(f"ws://127.0.0.1:{port}/", proxy=None, open_timeout=5) as ws:
            ws.send("hi")
            assert ws.recv(timeout=5) == reply
    finally:
        code, out = stop(proc)
    assert code == 0, out


def test_verb_run_reports_a_missing_app(tmp_path):
    (tmp_path / "empty.py").write_text("x = 1\n")
    result = subprocess.run([sys.executable, "-m", "verb", "run", "empty.py"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "no App" in result.stderr
    result = subprocess.run([sys.executable, "-m", "verb", "run", "missing.py"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "no such file" in result.stderr


def test_verb_demo_serves_the_chat_page_and_socket(tmp_path):
    port = free_port()
    proc = run_verb(["demo", "--host", "127.0.0.1", "--port", str(port)], tmp_path)
    try:
        wait_for_port(port, proc)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            page = b""
            while chunk := sock.recv(65536):
                page += chunk
        assert b"200 OK" in page and b"location.host" in page
        with connect(f"ws://127.0.0.1:{port}/chat", proxy=None, open_timeout=5) as a, \
                connect(f"ws://127.0.0.1:{port}/chat", proxy=None, open_timeout=5) as b:
            a.send('{"type": "join", "room": "r", "name": "ann"}')
            b.send('{"type": "join", "room": "r", "name": "bob"}')
            # Two connections: wait until bob is in the room before ann speaks.
            while "bob joined r" not in b.recv(timeout=5):
                pass
            a.send('{"type": "message", "text": "hello bob"}')
            seen = []
            deadline = time.monotonic() + 5
            while '"hello bob"' not in "".join(seen) and time.monotonic() < deadline:
                seen.append(b.recv(timeout=5))
            assert any('"name":"ann"' in m and '"hello bob"' in m for m in seen)
    finally:
        code, out = stop(proc)
    assert code == 0, out
