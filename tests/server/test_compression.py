"""permessage-deflate end to end (RFC 7692): negotiation with the real `websockets` client,
shared and dedicated modes, per-message opt-out, compress-once publish, bombs and corrupt
streams from a raw client."""

import os
import socket
import time
import zlib

import pytest
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.sync.client import connect

from verb import ServerProtocol, create_server

from test_server import upgrade_request

KEY = b"\x01\x02\x03\x04"


def compressed_app(mode, **options):
    app = create_server(ServerProtocol.WEBSOCKET)

    def message(ws, message):
        if message == "plain please":
            ws.send("not compressed", compress=False)
        elif isinstance(message, str) and message.startswith("join "):
            ws.subscribe(message[5:])
            ws.send("joined")
        elif isinstance(message, str) and message.startswith("say "):
            app.publish("room", message[4:])
        else:
            ws.send(message)

    app.websocket(message=message, compression=mode, **options)
    return app


def ws_connect(server, **kwargs):
    kwargs.setdefault("proxy", None)
    return connect(server.ws_url + "/", open_timeout=5, **kwargs)


@pytest.mark.parametrize("mode", ["shared", "dedicated"])
@pytest.mark.parametrize("client", [
    ClientPerMessageDeflateFactory(client_max_window_bits=True),  # websockets' default offer
    ClientPerMessageDeflateFactory(),
    ClientPerMessageDeflateFactory(server_max_window_bits=10, client_max_window_bits=12),
    ClientPerMessageDeflateFactory(server_no_context_takeover=True,
                                   client_no_context_takeover=True),
], ids=["default", "bare", "windows", "no-takeover"])
def test_negotiation_and_round_trips_with_websockets(mode, client):
    app = compressed_app(mode)
    with app.run_in_thread() as server:
        with ws_connect(server, extensions=[client], compression=None) as ws:
            header = ws.response.headers["Sec-WebSocket-Extensions"]
            assert header.startswith("permessage-deflate")
            if mode == "shared":
                assert "server_no_context_takeover" in header
                assert "client_no_context_takeover" in header
            messages = ["tiny", "κόσμε " * 2000, b"\x00" * 100_000, os.urandom(3000),
                        '{"event":"tick","price":1}' * 50] * 5
            for message in messages:
                ws.send(message)
                assert ws.recv(timeout=5) == message
            stats = app.stats()
    # Repetitive payloads went out compressed: far fewer bytes than were echoed.
    assert stats["bytes_out"] < sum(len(m) if isinstance(m, bytes) else len(m.encode())
                                    for m in messages) / 3


def test_no_offer_no_extension_and_compression_off_ignores_offers():
    with compressed_app("shared").run_in_thread() as server:
        with ws_connect(server, compression=None) as ws:
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            ws.send("x" * 1000)
            assert ws.recv(timeout=5) == "x" * 1000
    with compressed_app(None).run_in_thread() as server:
        with ws_connect(server, compression="deflate") as ws:
            assert "Sec-WebSocket-Extensions" not in ws.response.headers


def raw_client(server, extensions="permessage-deflate"):
    sock = socket.create_connection((server.host, server.port), timeout=5)
    sock.sendall(upgrade_request(Sec_WebSocket_Extensions=extensions))
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    head, _, rest = head.partition(b"\r\n\r\n")
    assert b"101" in head.split(b"\r\n")[0]
    return sock, head, rest


def client_frame(opcode, payload, rsv1=False, fin=True):
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return head + KEY + bytes(b ^ KEY[i % 4] for i, b in enumerate(payload))


