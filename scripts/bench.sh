#!/usr/bin/env bash
# End-to-end benchmarks in one command: installs the `bench` extra (picows, aiohttp, websockets,
# matplotlib, pytest-benchmark) into the current virtualenv (or .venv), Bun from the npm registry
# into benchmarks/.bun (skipped with a message where npm is missing or the install fails: the
# benchmarks then run without the Bun row), then runs benchmarks/e2e.py with the given arguments.
#
#   scripts/bench.sh            # full run, ~10-15 minutes
#   scripts/bench.sh --quick    # under 3 minutes
#   scripts/bench.sh --servers verb,picows --workloads echo64,echo1k
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -n "${VIRTUAL_ENV:-}" ]]; then
    PY="$VIRTUAL_ENV/bin/python"
elif [[ -x .venv/bin/python ]]; then
    PY=.venv/bin/python
else
    PY=python3
fi

# Install the extra only when something is missing (pip install -e rebuilds the extensions).
if ! "$PY" -c "import verb, picows, aiohttp, websockets, matplotlib, pytest_benchmark, uvloop" 2>/dev/null; then
    "$PY" -m pip install -q -e '.[bench]'
fi

if [[ -x benchmarks/.bun/node_modules/.bin/bun ]] && benchmarks/.bun/node_modules/.bin/bun --version >/dev/null 2>&1; then
    :
elif command -v npm >/dev/null 2>&1; then
    # The npm `bun` package ships the binary in a platform sub-package (@oven/bun-<os>-<arch>).
    if ! npm install --prefix benchmarks/.bun --no-audit --no-fund --loglevel=error bun >/dev/null; then
        echo "bench.sh: npm install bun failed: running without the Bun row" >&2
    fi
else
    echo "bench.sh: npm not found: running without the Bun row (or set BUN=/path/to/bun)" >&2
fi

exec "$PY" benchmarks/e2e.py "$@"
