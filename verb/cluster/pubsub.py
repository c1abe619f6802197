"""Publish/subscribe beyond one process: the broker interface, the in-process broker and Redis.

A `Broker` carries publishes between processes. Its interface is small: `subscribe(topic)` and
`unsubscribe(topic)` (called when a topic gets its first local subscriber and loses its last),
`publish(topic, payload, is_text)`, `close()`, and a delivery callback, given to `start()`,
through which it hands messages from other processes to the app.

- `InProcessBroker` is the embedded default: the Hub's topic table (compiled, in
  `verb/server/hub.pxi`) is the whole broker, and `app.publish` goes straight to it; nothing
  leaves the process.
- `RedisBroker` uses Redis pub/sub (redis-py's asyncio client, hiredis when installed), as
  Socket.IO's Redis adapter and Django Channels do. Chosen with
  `create_server(..., broker="redis://host:port/db")`, `verb run --broker URL` or the
  `VERB_BROKER` environment variable.

Semantics with Redis:

- A process subscribes to a topic's Redis channel only while it has local subscribers of the
  topic. Pub/sub channels are global to a Redis server (the db number does not separate
  them): apps sharing one Redis need distinct `channel_prefix`es (`?channel_prefix=app1:`).
- A publish is delivered at once to the publishing process's own subscribers, and sent to
  Redis once, in an envelope tagged with the process's origin id; every other process frames
  it once for its subscribers; the publishing process drops its own message when Redis echoes
  it back. Exactly once per subscriber while Redis is reachable; text stays text, binary
  stays binary; the publishes of one process reach Redis in order over one connection, so a
  topic's messages from one publisher arrive in order everywhere.
- At-most-once: while Redis is unreachable, publishes still reach local subscribers but are
  not sent (nor queued for later); they are counted and the count is logged when the
  connection comes back, with the outage's length. Messages published by other processes
  during an outage are lost for this process's subscribers. The broker reconnects with
  exponential backoff and resubscribes every topic that has local subscribers. Redis cutting
  a slow subscriber (`client-output-buffer-limit pubsub`) is handled the same way.
- `app.subscriber_count(topic)` counts this process's subscribers;
  `await app.cluster_subscriber_count(topic)` asks every process over Redis and sums.

Wire format of a message on channel `<prefix>t:<topic>`: a 10-byte header, then the payload
bytes as they are (binary-safe)::

    version (1 byte, = 1) | flags (1 byte) | origin id (8 bytes) | payload

flags: bit 0 set for text (UTF-8 payload); bits 1-2 the `compress` argument of the publish
(0: None, 1: False, 2: True). The origin id is random per process (per broker start), so each
worker of `verb run --workers N` has its own.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import os
import random
import struct
import urllib.parse
from typing import Any, Callable

from verb.server.options import REDIS_SCHEMES

__all__ = ["Broker", "BrokerUnavailable", "InProcessBroker", "RedisBroker", "broker_from_url"]

log = logging.getLogger("verb.pubsub")

#: deliver(topic, data, compress): data is str (text) or a bytes-like object (binary).
Deliver = Callable[[str, Any, Any], None]
#: local_count(topic) -> subscribers of `topic` in this process.
LocalCount = Callable[[str], int]


class BrokerUnavailable(ConnectionError):
    """The broker cannot be reached (at start with `broker_required=True`, or for a query)."""


class Broker:
    """What a pub/sub broker offers the app. Subclass it to plug in another engine.

    The app calls `start` once (on its event loop) before any other method, then `subscribe`
    and `unsubscribe` as topics gain their first and lose their last local subscriber,
    `publish` after delivering a message to its local subscribers, and `close` when its last
    server stops. None of the synchronous methods may block or raise: they run inside
    `ws.subscribe`, `ws.publish` and `app.publish`.

    Attributes:
        external: Whether publishes leave the process. False for the in-process broker: the
            app then skips it altogether on the publish path.
    """

    external = False

    async def start(self, deliver: Deliver, local_count: LocalCount | None = None) -> None:
        """Start; `deliver` is how messages from elsewhere reach local subscribers."""

    def subscribe(self, topic: str) -> None:
        """This process has its first subscriber of `topic`."""

    def unsubscribe(self, topic: str) -> None:
        """This process no longer has subscribers of `topic`."""

    def publish(self, topic: str, payload: bytes, is_text: bool, compress=None) -> None:
        """Send a message (already delivered locally) to the other processes."""

    async def close(self) -> None:
        """Stop and release connections."""

    async def cluster_subscriber_count(self, topic: str, timeout: float = 1.0) -> int | None:
        """Subscribers of `topic` in every process, or None when the broker cannot tell."""
        return None

    def stats(self) -> dict:
        return {}


class InProcessBroker(Broker):
    """The embedded default: subscribers and publishers in one process.

    The Hub's topic table is the broker; `app.publish` and `ws.publish` frame a message once
    and write it to the local subscribers without passing through here. Used on its own,
    `publish` hands the message straight back to `deliver`.
    """

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver, local_count: LocalCount | None = None) -> None:
        self._deliver = deliver

    def publish(self, topic: str, payload: bytes, is_text: bool, compress=None) -> None:
        if self._deliver is not None:
            self._deliver(topic, payload.decode("utf-8") if is_text else payload, compress)

    def __repr__(self) -> str:
        return "<InProcessBroker>"


def broker_from_url(url: str, *, required: bool = True) -> Broker:
    """The broker for a URL: "redis://", "rediss://" or "unix://" -> `RedisBroker`;
    "memory://" -> `InProcessBroker`."""
    if url.lower().startswith(REDIS_SCHEMES):
        return RedisBroker(url, required=required)
    if url.lower().startswith("memory://"):
        return InProcessBroker()
    raise ValueError(f"unsupported broker URL {url!r}: use redis://host:port/db, rediss://..., "
                     "unix:///path/to/redis.sock or memory://")


# -- Redis ------------------------------------------------------------------------------------

_VERSION = 1
_HEADER = struct.Struct("!BB8s")
_TEXT = 1
_COMPRESS_FLAGS = {None: 0, False: 2, True: 4}
_COMPRESS_VALUES = {0: None, 2: False, 4: True, 6: None}
_SUBSCRIBE_CHUNK = 1000  # channels per SUBSCRIBE/UNSUBSCRIBE command
_PIPELINE_CHUNK = 512  # publishes per pipeline round trip


def _redis_modules():
    try:
        import redis.asyncio as redis_asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
    except ImportError as exc:
        raise ImportError(
            "the Redis broker needs redis-py: pip install 'verb-ws[redis]' "
            f"(or pip install 'redis>=5' hiredis); import failed: {exc}") from None
    return redis_asyncio, Retry, NoBackoff


class _Session:
    """One connection generation: a client (publishes, queries) and its pub/sub connection."""

    __slots__ = ("alive", "client", "pubsub", "subscribed")

    def __init__(self, client, pubsub):
        self.client = client
        self.pubsub = pubsub
        self.subscribed: set[str] = set()  # topics SUBSCRIBEd on this connection
        # False once the session ends: its tasks check it, since a cancellation can be lost
        # (asyncio.wait_for before Python 3.12 swallows one that races the inner result).
        self.alive = True


class RedisBroker(Broker):
    """Redis pub/sub between processes (see the module docstring for the semantics).

    Args:
        url: redis://[user:password@]host:port/db, rediss://... (TLS) or
            unix:///path.sock; the query parameter `channel_prefix` (default "verb:") is ours,
            the others are redis-py's (`?socket_connect_timeout=2`).
        required: When Redis cannot be reached at start: True raises `BrokerUnavailable`;
            False logs a warning and starts anyway (publishes stay local until it can be
            reached; the broker keeps trying).
        channel_prefix: Prefix of every Redis channel name (overridden by the URL's).
        max_pending_bytes: Publishes waiting to be written to Redis beyond this many bytes
            are dropped (and counted): a bound on memory when Redis is slow.
        backoff_initial: First reconnection delay, doubled after each failed attempt...
        backoff_max: ...up to this (seconds; each delay jittered by +-20%).
        connect_timeout: Time allowed to connect (and for each write or health check).
        health_interval: With nothing to publish, PING Redis this often (seconds), so that
            an outage is noticed even when idle.
    """

    external = True

    def __init__(self, url: str, *, required: bool = True, channel_prefix: str = "verb:",
                 max_pending_bytes: int = 32 * 1024 * 1024, backoff_initial: float = 0.05,
                 backoff_max: float = 2.0, connect_timeout: float = 3.0,
                 health_interval: float = 5.0) -> None:
        self._redis, self._Retry, self._NoBackoff = _redis_modules()
        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        for name, value in query:
            if name == "channel_prefix":
                channel_prefix = value
        query = [(name, value) for name, value in query if name != "channel_prefix"]
        self.url = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
        self.required = required
        self.channel_prefix = channel_prefix
        self.max_pending_bytes = max_pending_bytes
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.connect_timeout = connect_timeout
        self.health_interval = health_interval
        prefix = channel_prefix.encode("utf-8")
        self._topic_prefix = prefix + b"t:"
        self._control = prefix + b"c"
        self._reply_prefix = prefix + b"r:"
        # Set by start() (after a fork: each worker gets its own origin).
        self.origin = b""
        self._headers: dict[int, bytes] = {}
        self._deliver: Deliver | None = None
        self._local_count: LocalCount | None = None
        self._loop = None
        self._task = None
        self._session: _Session | None = None
        self._wanted: set[str] = set()  # topics with local subscribers
        self._dirty: set[str] = set()  # changed since the last SUBSCRIBE/UNSUBSCRIBE sync
        self._sync_wake = None
        self._outbox: collections.deque = collections.deque()
        self._outbox_bytes = 0
        self._in_flight = 0
        self._write_wake = None
        self._up = False
        self._closed = False
        self._down_since: float | None = None
        self._unsent_in_outage = 0
        self._count_requests: dict[int, list] = {}
        self._request_ids = itertools.count(1)
        # Statistics (see stats()).
        self.published = 0  # publishes written to Redis
        self.received = 0  # messages from other processes delivered here
        self.echoes_dropped = 0
        self.unsent = 0  # publishes not sent: Redis unreachable, or max_pending_bytes exceeded
        self.overflowed = 0  # ... of which max_pending_bytes
        self.reconnects = 0
        self.outages: list[tuple[float, int]] = []  # (seconds, publishes not sent) per outage

    def __repr__(self) -> str:
        state = "up" if self._up else "down"
        return f"<RedisBroker {self.url} {state} origin={self.origin.hex()}>"

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, deliver: Deliver, local_count: LocalCount | None = None) -> None:
        """Connect, subscribe the control channels, and start the broker's tasks.

        Raises:
            BrokerUnavailable: Redis cannot be reached and the broker is `required`.
        """
        self._loop = asyncio.get_running_loop()
        self._closed = self._up = False
        self._session = self._down_since = None
        self._outbox.clear()
        self._outbox_bytes = self._in_flight = 0
        self._deliver = deliver
        self._local_count = local_count
        self.origin = os.urandom(8)
        self._headers = {flags: _HEADER.pack(_VERSION, flags, self.origin)
                         for flags in range(8)}
        self._reply_channel = self._reply_prefix + self.origin.hex().encode("ascii")
        self._sync_wake = asyncio.Event()
        self._write_wake = asyncio.Event()
        session = None
        try:
            session = await self._connect()
        except Exception as exc:
            message = (f"cannot reach the Redis broker at {self._safe_url()}: "
                       f"{exc.__class__.__name__}: {exc}")
            if self.required:
                raise BrokerUnavailable(
                    f"{message}. Start Redis, or pass broker_required=False to start without "
                    "it (publishes then stay in this process until Redis can be reached)"
                ) from None
            log.warning("verb: %s; starting without it and retrying (publishes stay local "
                        "meanwhile)", message)
            self._went_down()
        self._task = self._loop.create_task(self._run(session))

    async def close(self) -> None:
        self._closed = True
        self._up = False
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task], timeout=5.0)
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("verb: Redis broker task failed", exc_info=task.exception())
        for entry in self._count_requests.values():
            if not entry[3].done():
                entry[3].cancel()
        self._count_requests.clear()

    def _safe_url(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        if parts.password:
            netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
            return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        return self.url

    async def _connect(self) -> _Session:
        redis_asyncio = self._redis
        # No retries inside redis-py: a failure ends the session, and _run reconnects and
        # resubscribes itself (so that outages are seen, counted and logged).
        client = redis_asyncio.Redis.from_url(
            self.url, retry=self._Retry(self._NoBackoff(), 0),
            socket_connect_timeout=self.connect_timeout, socket_keepalive=True)
        try:
            await asyncio.wait_for(client.ping(), self.connect_timeout)
            pubsub = client.pubsub()
            session = _Session(client, pubsub)
            await asyncio.wait_for(pubsub.subscribe(self._control, self._reply_channel),
                                   self.connect_timeout)
            topics = list(self._wanted)
            for start in range(0, len(topics), _SUBSCRIBE_CHUNK):
                chunk = topics[start:start + _SUBSCRIBE_CHUNK]
                await asyncio.wait_for(pubsub.subscribe(*map(self._channel, chunk)),
                                       self.connect_timeout)
            session.subscribed.update(topics)
        except BaseException:
            await self._discard(client, None)
            raise
        self._dirty.clear()
        self._session = session
        self._up = True
        return session

    async def _discard(self, client, pubsub) -> None:
        """Close a session's connections, whatever state they are in (bounded)."""
        if pubsub is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(pubsub.aclose(), 1.0)
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(client.aclose(), 1.0)

    async def _run(self, session: _Session | None) -> None:
        """Serve a session until it fails, then reconnect with backoff; until closed."""
        delay = self.backoff_initial
        while not self._closed:
            if session is None:
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.backoff_max)
                try:
                    session = await self._connect()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.debug("verb: Redis broker reconnection failed: %s", exc)
                    continue
                self._came_back(len(session.subscribed))
                delay = self.backoff_initial
            try:
                await self._serve(session)
            except asyncio.CancelledError:
                await self._discard(session.client, session.pubsub)
                raise
            except Exception as exc:
                if not self._closed:
                    self._went_down(exc)
            await self._discard(session.client, session.pubsub)
            session = self._session = None

    async def _serve(self, session: _Session) -> None:
        tasks = [self._loop.create_task(coro) for coro in (
            self._read(session), self._write(session), self._sync(session))]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            session.alive = False
            self._sync_wake.set()
            self._write_wake.set()
            for task in tasks:
                task.cancel()
            # Bounded: a task that lost its cancellation stops at its next look at
            # session.alive, or when _discard closes the connection under it.
            await asyncio.wait(tasks, timeout=1.0)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()
        raise ConnectionError("Redis broker session ended")

    def _went_down(self, exc: BaseException | None = None) -> None:
        self._up = False
        lost = self._in_flight + len(self._outbox)
        self._in_flight = 0
        self._outbox.clear()
        self._outbox_bytes = 0
        self.unsent += lost
        if self._down_since is None:
            self._down_since = self._loop.time()
            self._unsent_in_outage = lost
            if exc is not None:
                log.warning("verb: Redis broker connection lost (%s: %s); reconnecting. Until "
                            "then publishes reach this process's subscribers only",
                            exc.__class__.__name__, exc)
        else:
            self._unsent_in_outage += lost
        for entry in self._count_requests.values():
            if not entry[3].done():
                entry[3].set_exception(BrokerUnavailable("Redis broker connection lost"))

    def _came_back(self, topics: int) -> None:
        self.reconnects += 1
        if self._down_since is None:
            return
        outage = self._loop.time() - self._down_since
        unsent = self._unsent_in_outage
        self.outages.append((outage, unsent))
        self._down_since = None
        self._unsent_in_outage = 0
        log.warning("verb: Redis broker reconnected after a %.2f s outage; %d publishes were not "
                    "sent meanwhile (delivery is at-most-once); resubscribed %d topics",
                    outage, unsent, topics)

    # -- topics ---------------------------------------------------------------------------------

    def _channel(self, topic: str) -> bytes:
        return self._topic_prefix + topic.encode("utf-8")

    def subscribe(self, topic: str) -> None:
        self._wanted.add(topic)
        self._dirty.add(topic)
        if self._sync_wake is not None:
            self._sync_wake.set()

    def unsubscribe(self, topic: str) -> None:
        self._wanted.discard(topic)
        self._dirty.add(topic)
        if self._sync_wake is not None:
            self._sync_wake.set()

    async def _sync(self, session: _Session) -> None:
        """Bring the connection's subscriptions in line with the topics wanted, in batches (a
        topic subscribed and unsubscribed in between costs nothing)."""
        wake = self._sync_wake
        while session.alive:
            if not self._dirty:
                wake.clear()
                await wake.wait()
                if not session.alive:
                    return
            dirty, self._dirty = self._dirty, set()
            wanted, subscribed = self._wanted, session.subscribed
            add = [topic for topic in dirty if topic in wanted and topic not in subscribed]
            remove = [topic for topic in dirty if topic not in wanted and topic in subscribed]
            for start in range(0, len(add), _SUBSCRIBE_CHUNK):
                chunk = add[start:start + _SUBSCRIBE_CHUNK]
                subscribed.update(chunk)
                await asyncio.wait_for(session.pubsub.subscribe(*map(self._channel, chunk)),
                                       self.connect_timeout)
            for start in range(0, len(remove), _SUBSCRIBE_CHUNK):
                chunk = remove[start:start + _SUBSCRIBE_CHUNK]
                subscribed.difference_update(chunk)
                await asyncio.wait_for(session.pubsub.unsubscribe(*map(self._channel, chunk)),
                                       self.connect_timeout)

    # -- publishing -----------------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, is_text: bool, compress=None) -> None:
        flags = (_TEXT if is_text else 0) | _COMPRESS_FLAGS.get(compress, 0)
        self._enqueue(self._channel(topic), self._headers[flags] + payload)

    def _enqueue(self, channel: bytes, message: bytes) -> None:
        if not self._up:
            self.unsent += 1
            self._unsent_in_outage += 1
            return
        size = len(message)
        if self._outbox_bytes + size > self.max_pending_bytes:
            if not self.overflowed:
                log.warning("verb: Redis broker: more than %d bytes of publishes wait to be "
                            "written; dropping publishes until Redis catches up",
                            self.max_pending_bytes)
            self.overflowed += 1
            self.unsent += 1
            return
        self._outbox.append((channel, message))
        self._outbox_bytes += size
        wake = self._write_wake
        if not wake.is_set():
            wake.set()

    async def _write(self, session: _Session) -> None:
        """Write queued publishes in order, pipelined, over the one client connection."""
        outbox, wake, client = self._outbox, self._write_wake, session.client
        while session.alive:
            if not outbox:
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), self.health_interval)
                except asyncio.TimeoutError:
                    await asyncio.wait_for(client.ping(), self.connect_timeout)
                    continue
                if not session.alive:
                    return
            pipe = client.pipeline(transaction=False)
            count = 0
            while outbox and count < _PIPELINE_CHUNK:
                channel, message = outbox.popleft()
                self._outbox_bytes -= len(message)
                pipe.publish(channel, message)
                count += 1
            self._in_flight = count
            await asyncio.wait_for(pipe.execute(), self.connect_timeout)
            self._in_flight = 0
            self.published += count

    # -- receiving ------------------------------------------------------------------------------

    async def _read(self, session: _Session) -> None:
        pubsub = session.pubsub
        topic_prefix, control, reply = self._topic_prefix, self._control, self._reply_channel
        prefix_length = len(topic_prefix)
        origin = self.origin
        header_size = _HEADER.size
        while session.alive:
            message = await pubsub.get_message(timeout=None)
            if message is None or message["type"] != "message":
                continue
            channel, data = message["channel"], message["data"]
            if channel.startswith(topic_prefix):
                if len(data) < header_size or data[0] != _VERSION:
                    log.warning("verb: Redis broker: ignoring a message on %r that is not in "
                                "verb's format", channel)
                    continue
                if data[2:header_size] == origin:
                    self.echoes_dropped += 1
                    continue
                flags = data[1]
                payload = memoryview(data)[header_size:]
                topic = channel[prefix_length:].decode("utf-8", "replace")
                self.received += 1
                try:
                    self._deliver(topic, str(payload, "utf-8") if flags & _TEXT else payload,
                                  _COMPRESS_VALUES[flags & 6])
                except Exception:
                    log.exception("verb: delivering a message from Redis failed")
            elif channel == control:
                self._answer_control(data)
            elif channel == reply:
                self._take_reply(data)

    # -- cluster-wide subscriber counts ---------------------------------------------------------

    async def cluster_subscriber_count(self, topic: str, timeout: float = 1.0) -> int:
        """Ask every process connected to Redis for its count of `topic` and sum the answers.

        Processes that do not answer within `timeout` seconds are left out.

        Raises:
            BrokerUnavailable: Redis cannot be reached.
        """
        session = self._session
        if not self._up or session is None:
            raise BrokerUnavailable("the Redis broker is not connected")
        try:
            ((_, processes),) = await asyncio.wait_for(
                session.client.pubsub_numsub(self._control), self.connect_timeout)
        except Exception as exc:
            raise BrokerUnavailable(f"Redis broker query failed: {exc}") from exc
        request = next(self._request_ids)
        entry = [0, 0, int(processes), self._loop.create_future()]
        self._count_requests[request] = entry
        try:
            self._enqueue(self._control, b"count %d %s %s" % (
                request, self._reply_channel, topic.encode("utf-8")))
            try:
                await asyncio.wait_for(asyncio.shield(entry[3]), timeout)
            except asyncio.TimeoutError:
                pass
            return entry[0]
        finally:
            self._count_requests.pop(request, None)

    def _answer_control(self, data: bytes) -> None:
        try:
            kind, request, reply_to, topic = data.split(b" ", 3)
            if kind != b"count" or not reply_to.startswith(self._reply_prefix):
                return
            count = self._local_count(topic.decode("utf-8")) if self._local_count else 0
            self._enqueue(reply_to, b"%d %d" % (int(request), count))
        except Exception:  # noqa: BLE001 - a malformed request from elsewhere
            log.debug("verb: Redis broker: bad control message %r", data[:100])

    def _take_reply(self, data: bytes) -> None:
        try:
            request, count = map(int, data.split(b" ", 1))
        except ValueError:
            return
        entry = self._count_requests.get(request)
        if entry is None:
            return
        entry[0] += count
        entry[1] += 1
        if entry[1] >= entry[2] and not entry[3].done():
            entry[3].set_result(None)

    def stats(self) -> dict:
        return {
            "connected": self._up,
            "published": self.published,
            "received": self.received,
            "echoes_dropped": self.echoes_dropped,
            "unsent": self.unsent,
            "overflowed": self.overflowed,
            "reconnects": self.reconnects,
            "outages": list(self.outages),
            "topics": len(self._wanted),
            "pending": len(self._outbox),
        }


