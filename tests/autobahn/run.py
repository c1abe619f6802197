#!/usr/bin/env python3
"""Run the Autobahn testsuite (fuzzingclient) against verb's echo server and check the results.

    python tests/autobahn/run.py                  # default tier (see DEFAULT_TIER)
    python tests/autobahn/run.py --mode dedicated # one compression mode, its fast spec
    python tests/autobahn/run.py --full --mode shared   # every case, incl. 12/13 .9-.18

The Autobahn testsuite (`wstest`, https://github.com/crossbario/autobahn-testsuite) runs on
Python 2.7 only. On first use this script builds a Python 2.7 virtualenv with
autobahntestsuite in the cache directory ($VERB_AUTOBAHN_HOME, default
~/.cache/verb-autobahn) from pyenv's 2.7.18 ($PYENV_ROOT or `pyenv root`); it never compiles
Python. The echo server (tests/autobahn/echo_server.py) runs with the interpreter running this
script, so it tests whichever verb that interpreter imports.

For each run the server is started on a free 127.0.0.1 port, `wstest -m fuzzingclient` is
pointed at it, and the report's index.json is checked: every case must be OK, except
  * INFORMATIONAL for 7.1.6, 7.13.1, 7.13.2 (the suite itself grades them informational only),
  * UNIMPLEMENTED for 12.x/13.x (permessage-deflate) when compression is off.
FAILED, NON-STRICT, WRONG CODE and UNCLEAN (in `behavior` or `behaviorClose`) always fail.
Exit status 0 when every run passes, 1 when a case fails, 2 on a setup or run error.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ECHO_SERVER = HERE / "echo_server.py"

AUTOBAHN_VERSION = "25.10.1"
VIRTUALENV_VERSION = "20.21.1"  # the last virtualenv that creates Python 2.7 environments
PYTHON2_VERSION = "2.7.18"

# The fast spec for a compressing server: every case but the slow permessage-deflate ones
# (12.x.9-18 and 13.x.9-18 send 1000 messages of up to 128 KiB each). wstest turns a pattern
# with "*" into a start-anchored regex ("." literal, "*" = ".*").
FAST_EXCLUDE = ["12.*.9", "12.*.1[0-8]", "13.*.9", "13.*.1[0-8]"]
# Without compression 12.x/13.x are UNIMPLEMENTED; the fast spec runs 1.x-10.x.
OFF_CASES = [f"{n}.*" for n in range(1, 11)]
# Case counts of autobahntestsuite 25.10.1, to notice a run that stopped early.
EXPECTED_COUNTS = {"fast": 397, "off-fast": 301, "full": 517}

# What the default tier runs (tests/conformance/test_autobahn.py runs this): (mode, spec) pairs.
DEFAULT_TIER = [("shared", "fast"), ("off", "off-fast"), ("dedicated", "fast")]

INFORMATIONAL_CASES = {"7.1.6", "7.13.1", "7.13.2"}
BAD = {"FAILED", "NON-STRICT", "WRONG CODE", "UNCLEAN"}


def log(message):
    print(f"autobahn: {message}", flush=True)


class SetupError(Exception):
    """The Python 2.7 environment or a run could not be set up; exit status 2."""


# ------------------------------------------------------------------ the Python 2.7 environment

def cache_home() -> Path:
    home = os.environ.get("VERB_AUTOBAHN_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "verb-autobahn"


def find_python2() -> Path:
    """pyenv's Python 2.7.18 interpreter, or SetupError saying how to get it."""
    roots = []
    if os.environ.get("PYENV_ROOT"):
        roots.append(Path(os.environ["PYENV_ROOT"]))
    pyenv = shutil.which("pyenv")
    if pyenv:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30)
            if out.returncode == 0 and out.stdout.strip():
                roots.append(Path(out.stdout.strip()))
    roots.append(Path.home() / ".pyenv")
    for root in roots:
        python2 = root / "versions" / PYTHON2_VERSION / "bin" / "python2.7"
        if python2.exists():
            return python2
    raise SetupError(
        f"Python {PYTHON2_VERSION} under pyenv not found (looked in "
        f"{', '.join(str(r / 'versions' / PYTHON2_VERSION) for r in roots)}). The Autobahn "
        f"testsuite runs on Python 2.7 only: install it with `pyenv install {PYTHON2_VERSION}` "
        "(scripts/bootstrap.sh --test checks for it), or set PYENV_ROOT to a pyenv that has it.")


