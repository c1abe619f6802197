"""Echo server for the Autobahn fuzzing client (tests/autobahn/run.py starts it).

Usage: python echo_server.py [shared|dedicated|off]

Listens on a free port on 127.0.0.1 (the port is printed as "verb: listening on ...") and echoes
every message back. Limits are raised so that the 9.x (large message) cases fit, and compression
applies to every message (threshold 0) so that the 12.x/13.x cases exercise permessage-deflate.
"""

import sys

from verb import ServerProtocol, create_server

MiB = 1024 * 1024


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "off"
    if mode not in ("shared", "dedicated", "off"):
        sys.exit(f"echo_server: unknown compression mode {mode!r}")
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(
        message=lambda ws, message: ws.send(message),
        max_payload_length=64 * MiB,
        compression=None if mode == "off" else mode,
        compression_threshold=0,
        idle_timeout=0,
        backpressure_limit=256 * MiB,
    )
    app.listen(0, host="127.0.0.1")


if __name__ == "__main__":
    main()
