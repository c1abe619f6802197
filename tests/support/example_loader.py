"""Load `examples/*.py` as fresh modules, for the example and browser tests.

Each load executes the file again under a new module name, so module-level state (registries,
counters, the `app`) is new, and environment variables set before the load (timings) apply.
Timers an example starts at module level (`verb.set_interval` with no loop running) wait in
`verb.timers` for the next server to start; `ExampleLoader.close` cancels the ones its loads
created, so they cannot leak into later tests.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import time
from pathlib import Path

import verb
from verb.app import timers

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

_serial = itertools.count()


class ExampleLoader:
    def __init__(self):
        self.timers = []

    def load(self, name: str):
        """Execute examples/<name>.py as a new module and return it (not as __main__)."""
        before = set(map(id, timers._pending))
        module_name = f"verb_example_{name}_{next(_serial)}"
        spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        finally:
            self.timers.extend(t for t in timers._pending if id(t) not in before)
            del sys.modules[module_name]
        return module

    def close(self):
        for timer in self.timers:
            verb.clear_interval(timer)
        self.timers.clear()


def wait_for(condition, timeout=5.0, interval=0.01):
    """Poll `condition` until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {condition}")
        time.sleep(interval)
