#!/usr/bin/env bash
# Install verb (compiled) into .venv and serve the chat demo: http://localhost:3000
# Arguments go to `verb demo`, e.g. `scripts/demo.sh --port 8080 --host 0.0.0.0`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip "setuptools>=77" Cython
.venv/bin/python -m pip install -q -e .
exec .venv/bin/verb demo "$@"
