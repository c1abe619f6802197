"""End-to-end tests of the client (`verb.connect`, `verb.reconnecting`) over real loopback.

Peers: verb's own server (in a background thread, `app.run_in_thread`), the independent
`websockets` server library (in the client's loop), and small raw asyncio servers that send
crafted handshake responses and frames. The client runs on uvloop and on plain asyncio. Every
wait is bounded (`asyncio.wait_for`); no test asserts on timing.
"""

import asyncio
import base64
import hashlib
import os
import socket
import ssl
import struct
import zlib

import pytest
import uvloop
import websockets
from websockets.asyncio.server import serve as ws_serve

import verb
from verb import ServerProtocol, create_server
from verb.client.client import ClientWebSocket, HandshakeError
from verb.core.extensions import ClientOffer

TIMEOUT = 20


@pytest.fixture(params=["uvloop", "asyncio"])
def loop_kind(request):
    return request.param


def run(coro, loop_kind="uvloop"):
    """Run `coro` on a fresh loop of the given kind, bounded by TIMEOUT."""

    async def bounded():
        if loop_kind == "uvloop":
            assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        return await asyncio.wait_for(coro, TIMEOUT)

    if loop_kind == "uvloop":
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(bounded())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def echo_app(**options):
    app = create_server(ServerProtocol.WEBSOCKET, **options)
    app.websocket(message=lambda ws, message: ws.send(message))
    return app


async def recv(ws, timeout=10):
    return await asyncio.wait_for(ws.recv(), timeout)


async def messages(ws, timeout=10):
    async def collect():
        return [message async for message in ws]
    return await asyncio.wait_for(collect(), timeout)


class Proxy:
    """A TCP relay counting the bytes each way (to see compression on the wire)."""

    def __init__(self, port):
        self.upstream_port = port
        self.up = 0
        self.down = 0
        self.server = None
        self.port = None

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    async def _relay(self, reader, writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pipe(src, dst, count):
            try:
                while True:
                    data = await src.read(65536)
                    if not data:
                        break
                    setattr(self, count, getattr(self, count) + len(data))
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, "up"), pipe(up_reader, writer, "down"))


