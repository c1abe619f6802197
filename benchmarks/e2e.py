#!/usr/bin/env python3
"""End-to-end benchmarks: verb beside websockets, aiohttp, picows, Bun and a C server.

Every server runs on loopback, pinned to CPU 0; our C load generator (benchmarks/loadgen/,
compiled here with `cc -O2` into benchmarks/.build/) runs pinned to CPU 1 and reports its own CPU
use, so a client limit shows. Rounds are interleaved A/B: round r runs every server once per
workload, in an order rotated by r, and the tables give medians of per-round values and medians
of same-round ratios (verb / picows, verb / Bun, ...), since ratios between servers in one round
move far less than absolute figures on a busy machine.

Workloads (--workloads, comma-separated):
  echo64 echo1k echo16k echo256k   64 connections x 4 messages in flight, binary echo: msgs/s and
                                   the server's CPU time per message (/proc/<pid>/stat)
  latency                          1 connection, 1 message (64 B) in flight: p50/p99 round trip
  handshake                        concurrent connect/upgrade/close loops: handshakes/s
  broadcast                        10,000 subscribers, the server publishes 64 B messages with its
                                   native fan-out (app.publish, server.publish, ...): deliveries/s
  idle                             10,000 idle connections (each echoed one 16 B message): server
                                   RSS growth / connection
  idle_deflate                     verb only: idle with compression="shared" negotiated
Servers (--servers): verb websockets aiohttp picows bun c. A server whose software is missing is
skipped with a message (Bun: run scripts/bench.sh, or npm install --prefix benchmarks/.bun bun).

Variants (--variant NAME=PYTHON, repeatable): A/B runs of builds of verb. Each variant replaces
the verb row by a row `verb[NAME]` whose peer (peers/verb_server.py) runs under that interpreter
(a venv where some build of verb is installed); the other servers keep this interpreter. Rounds
stay interleaved, and every later variant is compared with the first one by same-round ratios
(`verb[new] / verb[base]`, in the tables and the JSON). Each interpreter must run and import
verb and uvloop, checked before anything runs; the report names each one's verb directory and
git commit.

    python benchmarks/e2e.py            # full: ~10-15 minutes (5 rounds; 3 of broadcast/idle)
    python benchmarks/e2e.py --quick    # under 3 minutes (2 rounds; 1 of broadcast/idle)
    python benchmarks/e2e.py --servers verb,picows --workloads echo64,latency --rounds 2
    python benchmarks/e2e.py --variant base=/tmp/verb-base/.venv/bin/python \\
        --variant new=.venv/bin/python --servers verb --workloads echo64,echo1k,handshake

Writes benchmarks/results/<timestamp>.json, latest.json and chart.png (with --variant: in
benchmarks/.build/variants/ unless --results is given); prints markdown tables.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LOADGEN_DIR = HERE / "loadgen"
PEERS = HERE / "peers"
BUILD = HERE / ".build"
RESULTS = HERE / "results"
VARIANT_RESULTS = BUILD / "variants"
BUN_PREFIX = HERE / ".bun"

SERVER_CPU, CLIENT_CPU = 0, 1
ALL_SERVERS = ["verb", "picows", "websockets", "aiohttp", "bun", "c"]
# One Starlette app (peers/asgi_server.py) under each ASGI server; not in the default run
# (--servers asgi-verb,asgi-uvicorn,...); echo, handshake and idle workloads, no broadcast.
ASGI_SERVERS = ["asgi-verb", "asgi-uvicorn-verb", "asgi-uvicorn", "asgi-uvicorn-wsproto",
                "asgi-granian", "asgi-hypercorn", "asgi-daphne"]
ASGI_MODULES = {"verb": "verb.asgi", "uvicorn-verb": "uvicorn", "uvicorn": "uvicorn",
                "uvicorn-wsproto": "wsproto", "granian": "granian", "hypercorn": "hypercorn",
                "daphne": "daphne"}
LABELS = {"verb": "verb", "picows": "picows", "websockets": "websockets", "aiohttp": "aiohttp",
          "bun": "Bun (Bun.serve)", "c": "C epoll (limit)",
          "asgi-verb": "Starlette on verb asgi", "asgi-uvicorn-verb": "Starlette on uvicorn "
          "+ verb ws", "asgi-uvicorn": "Starlette on uvicorn", "asgi-uvicorn-wsproto":
          "Starlette on uvicorn (wsproto)", "asgi-granian": "Starlette on granian",
          "asgi-hypercorn": "Starlette on hypercorn", "asgi-daphne": "Starlette on daphne"}
VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*\Z")


def kind(server: str) -> str:
    """The peer a server row runs: "verb" for the variant rows "verb[NAME]"."""
    return server.split("[", 1)[0]


def label(server: str) -> str:
    return LABELS.get(server, server)


# --- workloads -------------------------------------------------------------------------------

@dataclass
class Workload:
    name: str
    title: str
    group: str  # workloads of one group share a server process (per round and server)
    metric: str  # key of the loadgen JSON (or derived) that the table shows
    unit: str
    higher_is_better: bool = True
    args: list = field(default_factory=list)
    servers: tuple | None = None  # None: every server
    server_args: tuple = ()
    baseline: str | None = None  # the workload whose peers' values it is compared with


def workloads(quick: bool, idle_conns: int, broadcast_conns: int) -> list[Workload]:
    d, w = ("0.8", "0.25") if quick else ("2.0", "0.5")
    echo = ["--mode", "echo", "--conns", "64", "--inflight", "4", "--duration", d, "--warmup", w]
    return [
        Workload("echo64", "echo 64 B", "echo", "msgs_per_s", "msgs/s",
                 args=echo + ["--size", "64"]),
        Workload("echo1k", "echo 1 KiB", "echo", "msgs_per_s", "msgs/s",
                 args=echo + ["--size", "1024"]),
        Workload("echo16k", "echo 16 KiB", "echo", "msgs_per_s", "msgs/s",
                 args=echo + ["--size", "16384"]),
        Workload("echo256k", "echo 256 KiB", "echo", "msgs_per_s", "msgs/s",
                 args=echo + ["--size", "262144"]),
        Workload("latency", "p99 latency", "echo", "p99_us", "µs", higher_is_better=False,
                 args=["--mode", "latency", "--size", "64", "--duration", d, "--warmup", w]),
        Workload("handshake", "handshakes", "echo", "handshakes_per_s", "/s",
                 args=["--mode", "handshake", "--concurrency", "64", "--duration", d,
                       "--warmup", w]),
        Workload("broadcast", f"broadcast to {broadcast_conns:,}", "broadcast",
                 "deliveries_per_s", "deliveries/s",
                 args=["--mode", "broadcast", "--conns", str(broadcast_conns), "--size", "64",
                       "--batch", "10", "--duration", d, "--timeout", "60"]),
        Workload("idle", f"idle memory ({idle_conns:,})", "idle", "kib_per_conn", "KiB/conn",
                 higher_is_better=False,
                 args=["--mode", "idle", "--conns", str(idle_conns), "--timeout", "60"]),
        Workload("idle_deflate", "idle memory, verb deflate", "idle_deflate", "kib_per_conn",
                 "KiB/conn", higher_is_better=False,
                 args=["--mode", "idle", "--conns", str(idle_conns), "--deflate",
                       "--timeout", "60"],
                 servers=("verb",), server_args=("--compression", "shared"), baseline="idle"),
    ]


# --- servers ---------------------------------------------------------------------------------

def find_bun() -> str | None:
    candidates = [os.environ.get("BUN"), str(BUN_PREFIX / "node_modules" / ".bin" / "bun"),
                  str(BUN_PREFIX / "node_modules" / "bun" / "bin" / "bun.exe"),
                  shutil.which("bun")]
    for path in candidates:
        if path and os.path.exists(path):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                out = subprocess.run([path, "--version"], capture_output=True, text=True,
                                     timeout=20)
                if out.returncode == 0:
                    return path
    return None


def server_command(name: str, build: dict, mode: str, port: int, extra=(),
                   python: str | None = None) -> list[str]:
    """The command line of a peer; `python` runs a Python peer under another interpreter."""
    common = ["--port", str(port), "--host", "127.0.0.1", "--mode", mode, *extra]
    if name == "bun":
        return [build["bun"], str(PEERS / "bun_server.ts"), *common]
    if name == "c":
        return [build["cecho"], str(port), "127.0.0.1"]
    if name.startswith("asgi-"):
        return [python or sys.executable, str(PEERS / "asgi_server.py"), "--server", name[5:],
                *common]
    return [python or sys.executable, str(PEERS / f"{name}_server.py"), *common]


def available_servers(names, build, variants=()) -> tuple[list[str], dict]:
    """The servers that can run here, and a message for each that cannot (variants: checked
    by check_variants)."""
    ok, skipped = [], {}
    modules = {"verb": "verb", "picows": "picows", "websockets": "websockets",
               "aiohttp": "aiohttp"}
    for name in names:
        if name in variants:
            pass
        elif name in modules:
            # From peers/, as the peer runs: not the checkout's source tree from the cwd.
            found = subprocess.run([sys.executable, "-c", f"import {modules[name]}, uvloop"],
                                   capture_output=True, text=True, cwd=PEERS)
            if found.returncode != 0:
                skipped[name] = (f"{modules[name]} (or uvloop) is not importable: pip install "
                                 "-e '.[bench]'")
                continue
        elif name == "bun" and not build.get("bun"):
            skipped[name] = ("Bun not found: scripts/bench.sh installs it (npm install --prefix "
                             "benchmarks/.bun bun), or set BUN=/path/to/bun")
            continue
        elif name == "c" and not build.get("cecho"):
            skipped[name] = "no C compiler"
            continue
        elif name.startswith("asgi-"):
            module = ASGI_MODULES[name[5:]]
            found = subprocess.run([sys.executable, "-c", f"import starlette, {module}"],
                                   capture_output=True, text=True, cwd=PEERS)
            if found.returncode != 0:
                skipped[name] = f"starlette or {module} is not importable: pip install it"
                continue
        ok.append(name)
    return ok, skipped


def parse_variants(specs, error) -> dict[str, str]:
    """--variant NAME=PYTHON arguments -> {"verb[NAME]": absolute interpreter path}, in order.
    The path is made absolute but symlinks are kept (a venv's python is one)."""
    variants = {}
    for spec in specs or ():
        name, sep, python = spec.partition("=")
        if not sep or not python or not VARIANT_NAME.match(name):
            error(f"--variant {spec!r}: expected NAME=/path/to/python, NAME of letters, digits "
                  "and _.+-")
        server = f"verb[{name}]"
        if server in variants:
            error(f"--variant {name} given twice")
        variants[server] = os.path.abspath(os.path.expanduser(python))
    return variants


# Run by each variant's interpreter from peers/ (where verb_server.py runs, so the same sys.path):
# what the peer imports, where verb comes from, and compiled modules older than their sources.
VARIANT_PROBE = r"""
import glob, json, os, sys
info = {"python_version": sys.version.split()[0], "executable": sys.executable}
try:
    import uvloop
    from verb import ServerProtocol, create_server
    import verb
except BaseException as exc:
    info["error"] = f"{type(exc).__name__}: {exc}"
else:
    where = os.path.dirname(os.path.abspath(verb.__file__))
    info["verb_dir"] = where
    info["verb_version"] = getattr(verb, "__version__", None)
    info["uvloop"] = getattr(uvloop, "__version__", None)
    try:
        import importlib.metadata as m
        info["dist_version"] = m.version("verb-ws")
    except Exception:
        pass
    stale = []
    for so in glob.glob(os.path.join(where, "**", "*.so"), recursive=True):
        stem = os.path.join(os.path.dirname(so), os.path.basename(so).split(".", 1)[0])
        for source in (stem + ".pyx", stem + ".pxd"):
            if os.path.exists(source) and os.path.getmtime(source) > os.path.getmtime(so):
                stale.append(os.path.relpath(source, where))
    info["stale_extensions"] = sorted(stale)
print(json.dumps(info))
"""


def git_info(directory: str) -> dict:
    """The commit of the git checkout holding `directory`, and whether tracked files differ
    from it (read-only: no optional index refresh); {} outside git."""
    info = {}
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        def git(*args):
            done = subprocess.run(["git", "-C", directory, "--no-optional-locks", *args],
                                  check=False, capture_output=True, text=True, timeout=30,
                                  env=env)
            return done.stdout.strip() if done.returncode == 0 else None
        commit = git("rev-parse", "--short", "HEAD")
        if commit:
            info["commit"] = commit
            info["checkout"] = git("rev-parse", "--show-toplevel")
            status = git("status", "--porcelain", "--untracked-files=no")
            if status is not None:
                info["dirty"] = bool(status)
    return info


def check_variants(variants: dict) -> tuple[list[dict], list[str]]:
    """Run each variant's interpreter once: (one dict per variant, problems that stop the run)."""
    infos, problems = [], []
    for server, python in variants.items():
        name = server[len("verb["):-1]
        spec = f"--variant {name}={python}"
        info = {"name": name, "server": server, "python": python}
        infos.append(info)
        if not os.path.exists(python):
            problems.append(f"{spec}: no such interpreter")
            continue
        if not os.access(python, os.X_OK) or os.path.isdir(python):
            problems.append(f"{spec}: not an executable file")
            continue
        try:
            done = subprocess.run([python, "-c", VARIANT_PROBE], check=False,
                                  capture_output=True, text=True, cwd=PEERS, timeout=120)
        except (OSError, subprocess.SubprocessError) as exc:
            problems.append(f"{spec}: cannot run it: {exc}")
            continue
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        try:
            info.update(json.loads(lines[-1]))
        except (IndexError, ValueError):
            tail = (done.stderr or done.stdout).strip()[-300:] or "no output"
            problems.append(f"{spec}: not a working Python interpreter (exit "
                            f"{done.returncode}: {tail})")
            continue
        if "error" in info:
            problems.append(f"{spec}: cannot import verb and uvloop there ({info['error']}); "
                            f"a working build must be installed in it ({python} -m pip install "
                            "-e /path/to/checkout)")
            continue
        info.update(git_info(info["verb_dir"]))
    seen = {}
    for info in infos:
        where = info.get("verb_dir")
        if where is None:
            continue
        first = seen.setdefault(where, info)
        if first is info:
            pass
        elif first["python"] == info["python"]:
            print(f"note: {info['server']} runs the same interpreter as {first['server']} (an "
                  "A/A run: its ratios show the noise of the measurement)", file=sys.stderr)
        else:
            print(f"warning: {info['server']} and {first['server']} import verb from the same "
                  f"directory ({where}): they run the same build", file=sys.stderr)
        if info.get("stale_extensions"):
            print(f"warning: {info['server']}: compiled modules older than their sources in "
                  f"{where}: {', '.join(info['stale_extensions'])} (rebuild: {info['python']} "
                  "-m pip install -e <checkout>)", file=sys.stderr)
    return infos, problems


def describe_variant(info: dict) -> str:
    text = f"{info['server']}: {info['python']} (Python {info.get('python_version', '?')})"
    version = info.get("verb_version") or info.get("dist_version")
    text += f", verb {version or '?'} from {info.get('verb_dir', '?')}"
    if info.get("commit"):
        text += f", git {info['commit']}" + (" + uncommitted changes" if info.get("dirty")
                                             else "")
    else:
        text += ", not in a git checkout"
    return text


CLK_TCK = os.sysconf("SC_CLK_TCK")


def core_busy_s(cpu) -> tuple[float, float]:
    """(task time incl. steal, irq + softirq time) of one CPU since boot (/proc/stat), s.

    Loopback traffic is processed in softirq, which the kernel (with IRQ time accounting) does
    not charge to the server's or the load generator's utime/stime.
    """
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith(f"cpu{cpu} "):
                user, nice, system, _idle, _iowait, irq, softirq, steal = (
                    int(x) for x in line.split()[1:9])
                return (user + nice + system + steal) / CLK_TCK, (irq + softirq) / CLK_TCK
    return 0.0, 0.0


def process_cpu_s(pid) -> float:
    """utime + stime of a process and its threads (/proc/<pid>/stat), seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class OtherLoad:
    """How much of the two pinned cores went to other processes (and hypervisor steal) while a
    workload ran, beside the server and the load generator, and how much to interrupts
    (softirq: mostly our own loopback traffic). A busy machine shows here."""

    def __init__(self, server_pid):
        self.server_pid = server_pid

    def __enter__(self):
        self.t = time.monotonic()
        self.busy = (core_busy_s(SERVER_CPU), core_busy_s(CLIENT_CPU))
        self.server = process_cpu_s(self.server_pid)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(
            resource.RUSAGE_SELF)
        self.ours = sum(u.ru_utime + u.ru_stime for u in usage)
        return self

    def __exit__(self, *exc):
        wall = time.monotonic() - self.t
        with contextlib.suppress(OSError, IndexError, ValueError):
            server = process_cpu_s(self.server_pid) - self.server
            usage = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(
                resource.RUSAGE_SELF)
            ours = sum(u.ru_utime + u.ru_stime for u in usage) - self.ours
            (task0, irq0), (task1, irq1) = core_busy_s(SERVER_CPU), core_busy_s(CLIENT_CPU)
            self.cpu0 = max(0.0, task0 - self.busy[0][0] - server) / wall
            self.cpu1 = max(0.0, task1 - self.busy[1][0] - ours) / wall
            self.irq = (irq0 - self.busy[0][1] + irq1 - self.busy[1][1]) / wall
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pin(cpu):
    if cpu is None:
        return None

    def set_affinity():
        os.sched_setaffinity(0, {cpu})
    return set_affinity


def probe(port: int, timeout: float = 2.0) -> bool:
    """Open a WebSocket, echo one binary message, close: the server is ready (and warm)."""
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                       f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n").encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    return False
                data += chunk
            if not data.startswith(b"HTTP/1.1 101"):
                return False
            rest = data.split(b"\r\n\r\n", 1)[1]
            mask = b"\x01\x02\x03\x04"
            payload = b"probe"
            s.sendall(bytes([0x82, 0x80 | len(payload)]) + mask +
                      bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
            while len(rest) < 2 + len(payload):
                chunk = s.recv(4096)
                if not chunk:
                    return False
                rest += chunk
            s.sendall(bytes([0x88, 0x82]) + mask + bytes(b ^ mask[i] for i, b in
                                                           enumerate(b"\x03\xe8")))
            return rest[2:2 + len(payload)] == payload
    except OSError:
        return False


class ServerProcess:
    """A peer server on a free port, pinned, logged to a file; stopped by PID even on error."""

    def __init__(self, name, command_for_port, log_path: Path, cpu=SERVER_CPU):
        self.name = name
        self.port = free_port()
        self.command = command_for_port(self.port)
        self.log_path = log_path
        self.cpu = cpu
        self.proc = None

    def __enter__(self):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.command, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=pin(self.cpu),
                                     cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.name} exited at start (code {self.proc.returncode}); "
                                   f"see {self.log_path}:\n{self.log_tail()}")
            if probe(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer on port {self.port} within 30 s")

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def pid(self):
        return self.proc.pid

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()

    def log_tail(self, lines=15) -> str:
        with contextlib.suppress(OSError):
            return "".join(self.log_path.read_text(errors="replace").splitlines(True)[-lines:])
        return ""


# --- build -----------------------------------------------------------------------------------

def compile_c(name: str, cc: str | None = None, build_dir: Path = BUILD,
              werror: bool = False) -> str:
    """cc -O2 benchmarks/loadgen/<name>.c into build_dir (rebuilt when a source is newer)."""
    cc = cc or os.environ.get("CC", "cc")
    build_dir.mkdir(parents=True, exist_ok=True)
    out = build_dir / name
    sources = [LOADGEN_DIR / f"{name}.c", LOADGEN_DIR / "ws_common.h"]
    if out.exists() and all(out.stat().st_mtime >= s.stat().st_mtime for s in sources):
        return str(out)
    cmd = [cc, "-O2", "-Wall", "-Wextra", *(["-Werror"] if werror else []), "-o", str(out),
           str(sources[0])]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr}")
    if done.stderr.strip():
        print(done.stderr, file=sys.stderr)
    return str(out)


# --- running one workload --------------------------------------------------------------------

def run_loadgen(loadgen: str, args: list, port: int, server_pid: int, cpu=CLIENT_CPU,
                timeout: float = 300) -> dict:
    cmd = [loadgen, *args, "--port", str(port), "--server-pid", str(server_pid)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=pin(cpu))
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"loadgen printed no result (exit {done.returncode}): "
                           f"{done.stderr.strip()[:500]}")
    result = json.loads(lines[-1])
    if "error" in result:
        raise RuntimeError(f"loadgen: {result['error']} ({result.get('errors')})")
    return result


def settled_rss(server: ServerProcess, limit: float = 3.0) -> int:
    """RSS once it stops growing (two readings 0.2 s apart within 0.5%), at most `limit` s."""
    last = server.rss_kib()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = server.rss_kib()
        if abs(now - last) <= max(64, last * 0.005):
            return now
        last = now
    return last


def run_idle(loadgen: str, args: list, server: ServerProcess, cpu=CLIENT_CPU,
             timeout: float = 300) -> dict:
    """Open N connections, read the server's RSS growth, let the loadgen close them."""
    conns = int(args[args.index("--conns") + 1])
    before = settled_rss(server, 1.0)
    cmd = [loadgen, *args, "--port", str(server.port), "--server-pid", str(server.pid),
           "--hold", str(timeout)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=pin(cpu))
    try:
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if not ready:
            raise RuntimeError("loadgen idle: no ready line")
        ready_line = json.loads(proc.stdout.readline() or "{}")
        if "error" in ready_line or not ready_line.get("ready"):
            raise RuntimeError(f"loadgen idle: {ready_line}")
        after = settled_rss(server)
        proc.stdin.write("\n")
        proc.stdin.flush()
        out, errs = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"loadgen idle printed no result: {errs[:500]}")
    result = json.loads(lines[-1])
    opened = ready_line["open"]
    result.update(ready_line_open=opened, setup_s=ready_line.get("setup_s"),
                  rss_before_kib=before, rss_after_kib=after,
                  kib_per_conn=(after - before) / opened if opened else None,
                  deflate_negotiated=ready_line.get("deflate_negotiated", 0))
    if opened < conns:
        result["errors"]["not_opened"] = conns - opened
    return result


