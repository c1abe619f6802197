"""Processes for the scale-out tests (test_pubsub, test_workers, test_proxy): a real
`redis-server`, verb servers started with `verb run`, nginx, and a test app that exposes what
the tests look at (pids, broker stats, client addresses) over HTTP and WebSocket commands.

Every wait is bounded; every process is stopped by the fixture (or context manager) that
started it, by PID. redis-server and nginx are Debian packages that `scripts/bootstrap.sh
--test` installs: when they are missing the tests fail (never skip) saying so.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

from websockets.sync.client import connect

BOOTSTRAP = "run scripts/bootstrap.sh --test (it installs the Debian packages the tests need)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout=15.0, interval=0.05, message="condition"):
    """Poll `predicate` until it returns a true value (returned); AssertionError at timeout."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
        except Exception as exc:  # noqa: BLE001 - a server still starting, a connection reset
            value, last_error = None, exc
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}"
                                 + (f" (last error: {last_error!r})" if last_error else ""))
        time.sleep(interval)


def find_program(name: str, *extra_dirs: str) -> str:
    path = shutil.which(name)
    for directory in extra_dirs:
        candidate = os.path.join(directory, name)
        if path is None and os.access(candidate, os.X_OK):
            path = candidate
    if path is None:
        raise AssertionError(f"{name} is not installed: {BOOTSTRAP}")
    return path


# -- Redis --------------------------------------------------------------------------------------

class RedisServer:
    """A redis-server on 127.0.0.1 with a free port, no persistence, in a temporary directory;
    `restart()` brings it back on the same port."""

    def __init__(self, directory: Path):
        self.binary = find_program("redis-server", "/usr/sbin", "/usr/bin")
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None
        self.log = self.directory / "redis.log"

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.directory), "--daemonize", "no",
                 "--protected-mode", "no"],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.directory)
        wait_until(lambda: self.client().ping(), timeout=15, message="redis-server to start")
        return self

    def stop(self, sig=signal.SIGTERM):
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)

    def restart(self):
        self.stop()
        return self.start()

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5,
                           socket_connect_timeout=2)

    def numsub(self, topic: str, prefix: str = "verb:") -> int:
        with contextlib.closing(self.client()) as client:
            return client.pubsub_numsub(f"{prefix}t:{topic}")[0][1]

    def topic_channels(self, prefix: str = "verb:") -> set[str]:
        with contextlib.closing(self.client()) as client:
            return {c.decode()[len(prefix) + 2:] for c in client.pubsub_channels(f"{prefix}t:*")}

    def publish_foreign(self, topic: str, payload: bytes, text: bool = False) -> int:
        """Publish in verb's envelope as a process that does not exist (origin "outsider")."""
        message = struct.pack("!BB8s", 1, 1 if text else 0, b"outsider") + payload
        with contextlib.closing(self.client()) as client:
            return client.publish(f"verb:t:{topic}", message)


# -- verb servers -------------------------------------------------------------------------------

# The test app. Its WebSocket speaks a line protocol:
#   "sub T" / "unsub T"  -> "subscribed T" / "unsubscribed T"
#   "pub T text"         -> ws.publish(T, text)      "pubbin T hex" -> ws.publish(T, bytes)
#   "apppub T text"      -> app.publish(T, text)
#   "pid" -> "pid <pid> <worker>"   "addr" -> "addr <ws.remote_address>"
#   "count T" -> "count <local> <cluster>"
# HTTP: GET /pid, GET /stats (broker stats), GET /ip (req.ip), GET /block?seconds=S (blocks
# the event loop), POST /publish/T (app.publish of the body as text).
TEST_APP = textwrap.dedent('''
    import json, os, time
    from verb import create_server, ServerProtocol

    app = create_server(ServerProtocol.WEBSOCKET,
                        trust_proxy=os.environ.get("TEST_TRUST_PROXY") == "1",
                        broker_required=os.environ.get("TEST_BROKER_REQUIRED", "1") == "1")

    @app.get("/pid")
    def pid(req, res):
        res.json({"pid": os.getpid(), "worker": app.worker_id})

    @app.get("/stats")
    def stats(req, res):
        broker = app.broker
        res.json({"pid": os.getpid(), "broker": broker.stats() if broker else None,
                  "hub": app.stats()})

    @app.get("/ip")
    def ip(req, res):
        res.send(str(req.ip))

    @app.get("/block")
    def block(req, res):
        time.sleep(float(req.query.get("seconds", "1")))
        res.send("unblocked")

    @app.post("/publish/:topic")
    def publish(req, res):
        res.json({"local": app.publish(req.params["topic"], req.body.decode())})

    async def on_message(ws, message):
        if not isinstance(message, str):
            return
        command, _, rest = message.partition(" ")
        if command == "sub":
            ws.subscribe(rest)
            ws.send("subscribed " + rest)
        elif command == "unsub":
            ws.unsubscribe(rest)
            ws.send("unsubscribed " + rest)
        elif command == "pub":
            topic, _, text = rest.partition(" ")
            ws.publish(topic, text)
        elif command == "pubbin":
            topic, _, data = rest.partition(" ")
            ws.publish(topic, bytes.fromhex(data))
        elif command == "apppub":
            topic, _, text = rest.partition(" ")
            app.publish(topic, text)
        elif command == "pid":
            ws.send(f"pid {os.getpid()} {app.worker_id}")
        elif command == "addr":
            ws.send(f"addr {ws.remote_address}")
        elif command == "count":
            cluster = await app.cluster_subscriber_count(rest)
            ws.send(f"count {app.subscriber_count(rest)} {cluster}")

    app.websocket(message=on_message)

    if __name__ == "__main__":
        app.listen(int(os.environ.get("TEST_PORT", "3000")))
''')


