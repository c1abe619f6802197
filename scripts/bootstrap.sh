#!/usr/bin/env bash
# Installs the system packages verb's build needs, and with --test those its tests need; only
# those missing. scripts/test.sh runs it with --test, so CI and a newcomer take the same path.
set -euo pipefail
for_tests=0
[ "${1:-}" = "--test" ] && for_tests=1

need=()
command -v cc >/dev/null 2>&1 || need+=(gcc)
# Python headers: pyenv/python.org builds ship them; Debian's python3 needs python3-dev.
python3 - <<'PY' || need+=(python3-dev)
import os, sysconfig, sys
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)
PY
[ -e /usr/include/zlib.h ] || need+=(zlib1g-dev)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
# Chromium for tests/app/test_browser.py: Debian's package, driven by Playwright (never downloaded).
if [ $for_tests = 1 ] && [ ! -x /usr/bin/chromium ]; then
    if command -v apt-get >/dev/null 2>&1; then
        need+=(chromium)
    else
        echo "bootstrap: tests/app/test_browser.py needs Chromium at /usr/bin/chromium" >&2
    fi
fi
# Python 2.7.18 under pyenv for the Autobahn testsuite (tests/conformance/test_autobahn.py; wstest runs on
# Python 2 only). Not installed here (that would compile Python): the test fails without it.
if [ $for_tests = 1 ]; then
    py2root="${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}"
    if [ ! -x "$py2root/versions/2.7.18/bin/python2.7" ]; then
        echo "bootstrap: tests/conformance/test_autobahn.py needs Python 2.7.18 under pyenv" \
            "($py2root/versions/2.7.18, not found): install pyenv, then \`pyenv install 2.7.18\`" >&2
    fi
fi
# Redis (the pub/sub backplane of tests/cluster/test_pubsub.py, cluster/test_workers.py, server/test_proxy.py) and
# nginx (the reverse proxy of tests/server/test_proxy.py). The tests start their own processes on free
# ports; the packages' system services are not needed (and not started here).
if [ $for_tests = 1 ] && ! command -v redis-server >/dev/null 2>&1; then
    need+=(redis-server)
fi
if [ $for_tests = 1 ] && ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    need+=(nginx)
fi
# Prometheus (tests/app/test_metrics.py scrapes verb with a real one, started by the test).
if [ $for_tests = 1 ] && ! command -v prometheus >/dev/null 2>&1 && [ ! -x /usr/bin/prometheus ]; then
    need+=(prometheus)
fi
# wrk, the HTTP load generator of benchmarks/test_asgi_http_bench.py (CI smoke-runs benchmarks/).
if [ $for_tests = 1 ] && ! command -v wrk >/dev/null 2>&1; then
    need+=(wrk)
fi
# Node.js and npm for the interop peers in tests/interop (Node's `ws`).
if [ $for_tests = 1 ] && ! command -v npm >/dev/null 2>&1; then
    need+=(nodejs npm)
fi

if [ ${#need[@]} -gt 0 ]; then
    echo "bootstrap: installing ${need[*]}"
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    if command -v apt-get >/dev/null 2>&1; then
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
    else
        echo "bootstrap: please install: ${need[*]} (no apt-get on this system)" >&2
        exit 1
    fi
fi

interop="$(cd "$(dirname "$0")/.." && pwd)/tests/interop"
if [ $for_tests = 1 ] && [ ! -d "$interop/node_modules/ws" ]; then
    echo "bootstrap: installing the npm interop peers ($interop)"
    (cd "$interop" && npm ci --no-audit --no-fund --silent)
fi
