"""Metrics in the Prometheus text format, read from what the hub counts.

Nothing here runs per message: the compiled hub counts (`Hub.stats()`), and at scrape time
`StatsCollector` turns the figures into metric families for prometheus-client's exposition.
With worker processes each worker writes its figures to a snapshot file in a directory the
supervisor shares (`VERB_WORKERS_DIR`) every `SNAPSHOT_INTERVAL` seconds; a scrape, whichever
worker it reaches, reads every worker's snapshot (its own fresh) and reports per-worker series
with a `worker` label.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client import generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

__all__ = [
    "LOOP_LAG_BOUNDS",
    "expose",
    "labelled",
    "LoopLagProbe",
    "ProcessFigures",
    "SNAPSHOT_INTERVAL",
    "StatsCollector",
    "merge_stats",
    "new_registry",
    "read_snapshots",
    "write_snapshot",
]

SNAPSHOT_INTERVAL = 0.5  # seconds between a worker's snapshots
LOOP_LAG_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_HISTOGRAMS = ("ping_rtt", "loop_lag")


def empty_histogram(bounds: Iterable[float]) -> dict:
    bounds = tuple(bounds)
    return {"bounds": bounds, "counts": [0] * (len(bounds) + 1), "sum": 0.0}


def merge_stats(total: dict, stats: dict) -> dict:
    """Add `stats` into `total` (numbers add, dicts merge, histograms add bucket by bucket);
    returns `total`."""
    for key, value in stats.items():
        if key in _HISTOGRAMS:
            mine = total.setdefault(key, empty_histogram(value["bounds"]))
            mine["counts"] = [a + b for a, b in zip(mine["counts"], value["counts"])]
            mine["sum"] += value["sum"]
        elif isinstance(value, dict):
            merge_stats(total.setdefault(key, {}), value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value
        else:
            total[key] = value
    return total


class LoopLagProbe:
    """Event-loop lag: a timer due every `interval` seconds records how late it ran (what a
    callback waits behind a busy loop), in a histogram. One timer per loop, no per-connection
    cost."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float = 0.25) -> None:
        self.loop = loop
        self.interval = interval
        self.histogram = empty_histogram(LOOP_LAG_BOUNDS)
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self) -> None:
        self._due = self.loop.time() + self.interval
        self._handle = self.loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        lag = max(0.0, self.loop.time() - self._due)
        histogram = self.histogram
        index = next((i for i, bound in enumerate(histogram["bounds"]) if lag <= bound),
                     len(histogram["bounds"]))
        histogram["counts"][index] += 1
        histogram["sum"] += lag
        self.start()


class ProcessFigures(ProcessCollector):
    """prometheus-client's process collector without `process_open_fds`: counting open
    descriptors lists /proc/self/fd, 1.3 us per descriptor in the loop (6.6 ms per scrape
    at 5,000 connections, measured); `verb_connections` counts the connections instead."""

    def collect(self):
        if not self._btime:
            return []
        families = []
        try:
            with open(f"/proc/{self._pid()}/stat", "rb") as stat:
                parts = stat.read().split(b")")[-1].split()
        except OSError:
            return families
        ticks = self._ticks
        families.append(GaugeMetricFamily("process_virtual_memory_bytes",
                                          "Virtual memory size in bytes.", value=float(parts[20])))
        families.append(GaugeMetricFamily("process_resident_memory_bytes",
                                          "Resident memory size in bytes.",
                                          value=float(parts[21]) * self._pagesize))
        families.append(GaugeMetricFamily(
            "process_start_time_seconds", "Start time of the process since unix epoch in "
            "seconds.", value=float(parts[19]) / ticks + self._btime))
        families.append(CounterMetricFamily(
            "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
            value=(float(parts[11]) + float(parts[12])) / ticks))
        with contextlib.suppress(OSError):
            with open(f"/proc/{self._pid()}/limits", "rb") as limits:
                for line in limits:
                    if line.startswith(b"Max open file"):
                        families.append(GaugeMetricFamily(
                            "process_max_fds", "Maximum number of open file descriptors.",
                            value=float(line.split()[3])))
                        break
        return families