def run_setup_step(args, log_file, timeout=900):
    log("  $ " + " ".join(str(a) for a in args))
    with open(log_file, "a") as out:
        try:
            proc = subprocess.run([str(a) for a in args], stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SetupError(f"timed out after {timeout}s: {args[0]} (log: {log_file})") from None
    if proc.returncode != 0:
        tail = Path(log_file).read_text(errors="replace").splitlines()[-30:]
        raise SetupError(f"failed (exit {proc.returncode}): {' '.join(map(str, args))}\n"
                         + "\n".join(tail))


def ensure_wstest() -> Path:
    """The cached wstest, built first if it is missing (under a lock: runs may be concurrent)."""
    home = cache_home()
    env_dir = home / f"py2-autobahntestsuite-{AUTOBAHN_VERSION}"
    wstest = env_dir / "bin" / "wstest"
    ready = env_dir / ".ready"
    if ready.exists() and wstest.exists():
        return wstest
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists() and wstest.exists():
            return wstest
        python2 = find_python2()
        t0 = time.monotonic()
        log(f"building the Python 2.7 environment for wstest in {env_dir} (once)")
        setup_log = home / "setup.log"
        setup_log.write_text("")
        tool = home / "tool"
        shutil.rmtree(env_dir, ignore_errors=True)
        if not (tool / "bin" / "virtualenv").exists():
            shutil.rmtree(tool, ignore_errors=True)
            run_setup_step([sys.executable, "-m", "venv", tool], setup_log)
            run_setup_step([tool / "bin" / "pip", "install", "-q", "--disable-pip-version-check",
                            f"virtualenv=={VIRTUALENV_VERSION}"], setup_log)
        run_setup_step([tool / "bin" / "virtualenv", "-q", "-p", python2, env_dir], setup_log)
        run_setup_step([env_dir / "bin" / "pip", "install", "-q", "--disable-pip-version-check",
                        "--no-python-version-warning", f"autobahntestsuite=={AUTOBAHN_VERSION}"],
                       setup_log)
        if not wstest.exists():
            raise SetupError(f"{wstest} missing after installing autobahntestsuite")
        ready.write_text(f"autobahntestsuite {AUTOBAHN_VERSION}\n")
        log(f"Python 2.7 environment ready in {time.monotonic() - t0:.0f}s")
    return wstest


# ------------------------------------------------------------------ one run

def spec_cases(spec):
    if spec == "fast":
        return ["*"], FAST_EXCLUDE
    if spec == "off-fast":
        return OFF_CASES, []
    if spec == "full":
        return ["*"], []
    raise ValueError(spec)


@contextlib.contextmanager
def echo_server(mode, log_path, timeout=30, front="verb"):
    """Start tests/autobahn/echo_server.py; yields its port; always stops it (by PID)."""
    env = dict(os.environ)
    env.pop("VERB_PORT", None)  # app.listen honours these; the server must pick its own port
    env.pop("VERB_HOST", None)
    env["PYTHONUNBUFFERED"] = "1"
    log_file = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, str(ECHO_SERVER), mode, front], stdout=subprocess.PIPE,
                            stderr=log_file, text=True, env=env)
    try:
        port = []
        found = threading.Event()

        def read_stdout():  # the port from "verb: listening on ...", then keep the pipe drained
            for line in proc.stdout:
                log_file.write(line)
                log_file.flush()
                match = re.search(r"listening on \S+://127\.0\.0\.1:(\d+)", line)
                if match and not port:
                    port.append(int(match.group(1)))
                    found.set()
            found.set()

        threading.Thread(target=read_stdout, daemon=True).start()
        if not found.wait(timeout) or not port:
            raise SetupError(f"the echo server did not report its port within {timeout}s "
                             f"(exit {proc.poll()}); log: {log_path}")
        yield proc, port[0]
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        log_file.close()


class RunResult:
    def __init__(self, mode, spec, cases, seconds, problems):
        self.mode, self.spec, self.cases, self.seconds, self.problems = (
            mode, spec, cases, seconds, problems)

    @property
    def ok(self):
        return not self.problems


def check_case(case_id, result, mode):
    """The problems with one case's result (empty when it is acceptable)."""
    problems = []
    major = case_id.split(".")[0]
    for field in ("behavior", "behaviorClose"):
        value = result.get(field)
        if value == "OK":
            continue
        if value == "INFORMATIONAL" and case_id in INFORMATIONAL_CASES:
            continue
        if value == "UNIMPLEMENTED" and mode == "off" and major in ("12", "13"):
            continue
        kind = "bad" if value in BAD else "unexpected"
        problems.append(f"{case_id}: {field} {value} ({kind})")
    return problems