# --- statistics and tables -------------------------------------------------------------------

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def round_ratios(runs, workload, a, b, metric) -> list:
    """metric(a) / metric(b) of each round in which both ran, by round."""
    ratios = []
    for rnd in sorted({r["round"] for r in runs}):
        va = [r["result"].get(metric) for r in runs if r["round"] == rnd and
              r["server"] == a and r["workload"] == workload and r.get("result")]
        vb = [r["result"].get(metric) for r in runs if r["round"] == rnd and
              r["server"] == b and r["workload"] == workload and r.get("result")]
        if va and vb and va[0] is not None and vb[0]:
            ratios.append(va[0] / vb[0])
    return ratios


def same_round_ratios(runs, workload, a, b, metric):
    """Median over rounds of metric(a) / metric(b), both from the same round."""
    return median(round_ratios(runs, workload, a, b, metric))


def fmt(value, unit=""):
    if value is None:
        return "—"
    if unit in ("µs",):
        return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"
    if unit == "KiB/conn":
        return f"{value:,.2f}"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


CPU_KEY = {"echo64": "server_cpu_us_per_msg", "echo1k": "server_cpu_us_per_msg",
           "echo16k": "server_cpu_us_per_msg", "echo256k": "server_cpu_us_per_msg",
           "handshake": "server_cpu_us_per_handshake",
           "broadcast": "server_cpu_us_per_delivery", "latency": "p50_us"}


