"""The `verb` command line (also `python -m verb`).

    verb run app.py[:app] [--host HOST] [--port PORT] [--workers N] [--broker URL]
    verb demo [--host HOST] [--port PORT] [--workers N] [--broker URL]
    verb asgi MODULE:APP [uvicorn's flags]   (see verb.asgi.cli)

`run` executes the script as __main__. Its own `app.listen(...)` call serves, with `--port`
(or VERB_PORT) overriding the port it passes and `--host` (or VERB_HOST) the host. A script that
only builds an app, without calling listen, has that app served: the one named after the colon,
or the single `App` among its globals.

`--workers N` runs N processes sharing the port (Linux; see `verb.cluster.workers`) and
`--broker URL` (e.g. redis://127.0.0.1:6379/0) carries publishes between processes (see
`verb.pubsub`); they set VERB_WORKERS and VERB_BROKER, which override what the program passes.
"""

from __future__ import annotations

import argparse
import logging
import os
import runpy
import sys

from verb.app import app as app_module
from verb.asgi import cli as asgi_cli
from verb.cluster.pubsub import BrokerUnavailable
from verb.cluster.workers import WorkersError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="verb", description="verb WebSocket/HTTP server")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="serve a Python program written with verb")
    run.add_argument("target", help="path to the program, optionally :name of its app object")
    demo = commands.add_parser("demo", help="serve the chat demo")
    asgi = commands.add_parser("asgi", help="serve an ASGI app (FastAPI, Starlette, Django "
                               "Channels, ...) on verb's engine; flags as uvicorn's")
    asgi_cli.add_arguments(asgi)
    for command in (run, demo):
        command.add_argument("--host", default=None, help="address to bind (default: the "
                             "program's, else localhost)")
        command.add_argument("--port", type=int, default=None,
                             help="port to listen on (overrides the program's; env VERB_PORT)")
        command.add_argument("--workers", type=int, default=None,
                             help="worker processes sharing the port (Linux; env VERB_WORKERS)")
        command.add_argument("--broker", default=None,
                             help="pub/sub broker reaching every process, e.g. "
                             "redis://127.0.0.1:6379/0 (env VERB_BROKER)")
        command.add_argument("--metrics", default=None, metavar="PATH",
                             help="serve Prometheus metrics at PATH, e.g. /metrics "
                             "(env VERB_METRICS)")
        command.add_argument("--log-level", default="info",
                             choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    if args.command == "asgi":
        argv = sys.argv[1:] if argv is None else list(argv)
        return asgi_cli.main(args, asgi, argv[argv.index("asgi") + 1:])
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if args.port is not None:
        os.environ["VERB_PORT"] = str(args.port)
    if args.host is not None:
        os.environ["VERB_HOST"] = args.host
    if args.workers is not None:
        if args.workers < 1:
            parser.error("--workers must be at least 1")
        os.environ["VERB_WORKERS"] = str(args.workers)
    if args.broker is not None:
        os.environ["VERB_BROKER"] = args.broker
    if args.metrics is not None:
        os.environ["VERB_METRICS"] = args.metrics
    try:
        if args.command == "demo":
            from verb import demo as demo_module
            demo_module.app.listen(3000)
            return 0
        return _run(args.target)
    except (BrokerUnavailable, WorkersError) as exc:
        print(f"verb: {exc}", file=sys.stderr)
        return 1


def _run(target: str) -> int:
    path, _, name = target.partition(":")
    if not os.path.isfile(path):
        print(f"verb: no such file: {path}", file=sys.stderr)
        return 2
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    listened_before = app_module.App.listen_calls
    namespace = runpy.run_path(path, run_name="__main__")
    if app_module.App.listen_calls != listened_before:
        return 0  # the program served (and has stopped)
    app = _find_app(namespace, name, path)
    if app is None:
        return 2
    app.listen(3000)
    return 0


def _find_app(namespace, name, path):
    if name:
        app = namespace.get(name)
        if not isinstance(app, app_module.App):
            print(f"verb: {path} has no App named {name!r}", file=sys.stderr)
            return None
        return app
    apps = [value for value in namespace.values() if isinstance(value, app_module.App)]
    if len(apps) != 1:
        found = "no App" if not apps else f"{len(apps)} App objects"
        print(f"verb: {path} defines {found}; name one as {path}:NAME", file=sys.stderr)
        return None
    return apps[0]


if __name__ == "__main__":
    sys.exit(main())
