"""verb's connection layer, shared by every front-end.

Owns the compiled connection module (_server: the HTTP/1.1 connection and the upgrade, the
per-loop hub with topics, publish, write batching, timers and statistics, and ServerWebSocket),
the HTTP messages (http), every option and its validation (options) and the serving plumbing
(serving: listening socket, event loop, protocol class).

May import: verb.core, httptools, orjson, uvloop.
"""
