"""Where `verb asgi` deliberately differs from uvicorn: each entry an improvement, with its
reason, as a function from uvicorn's observation to the one verb must produce. README's
"FastAPI, Starlette, Django" section lists the same entries."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Allowed:
    reason: str
    change: Callable[[dict], dict]

    def expect(self, reference: dict) -> dict:
        return self.change(copy.deepcopy(reference))


def _close_1011(seen: dict) -> dict:
    seen["close"] = [1011, ""]
    return seen


def _version_426(seen: dict) -> dict:
    seen.update(status=426, version="13")
    return seen


def _spec_25(seen: dict) -> dict:
    for message in seen["messages"]:
        if message[0] == "text" and '"spec_version"' in message[1]:
            message[1] = message[1].replace('"spec_version":"2.4"', '"spec_version":"2.5"')
    return seen


def _root_path_spec(seen: dict) -> dict:
    _spec_25(seen["ws"])
    return seen


ALLOWED = {
    "ws raise after accept": Allowed(
        "an app exception after accept closes with 1011 (internal error, RFC 6455 7.4.1) "
        "instead of dropping the TCP connection without a close frame", _close_1011),
    "ws bad version": Allowed(
        "an unsupported Sec-WebSocket-Version gets 426 with Sec-WebSocket-Version: 13 "
        "(RFC 6455 4.4) instead of 400 without it", _version_426),
    "root path": Allowed("the same spec_version difference, in the WebSocket scope",
                         _root_path_spec),
    "ws scope": Allowed(
        'the scope\'s asgi.spec_version is "2.5" (verb implements the websocket.http.response '
        'extension and the 2.5 reason on disconnect) instead of "2.4"', _spec_25),
}