# -- the app side ------------------------------------------------------------------------------

def _payload(data) -> tuple[bytes, bool]:
    if isinstance(data, str):
        return data.encode("utf-8"), True
    if isinstance(data, bytes):
        return data, False
    return bytes(data), False


class BrokerLink:
    """Connects an app's hubs (one per running server, all on one event loop) to a broker.

    Hubs report topics gaining their first / losing their last local subscriber (across all
    hubs, the broker sees a topic once), `ws.publish` calls that need to leave the process,
    and receive what the broker delivers.
    """

    def __init__(self, broker: Broker, loop) -> None:
        self.broker = broker
        self.loop = loop
        self.hubs: list = []
        self._hub_topics: dict[Any, set[str]] = {}
        self._holders: dict[str, int] = {}  # topic -> hubs with local subscribers
        self._started = False

    async def attach(self, hub) -> None:
        if not self._started:
            await self.broker.start(self._deliver, self.local_count)
            self._started = True
        self.hubs.append(hub)
        self._hub_topics[hub] = set()
        hub.on_topic_change = lambda topic, active: self._topic_changed(hub, topic, active)
        hub.on_publish = lambda topic, data, compress: self._ws_published(hub, topic, data,
                                                                            compress)

    async def detach(self, hub) -> bool:
        """Forget `hub`; closes the broker with the last one (then returns True)."""
        if hub not in self.hubs:
            return not self.hubs
        hub.on_topic_change = None
        hub.on_publish = None
        self.hubs.remove(hub)
        for topic in self._hub_topics.pop(hub, ()):
            self._release(topic)
        if self.hubs:
            return False
        await self.broker.close()
        return True

    def local_count(self, topic: str) -> int:
        return sum(hub.subscriber_count(topic) for hub in self.hubs)

    def _topic_changed(self, hub, topic: str, active: bool) -> None:
        # Called from compiled code that cannot report an exception: never raise.
        try:
            topics = self._hub_topics.get(hub)
            if topics is None:
                return
            if active:
                if topic not in topics:
                    topics.add(topic)
                    held = self._holders.get(topic, 0)
                    self._holders[topic] = held + 1
                    if held == 0:
                        self.broker.subscribe(topic)
            elif topic in topics:
                topics.discard(topic)
                self._release(topic)
        except Exception:
            log.exception("verb: broker subscription update failed")

    def _release(self, topic: str) -> None:
        held = self._holders.get(topic, 0) - 1
        if held > 0:
            self._holders[topic] = held
        else:
            self._holders.pop(topic, None)
            self.broker.unsubscribe(topic)

    def _deliver(self, topic: str, data, compress) -> None:
        for hub in self.hubs:
            hub.publish(topic, data, None, compress)

    def publish(self, topic: str, data, compress=None) -> None:
        """Send a message already delivered to this process's subscribers to the others."""
        payload, is_text = _payload(data)
        self.broker.publish(topic, payload, is_text, compress)

    def _ws_published(self, hub, topic: str, data, compress) -> None:
        try:
            for other in self.hubs:
                if other is not hub:
                    other.publish(topic, data, None, compress)
            self.publish(topic, data, compress)
        except Exception:
            log.exception("verb: publishing through the broker failed")