def _process_figures() -> dict:
    """This process's resident memory and CPU time (for the snapshots of worker processes)."""
    figures = {}
    for family in ProcessFigures(registry=None).collect():
        for sample in family.samples:
            if sample.name in ("process_resident_memory_bytes", "process_cpu_seconds_total"):
                figures[sample.name] = sample.value
    return figures


def write_snapshot(directory: str, worker_id: int, stats: dict) -> None:
    """Write this worker's figures (and its process figures) atomically to `directory`."""
    stats = dict(stats, **_process_figures(), written=time.time(), pid=os.getpid())
    path = os.path.join(directory, f"{worker_id}.metrics.json")
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "wb") as handle:
        handle.write(orjson.dumps(stats))
    os.replace(temporary, path)


def read_snapshots(directory: str) -> dict[str, dict]:
    """Every worker's last snapshot in `directory`: worker id (str) -> figures."""
    snapshots = {}
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(directory):
            if not name.endswith(".metrics.json"):
                continue
            try:
                with open(os.path.join(directory, name), "rb") as handle:
                    snapshots[name.split(".", 1)[0]] = orjson.loads(handle.read())
            except (OSError, ValueError):
                continue  # being replaced, or its worker is gone: the next scrape has it
    return snapshots


def _counter(name: str, doc: str, labels: list[str] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=list(labels))