async def raw_server(handler):
    """An asyncio server calling `handler(request_head, reader, writer)` per connection."""

    async def on_connect(reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            await handler(head, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    return server, f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"


def request_key(head):
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"sec-websocket-key":
            return value.strip()
    raise AssertionError("no key in the request")


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                            .digest())


def response_101(key, *extra):
    lines = [b"HTTP/1.1 101 Switching Protocols", b"Upgrade: websocket",
             b"Connection: Upgrade", b"Sec-WebSocket-Accept: " + accept_for(key), *extra]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def server_frame(opcode, payload, fin=True, rsv1=False):
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


async def read_client_frame(reader):
    """One frame from the client: (fin, rsv1, opcode, masked, key, unmasked payload)."""
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    key = await reader.readexactly(4) if b1 & 0x80 else b""
    data = await reader.readexactly(n)
    if key:
        data = bytes(c ^ key[i % 4] for i, c in enumerate(data))
    return bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F, bool(b1 & 0x80), key, data


# ---------------------------------------------------------------------------------------------
# Against verb's server


def test_echo_text_and_binary(loop_kind):
    async def main(url):
        async with verb.connect(url) as ws:
            assert isinstance(ws, ClientWebSocket)
            assert ws.state == verb.client.client.OPEN
            ws.send("héllo")
            assert await recv(ws) == "héllo"
            ws.send(b"\x00\x01binary")
            assert await recv(ws) == b"\x00\x01binary"
            ws.send(bytearray(b"array"))
            assert await recv(ws) == b"array"
            ws.send(memoryview(b"view"))
            assert await recv(ws) == b"view"
            ws.send("")
            assert await recv(ws) == ""
            ws.send_binary("as binary")
            assert await recv(ws) == b"as binary"
            ws.send_text("as text")
            assert await recv(ws) == "as text"
            assert ws.response_headers["upgrade"].lower() == "websocket"
            assert ws.subprotocol is None and ws.extensions == ()
            assert ws.remote_address[0] == "127.0.0.1"
        assert ws.closed and ws.close_code == 1000

    with echo_app().run_in_thread(use_uvloop=loop_kind == "uvloop") as server:
        run(main(server.ws_url + "/"), loop_kind)


def test_many_pipelined_messages_in_order(loop_kind):
    async def main(url):
        async with verb.connect(url) as ws:
            for i in range(2000):
                ws.send(f"m{i}")
            for i in range(2000):
                assert await recv(ws) == f"m{i}"

    with echo_app().run_in_thread() as server:
        run(main(server.ws_url), loop_kind)


def test_large_messages_both_ways(loop_kind):
    big = os.urandom(5 * 1024 * 1024)
    text = "ü" * (3 * 1024 * 1024)

    async def main(url):
        async with verb.connect(url) as ws:
            ws.send(big)
            await asyncio.wait_for(ws.drain(), 10)
            assert await recv(ws, 20) == big
            ws.send(text)
            assert await recv(ws, 20) == text

    with echo_app().run_in_thread() as server:
        run(main(server.ws_url), loop_kind)


def test_subprotocol_negotiation():
    async def main(url):
        async with verb.connect(url, subprotocols=["superchat", "chat"]) as ws:
            assert ws.subprotocol == "chat"  # the server's preference decides
        async with verb.connect(url, subprotocols=["other"]) as ws:
            assert ws.subprotocol is None
        async with verb.connect(url) as ws:
            assert ws.subprotocol is None

    with echo_app(protocols=("chat", "superchat")).run_in_thread() as server:
        run(main(server.ws_url))


def test_extra_headers_reach_the_server():
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, message: ws.send(
        "{}|{}|{}".format(ws.request.headers.get("x-token"), ws.request.headers.get("origin"),
                          ws.request.headers.get("user-agent"))))

    async def main(url):
        async with verb.connect(url, headers={"X-Token": "s3cret",
                                              "Origin": "https://example.com"}) as ws:
            ws.send("who")
            assert await recv(ws) == "s3cret|https://example.com|verb"
        async with verb.connect(url, headers=[("User-Agent", "mine/1.0")]) as ws:
            ws.send("who")
            assert await recv(ws) == "None|None|mine/1.0"

    with app.run_in_thread() as server:
        run(main(server.ws_url))


def test_reserved_and_invalid_headers_are_refused():
    with pytest.raises(ValueError, match="set by the client"):
        verb.connect("ws://127.0.0.1:1/", headers={"Sec-WebSocket-Key": "x"})
    with pytest.raises(ValueError):
        verb.connect("ws://127.0.0.1:1/", headers={"X-Bad": "a\r\nb"})
    with pytest.raises(ValueError, match="ws:// or wss://"):
        verb.connect("http://127.0.0.1:1/")
    with pytest.raises(ValueError, match="fragment"):
        verb.connect("ws://127.0.0.1:1/#frag")
    with pytest.raises(ValueError, match="ssl="):
        verb.connect("ws://127.0.0.1:1/", ssl=True)
    with pytest.raises(ValueError, match="compression"):
        verb.connect("ws://127.0.0.1:1/", compression="gzip")


@pytest.mark.parametrize("mode", ["shared", "dedicated"])
def test_permessage_deflate_with_verb_server(mode, loop_kind):
    payload = ("the same words again and again " * 4000).encode()

    async def main(port):
        async with Proxy(port) as proxy:
            url = f"ws://127.0.0.1:{proxy.port}/"
            async with verb.connect(url, compression="deflate") as ws:
                assert ws.extensions == ("permessage-deflate",)
                params = ws.deflate_parameters
                assert params.server_no_context_takeover == (mode == "shared")
                for _ in range(3):
                    ws.send(payload)
                    assert await recv(ws) == payload
                    ws.send(payload.decode())
                    assert await recv(ws) == payload.decode()
                ws.send("tiny")  # under the threshold: sent plain
                assert await recv(ws) == "tiny"
            # 6 x 120 KB each way, compressed to a few hundred bytes per message.
            assert 0 < proxy.up < 60_000
            assert 0 < proxy.down < 60_000

    with echo_app(compression=mode).run_in_thread() as server:
        run(main(server.port), loop_kind)


