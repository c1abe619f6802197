#!/usr/bin/env bash
# End-to-end benchmarks in one command: installs the `bench` extra (picows, aiohttp, websockets,
# matplotlib, pytest-benchmark) into the current virtualenv (or .venv), Bun from the npm registry
# into benchmarks/.bun (skipped with a message where npm is missing or the install fails: the
# benchmarks then run without the Bun row), then runs benchmarks/e2e.py with the given arguments.
#
#   scripts/bench.sh            # full run, ~10-15 minutes
#   scripts/bench.sh --quick    # under 3 minutes
#   scripts/bench.sh --servers verb,picows --workloads echo64,echo1k
#
# A/B runs of two or more builds of verb: `--variant NAME=/path/to/python` (repeatable) runs the
# verb peer under that interpreter as the row verb[NAME], in place of the verb row; the other
# servers keep the default interpreter. Rounds stay interleaved, and the tables and the JSON give
# same-round ratios of every later variant vs the first (verb[new] / verb[base]) and name each
# variant's interpreter, verb directory and git commit. An interpreter that is missing or cannot
# import verb stops the run before it starts. Relative paths are taken from the current
# directory. A baseline from another commit:
#
#   git worktree add /tmp/verb-base <commit>
#   python3 -m venv /tmp/verb-base/.venv
#   /tmp/verb-base/.venv/bin/pip install "setuptools>=77" Cython
#   /tmp/verb-base/.venv/bin/pip install -e /tmp/verb-base    # uvloop etc. come as dependencies
#   scripts/bench.sh --variant base=/tmp/verb-base/.venv/bin/python --variant new=.venv/bin/python \
#       --servers verb --workloads echo64,echo1k,handshake
#
# Results then go to benchmarks/.build/variants/ (not results/latest.json) unless --results is
# given. `git worktree remove /tmp/verb-base` when done. An editable install does not recompile
# .pyx edits: rebuild a variant after changing it (the runner warns when a compiled module is
# older than its source). Two variants of the same interpreter make an A/A run (the noise).
set -euo pipefail

# --variant NAME=PATH: PATH made absolute against the caller's directory (before the cd below),
# and checked to be an executable file; e2e.py checks that it imports verb.
args=()
variants=0
while (($#)); do
    arg=$1
    shift
    case $arg in
        --variant=*) spec=${arg#--variant=} ;;
        --variant)
            if (($# == 0)); then
                echo "bench.sh: --variant needs NAME=/path/to/python" >&2
                exit 2
            fi
            spec=$1
            shift ;;
        *) args+=("$arg"); continue ;;
    esac
    name=${spec%%=*}
    path=${spec#*=}
    if [[ $spec != *=* || -z $name || -z $path ]]; then
        echo "bench.sh: --variant $spec: expected NAME=/path/to/python" >&2
        exit 2
    fi
    [[ $path == /* ]] || path="$PWD/$path"
    if [[ ! -f $path || ! -x $path ]]; then
        echo "bench.sh: --variant $spec: $path is not an executable file" >&2
        exit 2
    fi
    args+=(--variant "$name=$path")
    variants=$((variants + 1))
done

cd "$(dirname "$0")/.."

if [[ -n "${VIRTUAL_ENV:-}" ]]; then
    PY="$VIRTUAL_ENV/bin/python"
elif [[ -x .venv/bin/python ]]; then
    PY=.venv/bin/python
else
    PY=python3
fi

# Install the extra only when something is missing (pip install -e rebuilds the extensions).
# With variants the verb rows run under their own interpreters: this one's verb is not checked.
modules=verb,picows,aiohttp,websockets,matplotlib,pytest_benchmark,uvloop
((variants == 0)) || modules=${modules#verb,}
if ! "$PY" -c "import $modules" 2>/dev/null; then
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

exec "$PY" benchmarks/e2e.py ${args[@]+"${args[@]}"}
