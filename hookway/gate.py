"""The one gate between async and sync code.

Django's ORM is sync; Hookway's views, ASGI handler and dispatcher are async. Every
crossing happens here, as a named async function wrapping one sync function of the store
(or a sync function wrapping async code, for management commands). Nothing else in
Hookway calls ``sync_to_async`` or ``async_to_sync``.

Ingest's own database work (source lookups, storing webhooks) runs on one dedicated
writer thread per process, which batches concurrent webhooks into one transaction (group
commit, see ``_Writer``). Everything else uses ``sync_to_async(thread_sensitive=True)``:
within a request, the request's thread; outside one (the dispatcher), one shared thread,
which is what SQLite's single writer wants anyway.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import async_to_sync, sync_to_async
from django.db import InterfaceError, OperationalError, connection, connections

from hookway import timing
from hookway.config import sync as config_sync
from hookway.config.file import HookwayConfig
from hookway.store import deliveries, events, replay

P = ParamSpec("P")
R = TypeVar("R")


def _guarded(func: Callable[P, R]) -> Callable[P, R]:
    @wraps(func)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (OperationalError, InterfaceError):
            # Outside a request nothing else recycles this thread's connection: drop a
            # broken one so the next call reconnects (the dispatcher runs for days).
            if not connection.in_atomic_block:
                connection.close()
            raise

    return guarded


def _db(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """Run a sync store function in the thread pool, adding its time to the request's
    Server-Timing ``db`` entry."""
    run = sync_to_async(_guarded(func), thread_sensitive=True)

    @wraps(func)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        try:
            return await run(*args, **kwargs)
        finally:
            timing.add_db_time(time.perf_counter() - started)

    return call


class _Writer:
    """Ingest's database work, on one thread per process, with group commit.

    Each webhook awaits a future; a flusher task hands everything queued so far to the
    writer thread as one batch, stored in one transaction. With SQLite that is one fsync
    per batch instead of one per webhook, and no lock contention between request threads
    (their busy-wait sleeps are what made per-request transactions slow under load). At
    low load a batch is a single webhook, so nothing waits for company.
    """

    MAX_BATCH = 256

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hookway-writer")
        self._pending: list[tuple[events.IncomingEvent, asyncio.Future[events.StoredEvent]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def run(self, func: Callable[..., R], *args: Any) -> R:
        """Run ``func(*args)`` on the writer thread (and so on its database connection)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(_guarded(func), *args))

    async def store(self, incoming: events.IncomingEvent) -> events.StoredEvent:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[events.StoredEvent] = loop.create_future()
        self._pending.append((incoming, future))
        if self._flusher is None or self._flusher.done() or self._flusher.get_loop() is not loop:
            self._flusher = loop.create_task(self._flush(), name="hookway-group-commit")
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self.MAX_BATCH]
            del self._pending[: self.MAX_BATCH]
            try:
                results = await self.run(events.store_events, [item for item, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)

    def close_connections(self) -> None:
        """Close the writer thread's database connection (tests, before dropping the DB)."""
        self._executor.submit(connections.close_all).result()


_writer = _Writer()

# Sources change rarely and every webhook needs one: a short cache keeps ingest off the
# database until the commit. Saving or deleting a Source in this process clears it; other
# processes see a change within SOURCE_CACHE_SECONDS.
SOURCE_CACHE_SECONDS = 1.0
_sources: dict[str, tuple[float, events.SourceSpec | None]] = {}


def clear_source_cache() -> None:
    """Forget cached sources and routes (after a change made in this process)."""
    _sources.clear()
    events.clear_route_cache()


async def aget_source(slug: str) -> events.SourceSpec | None:
    """The enabled source with this slug, or None (cached for SOURCE_CACHE_SECONDS)."""
    now = time.monotonic()
    hit = _sources.get(slug)
    if hit is not None and now - hit[0] < SOURCE_CACHE_SECONDS:
        return hit[1]
    started = time.perf_counter()
    try:
        spec = await _writer.run(events.get_source, slug)
    finally:
        timing.add_db_time(time.perf_counter() - started)
    if len(_sources) > 10_000:  # unknown slugs must not grow it without bound
        _sources.clear()
    _sources[slug] = (now, spec)
    return spec


async def astore_event(incoming: events.IncomingEvent) -> events.StoredEvent:
    """Store one webhook durably (group commit); return the stored or original event."""
    started = time.perf_counter()
    try:
        return await _writer.store(incoming)
    finally:
        timing.add_db_time(time.perf_counter() - started)


def close_writer_connections() -> None:
    _writer.close_connections()


adatabase_ready = _db(events.database_ready)

aclaim_due = _db(deliveries.claim_due)
arecord_attempts = _db(deliveries.record_attempts)
arelease = _db(deliveries.release)
anext_due_at = _db(deliveries.next_due_at)
apending_count = _db(deliveries.pending_count)
adata_version = _db(deliveries.data_version)

areplay_events = _db(replay.replay_events)
areplay_deliveries = _db(replay.replay_deliveries)
areplay_dead = _db(replay.replay_dead)


async def async_sync_config(config: HookwayConfig) -> config_sync.SyncReport:
    report = await _db(config_sync.sync)(config)
    clear_source_cache()
    return report


def run_sync(func: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run async Hookway code from sync code (management commands)."""
    return async_to_sync(func)(*args, **kwargs)