class VerbProcess:
    """`python -m verb run app.py --port P [--broker URL] [--workers N]`, output in a file."""

    def __init__(self, directory: Path, *, broker=None, workers=None, port=None, env=None,
                 app_source=TEST_APP, name="verb"):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "app.py").write_text(app_source)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.output = directory / f"{name}-{self.port}.log"
        args = [sys.executable, "-m", "verb", "run", "app.py", "--host", "127.0.0.1",
                "--port", str(self.port)]
        if broker is not None:
            args += ["--broker", broker]
        if workers is not None:
            args += ["--workers", str(workers)]
        environment = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        environment.pop("VERB_BROKER", None)
        environment.pop("VERB_WORKERS", None)
        if broker is not None:
            environment["VERB_BROKER"] = broker
        self._log = open(self.output, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, cwd=directory, env=environment, stdout=self._log,
                                     stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_ready(self, timeout=20.0):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"verb exited early ({self.proc.returncode}):\n{self.log()}")
            return self.get_json("/pid")
        try:
            wait_until(ready, timeout=timeout, message=f"verb on port {self.port}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log()}") from None
        return self

    def get(self, path, timeout=5.0) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return response.read()

    def get_json(self, path, timeout=5.0):
        return json.loads(self.get(path, timeout))

    def post(self, path, body: bytes, timeout=5.0):
        request = urllib.request.Request(self.url + path, data=body, method="POST")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def stop(self, sig=signal.SIGTERM, timeout=20.0) -> int:
        stop_process_tree(self.proc, sig, timeout)
        self._log.close()
        return self.proc.returncode


def children(pid: int) -> set[int]:
    """The child processes of `pid` (Linux /proc)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found.update(int(p) for p in (task / "children").read_text().split())
    return found


def stop_process_tree(proc, sig=signal.SIGTERM, timeout=20.0):
    """Signal `proc` and wait for it; past `timeout`, SIGKILL it and the workers it had."""
    if proc.poll() is not None:
        return
    workers = children(proc.pid)
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait(timeout=10)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


# -- clients ------------------------------------------------------------------------------------

def client(url: str, **kwargs):
    # max_queue=None: a client that stops reading (messages it does not care about) still
    # takes the server's close frame at once when it closes.
    return connect(url, proxy=None, open_timeout=10, close_timeout=5, max_size=None,
                   max_queue=None, **kwargs)


def command(ws, text: str, reply_prefix: str, timeout=10.0) -> str:
    """Send a command and return its reply (skipping published messages in between)."""
    ws.send(text)
    deadline = time.monotonic() + timeout
    while True:
        message = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        if isinstance(message, str) and message.startswith(reply_prefix):
            return message


def receive_until(ws, last, timeout=15.0) -> list:
    """Every message up to and including `last`."""
    received = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{last!r} not received in {timeout} s; got {received[-5:]!r}")
        message = ws.recv(timeout=remaining)
        received.append(message)
        if message == last:
            return received


def assert_nothing_more(ws, wait=0.3):
    """Nothing else arrives within `wait` seconds (used after a bounded receive: it makes
    "exactly once" checks catch a late duplicate; a slow machine can only hide one, never
    fail a correct server)."""
    with contextlib.suppress(TimeoutError):
        extra = ws.recv(timeout=wait)
        raise AssertionError(f"unexpected extra message {extra!r}")


# -- nginx --------------------------------------------------------------------------------------

NGINX_CONF = textwrap.dedent('''
    worker_processes 1;
    daemon off;
    master_process on;
    pid {dir}/nginx.pid;
    error_log {dir}/error.log warn;
    events {{ worker_connections 512; }}
    http {{
        access_log {dir}/access.log;
        client_body_temp_path {dir}/client_body;
        proxy_temp_path {dir}/proxy;
        fastcgi_temp_path {dir}/fastcgi;
        uwsgi_temp_path {dir}/uwsgi;
        scgi_temp_path {dir}/scgi;
        map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
        upstream verb {{
    {servers}
        }}
        server {{
            listen 127.0.0.1:{port};
            location / {{
                proxy_pass http://verb;
                proxy_http_version 1.1;
                proxy_set_header Upgrade $http_upgrade;
                proxy_set_header Connection $connection_upgrade;
                proxy_set_header Host $host;
                proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                proxy_read_timeout 300s;
            }}
        }}
    }}
''')


class Nginx:
    """nginx in the foreground with its own config, pid and logs in a temporary directory,
    proxying to `upstreams` (ports on 127.0.0.1) round-robin."""

    def __init__(self, directory: Path, upstreams):
        self.binary = find_program("nginx", "/usr/sbin")
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        servers = "\n".join(f"        server 127.0.0.1:{port};" for port in upstreams)
        self.conf = directory / "nginx.conf"
        self.conf.write_text(NGINX_CONF.format(dir=directory, port=self.port, servers=servers))
        self.output = directory / "nginx.out"
        self._log = open(self.output, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [self.binary, "-p", str(directory), "-c", str(self.conf), "-e",
             str(directory / "error.log")], stdout=self._log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"

    def log(self) -> str:
        text = self.output.read_text(errors="replace")
        error_log = self.directory / "error.log"
        if error_log.exists():
            text += error_log.read_text(errors="replace")
        return text

    def wait_ready(self, timeout=15.0):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited ({self.proc.returncode}):\n{self.log()}")
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        wait_until(ready, timeout=timeout, message="nginx to listen")
        return self

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # fast shutdown (QUIT would wait for open WebSockets)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
