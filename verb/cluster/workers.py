"""Worker processes sharing one port: `app.listen(port, workers=N)`, `verb run --workers N`.

The calling process becomes a supervisor. It binds the port first (so that port 0 resolves to
one port for all), then forks N workers before any event loop exists (a forked event loop,
uvloop's especially, is unusable in the child). Each worker binds the same address with
SO_REUSEPORT, so the Linux kernel spreads new connections over the workers, and serves on
its own event loop (uvloop when installed). Each knows its index as `app.worker_id` and the
VERB_WORKER_ID environment variable.

The workers share a directory the supervisor makes (its path in VERB_WORKERS_DIR), for state
files named `<worker_id>.<anything>` (the metrics snapshots of `app.metrics`); a dead worker's
files are removed when it is reaped, the directory when the supervisor returns.

This module knows nothing of the app: `supervise` is given `serve(worker_id, port, started)`,
the coroutine each worker runs (`App.listen` passes its own).

The supervisor:
- restarts a worker that dies (whatever the cause: a crash, SIGKILL, the OOM killer). A
  worker that had run for at least `STABLE_AFTER` seconds is restarted at once; one that
  dies sooner waits before its restart, twice as long each time, up to `RESTART_DELAY_MAX`
  (the restart-storm guard: a worker that cannot stay up costs little CPU and logs once per
  attempt);
- fails fast when a worker of the first generation cannot start (port in use, broker
  unreachable with `broker_required=True`, an exception in an `on_start` hook): it stops
  the others and `listen` raises `WorkersError`;
- makes the kernel send each worker SIGTERM should the supervisor itself die (even by
  SIGKILL): workers never outlive it;
- on SIGINT or SIGTERM sends SIGTERM to every worker, which stops gracefully (closes its
  WebSockets with 1001 and waits up to `stop_timeout` for their buffers), waits for them,
  and returns. A second signal, or workers still running after `stop_timeout` + 5 s, gets
  SIGKILL.

Without a broker each worker is its own island: a publish reaches only the subscribers of the
worker that made it (a warning says so); with `broker="redis://..."` it reaches all.

Caveats of fork: the program must not have started threads or an event loop before
`listen` (the children would inherit them half-made); do such work in `on_start` hooks,
which run in each worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable
from typing import Callable

from verb.server.serving import bound_socket, run

log = logging.getLogger("verb")

EXIT_STARTUP_FAILED = 3  # a worker's exit code when it could not start serving
STABLE_AFTER = 10.0  # seconds: a worker that ran this long is restarted without delay
RESTART_DELAY_MIN = 0.5
RESTART_DELAY_MAX = 30.0
_WATCHED = {signal.SIGCHLD, signal.SIGINT, signal.SIGTERM}
SHARED_DIR_ENV = "VERB_WORKERS_DIR"


class WorkersError(RuntimeError):
    """The workers could not be started."""


class _Slot:
    __slots__ = ("delay", "generation", "pid", "restart_at", "started_at")

    def __init__(self):
        self.pid = None
        self.started_at = 0.0
        self.delay = 0.0
        self.restart_at = 0.0
        self.generation = 0


def check_supported() -> None:
    """Raise RuntimeError where SO_REUSEPORT load balancing is not available."""
    if not sys.platform.startswith("linux") or not hasattr(socket, "SO_REUSEPORT"):
        raise RuntimeError(
            f"workers=N needs SO_REUSEPORT load balancing, which verb supports on Linux only "
            f"(this is {sys.platform}); run one process per port behind a reverse proxy, "
            "with a broker, instead")


#: serve(worker_id, port, started): what a worker runs until it is told to stop; it calls
#: `started()` once it is serving (a failure before that is a failure to start).
Serve = Callable[[int, int, Callable[[], None]], Awaitable[None]]


def supervise(serve: Serve, port: int, host: str, count: int, *, scheme: str = "http",
              stop_timeout: float = 10.0) -> None:
    """Run `count` workers, each running `serve` on (host, port), until SIGINT/SIGTERM.

    Args:
        serve: the coroutine function each worker runs (see `Serve`); it must bind with
            SO_REUSEPORT (`verb.server.serving.bound_socket(..., reuse_port=True)`).
        scheme: for the "listening on" line ("http" or "https").
        stop_timeout: how long a worker may take to stop before it is killed (plus 5 s).
    """
    check_supported()
    reserve = bound_socket(port, host, reuse_port=True)  # holds the port; never listens
    bound_host, port = reserve.getsockname()[:2]
    shared = tempfile.mkdtemp(prefix="verb-workers-")
    previous_shared = os.environ.get(SHARED_DIR_ENV)
    os.environ[SHARED_DIR_ENV] = shared
    slots = {worker_id: _Slot() for worker_id in range(count)}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)
    failure = None
    try:
        for worker_id, slot in slots.items():
            _start(serve, worker_id, slot, port, reserve, old_mask)
        print(f"verb: listening on {scheme}://{bound_host}:{port} with {count} workers "
              f"(supervisor pid {os.getpid()})", flush=True)
        while failure is None:
            now = time.monotonic()
            for worker_id, slot in slots.items():
                if slot.pid is None and slot.restart_at <= now:
                    _start(serve, worker_id, slot, port, reserve, old_mask)
            waits = [slot.restart_at - now for slot in slots.values() if slot.pid is None]
            timeout = max(0.01, min([0.5, *waits]))
            info = signal.sigtimedwait(_WATCHED, timeout)
            if info is not None and info.si_signo != signal.SIGCHLD:
                print(f"verb: {signal.Signals(info.si_signo).name}: stopping {count} workers",
                      flush=True)
                break
            failure = _reap(slots, shared)
    finally:
        _stop_all(slots, stop_timeout + 5.0)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        reserve.close()
        shutil.rmtree(shared, ignore_errors=True)
        if previous_shared is None:
            os.environ.pop(SHARED_DIR_ENV, None)
        else:
            os.environ[SHARED_DIR_ENV] = previous_shared
    if failure is not None:
        raise WorkersError(failure)


def _start(serve, worker_id, slot, port, reserve, old_mask) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    supervisor = os.getpid()
    pid = os.fork()
    if pid == 0:  # the worker
        code = 1
        try:
            reserve.close()
            _die_with(supervisor)
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            code = _worker(serve, worker_id, port)
        except BaseException:  # noqa: BLE001 - report, then leave without unwinding the parent's stack
            traceback.print_exc()
        finally:
            try:
                logging.shutdown()
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    slot.generation += 1
    slot.pid = pid
    slot.started_at = time.monotonic()


def _die_with(supervisor: int) -> None:
    """Have the kernel send us SIGTERM when the supervisor dies (even by SIGKILL), so that
    workers never outlive it (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return
    if os.getppid() != supervisor:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _worker(serve, worker_id, port) -> int:
    os.environ["VERB_WORKER_ID"] = str(worker_id)
    os.environ.pop("VERB_WORKERS", None)
    started = []
    try:
        run(serve(worker_id, port, lambda: started.append(True)))
    except Exception as exc:
        if started:
            raise
        print(f"verb: worker {worker_id} (pid {os.getpid()}) could not start: "
              f"{exc.__class__.__name__}: {exc}", file=sys.stderr, flush=True)
        return EXIT_STARTUP_FAILED
    return 0


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"


def _reap(slots, shared: str) -> str | None:
    """Collect dead workers and schedule their restarts; returns an error that should stop
    everything (a first-generation worker that could not start), else None."""
    now = time.monotonic()
    for worker_id, slot in slots.items():
        if slot.pid is None:
            continue
        try:
            pid, status = os.waitpid(slot.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = slot.pid, 0
        if pid == 0:
            continue
        slot.pid = None
        for name in os.listdir(shared):  # the dead worker's state files
            if name.startswith(f"{worker_id}."):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(shared, name))
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_STARTUP_FAILED \
                and slot.generation == 1:
            return f"worker {worker_id} could not start (see its error above)"
        lived = now - slot.started_at
        if lived >= STABLE_AFTER:
            slot.delay = 0.0
        else:
            slot.delay = min(RESTART_DELAY_MAX, max(RESTART_DELAY_MIN, slot.delay * 2))
        slot.restart_at = now + slot.delay
        print(f"verb: worker {worker_id} (pid {pid}) {_describe(status)} after {lived:.1f} s; "
              f"restarting it" + (f" in {slot.delay:.1f} s" if slot.delay else ""),
              file=sys.stderr, flush=True)
    return None


def _stop_all(slots, timeout: float) -> None:
    running = {slot.pid for slot in slots.values() if slot.pid is not None}
    for pid in running:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    killed = False
    while running:
        for pid in list(running):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                running.discard(pid)
        if not running:
            break
        info = signal.sigtimedwait(_WATCHED, 0.05)
        urgent = info is not None and info.si_signo != signal.SIGCHLD
        if not killed and (urgent or time.monotonic() >= deadline):
            print(f"verb: killing {len(running)} workers still running", file=sys.stderr,
                  flush=True)
            for pid in running:
                _signal(pid, signal.SIGKILL)
            killed = True
    for slot in slots.values():
        slot.pid = None


def _signal(pid: int, signo) -> None:
    try:
        os.kill(pid, signo)
    except ProcessLookupError:
        pass
