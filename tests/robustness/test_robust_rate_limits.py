"""Rate limits under a flood, measured from outside: with action "pause" a client writing as
fast as it can is held to the limit by TCP backpressure while the server's memory stays flat
(what is left of a read waits in the connection, at most one read buffer)."""

import asyncio
import time

from robust_util import SubprocessServer, aio_open, frame, report, OP_BINARY

KIB = 1024


def test_a_paused_flood_is_held_to_the_limit_with_flat_server_memory():
    rate, seconds = 2000, 3.0
    with SubprocessServer(rate_limit={"messages": rate, "per": 1, "action": "pause"}) as server:
        async def main():
            reader, writer, status = await aio_open(server.port)
            assert status == 101
            payload = frame(OP_BINARY, b"\xab" * KIB)
            before = server.rss()
            sent, peak = 0, before
            echoed = 0

            async def drain_echoes():
                nonlocal echoed
                while True:
                    chunk = await reader.read(1 << 16)
                    if not chunk:
                        return
                    echoed += len(chunk)

            reading = asyncio.ensure_future(drain_echoes())
            start = time.monotonic()
            while time.monotonic() - start < seconds:  # bounded in time
                writer.write(payload * 64)
                sent += 64
                try:
                    await asyncio.wait_for(writer.drain(), 0.05)
                except asyncio.TimeoutError:
                    pass  # the server stopped reading: we are held back
                peak = max(peak, server.rss())
            elapsed = time.monotonic() - start
            reading.cancel()
            writer.transport.abort()
            stats = server.stats()
            return before, peak, sent, elapsed, stats, echoed // (KIB + 4)

        before, peak, sent, elapsed, stats, echoes = asyncio.run(asyncio.wait_for(main(), 60))
    growth = peak - before
    report("server RSS growth during a paused flood (KiB)", growth // KIB)
    report("messages written / handled / echoed", (sent, stats["messages_in"], echoes))
    # Held to the limit: what was admitted is at most the burst plus the rate (each pause holds
    # one message back, counted in messages_in, delivered on resume); 0.1 s of clock slack.
    pauses = stats["rate_limited"]["pause"]
    assert pauses >= 1
    assert stats["messages_in"] - pauses <= rate + rate * (elapsed + 0.1)
    assert stats["messages_in"] >= rate * elapsed * 0.8  # and not held below it
    assert growth < 8 * 1024 * KIB  # flat: what waits is in the kernel's buffers, not ours
