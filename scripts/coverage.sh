#!/usr/bin/env bash
# Line coverage of verb: the Python modules and, through a line-tracing build, the Cython ones.
#
#   scripts/coverage.sh [extra pytest args]
#
# Line tracing needs the extensions compiled with VERB_LINETRACE=1 (Cython's linetrace directive
# and CYTHON_TRACE_NOGIL); such a build is several times slower, and an in-place build would
# replace the normal .so files of this checkout. So the build and the test run happen in a
# temporary copy of the checkout (verb/, tests/, setup.py, pyproject.toml, ...), which `import
# verb` finds first because the tests run from there; this checkout is left untouched. Set
# VERB_COVERAGE_DIR to keep the copy (and its .coverage data / htmlcov) somewhere else than a
# deleted temporary directory.
#
# Configuration: [tool.coverage.*] in pyproject.toml (Cython.Coverage plugin, source = verb).
# Needs .venv with the `test` extra plus `coverage` and Cython (scripts/test.sh sets it up).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}

if [ -n "${VERB_COVERAGE_DIR:-}" ]; then
    WORK=$VERB_COVERAGE_DIR
    rm -rf "$WORK"
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/verb-coverage.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
fi

# The tracked files plus uncommitted changes to them (not .so files, build/, .venv/).
git ls-files -z --cached --others --exclude-standard | tar cf - --null -T - | tar xf - -C "$WORK"
cd "$WORK"
find verb -name "*.so" -delete

echo "== building with line tracing in $WORK" >&2
VERB_LINETRACE=1 "$PYTHON" setup.py -q build_ext --inplace --force >build.log 2>&1 || {
    tail -30 build.log >&2
    exit 1
}

echo "== running the tests under coverage" >&2
# test_browser.py needs Chromium; the node-based interop tests need Node (both end to end, they
# add nothing to line coverage that the loopback tests do not).
status=0
"$PYTHON" -m coverage run -m pytest tests -q -p no:cacheprovider --benchmark-disable \
    --ignore=tests/app/test_browser.py -k "not node" "$@" || status=$?

"$PYTHON" -m coverage report --show-missing
if [ -n "${VERB_COVERAGE_DIR:-}" ]; then
    "$PYTHON" -m coverage html -q -d "$WORK/htmlcov"
    echo "== HTML report: $WORK/htmlcov/index.html" >&2
fi
if [ "$status" -ne 0 ]; then
    echo "== (the test run failed with status $status; figures above are from that run)" >&2
fi
exit "$status"
