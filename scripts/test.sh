#!/usr/bin/env bash
# Install verb (compiled, editable) with its test dependencies into .venv and run the tests.
# Extra arguments go to pytest, e.g. `scripts/test.sh tests/core/test_frame.py -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh --test
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip "setuptools>=77" Cython
.venv/bin/python -m pip install -q -e '.[test,browser]'
exec .venv/bin/python -m pytest "$@"