def run_one(wstest, mode, spec, out_dir, timeout, front="verb"):
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    (out_dir / "report").mkdir(parents=True)
    cases, exclude = spec_cases(spec)
    log(f"--- compression {mode}, spec {spec} ({out_dir})")
    t0 = time.monotonic()
    with echo_server(mode, out_dir / "server.log", front=front) as (server, port):
        spec_file = out_dir / "fuzzingclient.json"
        spec_file.write_text(json.dumps({
            "outdir": str(out_dir / "report"),
            "servers": [{"agent": "verb", "url": f"ws://127.0.0.1:{port}"}],
            "cases": cases,
            "exclude-cases": exclude,
            "exclude-agent-cases": {},
            "options": {"failByDrop": False},
        }, indent=2))
        log(f"echo server pid {server.pid} on 127.0.0.1:{port}; wstest -m fuzzingclient "
            f"(timeout {timeout}s)")
        with open(out_dir / "wstest.log", "w") as wlog:
            try:
                proc = subprocess.run([str(wstest), "-m", "fuzzingclient", "-s", str(spec_file)],
                                      cwd=out_dir, stdout=wlog, stderr=subprocess.STDOUT,
                                      timeout=timeout)
            except subprocess.TimeoutExpired:
                raise SetupError(f"wstest timed out after {timeout}s "
                                 f"(log: {out_dir / 'wstest.log'})") from None
        server_alive = server.poll() is None
    seconds = time.monotonic() - t0
    problems = []
    if proc.returncode != 0:
        problems.append(f"wstest exited with {proc.returncode} (log: {out_dir / 'wstest.log'})")
    if not server_alive:
        problems.append(f"the echo server died during the run (log: {out_dir / 'server.log'})")
    index_file = out_dir / "report" / "index.json"
    if not index_file.exists():
        raise SetupError(f"no {index_file}; wstest log:\n"
                         + (out_dir / "wstest.log").read_text(errors="replace")[-3000:])
    results = json.loads(index_file.read_text()).get("verb", {})
    expected = EXPECTED_COUNTS[spec]
    if len(results) != expected:
        problems.append(f"{len(results)} cases in the report, expected {expected}")
    for case_id in sorted(results, key=lambda c: [int(p) for p in c.split(".")]):
        problems += check_case(case_id, results[case_id], mode)
    return RunResult(mode, spec, results, seconds, problems)


# ------------------------------------------------------------------ summary

BEHAVIORS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED", "WRONG CODE",
             "UNCLEAN"]


def summary_table(runs):
    counted = [(r, collections.Counter(c.get("behavior") for c in r.cases.values()),
                collections.Counter(c.get("behaviorClose") for c in r.cases.values()))
               for r in runs]
    columns = [b for b in BEHAVIORS if any(b in beh or b in cl for _, beh, cl in counted)]
    extra = sorted({k for _, beh, cl in counted for k in list(beh) + list(cl)}
                   - set(BEHAVIORS), key=str)
    columns += extra
    header = ["compression", "spec", "cases"] + [str(c) for c in columns] + ["time", "result"]
    rows = []
    for r, beh, cl in counted:
        cells = [r.mode, r.spec, str(len(r.cases))]
        for c in columns:
            cells.append(f"{beh.get(c, 0)}/{cl.get(c, 0)}")
        cells += [f"{r.seconds:.0f}s", "PASS" if r.ok else f"FAIL ({len(r.problems)})"]
        rows.append(cells)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    lines.append("(counts are behavior/behaviorClose)")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", action="append", choices=["shared", "dedicated", "off"],
                        help="compression mode to run (repeatable); default: the default tier "
                             "(" + ", ".join(f"{m} {s}" for m, s in DEFAULT_TIER) + ")")
    parser.add_argument("--full", action="store_true",
                        help="every case (517, incl. 12.x/13.x .9-.18) for each mode; "
                             "~15+ minutes per compressing mode")
    parser.add_argument("--report-dir", type=Path,
                        help="where the reports go (default: a new temporary directory)")
    parser.add_argument("--front", choices=["verb", "asgi"], default="verb",
                        help="the echo server's front-end: verb's API (default) or a Starlette "
                             "echo under `verb asgi`")
    parser.add_argument("--timeout", type=float,
                        help="seconds per wstest run (default 600, with --full 1800)")
    args = parser.parse_args(argv)

    if args.mode:
        modes = list(dict.fromkeys(args.mode))
        plan = [(m, "full" if args.full else ("off-fast" if m == "off" else "fast"))
                for m in modes]
    elif args.full:
        plan = [(m, "full") for m, _ in DEFAULT_TIER]
    else:
        plan = list(DEFAULT_TIER)
    timeout = args.timeout or (1800 if args.full else 600)
    report_dir = args.report_dir or Path(tempfile.mkdtemp(prefix="verb-autobahn-"))
    report_dir = report_dir.resolve()

    t0 = time.monotonic()
    runs = []
    try:
        wstest = ensure_wstest()
        setup_seconds = time.monotonic() - t0
        for mode, spec in plan:
            runs.append(run_one(wstest, mode, spec, report_dir / f"{args.front}-{mode}-{spec}",
                                timeout, args.front))
    except SetupError as exc:
        if runs:
            print(summary_table(runs))
        print(f"autobahn: ERROR: {exc}", file=sys.stderr, flush=True)
        return 2
    total = time.monotonic() - t0

    print()
    print(summary_table(runs))
    print(f"wstest environment: {setup_seconds:.0f}s; total {total:.0f}s; "
          f"reports: {report_dir} (<run>/report/index.html)")
    failed = [r for r in runs if not r.ok]
    for r in failed:
        print(f"\nFAILED: compression {r.mode}, spec {r.spec}:")
        for problem in r.problems:
            print(f"  {problem}")
    sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