def test_deflate_knobs_reach_the_offer():
    app = create_server(ServerProtocol.WEBSOCKET, compression="dedicated")
    app.websocket(message=lambda ws, message: ws.send(
        ws.request.headers.get("sec-websocket-extensions")))

    async def main(url):
        async with verb.connect(url, compression="deflate", client_max_window_bits=12,
                                server_max_window_bits=11, no_context_takeover=True) as ws:
            ws.send("offer?")
            offer = await recv(ws)
            assert offer == ("permessage-deflate; server_no_context_takeover; "
                             "client_no_context_takeover; server_max_window_bits=11; "
                             "client_max_window_bits=12")
            params = ws.deflate_parameters
            assert params.server_max_window_bits == 11
            assert params.client_max_window_bits == 12
            ws.send("x" * 5000)
            assert await recv(ws) == offer
        offer = ClientOffer(client_max_window_bits=False)
        async with verb.connect(url, compression=offer) as ws:
            ws.send("offer?")
            assert await recv(ws) == "permessage-deflate"

    with app.run_in_thread() as server:
        run(main(server.ws_url))


def test_no_compression_when_the_server_declines():
    async def main(url):
        async with verb.connect(url, compression="deflate") as ws:
            assert ws.extensions == () and ws.deflate_parameters is None
            ws.send("x" * 1000)
            assert await recv(ws) == "x" * 1000

    with echo_app().run_in_thread() as server:
        run(main(server.ws_url))


def test_wss_with_trustme_certificates(loop_kind):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    app = create_server(ServerProtocol.WEBSOCKETS, tls={
        "cert": cert.cert_chain_pems[0].bytes().decode(),
        "key": cert.private_key_pem.bytes().decode()})
    app.websocket(message=lambda ws, message: ws.send(message))
    context = ssl.create_default_context()
    ca.configure_trust(context)

    async def main(url):
        async with verb.connect(url, ssl=context) as ws:
            ws.send("over tls")
            assert await recv(ws) == "over tls"
            big = os.urandom(1024 * 1024)
            ws.send(big)
            assert await recv(ws) == big
        assert ws.close_code == 1000
        # The default context does not trust the throwaway CA.
        with pytest.raises(ssl.SSLCertVerificationError):
            await verb.connect(url)

    with app.run_in_thread(use_uvloop=loop_kind == "uvloop") as server:
        assert server.ws_url.startswith("wss://")
        run(main(server.ws_url), loop_kind)


def test_ping_and_pong(loop_kind):
    pings, pongs = [], []
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, message: ws.ping(b"from-server"),
                  ping=lambda ws, data: pings.append(data),
                  pong=lambda ws, data: pongs.append(data))

    async def main(url):
        async with verb.connect(url) as ws:
            latency = await asyncio.wait_for(ws.ping(), 10)
            assert isinstance(latency, float) and latency >= 0
            assert await asyncio.wait_for(ws.ping("hello"), 10) >= 0
            # Two pings in flight, answered in order.
            both = await asyncio.wait_for(asyncio.gather(ws.ping(b"a"), ws.ping(b"b")), 10)
            assert len(both) == 2
            ws.pong(b"unsolicited")
            with pytest.raises(ValueError):
                await ws.ping(b"x" * 126)
            ws.send("ping me")  # the server pings; the client answers on its own
            for _ in range(500):
                if b"from-server" in pongs:
                    break
                await asyncio.sleep(0.01)
            assert pongs == [b"unsolicited", b"from-server"]
        assert pings[:2] == [pings[0], b"hello"] and len(pings[0]) == 4
        assert pings[2:4] == [b"a", b"b"]

    with app.run_in_thread() as server:
        run(main(server.ws_url), loop_kind)


def test_client_close_code_reaches_the_server(loop_kind):
    closes = []
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(close=lambda ws, code, reason: closes.append((code, reason)))

    async def main(url):
        ws = await verb.connect(url)
        await asyncio.wait_for(ws.close(4000, "done here"), 10)
        # The server's close frame echoes the code and the reason (as websockets and uvicorn).
        assert ws.closed and ws.close_code == 4000 and ws.close_reason == "done here"
        with pytest.raises(verb.ConnectionClosedOK):
            await ws.recv()
        with pytest.raises(verb.ConnectionClosed):
            ws.send("too late")
        assert [m async for m in ws] == []  # iteration ends at once
        await ws.close()  # closing twice is harmless
        for _ in range(100):
            if closes:
                break
            await asyncio.sleep(0.02)
        assert closes == [(4000, "done here")]

    with app.run_in_thread() as server:
        run(main(server.ws_url), loop_kind)


