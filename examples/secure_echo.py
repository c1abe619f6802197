r"""Secure echo server over TLS, wss:// (the Verb WebSocket guide, "Secure WebSocket (WSS)").

The certificate and key are PEM files named by `--cert`/`--key` or by the TLS_CERT/TLS_KEY
environment variables (default: cert.pem and key.pem in the current directory). For a local
certificate, `mkcert localhost 127.0.0.1`, or a self-signed one:

    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost \
        -keyout key.pem -out cert.pem

    python examples/secure_echo.py --cert cert.pem --key key.pem
    TLS_CERT=cert.pem TLS_KEY=key.pem verb run examples/secure_echo.py --port 8443
"""

import argparse
import os
import sys

from verb import ServerProtocol, create_server


def tls_files(argv=()):
    """The certificate and key paths: from `argv` (--cert, --key), else the environment."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--cert", default=os.environ.get("TLS_CERT", "cert.pem"))
    parser.add_argument("--key", default=os.environ.get("TLS_KEY", "key.pem"))
    args, _ = parser.parse_known_args(list(argv))
    for path in (args.cert, args.key):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} not found: pass --cert/--key or set TLS_CERT/TLS_KEY "
                                    "(see the docstring of examples/secure_echo.py)")
    return {"cert": args.cert, "key": args.key}


# Command-line arguments only when run as a program (`verb run` passes its own on to us).
app = create_server(ServerProtocol.WEBSOCKETS,
                    tls=tls_files(sys.argv[1:] if __name__ == "__main__" else ()))


def on_open(ws):
    print("Secure client connected", flush=True)
    ws.send("Welcome to secure WebSocket server!")


def on_message(ws, message):
    ws.send(f"Secure echo: {message}")


def on_close(ws, code, reason):
    print(f"Secure client disconnected: {code} - {reason}", flush=True)


app.websocket(open=on_open, message=on_message, close=on_close)

if __name__ == "__main__":
    app.listen(3000)