def summarize(runs, works, servers, variants=()):
    """Medians per (workload, server), same-round ratios vs picows and Bun and, with variants,
    of every later variant vs the first, keyed (workload, server, reference[, "cpu"])."""
    med, cpu, client, ratios, errors = {}, {}, {}, {}, {}
    cpu_key = CPU_KEY
    variants = [v for v in variants if v in servers]
    for w in works:
        for s in servers:
            mine = [r for r in runs if r["workload"] == w.name and r["server"] == s]
            ok = [r["result"] for r in mine if r.get("result")]
            if not mine:
                continue
            med[(w.name, s)] = median([r.get(w.metric) for r in ok])
            if w.name in cpu_key:
                cpu[(w.name, s)] = median([r.get(cpu_key[w.name]) for r in ok
                                           if (r.get(cpu_key[w.name]) or -1) >= 0])
            client[(w.name, s)] = median([r.get("client_cpu_util") for r in ok])
            bad = {}
            for r in mine:
                if r.get("error"):
                    bad["failed runs"] = bad.get("failed runs", 0) + 1
                for k, v in (r.get("result") or {}).get("errors", {}).items():
                    if v:
                        bad[k] = bad.get(k, 0) + v
            if bad:
                errors[(w.name, s)] = bad
            for base in ("picows", "bun"):
                if base in servers and base != s:
                    ratios[(w.name, s, base)] = same_round_ratios(runs, w.name, s, base, w.metric)
                    if w.name in cpu_key and w.name != "latency":
                        ratios[(w.name, s, base, "cpu")] = same_round_ratios(
                            runs, w.name, s, base, cpu_key[w.name])
            if len(variants) > 1 and s in variants[1:]:
                ratios[(w.name, s, variants[0])] = same_round_ratios(runs, w.name, s,
                                                                     variants[0], w.metric)
                if w.name in cpu_key and w.name != "latency":
                    ratios[(w.name, s, variants[0], "cpu")] = same_round_ratios(
                        runs, w.name, s, variants[0], cpu_key[w.name])
    return med, cpu, client, ratios, errors


