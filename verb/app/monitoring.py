"""`app.metrics(path)`: the app's figures at a route, in Prometheus' text format.

The hub counts (compiled); this module only gathers at scrape time: the app's figures
(`app.stats()`), an event-loop lag probe per running server, and, in a worker process, the
snapshots of every worker (see `verb.server.metrics`), so that one scrape reports them all
whichever worker SO_REUSEPORT hands it to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from verb.server import metrics

log = logging.getLogger("verb")

#: The environment variable naming the directory the worker supervisor shares with its
#: workers (set by verb.cluster.workers).
WORKERS_DIR = "VERB_WORKERS_DIR"


class Monitoring:
    """The metrics route of one app, and what feeds it while its servers run."""

    def __init__(self, app, path: str) -> None:
        if not isinstance(path, str) or not path.startswith("/") or \
                any(char in path for char in "?# \t\r\n"):
            raise ValueError(f'the metrics path must start with "/" and hold no query, '
                             f"fragment or whitespace, got {path!r}")
        self.app = app
        self.path = path
        self.probes: dict = {}        # server -> LoopLagProbe
        self._snapshots: asyncio.Task | None = None
        self.registry = metrics.new_registry(self._entries, workers=self._workers_dir() is not None)

    def _workers_dir(self) -> str | None:
        directory = os.environ.get(WORKERS_DIR)
        return directory if directory and self.app.worker_id is not None else None

    def stats(self) -> dict:
        """This process's figures: `app.stats()` plus the loop lag of its servers."""
        stats = self.app.stats()
        for probe in self.probes.values():
            metrics.merge_stats(stats, {"loop_lag": probe.histogram})
        stats.setdefault("loop_lag", metrics.empty_histogram(metrics.LOOP_LAG_BOUNDS))
        return stats

    def _entries(self) -> list[tuple[dict, dict]]:
        directory = self._workers_dir()
        if directory is None:
            return [({}, self.stats())]
        metrics.write_snapshot(directory, self.app.worker_id, self.stats())  # ours, fresh
        return metrics.labelled(metrics.read_snapshots(directory))

    def handle(self, req, res) -> None:
        """The route: the exposition of every figure."""
        body, content_type = metrics.expose(self.registry)
        res.header("Content-Type", content_type)
        res.header("Cache-Control", "no-store")
        res.send(body)

    # -- while servers run ---------------------------------------------------------------------

    def server_started(self, server, loop) -> None:
        probe = metrics.LoopLagProbe(loop)
        probe.start()
        self.probes[server] = probe
        if self._workers_dir() is not None and self._snapshots is None:
            self._snapshots = loop.create_task(self._write_snapshots())

    def server_stopped(self, server) -> None:
        probe = self.probes.pop(server, None)
        if probe is not None:
            probe.stop()
        if not self.probes and self._snapshots is not None:
            self._snapshots.cancel()
            self._snapshots = None

    async def _write_snapshots(self) -> None:
        directory = self._workers_dir()
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                try:
                    metrics.write_snapshot(directory, self.app.worker_id, self.stats())
                except OSError as exc:  # the supervisor removed the directory: it is stopping
                    log.debug("verb: metrics snapshot not written: %s", exc)
                await asyncio.sleep(metrics.SNAPSHOT_INTERVAL)
