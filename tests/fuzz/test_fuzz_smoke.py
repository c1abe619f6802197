"""Smoke run of the atheris harnesses in tests/fuzz/: a bounded number of iterations each.

Each harness runs as a subprocess (libFuzzer owns the process: it exits on the first failure
and writes the input that caused it) with a fixed seed, so a failure here reproduces with the
same command. Long campaigns: see tests/fuzz/README.md.

atheris publishes wheels for CPython 3.9-3.13 on manylinux x86_64 only (none for musllinux,
aarch64 or macOS, where it would need clang to build); it is in the `test` extra for those
platforms, and this test is skipped only where no wheel exists. Anywhere else a missing atheris
is a failure, not a skip: the harnesses would otherwise rot unnoticed.
"""

import importlib.util
import os
import platform
import subprocess
import sys

import pytest

FUZZ_DIR = os.path.dirname(os.path.abspath(__file__))
HARNESSES = ["fuzz_frame", "fuzz_frame_differential", "fuzz_handshake", "fuzz_inflate"]
RUNS = 20000
TIMEOUT = 60  # seconds per harness; each takes ~4 s on a 2-core CI machine
FULL_RUNS = 1_000_000  # --full: ~3-6 minutes per harness here
FULL_TIMEOUT = 1200

ATHERIS_WHEEL = (
    sys.platform == "linux"
    and platform.machine() == "x86_64"
    and platform.libc_ver()[0] == "glibc"
    and sys.implementation.name == "cpython"
)

pytestmark = pytest.mark.skipif(
    not ATHERIS_WHEEL,
    reason="atheris has wheels only for CPython on manylinux x86_64 (none for {} {} {})".format(
        sys.implementation.name, sys.platform, platform.machine()),
)


@pytest.fixture(scope="module")
def atheris_available():
    if importlib.util.find_spec("atheris") is None:
        pytest.fail(
            "atheris is not installed: the fuzz smoke test needs it (pip install -e '.[test]' "
            "installs it on CPython/manylinux x86_64, where wheels exist)", pytrace=False)


@pytest.mark.slow  # ~4-6 s each: README's test command runs them, check-wheel's per-wheel runs not
@pytest.mark.parametrize("harness", HARNESSES)
def test_harness_runs_clean(harness, atheris_available, tmp_path, full_tier):
    runs, timeout = (FULL_RUNS, FULL_TIMEOUT) if full_tier else (RUNS, TIMEOUT)
    command = [sys.executable, os.path.join(FUZZ_DIR, harness + ".py"), "-runs={}".format(runs),
               "-seed=1", "-max_len=4096", "-print_final_stats=1",
               "-artifact_prefix={}{}".format(tmp_path, os.sep)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                cwd=str(tmp_path))
    except subprocess.TimeoutExpired as exc:
        pytest.fail("{} did not finish {} runs in {} s:\n{}".format(
            harness, runs, timeout, (exc.stderr or b"")[-3000:]), pytrace=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, "{} failed (exit {}); reproduce with: {}\n{}".format(
        harness, result.returncode, " ".join(command), output[-5000:])
    assert "Done {} runs".format(runs) in output, output[-3000:]
