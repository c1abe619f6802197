"""`verb asgi --reload`: serve in a child process and restart it when a watched file changes.

A development aid, as uvicorn's: the parent polls the modification times of the `*.py` files
under the watched directories (the app directory by default, `--reload-dir` to choose) every
`interval` seconds, with no dependency; on a change it stops the child with SIGTERM (the
server's graceful stop), waits for it, and starts a new one with the same command line minus
`--reload`. SIGINT/SIGTERM to the parent stop the child and the parent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", ".tox", "build"}


def snapshot(directories: list[str]) -> dict[str, float]:
    """path -> mtime of every *.py file under `directories` (skipping virtualenvs and caches)."""
    found = {}
    for directory in directories:
        for root, dirs, files in os.walk(directory):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")]
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(root, name)
                    try:
                        found[path] = os.stat(path).st_mtime
                    except OSError:
                        pass
    return found


def run(argv: list[str], directories: list[str], interval: float = 0.5) -> int:
    """Run `python -m verb asgi <argv>` (argv without --reload), restarting it on changes."""
    command = [sys.executable, "-m", "verb", "asgi", *argv]
    stopping = []

    def stop(signum, frame):
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    watched = [str(Path(d).resolve()) for d in directories]
    print(f"verb asgi: reloading on changes under {', '.join(watched)}", flush=True)
    try:
        while not stopping:
            child = subprocess.Popen(command)
            seen = snapshot(watched)
            changed = None
            while not stopping and child.poll() is None:
                time.sleep(interval)
                now = snapshot(watched)
                if now != seen:
                    changed = sorted(set(now.items()) ^ set(seen.items()))[0][0]
                    break
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            if stopping:
                break
            if changed is None:          # the child ended by itself: wait for a fix
                print(f"verb asgi: the server exited ({child.returncode}); waiting for a "
                      "change to restart", flush=True)
                seen = snapshot(watched)
                while not stopping and snapshot(watched) == seen:
                    time.sleep(interval)
            else:
                print(f"verb asgi: {changed} changed, restarting", flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