def test_server_initiated_close(loop_kind):
    def on_message(ws, message):
        if message == "close normally":
            ws.send("bye")
            ws.close(1000, "see you")
        else:
            ws.close(4001, "kicked")

    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=on_message)

    async def main(url):
        async with verb.connect(url) as ws:
            ws.send("close normally")
            # Iteration yields what was sent before the close, then ends without an error.
            assert await messages(ws) == ["bye"]
            await asyncio.wait_for(ws.wait_closed(), 10)
            assert ws.close_code == 1000 and ws.close_reason == "see you"
        async with verb.connect(url) as ws:
            ws.send("kick me")
            with pytest.raises(verb.ConnectionClosedError) as info:
                await messages(ws)
            assert info.value.code == 4001 and info.value.reason == "kicked"
            assert "4001" in str(info.value)

    with app.run_in_thread() as server:
        run(main(server.ws_url), loop_kind)


def test_server_shutdown_ends_iteration():
    async def main(server, stop):
        async with verb.connect(server.ws_url) as ws:
            ws.send("one")
            assert await recv(ws) == "one"
            await asyncio.get_running_loop().run_in_executor(None, stop)
            assert await messages(ws) == []
            assert ws.close_code == 1001

    running = echo_app().run_in_thread()
    server = running.__enter__()
    run(main(server, lambda: running.__exit__(None, None, None)))


def test_abnormal_disconnect_raises(loop_kind):
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, message: ws.terminate())

    async def main(url):
        async with verb.connect(url) as ws:
            ws.send("drop me")
            with pytest.raises(verb.ConnectionClosedError) as info:
                await messages(ws)
            assert info.value.code == 1006
            assert ws.close_code == 1006
            with pytest.raises(verb.ConnectionClosedError):
                await ws.recv()
            with pytest.raises(verb.ConnectionClosedError):
                await ws.ping()

    with app.run_in_thread() as server:
        run(main(server.ws_url), loop_kind)


def test_handshake_refused_403_and_404():
    app = create_server(ServerProtocol.WEBSOCKET, path="/ws")
    app.websocket(upgrade=lambda request: request.headers.get("x-allow") == "yes",
                  message=lambda ws, message: ws.send(message))

    async def main(base):
        with pytest.raises(HandshakeError) as info:
            await verb.connect(base + "/ws")
        assert info.value.status == 403 and "403" in str(info.value)
        with pytest.raises(HandshakeError) as info:
            await verb.connect(base + "/elsewhere")
        assert info.value.status == 404 and "404" in str(info.value)
        assert info.value.headers is not None
        async with verb.connect(base + "/ws", headers={"X-Allow": "yes"}) as ws:
            ws.send("in")
            assert await recv(ws) == "in"

    with app.run_in_thread() as server:
        run(main(server.ws_url))


def test_max_payload_length_fails_with_1009(loop_kind):
    closes = []
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, message: ws.send(b"x" * 5000),
                  close=lambda ws, code, reason: closes.append(code))

    async def main(url):
        async with verb.connect(url, max_payload_length=4096) as ws:
            ws.send("big please")
            with pytest.raises(verb.ConnectionClosedError) as info:
                await recv(ws)
            assert info.value.code == 1009
            await asyncio.wait_for(ws.wait_closed(), 10)
        assert ws.close_code == 1009
        for _ in range(100):
            if closes:
                break
            await asyncio.sleep(0.02)
        assert closes == [1009]

    with app.run_in_thread() as server:
        run(main(server.ws_url), loop_kind)


def test_read_backpressure_pauses_and_keeps_order():
    count = 3000

    def on_message(ws, message):
        for i in range(count):
            ws.send(f"{i:05d}" + "." * 200)

    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(message=on_message)

    async def main(url):
        async with verb.connect(url, max_queue=8) as ws:
            ws.send("go")
            await asyncio.sleep(0.3)
            # Reading paused: what is queued is bounded by the queue plus one read buffer.
            assert ws.queued <= 8 + 256 * 1024 // 205 + 1
            for i in range(count):
                assert (await recv(ws))[:5] == f"{i:05d}"

    with app.run_in_thread() as server:
        run(main(server.ws_url))


