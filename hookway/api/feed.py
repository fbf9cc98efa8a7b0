"""The process's one watcher of new events and delivery outcomes, and its fan-out to
every event-stream subscriber (hookway.api.stream).

However many clients are connected, one task polls the database: every
HOOKWAY_STREAM_POLL_INTERVAL, and at once when ingest in this process commits
(hookway.wakeup). Each poll is one call to the store (two queries), and its messages go
to each subscriber whose filters match, through the subscriber's own bounded queue. A
subscriber that falls HOOKWAY_STREAM_QUEUE messages behind is dropped with a last
message, rather than let its queue grow; it can reconnect with its Last-Event-ID and
lose nothing. An idle subscriber costs a queue and a dictionary entry: no query, no
thread, no database connection.

The watcher runs while anyone subscribes (started by the first, ended after the last)
under an owner that logs a failure with its traceback and restarts it after a backoff,
keeping its place so connected subscribers miss nothing; the process's shutdown stops
it (hookway.runtime)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import DatabaseError

from hookway import conf, gate, runtime, wakeup
from hookway.api.cursor import Cursor, Message, advance, matches
from hookway.api.filters import EventFilters

logger = logging.getLogger("hookway.api.stream")

# Rows per kind per poll; a full page polls again at once.
PAGE = 500
# The shortest time between two polls: ingest's wake-ups at thousands of webhooks a
# second are taken a few hundred at a time, not one poll each. Each poll has a fixed
# cost (two queries, two thread hops); at 0.05 s, 500 idle subscribers cost ingest ~11 %
# (bench/api_stream.py), at 0.25 s ~7 %. A live view a quarter second behind is live.
MIN_GAP = 0.25
RESTART_FIRST = 1.0
RESTART_MAX = 30.0


class Overflow:
    """The last item a dropped subscriber's queue holds."""


OVERFLOW = Overflow()


@dataclass(eq=False)
class Subscriber:
    filters: EventFilters
    queue: asyncio.Queue[Message | Overflow]
    dropped: bool = False

    def offer(self, message: Message) -> bool:
        """Queue ``message``; False (and the subscriber is dropped) if the queue is full."""
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(OVERFLOW)
            self.dropped = True
            return False
        return True


@dataclass(eq=False)
class Feed:
    """See the module docstring. ``polls`` counts polls (tests, metrics)."""

    loop: asyncio.AbstractEventLoop
    subscribers: dict[str | None, set[Subscriber]] = field(default_factory=lambda: defaultdict(set))
    cursor: Cursor | None = None
    polls: int = 0
    _waiting: int = 0
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _wanted: asyncio.Event = field(default_factory=asyncio.Event)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False

    def count(self) -> int:
        return sum(len(s) for s in self.subscribers.values())

    async def subscribe(self, filters: EventFilters) -> tuple[Subscriber, Cursor]:
        """A new subscriber and the cursor its queue starts after: from the moment this
        returns, every change past that cursor matching its filters reaches its queue."""
        self._start()
        self._waiting += 1
        try:
            self._wanted.set()
            await self._ready.wait()
            # No await from here: the cursor read and the registration are one step.
            subscriber = Subscriber(filters, asyncio.Queue(conf.get().stream_queue))
            self.subscribers[filters.source].add(subscriber)
            assert self.cursor is not None
            return subscriber, self.cursor
        finally:
            self._waiting -= 1

    def unsubscribe(self, subscriber: Subscriber) -> None:
        group = self.subscribers.get(subscriber.filters.source)
        if group is not None:
            group.discard(subscriber)
            if not group:
                del self.subscribers[subscriber.filters.source]
        if not self.subscribers:
            self._wake.set()  # the watcher notices nobody is left

    def _idle(self) -> bool:
        return not self.subscribers and not self._waiting

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._stopping = False
            # A context of its own: not the first subscriber's request context, whose
            # thread-sensitive executor ends with that request.
            self._task = asyncio.create_task(
                self._own(), name="hookway-stream-watcher", context=contextvars.Context()
            )
            runtime.on_shutdown(self.stop)

    async def _own(self) -> None:
        failures = 0
        wakeup.subscribe(self._wake)
        try:
            while not self._stopping:
                await self._wanted.wait()
                self._wanted.clear()
                started = time.monotonic()
                try:
                    await self._watch()
                except asyncio.CancelledError:
                    raise
                except Exception:  # the owner logs any failure and restarts
                    logger.exception("the event stream's watcher failed")
                else:
                    failures = 0
                    continue
                if time.monotonic() - started > 60:
                    failures = 0
                failures += 1
                delay = min(RESTART_MAX, RESTART_FIRST * 2 ** (failures - 1))
                logger.error("restarting the event stream's watcher in %.0f s", delay)
                await asyncio.sleep(delay)
                self._wanted.set()
        finally:
            wakeup.unsubscribe(self._wake)
            self._ready.clear()

    async def _watch(self) -> None:
        """Poll while anyone subscribes; return when nobody does."""
        if self.cursor is None:
            start = await gate.astream_start()
            self.cursor = Cursor(start.event, start.attempt, start.in_flight)
        self._ready.set()
        interval = conf.get().stream_poll_interval
        while not self._idle():
            self._wake.clear()
            full = await self._poll()
            if full:
                continue
            try:
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            await asyncio.sleep(MIN_GAP)
        # Nobody left: the next subscriber starts from the present, not from here.
        self._ready.clear()
        self.cursor = None

    async def _poll(self) -> bool:
        """One poll: fetch, fan out. True if a page came back full."""
        assert self.cursor is not None
        self.polls += 1
        try:
            changes = await gate.achanges_since(
                self.cursor.event, self.cursor.attempt, self.cursor.pending, PAGE
            )
        except DatabaseError as exc:
            logger.warning("the event stream could not read the database: %s", exc)
            return False
        messages, self.cursor = advance(self.cursor, changes, self._wanted_source)
        for message in messages:
            self.publish(message)
        return len(changes.events) >= PAGE or len(changes.attempts) >= PAGE

    def _wanted_source(self, source: str) -> bool:
        """Whether any subscriber could want a change of ``source`` (subscribers are
        grouped by their source filter; None holds those without one)."""
        return None in self.subscribers or source in self.subscribers

    def publish(self, message: Message) -> None:
        """Queue ``message`` for every subscriber whose filters match it."""
        for key in (None, message.source):
            group = self.subscribers.get(key)
            if not group:
                continue
            for subscriber in list(group):
                if matches(subscriber.filters, message) and not subscriber.offer(message):
                    logger.warning(
                        "dropped a stream subscriber %d messages behind",
                        subscriber.queue.maxsize,
                    )
                    self.unsubscribe(subscriber)

    async def stop(self) -> None:
        """Stop the watcher (the process is stopping)."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise
        self.cursor = None


_feed: Feed | None = None


def current() -> Feed:
    """The process's feed (one per event loop: a test's loop gets its own)."""
    global _feed
    loop = asyncio.get_running_loop()
    if _feed is None or _feed.loop is not loop:
        _feed = Feed(loop=loop)
    return _feed