def deflate(data):
    compressor = zlib.compressobj(wbits=-15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def read_until_closed(sock, data=b""):
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_per_message_opt_out_and_threshold_from_a_raw_client():
    app = compressed_app("shared", compression_threshold=64)
    with app.run_in_thread() as server:
        sock, head, rest = raw_client(server)
        with sock:
            assert b"permessage-deflate" in head
            sock.sendall(client_frame(1, deflate(b"plain please"), rsv1=True))
            sock.sendall(client_frame(1, b"short"))  # under the threshold: echoed plain
            sock.sendall(client_frame(1, deflate(b"long " * 40), rsv1=True))
            data = rest
            while len(data) < 3 + len("not compressed") + len("short"):
                data += sock.recv(65536)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and data.count(b"\x81") + data.count(b"\xc1") < 3:
                data += sock.recv(65536)
    assert data.startswith(b"\x81\x0enot compressed")  # RSV1 clear: the opt-out
    assert data[16:23] == b"\x81\x05short"
    assert data[23] == 0xC1  # FIN + RSV1 + text: compressed
    assert zlib.decompressobj(wbits=-15).decompress(data[25:] + b"\x00\x00\xff\xff") == \
        b"long " * 40


def test_bomb_closes_1009_and_corrupt_stream_closes_1007():
    app = compressed_app("shared", max_payload_length=1 << 20)
    with app.run_in_thread() as server:
        sock, _, rest = raw_client(server)
        with sock:
            sock.sendall(client_frame(2, deflate(b"\x00" * (10 << 20)), rsv1=True))
            data = read_until_closed(sock, rest)
        assert data.startswith(b"\x88") and data[2:4] == (1009).to_bytes(2, "big")
        sock, _, rest = raw_client(server)
        with sock:
            sock.sendall(client_frame(2, b"\xff\xfe\xfd garbage", rsv1=True))
            data = read_until_closed(sock, rest)
        assert data.startswith(b"\x88") and data[2:4] == (1007).to_bytes(2, "big")
        with ws_connect(server) as ws:  # the shared inflater serves the next connection fine
            ws.send("after the bomb " * 100)
            assert ws.recv(timeout=5) == "after the bomb " * 100


def test_publish_compresses_once_for_shared_subscribers_and_plain_for_others():
    app = compressed_app("shared")
    with app.run_in_thread() as server:
        with ws_connect(server) as compressed, ws_connect(server, compression=None) as plain:
            for ws in (compressed, plain):
                ws.send("join room")
                assert ws.recv(timeout=5) == "joined"
            text = "broadcast " * 300
            compressed.send("say " + text)
            assert compressed.recv(timeout=5) == text
            assert plain.recv(timeout=5) == text


def test_fragmented_compressed_message_interleaved_with_ping():
    app = compressed_app("dedicated")
    with app.run_in_thread() as server:
        sock, _, rest = raw_client(server)
        with sock:
            payload = deflate(b"fragmented " * 200)
            half = len(payload) // 2
            sock.sendall(client_frame(1, payload[:half], rsv1=True, fin=False)
                         + client_frame(9, b"hi")
                         + client_frame(0, payload[half:]))
            data = rest
            deadline = time.monotonic() + 5
            while len(data) < 4 + 2 and time.monotonic() < deadline:
                data += sock.recv(65536)
            assert data.startswith(b"\x8a\x02hi")  # the pong came between the fragments
            frame = data[4:]
            while (len(frame) < 2 or len(frame) < 2 + (frame[1] & 0x7F)) and \
                    time.monotonic() < deadline:
                data += sock.recv(65536)
                frame = data[4:]
            assert frame[0] == 0xC1
            length = frame[1] & 0x7F
            body = frame[2:2 + length]
            assert zlib.decompressobj(wbits=-15).decompress(body + b"\x00\x00\xff\xff") == \
                b"fragmented " * 200


INTEROP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "interop")


@pytest.mark.parametrize("mode", ["shared", "dedicated"])
def test_node_ws_client_interop(mode):
    """Node's `ws` (npm), an independent implementation, negotiates and round-trips."""
    import json
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None or not os.path.isdir(os.path.join(INTEROP, "node_modules", "ws")):
        pytest.fail("Node.js and tests/interop/node_modules/ws are needed: run "
                    "scripts/bootstrap.sh --test", pytrace=False)
    app = compressed_app(mode)
    with app.run_in_thread() as server:
        result = subprocess.run([node, os.path.join(INTEROP, "ws_client.js"), server.ws_url + "/"],
                                capture_output=True, text=True, timeout=30)
        stats = app.stats()
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0, (report, result.stderr)
    assert report["results"] == [True, True, True, True] and report["code"] == 1000
    assert report["extensions"].startswith("permessage-deflate")
    assert stats["bytes_out"] < 30_000  # 246 KB of compressible payload