def test_drain_waits_below_write_limit():
    async def main(url):
        async with verb.connect(url, write_limit=16 * 1024) as ws:
            chunk = os.urandom(64 * 1024)
            for _ in range(32):
                ws.send(chunk)
                await asyncio.wait_for(ws.drain(), 10)
                assert ws.buffered_amount <= 16 * 1024 + len(chunk) + 14
            for _ in range(32):
                assert await recv(ws) == chunk

    with echo_app().run_in_thread() as server:
        run(main(server.ws_url))


def test_keepalive_pings_reach_the_server():
    pings = []
    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(ping=lambda ws, data: pings.append(data))

    async def main(url):
        async with verb.connect(url, ping_interval=0.05) as ws:
            for _ in range(200):
                if len(pings) >= 2:
                    break
                await asyncio.sleep(0.02)
            assert ws.state == verb.client.client.OPEN
        assert len(pings) >= 2

    with app.run_in_thread() as server:
        run(main(server.ws_url))


def test_concurrent_recv_is_refused():
    async def main(url):
        async with verb.connect(url) as ws:
            first = asyncio.ensure_future(ws.recv())
            await asyncio.sleep(0.01)
            with pytest.raises(RuntimeError, match="already"):
                await ws.recv()
            ws.send("x")
            assert await asyncio.wait_for(first, 10) == "x"

    with echo_app().run_in_thread() as server:
        run(main(server.ws_url))


# ---------------------------------------------------------------------------------------------
# Against the websockets server library


def test_against_websockets_server(loop_kind):
    async def handler(ws):
        async for message in ws:
            if message == "fragmented":
                # A 4 MiB message in 64 KiB fragments.
                chunk = b"f" * 65536
                await ws.send(chunk for _ in range(64))
            elif message == "ping me":
                await asyncio.wait_for(ws.ping(b"srv"), 10)  # our client answers by itself
                await ws.send("pong received")
            elif message == "close":
                await ws.close(4002, "by websockets")
            else:
                await ws.send(message)

    async def main():
        async with ws_serve(handler, "127.0.0.1", 0, compression=None,
                            max_size=None, subprotocols=["v2"]) as server:
            port = server.sockets[0].getsockname()[1]
            url = f"ws://127.0.0.1:{port}/path?q=1"
            async with verb.connect(url, subprotocols=["v1", "v2"]) as ws:
                assert ws.subprotocol == "v2"
                ws.send("text")
                assert await recv(ws) == "text"
                ws.send(b"bin")
                assert await recv(ws) == b"bin"
                ws.send("fragmented")
                assert await recv(ws, 20) == b"f" * (64 * 65536)
                ws.send("ping me")
                assert await recv(ws) == "pong received"
                big = os.urandom(3 * 1024 * 1024)
                ws.send(big)
                assert await recv(ws, 20) == big
                assert await asyncio.wait_for(ws.ping(), 10) >= 0
            assert ws.close_code == 1000
            async with verb.connect(url, subprotocols=["v2"]) as ws:
                ws.send("close")
                with pytest.raises(verb.ConnectionClosedError) as info:
                    await messages(ws)
                assert (info.value.code, info.value.reason) == (4002, "by websockets")

    run(main(), loop_kind)


def test_permessage_deflate_with_websockets_server(loop_kind):
    payload = "compress me, compress me, compress me; " * 5000
    seen = {}

    async def handler(ws):
        seen["extensions"] = [type(e).__name__ for e in ws.protocol.extensions]
        async for message in ws:
            await ws.send(message)

    async def main():
        async with ws_serve(handler, "127.0.0.1", 0, max_size=None) as server:
            async with Proxy(server.sockets[0].getsockname()[1]) as proxy:
                url = f"ws://127.0.0.1:{proxy.port}/"
                async with verb.connect(url, compression="deflate") as ws:
                    params = ws.deflate_parameters
                    assert params is not None
                    # websockets asks for a 12-bit client window when offered the parameter.
                    assert params.client_max_window_bits <= 15
                    for _ in range(4):
                        ws.send(payload)
                        assert await recv(ws) == payload
                        ws.send(payload.encode())
                        assert await recv(ws) == payload.encode()
                assert 0 < proxy.up < 100_000 and 0 < proxy.down < 100_000
        assert seen["extensions"] == ["PerMessageDeflate"]

    run(main(), loop_kind)