def variant_round_ratios(runs, works, variants) -> dict:
    """Every later variant / the first, per round: {(workload, server, reference[, "cpu"]):
    [ratio of round 0, ...]}, to see the spread behind the medians."""
    out = {}
    for w in works:
        for s in variants[1:]:
            out[(w.name, s, variants[0])] = round_ratios(runs, w.name, s, variants[0], w.metric)
            if w.name in CPU_KEY and w.name != "latency":
                out[(w.name, s, variants[0], "cpu")] = round_ratios(runs, w.name, s, variants[0],
                                                                    CPU_KEY[w.name])
    return out


def variant_table(works, variants, ratios, spread) -> list[str]:
    """Same-round ratios of every later variant vs the first: the metric and server CPU."""
    ref = variants[0]
    out = ["", (f"Medians of same-round ratios vs {ref} (variant ÷ {ref}; for latency, memory "
                "and CPU lower is better; [min–max over rounds]):"), ""]
    head = ["variant"] + [w.title for w in works]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for s in variants[1:]:
        for suffix, what in (((), s), (("cpu",), f"{s} server CPU")):
            if suffix and not any(w.name in CPU_KEY and w.name != "latency" for w in works):
                continue
            cells = [what]
            for w in works:
                r = ratios.get((w.name, s, ref, *suffix))
                rounds = spread.get((w.name, s, ref, *suffix)) or []
                cell = f"{r:.3f}×" if r is not None else "—"
                if len(rounds) > 1:
                    cell += f" [{min(rounds):.2f}–{max(rounds):.2f}]"
                cells.append(cell)
            out.append("| " + " | ".join(cells) + " |")
    return out


