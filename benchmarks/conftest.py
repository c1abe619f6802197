"""Shared benchmark helpers: a summary of the rates benchmarks record in `extra_info`.

pytest-benchmark's table has no column for throughput, so a benchmark that records figures in
``benchmark.extra_info`` (e.g. "GB/s", "MB/s", "MiB/s", "messages/s") gets a line in a table
printed after pytest-benchmark's own. The figures are also in ``--benchmark-json`` output. The
median is printed beside the mean: on a busy machine a few preempted rounds can move the mean
far more than the median.
"""

import pytest


def _format(info):
    return "  ".join(f"{key} {value:,}" if isinstance(value, (int, float)) else f"{key} {value}"
                     for key, value in info.items())


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)  # pytest-benchmark's, not public API
    rows = [b for b in getattr(session, "benchmarks", ()) if b.extra_info and b.stats]
    if not rows:
        return
    terminalreporter.write_sep("-", "rates from the mean time (GB = 1e9 bytes, MiB = 2**20)")
    for b in sorted(rows, key=lambda b: (b.group or "", b.name)):
        terminalreporter.write_line("{:<38} {:<40} mean {:>10.3f} us (median {:.3f})  {}".format(
            (b.group or "")[:38], b.name[:40], b.stats.mean * 1e6, b.stats.median * 1e6,
            _format(b.extra_info)))