def test_handshake_errors_from_websockets_server():
    from websockets.datastructures import Headers as WSHeaders
    from websockets.http11 import Response

    def process_request(connection, request):
        if request.path == "/missing":
            return connection.respond(404, "no such endpoint\n")
        if request.path == "/unavailable":
            return Response(503, "Service Unavailable", WSHeaders(), b"later")
        return None

    async def handler(ws):
        await ws.send("hello")

    async def main():
        async with ws_serve(handler, "127.0.0.1", 0, process_request=process_request) as srv:
            base = f"ws://127.0.0.1:{srv.sockets[0].getsockname()[1]}"
            with pytest.raises(HandshakeError) as info:
                await verb.connect(base + "/missing")
            assert info.value.status == 404 and b"no such endpoint" in info.value.body
            with pytest.raises(HandshakeError) as info:
                await verb.connect(base + "/unavailable")
            assert info.value.status == 503
            async with verb.connect(base + "/") as ws:
                assert await recv(ws) == "hello"
                assert await messages(ws) == []

    run(main())


# ---------------------------------------------------------------------------------------------
# Against raw servers: invalid responses, frames on the wire


@pytest.mark.parametrize("case, message", [
    ("bad-accept", "wrong Sec-WebSocket-Accept"),
    ("no-upgrade", "Upgrade: websocket"),
    ("no-connection", "Connection: Upgrade"),
    ("extension-not-offered", "was not offered"),
    ("subprotocol-not-offered", "subprotocol 'chat' was not offered"),
    ("bad-deflate-params", "unknown parameter 'foo'"),
    ("garbage", "status line"),
])
def test_invalid_handshake_responses_are_rejected(case, message):
    async def handler(head, reader, writer):
        key = request_key(head)
        accept = b"Sec-WebSocket-Accept: " + accept_for(key)
        upgrade, connection = b"Upgrade: websocket", b"Connection: Upgrade"
        lines = [b"HTTP/1.1 101 Switching Protocols"]
        if case == "bad-accept":
            lines += [upgrade, connection, b"Sec-WebSocket-Accept: " + accept_for(b"other")]
        elif case == "no-upgrade":
            lines += [connection, accept]
        elif case == "no-connection":
            lines += [upgrade, accept]
        elif case == "extension-not-offered":
            lines += [upgrade, connection, accept, b"Sec-WebSocket-Extensions: x-foo"]
        elif case == "subprotocol-not-offered":
            lines += [upgrade, connection, accept, b"Sec-WebSocket-Protocol: chat"]
        elif case == "bad-deflate-params":
            lines += [upgrade, connection, accept,
                      b"Sec-WebSocket-Extensions: permessage-deflate; foo=1"]
        else:
            lines = [b"SSH-2.0-OpenSSH"]
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n")
        await writer.drain()
        await reader.read()

    async def main():
        server, url = await raw_server(handler)
        async with server:
            compression = "deflate" if case == "bad-deflate-params" else None
            with pytest.raises(HandshakeError, match=message) as info:
                await verb.connect(url, compression=compression)
            if case != "garbage":
                assert info.value.status == 101

    run(main())


def test_connection_closed_during_handshake_and_refused():
    async def handler(head, reader, writer):
        writer.write(b"HTTP/1.1 101 Switching")  # then close

    async def main():
        server, url = await raw_server(handler)
        async with server:
            with pytest.raises(ConnectionResetError, match="opening handshake"):
                await verb.connect(url)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        with pytest.raises(OSError):
            await verb.connect(f"ws://127.0.0.1:{port}/")

    run(main())


def test_open_timeout():
    async def handler(head, reader, writer):
        await reader.read()  # never answers

    async def main():
        server, url = await raw_server(handler)
        async with server:
            with pytest.raises(asyncio.TimeoutError):
                await verb.connect(url, open_timeout=0.2)

    run(main())