def markdown_tables(works, servers, med, cpu, client, ratios, variants=(), spread=None) -> str:
    out = []
    head = ["server"] + [f"{w.title} ({w.unit})" for w in works]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for s in servers:
        cells = [label(s)]
        for w in works:
            value = med.get((w.name, s))
            cells.append(fmt(value, w.unit) if (w.name, s) in med else "n/a")
        out.append("| " + " | ".join(cells) + " |")
    cpu_works = [w for w in works if w.name in ("echo64", "echo1k", "echo16k", "echo256k",
                                                "handshake", "broadcast")]
    if cpu_works:
        out.append("")
        out.append("Server CPU time (µs) per echoed message / handshake / delivery, and p50 "
                   "latency (µs):")
        out.append("")
        head = ["server"] + [w.title for w in cpu_works] + (
            ["p50 latency"] if any(w.name == "latency" for w in works) else [])
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for s in servers:
            cells = [label(s)] + [fmt(cpu.get((w.name, s))) for w in cpu_works]
            if any(w.name == "latency" for w in works):
                cells.append(fmt(cpu.get(("latency", s)), "µs"))
            out.append("| " + " | ".join(cells) + " |")
    variants = [v for v in variants if v in servers]
    if len(variants) > 1:
        out.extend(variant_table(works, variants, ratios, spread or {}))
    for base in ("picows", "bun"):
        if base not in servers:
            continue
        out.append("")
        out.append(f"Medians of same-round ratios vs {LABELS[base]} (server ÷ {base}; "
                   "for latency and memory lower is better):")
        out.append("")
        head = ["server"] + [w.title for w in works]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for s in servers:
            if s == base:
                continue
            cells = [label(s)]
            for w in works:
                r = ratios.get((w.name, s, base))
                cells.append(f"{r:.2f}×" if r is not None else "—")
            out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append("Load generator CPU use (fraction of its core, median; near 1.0 = client-bound):")
    out.append("")
    head = ["server"] + [w.title for w in works if not w.name.startswith("idle")]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for s in servers:
        cells = [label(s)]
        for w in works:
            if w.name.startswith("idle"):
                continue
            v = client.get((w.name, s))
            cells.append(f"{v:.2f}" if v is not None else "—")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def goals(med, ratios, mask_ratio) -> list[dict]:
    """Issue 6's goals, each with its measured ratio and met / not met."""
    rows = []

    def add(goal, peer, ratio, ok, verb_value=None, peer_value=None, note=""):
        rows.append(dict(goal=goal, peer=peer, ratio=ratio, met=ok, verb=verb_value,
                         peer_value=peer_value, note=note))

    def ratio_goal(goal, workload, base, threshold, lower_better=False):
        r = ratios.get((workload, "verb", base))
        v, p = med.get((workload, "verb")), med.get((workload, base))
        ok = None if r is None else (r <= threshold if lower_better else r >= threshold)
        add(goal, base, r, ok, v, p)

    ratio_goal("echo 64 B msgs/s ≥ 3× picows", "echo64", "picows", 3.0)
    for workload, label in (("echo64", "64 B"), ("echo1k", "1 KiB")):
        if workload == "echo1k":
            ratio_goal("echo 1 KiB msgs/s ≥ 3× picows", "echo1k", "picows", 3.0)
        r = ratios.get((workload, "verb", "bun"))
        rc = ratios.get((workload, "verb", "bun", "cpu"))
        ok = None if r is None and rc is None else bool((r or 0) >= 1.0 or
                                                        (rc is not None and rc <= 1.0))
        add(f"echo {label} ≥ 1.0× Bun (or server CPU/msg ≤ Bun's)", "bun", r, ok,
            med.get((workload, "verb")), med.get((workload, "bun")),
            note=f"CPU/msg ratio {rc:.2f}" if rc is not None else "")
    ratio_goal("echo 16 KiB msgs/s ≥ 1.5× picows", "echo16k", "picows", 1.5)
    ratio_goal("echo 256 KiB msgs/s ≥ 1.2× picows", "echo256k", "picows", 1.2)
    ratio_goal("handshakes/s ≥ 2× picows", "handshake", "picows", 2.0)
    ratio_goal("broadcast deliveries/s ≥ 1.0× Bun", "broadcast", "bun", 1.0)
    for workload, label in (("idle", ""), ("idle_deflate", ", shared compression")):
        v = med.get((workload, "verb"))
        bun = med.get(("idle", "bun"))
        ok = None if v is None else bool(v <= 1.5 and (bun is None or v < bun))
        add(f"idle memory ≤ 1.5 KiB/conn and below Bun{label}", "bun",
            v / bun if v is not None and bun else None, ok, v, bun,
            note="absolute KiB/conn compared" + ("" if bun else "; Bun not measured"))
    add("masking ≥ memcpy speed, 1 MiB in place", "memcpy", mask_ratio,
        None if mask_ratio is None else mask_ratio >= 1.0, note="in-process, same core")
    ratio_goal("p99 latency ≤ picows", "latency", "picows", 1.0, lower_better=True)
    return rows


