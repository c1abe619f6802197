"""verb peer for benchmarks/test_scrape_bench.py: the broadcast peer plus `/metrics` and a probe
of how long each scrape holds the event loop.

    python benchmarks/peers/verb_scrape_server.py --port 9001 --mode broadcast

- `/metrics` is `app.metrics()`; a middleware on it times each scrape's handler. The handler is
  synchronous, so that time is the stall the scrape causes: nothing else runs on the loop.
- A 1 ms timer records how late it runs (loop lag) whenever it is more than 2 ms late, with
  the loop time it was due, so that lag can be told apart by whether a scrape ran at that time.
- `GET /stall` returns the figures since the previous `GET /stall` as JSON and starts afresh.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import parse_args, raise_nofile  # noqa: E402
from verb_server import build_app  # noqa: E402

TICK = 0.001
LATE = 0.002  # libuv timers have millisecond resolution: less late is their jitter


class StallProbe:
    def __init__(self):
        self.scrapes = []   # (start, end) in perf_counter seconds
        self.lags = []      # (due, lag) in perf_counter seconds, lag > LATE
        self.ticks = 0
        self.timer = None

    def tick(self):
        now = time.perf_counter()
        if self.due is not None:
            lag = now - self.due
            if lag > LATE:
                self.lags.append((self.due, lag))
        self.ticks += 1
        self.due = now + TICK

    def start(self):
        from verb import set_interval
        self.due = None
        self.timer = set_interval(self.tick, TICK * 1000)

    def time_scrape(self, req, res, next):
        start = time.perf_counter()
        next()
        self.scrapes.append((start, time.perf_counter()))

    def report(self, req, res):
        def during_scrape(due, lag):
            return any(due <= end and due + lag >= start for start, end in self.scrapes)

        res.json({
            "ticks": self.ticks,
            "scrape_ms": [round((end - start) * 1e3, 3) for start, end in self.scrapes],
            "lag_ms_during_scrapes": [round(lag * 1e3, 3) for due, lag in self.lags
                                      if during_scrape(due, lag)],
            "lag_ms_otherwise": [round(lag * 1e3, 3) for due, lag in self.lags
                                 if not during_scrape(due, lag)],
        })
        self.scrapes, self.lags, self.ticks = [], [], 0


def main():
    args = parse_args("verb scrape benchmark peer", compression=True)
    raise_nofile()
    app = build_app(args)
    probe = StallProbe()
    app.use("/metrics", probe.time_scrape)
    app.metrics("/metrics")
    app.get("/stall", probe.report)
    probe.start()
    app.listen(args.port, host=args.host)


if __name__ == "__main__":
    main()