def test_frames_on_the_wire_are_masked_with_fresh_keys_and_request_is_valid():
    seen = {}

    async def handler(head, reader, writer):
        seen["head"] = head
        writer.write(response_101(request_key(head)) + server_frame(1, b"first"))
        frames = [await read_client_frame(reader) for _ in range(50)]
        seen["frames"] = frames
        writer.write(server_frame(8, struct.pack("!H", 1000)))
        await writer.drain()
        await read_client_frame(reader)  # the client's close echo

    async def main():
        server, url = await raw_server(handler)
        async with server:
            url = url.replace("127.0.0.1", "user:p%40ss@127.0.0.1") + "chat?room=1"
            async with verb.connect(url, subprotocols=["a", "b"]) as ws:
                assert await recv(ws) == "first"
                for i in range(50):
                    ws.send(f"message {i}")
                assert await messages(ws) == []
            assert ws.close_code == 1000

    run(main())
    head = seen["head"].decode()
    lines = head.split("\r\n")
    assert lines[0] == "GET /chat?room=1 HTTP/1.1"
    assert "Upgrade: websocket" in lines and "Connection: Upgrade" in lines
    assert "Sec-WebSocket-Version: 13" in lines and "Sec-WebSocket-Protocol: a, b" in lines
    assert any(line.startswith("Host: 127.0.0.1:") for line in lines)
    assert "Authorization: Basic " + base64.b64encode(b"user:p@ss").decode() in lines
    key = next(line.split(": ")[1] for line in lines if line.startswith("Sec-WebSocket-Key"))
    assert len(base64.b64decode(key)) == 16
    frames = seen["frames"]
    assert [f[5] for f in frames] == [f"message {i}".encode() for i in range(50)]
    assert all(f[0] and f[3] and f[2] == 1 and not f[1] for f in frames)
    keys = [f[4] for f in frames]
    assert len(set(keys)) == len(keys)  # a fresh key per frame (RFC 6455 section 5.3)


def test_client_answers_pings_and_reads_fragments_and_compressed_frames():
    seen = {}

    async def handler(head, reader, writer):
        ext = b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover"
        compressor = zlib.compressobj(wbits=-15)
        packed = compressor.compress(b"squeezed " * 100) + compressor.flush(zlib.Z_SYNC_FLUSH)
        writer.write(response_101(request_key(head), ext)
                     + server_frame(9, b"are you there")
                     + server_frame(1, b"frag", fin=False) + server_frame(9, b"between")
                     + server_frame(0, b"ment", fin=False) + server_frame(0, b"ed")
                     + server_frame(2, packed[:-4], rsv1=True))
        seen["pong1"] = await read_client_frame(reader)
        seen["pong2"] = await read_client_frame(reader)
        # A masked frame from a server is a protocol error: the client fails with 1002.
        writer.write(b"\x81\x81abcd" + bytes([ord("x") ^ ord("a")]))
        seen["close"] = await read_client_frame(reader)

    async def main():
        server, url = await raw_server(handler)
        async with server, verb.connect(url, compression="deflate") as ws:
            assert await recv(ws) == "fragmented"
            assert await recv(ws) == b"squeezed " * 100
            with pytest.raises(verb.ConnectionClosedError) as info:
                await recv(ws)
            assert info.value.code == 1002

    run(main())
    assert seen["pong1"][2] == 0xA and seen["pong1"][5] == b"are you there"
    assert seen["pong2"][5] == b"between"
    assert seen["close"][2] == 8 and seen["close"][5][:2] == struct.pack("!H", 1002)


def test_keepalive_timeout_fails_the_connection():
    async def handler(head, reader, writer):
        writer.write(response_101(request_key(head)))
        await reader.read()  # never answers pings

    async def main():
        server, url = await raw_server(handler)
        async with server, verb.connect(url, ping_interval=0.05, ping_timeout=0.1,
                                close_timeout=0.5) as ws:
            with pytest.raises(verb.ConnectionClosedError) as info:
                await recv(ws)
            assert info.value.code == 1011 and "keepalive" in info.value.reason

    run(main())


def test_close_timeout_drops_a_silent_server():
    async def handler(head, reader, writer):
        writer.write(response_101(request_key(head)))
        await reader.read()  # never answers the close frame

    async def main():
        server, url = await raw_server(handler)
        async with server:
            ws = await verb.connect(url, close_timeout=0.2)
            await asyncio.wait_for(ws.close(), 10)
            assert ws.closed and ws.close_code == 1006

    run(main())