def goals_table(rows) -> str:
    out = ["| goal | verb | peer | ratio | met |", "|---|---|---|---|---|"]
    for g in rows:
        met = "n/a" if g["met"] is None else ("met" if g["met"] else "not met")
        ratio = "—" if g["ratio"] is None else f"{g['ratio']:.2f}"
        peer = g["peer"] if g["peer_value"] is None else f"{g['peer']} {fmt(g['peer_value'])}"
        verb = fmt(g["verb"]) if g["verb"] is not None else ""
        note = f" ({g['note']})" if g["note"] else ""
        out.append(f"| {g['goal']}{note} | {verb} | {peer} | {ratio} | {met} |")
    return "\n".join(out)


def mask_vs_memcpy() -> float | None:
    """verb's in-place masking of 1 MiB vs a 1 MiB copy, best of many, on the client core."""
    code = r"""
import time
from verb.core._mask import mask_inplace
n = 1 << 20
data, src = bytearray(n), bytearray(b"x" * n)
view, key = memoryview(data), b"\x12\x34\x56\x78"
def best(fn, reps=400):
    t = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter_ns(); fn(); t = min(t, time.perf_counter_ns() - t0)
    return t
masking = best(lambda: mask_inplace(data, key))
copying = best(lambda: view.__setitem__(slice(None), src))
print(copying / masking)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PEERS,
                          preexec_fn=pin(SERVER_CPU if len(os.sched_getaffinity(0)) > 1 else None))
    with contextlib.suppress(ValueError):
        return float(done.stdout.strip())
    return None


# --- chart -----------------------------------------------------------------------------------

def chart(works, servers, med, path: Path, title: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = "picows" if "picows" in servers else servers[0]
    shown = [w for w in works if any(med.get((w.name, s)) for s in servers)]
    colors = {"verb": "#d62728", "picows": "#1f77b4", "websockets": "#9467bd",
              "aiohttp": "#8c564b", "bun": "#ff7f0e", "c": "#7f7f7f"}
    variant_colors = iter(["#d62728", "#e377c2", "#ff9896", "#bcbd22", "#17becf", "#2ca02c"])
    for s in servers:
        if s not in colors and kind(s) == "verb":
            colors[s] = next(variant_colors, None)
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(shown) + 2), 6), dpi=110)
    width = 0.8 / max(1, len(servers))
    for i, s in enumerate(servers):
        xs, ys, labels = [], [], []
        for j, w in enumerate(shown):
            v, b = med.get((w.name, s)), med.get((w.baseline or w.name, base))
            if not v or not b:
                continue
            xs.append(j + (i - (len(servers) - 1) / 2) * width)
            ys.append(v / b if w.higher_is_better else b / v)
            labels.append(fmt(v, w.unit))
        bars = ax.bar(xs, ys, width, label=label(s), color=colors.get(s))
        for bar, text in zip(bars, labels):
            ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                        fontsize=6, rotation=90)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(shown)))
    ax.set_xticklabels([f"{w.title}\n({w.unit})" for w in shown], fontsize=8)
    ax.set_ylabel(f"relative to {label(base)} (log; higher is better)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, ncol=min(6, len(servers)), loc="upper center",
              bbox_to_anchor=(0.5, -0.16), frameon=False)
    ymin, ymax = ax.get_ylim()
    ax.set_ylim(ymin, ymax * 3)
    ax.grid(axis="y", which="both", alpha=0.25)
    fig.text(0.99, 0.01, "bar labels: absolute medians; latency & memory inverted "
             f"({base}/server)", ha="right", fontsize=7, color="#555")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# --- main ------------------------------------------------------------------------------------

def versions(build) -> dict:
    info = {"python": platform.python_version(), "machine": platform.machine(),
            "kernel": platform.release(), "cpus": os.cpu_count()}
    code = ("import importlib.metadata as m\nfor n in ('verb-ws','picows','websockets',"
            "'aiohttp','uvloop'):\n try: print(n, m.version(n))\n except Exception: pass")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    for line in out.splitlines():
        name, version = line.split()
        info[name] = version
    if build.get("bun"):
        info["bun"] = subprocess.run([build["bun"], "--version"], capture_output=True,
                                     text=True).stdout.strip()
    with contextlib.suppress(Exception):
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                        capture_output=True, text=True).stdout.strip()
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and seconds")
    parser.add_argument("--rounds", type=int,
                        help="interleaved rounds of every workload (default: 5 for echo, "
                             "latency and handshake, 3 for broadcast and idle; quick: 2 and 1)")
    parser.add_argument("--servers", default=",".join(ALL_SERVERS))
    parser.add_argument("--workloads", default=None, help="comma-separated (default: all)")
    parser.add_argument("--idle-conns", type=int, default=10000)
    parser.add_argument("--broadcast-conns", type=int, default=10000)
    parser.add_argument("--results", type=Path, default=None,
                        help="directory of the JSON and chart (default: benchmarks/results; "
                             "with --variant: benchmarks/.build/variants)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to CPUs 0 and 1")
    parser.add_argument("--no-chart", action="store_true")
    parser.add_argument("--variant", action="append", metavar="NAME=PYTHON",
                        help="run the verb peer under this interpreter as the row verb[NAME] "
                             "(repeatable; the first is the reference of the variant ratios)")
    args = parser.parse_args(argv)
    variants = parse_variants(args.variant, parser.error)
    if args.results is None:  # an A/B run leaves results/latest.json (README's figures) alone
        args.results = VARIANT_RESULTS if variants else RESULTS
    started = time.monotonic()

    if not sys.platform.startswith("linux"):
        print("e2e benchmarks need Linux (epoll, /proc)", file=sys.stderr)
        return 2
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    need = max(args.idle_conns, args.broadcast_conns) + 100
    if hard < need:
        print(f"warning: open-files limit {hard} < {need}: large workloads may fail",
              file=sys.stderr)
    global SERVER_CPU, CLIENT_CPU
    if args.no_pin or len(os.sched_getaffinity(0)) < 2:
        if not args.no_pin:
            print("fewer than 2 CPUs available: not pinning", file=sys.stderr)
        SERVER_CPU = CLIENT_CPU = None
    else:
        cpus = sorted(os.sched_getaffinity(0))
        SERVER_CPU, CLIENT_CPU = cpus[0], cpus[1]
        os.sched_setaffinity(0, {CLIENT_CPU})  # the runner stays off the server's core

    if args.rounds:
        group_rounds = dict.fromkeys(("echo", "broadcast", "idle", "idle_deflate"), args.rounds)
    elif args.quick:
        group_rounds = {"echo": 2, "broadcast": 1, "idle": 1, "idle_deflate": 1}
    else:
        group_rounds = {"echo": 5, "broadcast": 3, "idle": 3, "idle_deflate": 3}
    works = workloads(args.quick, args.idle_conns, args.broadcast_conns)
    if args.workloads:
        wanted = args.workloads.split(",")
        unknown = set(wanted) - {w.name for w in works}
        if unknown:
            parser.error(f"unknown workloads {sorted(unknown)}; known: "
                         f"{', '.join(w.name for w in works)}")
        works = [w for w in works if w.name in wanted]
    wanted_servers = [s for s in args.servers.split(",") if s]
    unknown = set(wanted_servers) - set(ALL_SERVERS) - set(ASGI_SERVERS)
    if unknown:
        parser.error(f"unknown servers {sorted(unknown)}; known: "
                     f"{', '.join(ALL_SERVERS + ASGI_SERVERS)}")
    variant_info = []
    if variants:
        if "verb" not in wanted_servers:
            parser.error("--variant replaces the verb row: keep verb in --servers")
        at = wanted_servers.index("verb")
        wanted_servers[at:at + 1] = list(variants)
        variant_info, problems = check_variants(variants)
        for problem in problems:
            print(f"e2e: {problem}", file=sys.stderr)
        if problems:
            return 2

    build = {"loadgen": compile_c("loadgen")}
    with contextlib.suppress(RuntimeError):
        build["cecho"] = compile_c("cecho")
    if "bun" in wanted_servers:
        build["bun"] = find_bun()
    servers, skipped = available_servers(wanted_servers, build, variants)
    for name, why in skipped.items():
        print(f"skipping {name}: {why}", file=sys.stderr)
    if not servers:
        print("no server to run", file=sys.stderr)
        return 2
    logs = BUILD / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")

    runs = []
    groups = []
    for w in works:
        if w.group not in groups:
            groups.append(w.group)
    rounds = max(group_rounds[g] for g in groups)
    round_text = ", ".join(f"{group_rounds[g]} of {g}" for g in groups)
    print(f"e2e: {len(servers)} servers ({', '.join(servers)}), {len(works)} workloads, "
          f"rounds: {round_text}{' (quick)' if args.quick else ''}; servers on CPU "
          f"{SERVER_CPU}, loadgen on CPU {CLIENT_CPU}", flush=True)
    for info in variant_info:
        print(f"  {describe_variant(info)}", flush=True)
    for rnd in range(rounds):
        for g_index, group in enumerate(groups):
            if rnd >= group_rounds[group]:
                continue
            members = [w for w in works if w.group == group]
            order = servers[(rnd + g_index) % len(servers):] + \
                servers[:(rnd + g_index) % len(servers)]
            for s in order:
                mine = [w for w in members if (w.servers is None or kind(s) in w.servers)
                        and not (group == "broadcast" and s.startswith("asgi-"))]
                if not mine:
                    continue
                mode = "broadcast" if group == "broadcast" else "echo"
                log = logs / f"{stamp}-r{rnd}-{s.replace('[', '-').rstrip(']')}-{group}.log"

                def command(port, s=s, mode=mode, extra=mine[0].server_args):
                    return server_command(kind(s), build, mode, port, extra, variants.get(s))
                try:
                    with ServerProcess(s, command, log) as server:
                        for w in mine:
                            run = {"round": rnd, "server": s, "workload": w.name}
                            t0 = time.monotonic()
                            other = OtherLoad(server.pid)
                            try:
                                with other:
                                    if w.name.startswith("idle"):
                                        run["result"] = run_idle(build["loadgen"], w.args,
                                                                 server, cpu=CLIENT_CPU)
                                    else:
                                        run["result"] = run_loadgen(build["loadgen"], w.args,
                                                                    server.port, server.pid,
                                                                    cpu=CLIENT_CPU)
                            except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
                                run["error"] = str(exc)
                            if SERVER_CPU is not None and hasattr(other, "cpu0"):
                                run["other_load"] = [round(other.cpu0, 3), round(other.cpu1, 3),
                                                     round(other.irq, 3)]
                            run["seconds"] = round(time.monotonic() - t0, 2)
                            runs.append(run)
                            value = (run.get("result") or {}).get(w.metric)
                            errs = {k: v for k, v in
                                    (run.get("result") or {}).get("errors", {}).items() if v}
                            print(f"  r{rnd} {s:<10} {w.name:<12} "
                                  + (f"{fmt(value, w.unit):>12} {w.unit}" if value is not None
                                     else f"ERROR {run.get('error', '')[:200]}")
                                  + (f"  errors {errs}" if errs else ""), flush=True)
                            if server.proc.poll() is not None:
                                raise RuntimeError(f"{s} died during {w.name}: "
                                                   f"{server.log_tail()}")
                except RuntimeError as exc:
                    print(f"  r{rnd} {s:<10} {group}: {exc}", flush=True)
                    for w in mine:
                        if not any(r["round"] == rnd and r["server"] == s and
                                   r["workload"] == w.name for r in runs):
                            runs.append({"round": rnd, "server": s, "workload": w.name,
                                         "error": str(exc)})
                problems = [line for line in log.read_text(errors="replace").splitlines()
                            if any(k in line for k in ("Traceback", "Error", "error", "WARN",
                                                       "Exception"))]
                if problems:
                    print(f"  r{rnd} {s:<10} {group}: {len(problems)} log lines mention errors "
                          f"(see {log}): {problems[0][:160]}", flush=True)

    ordered = [s for s in variants if s in servers]
    med, cpu, client, ratios, errors = summarize(runs, works, servers, ordered)
    spread = variant_round_ratios(runs, works, ordered)
    mask_ratio = mask_vs_memcpy() if "verb" in servers else None
    goal_rows = goals(med, ratios, mask_ratio) if "verb" in servers else []
    tables = markdown_tables(works, servers, med, cpu, client, ratios, ordered, spread)
    elapsed = time.monotonic() - started
    header = (f"e2e benchmarks, {stamp}, rounds: {round_text}{' (--quick)' if args.quick else ''}, "
              f"medians; servers pinned to CPU {SERVER_CPU}, load generator to CPU {CLIENT_CPU}")
    print()
    print(header)
    if variant_info:
        print()
        print("Variants (the first is the reference of the variant ratios):")
        for info in variant_info:
            print(f"  {describe_variant(info)}")
    print()
    print(tables)
    if goal_rows:
        print()
        print("Goals (issue 6):")
        print()
        print(goals_table(goal_rows))
    if errors:
        print()
        print("Errors seen by the load generator (summed over rounds):")
        for (w, s), bad in sorted(errors.items()):
            print(f"  {s} {w}: {bad}")
    loads = [r["other_load"] for r in runs if r.get("other_load")]
    other_text = ""
    if loads:
        other_text = ("Other processes on the pinned cores during the runs (fraction of a "
                      "core): CPU {} median {:.2f} max {:.2f}; CPU {} median {:.2f} max {:.2f}. "
                      "Interrupts (softirq, both cores): median {:.2f}.").format(
            SERVER_CPU, median([x[0] for x in loads]), max(x[0] for x in loads),
            CLIENT_CPU, median([x[1] for x in loads]), max(x[1] for x in loads),
            median([x[2] for x in loads]))
        print()
        print(other_text)
    print(f"\n({elapsed:.0f} s)")

    args.results.mkdir(parents=True, exist_ok=True)
    info = versions(build)
    doc = {
        "timestamp": stamp, "quick": args.quick, "rounds": {g: group_rounds[g] for g in groups},
        "elapsed_s": round(elapsed, 1),
        "pinning": {"server_cpu": SERVER_CPU, "loadgen_cpu": CLIENT_CPU}, "versions": info,
        "skipped": skipped,
        "workloads": [{"name": w.name, "title": w.title, "metric": w.metric, "unit": w.unit,
                       "higher_is_better": w.higher_is_better, "loadgen_args": w.args}
                      for w in works],
        "servers": servers,
        **({"variants": variant_info,
            "variant_ratio_rounds": {"/".join(k): v for k, v in spread.items()}}
           if variants else {}),
        "medians": {f"{w}/{s}": v for (w, s), v in med.items()},
        "server_cpu_us": {f"{w}/{s}": v for (w, s), v in cpu.items()},
        "loadgen_cpu_util": {f"{w}/{s}": v for (w, s), v in client.items()},
        "ratios": {"/".join(k): v for k, v in ratios.items()},
        "goals": goal_rows, "mask_vs_memcpy": mask_ratio,
        "errors": {f"{w}/{s}": v for (w, s), v in errors.items()},
        "tables_markdown": tables, "goals_markdown": goals_table(goal_rows),
        "other_load": other_text,
        "runs": runs,
    }
    path = args.results / f"{stamp}.json"
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False))
    (args.results / "latest.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False))
    print(f"saved {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    if not args.no_chart:
        try:
            chart(works, servers, med, args.results / "chart.png",
                  f"verb e2e benchmarks ({stamp}, rounds: {round_text}, "
                  f"{info.get('cpus')} CPUs, medians)")
            print(f"chart {args.results / 'chart.png'}")
        except ImportError:
            print("matplotlib not installed: no chart (pip install -e '.[bench]')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
