"""Graceful stop under load: every open WebSocket gets a 1001 close, and stop() completes
within stop_timeout + 1 s, even when some peers never answer the close."""

import asyncio
import time

import pytest

from robust_util import OP_CLOSE, aio_open, aio_read_frame, close_payload, frame, report
from verb import ServerProtocol, create_server

STOP_TIMEOUT = 2.0


def streaming_app():
    app = create_server(ServerProtocol.WEBSOCKET)

    async def message(ws, m):
        if m == "stream":  # 1 KiB every 10 ms while open, at most 2000 times
            for _ in range(2000):
                if ws.ready_state != 1:
                    break
                ws.send(b"s" * 1024)
                await asyncio.sleep(0.01)
        else:
            ws.send(m)

    app.websocket(message=message, stop_timeout=STOP_TIMEOUT)
    return app


async def _client(port, streaming, deaf, ready):
    """Open, maybe ask for a stream, then read until the server's close; answer it unless deaf."""
    reader, writer, status = await aio_open(port)
    assert status == 101
    if streaming:
        writer.write(frame(1, b"stream"))
    ready.release()
    frames = 0
    while True:
        opcode, data = await aio_read_frame(reader)
        if opcode == OP_CLOSE:
            break
        frames += 1
    code = int.from_bytes(data[:2], "big")
    if not deaf:
        writer.write(frame(OP_CLOSE, close_payload(code)))
    await reader.read()  # EOF: closed by the server (answered) or dropped (deaf)
    writer.close()
    return code, frames


@pytest.mark.parametrize("deaf", [0, 10], ids=["all-answer", "10-never-answer"])
def test_stop_under_load_closes_every_websocket_1001_in_time(deaf):
    n, streaming = 200, 20
    app = streaming_app()
    runner = app.run_in_thread()
    server = runner.__enter__()
    try:
        async def main():
            ready = asyncio.Semaphore(0)
            tasks = [asyncio.ensure_future(_client(server.port, i < streaming, i >= n - deaf,
                                                   ready)) for i in range(n)]
            for _ in range(n):
                await ready.acquire()
            await asyncio.sleep(0.3)  # let the streams flow
            assert server.hub.stats()["websockets"] == n

            async def stop():
                await server.stop()

            start = time.monotonic()
            future = asyncio.run_coroutine_threadsafe(stop(), runner.loop)
            await asyncio.wrap_future(future)
            elapsed = time.monotonic() - start
            results = await asyncio.gather(*tasks)
            return elapsed, results

        elapsed, results = asyncio.run(asyncio.wait_for(main(), 30))
    finally:
        runner.__exit__(None, None, None)
    codes = [code for code, _ in results]
    streamed = sum(frames for _, frames in results[:streaming])
    report(f"stop() with {n} WebSockets ({streaming} streaming, {deaf} deaf) took (s)",
           round(elapsed, 3))
    report("close codes received", {c: codes.count(c) for c in set(codes)})
    assert codes == [1001] * n
    assert streamed > 0
    assert elapsed <= STOP_TIMEOUT + 1.0, elapsed
    if deaf:
        assert elapsed >= STOP_TIMEOUT - 0.1  # it waited for the deaf ones, then dropped them
