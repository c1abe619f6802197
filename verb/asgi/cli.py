"""`verb asgi MODULE:APP [flags]`: the command line of verb's ASGI server.

Flags keep uvicorn's names and defaults where uvicorn has them, so that switching is one word:
`uvicorn main:app --port 8000` becomes `verb asgi main:app --port 8000`. verb's own options
follow (compression mode, backpressure limit, connection, body and rate limits, origins).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from verb.asgi.server import Config, run


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _json(text: str):
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {text!r} ({exc})") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `verb asgi`, with uvicorn's names and defaults."""
    defaults = Config(app=None)
    add = parser.add_argument
    add("app", help='the ASGI app, as "module:attribute" (e.g. main:app)')
    add("--host", default=defaults.host, help="address to bind (default: %(default)s)")
    add("--port", type=int, default=defaults.port, help="port to bind (default: %(default)s)")
    add("--uds", default=None, help="bind to this UNIX domain socket instead")
    add("--fd", type=int, default=None, help="serve on this already bound socket descriptor")
    add("--workers", type=int, default=None, help="worker processes sharing the port "
        "(SO_REUSEPORT, Linux)")
    add("--loop", choices=["auto", "uvloop", "asyncio"], default=defaults.loop)
    add("--http", choices=["auto", "httptools", "h11"], default="auto",
        help="accepted for uvicorn compatibility; verb parses HTTP with httptools")
    add("--ws", default="auto", help="accepted for uvicorn compatibility; verb's own "
        "WebSocket engine serves (\"none\" turns WebSockets off is not supported)")
    add("--ws-max-size", type=int, default=defaults.ws_max_size,
        help="largest WebSocket message in bytes (default: %(default)s)")
    add("--ws-max-queue", type=int, default=defaults.ws_max_queue,
        help="received messages waiting for the app before reading pauses")
    add("--ws-ping-interval", type=float, default=defaults.ws_ping_interval)
    add("--ws-ping-timeout", type=float, default=defaults.ws_ping_timeout)
    add("--ws-per-message-deflate", type=_bool, default=defaults.ws_per_message_deflate,
        metavar="BOOLEAN", help="offer permessage-deflate (default: true)")
    add("--lifespan", choices=["auto", "on", "off"], default=defaults.lifespan)
    add("--root-path", default=defaults.root_path)
    add("--proxy-headers", dest="proxy_headers", action="store_true", default=True)
    add("--no-proxy-headers", dest="proxy_headers", action="store_false")
    add("--forwarded-allow-ips", default=None,
        help="addresses trusted for X-Forwarded-* (comma-separated, * for all; default "
        "$FORWARDED_ALLOW_IPS or 127.0.0.1)")
    add("--limit-concurrency", type=int, default=None,
        help="most WebSockets at once; more get HTTP 503")
    add("--backlog", type=int, default=defaults.backlog)
    add("--timeout-keep-alive", type=float, default=defaults.timeout_keep_alive)
    add("--timeout-graceful-shutdown", type=float, default=None)
    add("--ssl-keyfile", default=None)
    add("--ssl-certfile", default=None)
    add("--log-level", choices=["critical", "error", "warning", "info", "debug", "trace"],
        default="info")
    add("--access-log", dest="access_log", action="store_true", default=True)
    add("--no-access-log", dest="access_log", action="store_false")
    add("--server-header", dest="server_header", action="store_true", default=True)
    add("--no-server-header", dest="server_header", action="store_false")
    add("--factory", action="store_true", help="APP is a factory: call it for the app")
    add("--app-dir", default=defaults.app_dir, help="directory to import the app from")
    add("--reload", action="store_true",
        help="restart the server when a .py file under the app directory changes (development)")
    add("--reload-dir", action="append", default=None, metavar="DIR",
        help="directory to watch with --reload (repeatable; default: --app-dir)")
    verb = parser.add_argument_group("verb's own options")
    verb.add_argument("--ws-compression", choices=["shared", "dedicated"],
                      default=defaults.ws_compression,
                      help="permessage-deflate mode: shared compressor, no context takeover "
                      "(default), or one per connection")
    verb.add_argument("--backpressure-limit", type=int, default=defaults.backpressure_limit)
    verb.add_argument("--max-connections", type=int, default=None)
    verb.add_argument("--max-body", type=int, default=defaults.max_body,
                      help="largest request body in bytes; more gets 413")
    verb.add_argument("--origins", default=None,
                      help="comma-separated Origin values a WebSocket upgrade may carry")
    verb.add_argument("--rate-limit", type=_json, default=None,
                      help='per-connection message limit, JSON, e.g. {"messages": 100}')
    verb.add_argument("--max-connections-per-ip", type=int, default=None)
    verb.add_argument("--handshake-rate", type=_json, default=None,
                      help='upgrades per address, JSON, e.g. {"per_ip": 10}')
    verb.add_argument("--metrics", default=None, metavar="PATH",
                      help="answer PATH (e.g. /metrics) with Prometheus metrics, before the app "
                      "(per process with --workers)")


def main(args: argparse.Namespace, parser: argparse.ArgumentParser, argv=None) -> int:
    if args.reload:
        if args.workers and args.workers > 1:
            parser.error("--reload and --workers cannot be combined")
        from verb.asgi import reload
        rest = [a for a in (argv if argv is not None else sys.argv[2:])
                if a != "--reload"]
        return reload.run(rest, args.reload_dir or [args.app_dir or "."])
    level = "DEBUG" if args.log_level == "trace" else args.log_level.upper()
    logging.basicConfig(level=level, format="%(levelname)s:     %(message)s")
    options = {name: getattr(args, name) for name in (
        "host", "port", "uds", "fd", "workers", "loop", "ws_max_size", "ws_max_queue",
        "ws_ping_interval", "ws_ping_timeout", "ws_per_message_deflate", "lifespan",
        "root_path", "proxy_headers", "forwarded_allow_ips", "limit_concurrency", "backlog",
        "timeout_keep_alive", "timeout_graceful_shutdown", "ssl_keyfile", "ssl_certfile",
        "access_log", "factory", "app_dir", "server_header", "ws_compression",
        "backpressure_limit", "max_connections", "max_body", "rate_limit",
        "max_connections_per_ip", "handshake_rate", "metrics")}
    options["log_level"] = args.log_level
    if args.origins is not None:
        options["origins"] = tuple(o.strip() for o in args.origins.split(",") if o.strip())
    try:
        run(args.app, **options)
    except ValueError as exc:  # the app could not be loaded, or an option is out of range
        parser.error(str(exc))
    return 0
