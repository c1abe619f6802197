"""setInterval / setTimeout for Verb programs.

The Verb guide starts timers at module level, before `app.listen`: with no event loop running
yet, such timers wait and start with the first server. Inside a running loop they start at once.
A timer's callback may be a plain function or `async def`; its exceptions are logged, never
raised into the loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging

log = logging.getLogger("verb")

# Timers created while no loop was running; started by `start_pending(loop)`.
_pending: list[Timer] = []


class Timer:
    """A handle returned by `set_interval` / `set_timeout`; pass it to `clear_interval`."""

    __slots__ = ("fn", "args", "delay", "repeat", "_handle", "_loop", "cancelled")

    def __init__(self, fn, ms, repeat, args):
        if not callable(fn):
            raise TypeError(f"timer callback must be callable, got {fn!r}")
        if not isinstance(ms, (int, float)) or isinstance(ms, bool) or ms < 0:
            raise ValueError(f"timer delay must be a number of milliseconds >= 0, got {ms!r}")
        self.fn = fn
        self.args = args
        self.delay = ms / 1000.0
        self.repeat = repeat
        self._handle = None
        self._loop = None
        self.cancelled = False

    def _start(self, loop):
        if self.cancelled:
            return
        self._loop = loop
        self._handle = loop.call_later(self.delay, self._fire)

    def _fire(self):
        if self.cancelled:
            return
        if self.repeat:
            self._handle = self._loop.call_later(self.delay, self._fire)
        try:
            result = self.fn(*self.args)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                task.add_done_callback(_log_failure)
        except Exception:
            log.exception("verb: timer callback %r raised", self.fn)

    def cancel(self):
        self.cancelled = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def _log_failure(task):
    if not task.cancelled() and task.exception() is not None:
        log.error("verb: async timer callback raised", exc_info=task.exception())


def _schedule(timer: Timer) -> Timer:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _pending.append(timer)
    else:
        timer._start(loop)
    return timer


def set_interval(fn, ms, *args) -> Timer:
    """Call `fn(*args)` every `ms` milliseconds."""
    return _schedule(Timer(fn, ms, True, args))


def set_timeout(fn, ms=0, *args) -> Timer:
    """Call `fn(*args)` once, after `ms` milliseconds."""
    return _schedule(Timer(fn, ms, False, args))


def clear_interval(timer) -> None:
    """Stop a timer (None is ignored, as in JavaScript)."""
    if timer is None:
        return
    if not isinstance(timer, Timer):
        raise TypeError(f"not a timer: {timer!r}")
    timer.cancel()
    if timer in _pending:
        _pending.remove(timer)


clear_timeout = clear_interval


def start_pending(loop) -> None:
    """Start the timers created before any loop ran (called when a server starts)."""
    while _pending:
        _pending.pop(0)._start(loop)