def test_sends_while_closing_raise_closed_ok_with_our_code():
    seen = {}

    async def handler(head, reader, writer):
        writer.write(response_101(request_key(head)))
        seen["close"] = await read_client_frame(reader)
        await asyncio.sleep(0.05)  # then drop TCP without a close frame

    async def main():
        server, url = await raw_server(handler)
        async with server:
            ws = await verb.connect(url)
            closing = asyncio.ensure_future(ws.close(4005, "closing now"))
            await asyncio.sleep(0)
            assert ws.state == verb.client.client.CLOSING
            with pytest.raises(verb.ConnectionClosedOK) as info:
                ws.send("late")
            assert (info.value.code, info.value.reason) == (4005, "closing now")
            await asyncio.wait_for(closing, 10)
            assert ws.close_code == 1006  # the server never sent its close frame
            with pytest.raises(verb.ConnectionClosedError):
                await ws.recv()

    run(main())
    assert seen["close"][2] == 8 and seen["close"][5] == struct.pack("!H", 4005) + b"closing now"


# ---------------------------------------------------------------------------------------------
# reconnecting


def _free_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_reconnects_after_server_restart_on_the_same_port(loop_kind):
    app = echo_app()
    port = _free_port()
    running = app.run_in_thread(port=port)
    server = running.__enter__()
    state = {"running": running}

    def restart():
        state["running"].__exit__(None, None, None)
        state["running"] = app.run_in_thread(port=port)
        state["running"].__enter__()

    async def main():
        connections = 0
        loop = asyncio.get_running_loop()
        async for ws in verb.reconnecting(server.ws_url, backoff_initial=0.05,
                                          backoff_max=0.2, max_attempts=100):
            connections += 1
            ws.send(f"round {connections}")
            assert await recv(ws) == f"round {connections}"
            if connections == 1:
                # The server goes away (closes with 1001) and comes back on the same port.
                await loop.run_in_executor(None, restart)
                assert await messages(ws) == []
                continue
            await ws.close()  # a close by the user ends the iteration
        return connections

    try:
        assert run(main(), loop_kind) == 2
    finally:
        state["running"].__exit__(None, None, None)


def test_reconnecting_retries_refused_connections_with_backoff():
    port = _free_port()
    app = echo_app()
    holder = {}

    async def main():
        loop = asyncio.get_running_loop()
        # Nobody listens yet: attempts are refused until the server starts.
        loop.call_later(0.3, lambda: holder.setdefault("server", app.run_in_thread(port=port))
                        .__enter__())
        async for ws in verb.reconnecting(f"ws://127.0.0.1:{port}/", backoff_initial=0.02,
                                          backoff_max=0.1, backoff_factor=2, jitter=1.0,
                                          max_attempts=200):
            ws.send("finally")
            assert await recv(ws) == "finally"
            break

    try:
        run(main())
    finally:
        if "server" in holder:
            holder["server"].__exit__(None, None, None)


def test_reconnecting_gives_up_after_max_attempts_and_on_4xx():
    port = _free_port()

    async def main():
        with pytest.raises(OSError):
            async for _ in verb.reconnecting(f"ws://127.0.0.1:{port}/", backoff_initial=0.01,
                                              backoff_max=0.02, max_attempts=3):
                raise AssertionError("no server is listening")

    run(main())

    app = create_server(ServerProtocol.WEBSOCKET)
    app.websocket(upgrade=lambda request: False)

    async def refused(url):
        with pytest.raises(HandshakeError) as info:
            async for _ in verb.reconnecting(url, backoff_initial=0.01):
                raise AssertionError("the server refuses")
        assert info.value.status == 403

    with app.run_in_thread() as server:
        run(refused(server.ws_url))

    with pytest.raises(ValueError):
        run(verb.reconnecting("ws://x/", jitter=2).__anext__())


def test_public_names():
    assert verb.connect is verb.client.client.connect
    assert verb.reconnecting is verb.client.client.reconnecting
    assert issubclass(verb.ConnectionClosedOK, verb.ConnectionClosed)
    assert issubclass(verb.ConnectionClosedError, verb.ConnectionClosed)
    assert issubclass(verb.HandshakeError, Exception)
    assert websockets.__version__  # the independent peer is really there
