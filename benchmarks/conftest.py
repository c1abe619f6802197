"""Shared benchmark helpers: prints a throughput summary for benchmarks that record one.

A benchmark that sets ``benchmark.extra_info["GB/s"]`` (and optionally ``"bytes"``) gets a line
in a table after pytest-benchmark's own, since that table has no column for it. The figures are
also in ``--benchmark-json`` output, under ``extra_info``. The median is printed beside the mean:
on a busy machine a few preempted rounds can move the mean far more than the median.
"""

import pytest


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)  # pytest-benchmark's, not public API
    rows = [b for b in getattr(session, "benchmarks", ()) if "GB/s" in b.extra_info]
    if not rows:
        return
    terminalreporter.write_sep("-", "throughput from the mean time (GB = 1e9 bytes)")
    for b in sorted(rows, key=lambda b: (b.group or "", -b.extra_info["GB/s"])):
        terminalreporter.write_line(
            "{:<14} {:<34} mean {:>9.3f} us {:>7.2f} GB/s   (median {:.3f} us)".format(
                b.group or "", b.name, b.stats.mean * 1e6, b.extra_info["GB/s"],
                b.stats.median * 1e6,
            )
        )