class StatsCollector:
    """A prometheus-client collector over `source()`: a list of (labels, stats) pairs, one per
    process (labels {} for a single process, {"worker": "0"} ... with workers)."""

    def __init__(self, source: Callable[[], list[tuple[dict, dict]]]) -> None:
        self.source = source

    def describe(self) -> list:
        return []  # families are known only at collect time (labels vary)

    def collect(self):  # noqa: C901 - one family after another
        entries = self.source()
        names = sorted({name for labels, _ in entries for name in labels})

        def values(labels):
            return [labels.get(name, "") for name in names]

        gauges = {
            "connections": ("verb_connections", "Open connections (HTTP and WebSocket)"),
            "websockets": ("verb_websockets", "Open WebSockets"),
            "topics": ("verb_topics", "Topics with at least one subscriber in this process"),
            "subscriptions": ("verb_subscriptions", "Topic subscriptions of open WebSockets"),
            "peers": ("verb_peer_addresses", "Client addresses in the rate-limit table"),
        }
        counters = {
            "connections_total": ("verb_connections_accepted",
                                  "TCP connections accepted"),
            "messages_in": ("verb_messages_received", "WebSocket data messages received"),
            "messages_out": ("verb_messages_sent", "WebSocket frames queued to send"),
            "bytes_in": ("verb_received_bytes", "Bytes read from connections (wire)"),
            "bytes_out": ("verb_sent_bytes", "Bytes of frames queued to send (wire)"),
            "compressed_bytes_in": ("verb_compressed_received_bytes",
                                    "Wire payload bytes of permessage-deflate messages received"),
            "compressed_bytes_out": ("verb_compressed_sent_bytes",
                                     "Wire bytes of permessage-deflate frames sent"),
            "backpressure_drops": ("verb_backpressure_drops",
                                   "Sends dropped at backpressure_limit"),
            "handler_errors": ("verb_handler_errors", "Exceptions raised by WebSocket handlers"),
            "publishes": ("verb_publishes", "Publishes to a topic in this process"),
            "deliveries": ("verb_deliveries", "Messages delivered to subscribers by publishes"),
        }
        for key, (name, doc) in gauges.items():
            family = GaugeMetricFamily(name, doc, labels=names)
            for labels, stats in entries:
                family.add_metric(values(labels), stats.get(key, 0))
            yield family
        for key, (name, doc) in counters.items():
            family = _counter(name, doc, names)
            for labels, stats in entries:
                family.add_metric(values(labels), stats.get(key, 0))
            yield family

        family = _counter("verb_handshakes", "WebSocket upgrade requests answered, by status",
                          names + ["status", "outcome"])
        for labels, stats in entries:
            for status, n in sorted(stats.get("handshakes", {}).items()):
                outcome = "accepted" if status == "101" else "rejected"
                family.add_metric(values(labels) + [status, outcome], n)
        yield family

        family = _counter("verb_closes", "WebSocket closes by code and by who closed first "
                          "(server, client; abnormal: no closing handshake)",
                          names + ["code", "side"])
        for labels, stats in entries:
            for code, sides in sorted(stats.get("closes", {}).items()):
                for side, n in sorted(sides.items()):
                    family.add_metric(values(labels) + [code, side], n)
        yield family

        family = _counter("verb_rate_limited", "Messages over a rate limit, by action taken",
                          names + ["action"])
        for labels, stats in entries:
            for action, n in sorted(stats.get("rate_limited", {}).items()):
                family.add_metric(values(labels) + [action], n)
        yield family

        broker = [(labels, stats["broker"]) for labels, stats in entries if stats.get("broker")]
        if broker:
            up = GaugeMetricFamily("verb_broker_connected", "1 while the broker is reachable",
                                   labels=names)
            reconnects = _counter("verb_broker_reconnects", "Reconnections to the broker", names)
            errors = _counter("verb_broker_publish_errors",
                              "Publishes not sent to the broker (unreachable or over its queue)",
                              names)
            for labels, figures in broker:
                up.add_metric(values(labels), 1 if figures.get("connected") else 0)
                reconnects.add_metric(values(labels), figures.get("reconnects", 0))
                errors.add_metric(values(labels), figures.get("unsent", 0))
            yield up
            yield reconnects
            yield errors

        for key, name, doc in (
                ("ping_rtt", "verb_ping_rtt_seconds",
                 "Round trip of the keepalive pings send_pings sends"),
                ("loop_lag", "verb_event_loop_lag_seconds",
                 "How late a periodic timer ran on the event loop")):
            family = HistogramMetricFamily(name, doc, labels=names)
            for labels, stats in entries:
                histogram = stats.get(key)
                if histogram is None:
                    continue
                cumulative, buckets = 0, []
                for bound, count in zip([*histogram["bounds"], float("inf")],
                                        histogram["counts"]):
                    cumulative += count
                    buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)),
                                    cumulative))
                family.add_metric(values(labels), buckets, histogram["sum"])
            yield family

        if names:  # worker processes: their own process figures, per worker
            rss = GaugeMetricFamily("process_resident_memory_bytes", "Resident memory size in "
                                    "bytes", labels=names)
            cpu = _counter("process_cpu_seconds", "Total user and system CPU time spent in "
                           "seconds", names)
            for labels, stats in entries:
                if "process_resident_memory_bytes" in stats:
                    rss.add_metric(values(labels), stats["process_resident_memory_bytes"])
                    cpu.add_metric(values(labels), stats["process_cpu_seconds_total"])
            yield rss
            yield cpu


def new_registry(source: Callable[[], list[tuple[dict, dict]]], workers: bool) -> \
        CollectorRegistry:
    """A registry of our collector, and of the process figures for a single process (with
    workers, each worker's process figures come from its snapshot)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(source))
    if not workers:
        ProcessFigures(registry=registry)
    return registry


def labelled(snapshots: dict[str, dict]) -> list[tuple[dict, dict]]:
    """Per-worker (labels, stats) pairs from `read_snapshots`, in worker order."""
    return [({"worker": worker}, stats) for worker, stats in
            sorted(snapshots.items(), key=lambda item: int(item[0]) if item[0].isdigit() else 0)]


# The text format every Prometheus reads (prometheus-client 0.20+ announces 1.0.0, which older
# servers do not know; our names are plain, so the body is the same).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def expose(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The exposition of `registry`, and its Content-Type."""
    return generate_latest(registry), CONTENT_TYPE


def stats_of(sources: Iterable[Any]) -> dict:
    """The sum of `stats()` over `sources` (hubs)."""
    total: dict = {}
    for source in sources:
        merge_stats(total, source.stats())
    return total
