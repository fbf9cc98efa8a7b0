"""The one gate between async and sync code.

Django's ORM is sync; Hookway's views, ASGI handler and dispatcher are async. Every
crossing happens here, as a named async function wrapping one sync function of the store
(or a sync function wrapping async code, for management commands). Nothing else in
Hookway calls ``sync_to_async`` or ``async_to_sync``.

``thread_sensitive=True`` (asgiref's default) keeps every call of one request on that
request's thread, hence on one database connection; outside a request (the dispatcher)
the calls share one thread, which is what SQLite's single writer wants anyway.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from asgiref.sync import async_to_sync, sync_to_async
from django.db import InterfaceError, OperationalError, connection

from hookway import timing
from hookway.config import sync as config_sync
from hookway.config.file import HookwayConfig
from hookway.store import deliveries, events, replay

P = ParamSpec("P")
R = TypeVar("R")


def _db(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """Run a sync store function in the thread pool, adding its time to the request's
    Server-Timing ``db`` entry."""

    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (OperationalError, InterfaceError):
            # Outside a request nothing else recycles this thread's connection: drop a
            # broken one so the next call reconnects (the dispatcher runs for days).
            if not connection.in_atomic_block:
                connection.close()
            raise

    run = sync_to_async(guarded, thread_sensitive=True)

    @wraps(func)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        try:
            return await run(*args, **kwargs)
        finally:
            timing.add_db_time(time.perf_counter() - started)

    return call


aget_source = _db(events.get_source)
astore_event = _db(events.store_event)
adatabase_ready = _db(events.database_ready)

aclaim_due = _db(deliveries.claim_due)
arecord_attempts = _db(deliveries.record_attempts)
arelease = _db(deliveries.release)
anext_due_at = _db(deliveries.next_due_at)
apending_count = _db(deliveries.pending_count)

areplay_events = _db(replay.replay_events)
areplay_deliveries = _db(replay.replay_deliveries)
areplay_dead = _db(replay.replay_dead)


async def async_sync_config(config: HookwayConfig) -> config_sync.SyncReport:
    return await _db(config_sync.sync)(config)


def run_sync(func: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run async Hookway code from sync code (management commands)."""
    return async_to_sync(func)(*args, **kwargs)
