"""verb peer: the public API (create_server, app.websocket, app.publish), uvloop via app.listen.

    python benchmarks/peers/verb_server.py --port 9001 [--mode echo|broadcast]
        [--compression off|shared|dedicated]

VERB_BENCH_RATE_LIMIT, when set, is a JSON rate_limit option (e.g. '{"messages": 1e9}', a
limit never hit): a variant whose interpreter is a wrapper that sets it measures what a
configured limit costs (benchmarks/README.md).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import MAX_SIZE, TOPIC, parse_args, parse_go, payloads, raise_nofile  # noqa: E402


def build_app(args):
    """The peer's app for `args` (parse_args), not yet listening (verb_scrape_server.py adds
    to it)."""
    from verb import ServerProtocol, create_server

    app = create_server(ServerProtocol.WEBSOCKET)
    options = dict(
        compression=None if args.compression == "off" else args.compression,
        idle_timeout=0,
        max_payload_length=MAX_SIZE,
        max_connections=None,
    )
    if os.environ.get("VERB_BENCH_RATE_LIMIT"):
        options["rate_limit"] = json.loads(os.environ["VERB_BENCH_RATE_LIMIT"])
    if args.mode == "echo":
        app.websocket(message=lambda ws, message: ws.send(message), **options)
    else:
        def on_open(ws):
            if ws.request.path == "/sub":
                ws.subscribe(TOPIC)

        def on_message(ws, message):
            if not isinstance(message, str):
                ws.send(message)
            elif message == "count":
                ws.send(str(app.subscriber_count(TOPIC)))
            else:
                go = parse_go(message)
                if go:
                    for payload in payloads(*go):
                        app.publish(TOPIC, payload)

        app.websocket(open=on_open, message=on_message, **options)
    return app


def main():
    args = parse_args("verb benchmark peer", compression=True)
    raise_nofile()
    build_app(args).listen(args.port, host=args.host)


if __name__ == "__main__":
    main()
