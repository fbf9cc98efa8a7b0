"""The one gate between async and sync code.

Django's ORM is sync; Hookway's views, ASGI handler and dispatcher are async. Every
crossing happens here, as a named async function wrapping one sync function of the store
(or a sync function wrapping async code, for management commands). Nothing else in
Hookway calls ``sync_to_async`` or ``async_to_sync``.

Ingest's database work runs on two dedicated threads per process: one writer, which
batches concurrent webhooks into one transaction (group commit, see ``_Writer``), and
one reader for source lookups, so a lookup never waits behind a batch stalled on a
lock. Both answer within each request's deadline, whatever the database does.
Everything else uses ``sync_to_async(thread_sensitive=True)``: within a request, the
request's thread; outside one (the dispatcher), one shared thread, which is what
SQLite's single writer wants anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import wraps
from typing import Any, Literal, NamedTuple, ParamSpec, TypeVar

from asgiref.sync import SyncToAsync, async_to_sync, sync_to_async
from django.core.handlers.exception import response_for_exception
from django.db import InterfaceError, OperationalError, connection, connections
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.log import log_response

from hookway import conf, outbox, timing, tracing
from hookway.config import sync as config_sync
from hookway.config.file import HookwayConfig
from hookway.metrics import exposition
from hookway.routing import rules
from hookway.store import (
    changelog,
    changes,
    circuit,
    deliveries,
    destinations,
    entries,
    events,
    gauges,
    records,
    replay,
    retention,
)
from hookway.store.changelog import Notice as Notice
from hookway.store.circuit import CircuitSnapshot as CircuitSnapshot
from hookway.store.db import disconnected
from hookway.store.destinations import Change as Change
from hookway.store.destinations import DestinationError as DestinationError
from hookway.store.destinations import DestinationState as DestinationState
from hookway.store.entries import Conflict as Conflict
from hookway.store.entries import EntryError as EntryError
from hookway.store.entries import Managed as Managed
from hookway.store.entries import NoSuchEntry as NoSuchEntry
from hookway.store.errors import NotStored, StoreTimeout, StoreUnavailable
from hookway.store.replay import Created as Created
from hookway.store.replay import ReplayResult as ReplayResult
from hookway.store.replay import SkipKind as SkipKind
from hookway.store.replay import Skipped as Skipped
from hookway.store.retention import Batch as Batch
from hookway.store.retention import Pruned as Pruned
from hookway.store.retention import RetentionPolicy as RetentionPolicy

# Re-exported above ("X as X"): what the replay and destination functions below answer,
# for their callers (commands, the admin, the API), which import no store module.

logger = logging.getLogger("hookway.ingest")

P = ParamSpec("P")
R = TypeVar("R")

# A webhook already being committed when its deadline passes gets this much longer for
# the outcome, so its answer says what happened; past it the answer is 503 (a retry with
# the same delivery id is then answered as a duplicate if the commit did land).
COMMIT_GRACE = 1.0
# Webhooks answered per loop iteration once their group is committed: each answer runs
# ~0.2-0.3 ms of Python (the response, its write), and a group can hold dozens when the
# database is slow, so answering a whole group in one iteration held the loop (timers,
# deliveries, other requests) for 10-15 ms.
SETTLE_CHUNK = 8


def _guarded(func: Callable[P, R], *, reconnect: bool = False) -> Callable[P, R]:
    """``func`` on a connection kept healthy: after a database error outside a
    transaction the connection is closed, so the next call reconnects (outside a request
    nothing else recycles a thread's connection, and the dispatcher runs for days).
    With ``reconnect``, a read-only ``func`` whose connection was lost is tried once
    more on a new one."""

    @wraps(func)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            if connection.in_atomic_block:
                raise
            connection.close()
            if not (reconnect and disconnected(exc)):
                raise
        return func(*args, **kwargs)

    return guarded


def _db(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """Run a sync store function in the thread pool. (Its queries count toward the
    request's Server-Timing ``db`` entry through hookway.timing.time_query: the thread
    runs in a copy of the request's context.)"""
    return sync_to_async(_guarded(func), thread_sensitive=True)


def default_deadline() -> float:
    """A request's deadline when the caller has none: HOOKWAY_DB_TIMEOUT from now."""
    return time.monotonic() + conf.get().db_timeout


_state_lock = threading.Lock()


class _Pending:
    """One webhook waiting for the writer: a Claim (hookway.store.events) whose state
    the writer thread and the request share under a lock."""

    __slots__ = ("deadline", "future", "incoming", "state", "timer")

    def __init__(
        self,
        incoming: events.IncomingEvent,
        deadline: float,
        future: asyncio.Future[events.StoredEvent],
    ):
        self.incoming = incoming
        self.deadline = deadline
        self.future = future
        self.state: Literal["queued", "taken", "abandoned"] = "queued"
        # The grace timer, once the deadline passed with the webhook being committed.
        self.timer: asyncio.TimerHandle | None = None

    def take(self) -> bool:
        with _state_lock:
            if self.state == "queued" and time.monotonic() < self.deadline:
                self.state = "taken"
                return True
            return False

    def live(self) -> bool:
        return self.state == "queued" and time.monotonic() < self.deadline

    def abandon(self) -> bool:
        """Give it up unless the writer took it already; True if given up."""
        with _state_lock:
            if self.state == "queued":
                self.state = "abandoned"
                return True
            return False


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A request that gave up leaves its future behind: read its exception so asyncio
    # doesn't report it as never retrieved.
    if not future.cancelled():
        future.exception()


class _Writer:
    """Ingest's writes, on one thread per process, with group commit.

    Each webhook awaits a future; a flusher task hands everything queued so far to the
    writer thread as one batch, stored in one transaction. With SQLite that is one fsync
    per batch instead of one per webhook, and no lock contention between request threads
    (their busy-wait sleeps are what made per-request transactions slow under load). At
    low load a batch is a single webhook, so nothing waits for company.

    Every webhook keeps its own deadline: one the writer has not taken by then is given
    up (503, nothing stored), whether its batch is waiting for a lock or it is still
    queued behind one.
    """

    MAX_BATCH = 256

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hookway-writer")
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def store(self, incoming: events.IncomingEvent, deadline: float) -> events.StoredEvent:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[events.StoredEvent] = loop.create_future()
        future.add_done_callback(_retrieve)
        item = _Pending(incoming, deadline, future)
        self._pending.append(item)
        if self._flusher is None or self._flusher.done() or self._flusher.get_loop() is not loop:
            self._flusher = loop.create_task(self._flush(), name="hookway-group-commit")
        # One timer settles the future at the deadline (asyncio.wait_for around a shield
        # did the same with two more futures and a timer per webhook, on the loop).
        timer = loop.call_at(
            loop.time() + max(0.0, deadline - time.monotonic()), self._expire, item, loop
        )
        try:
            return await future
        except asyncio.CancelledError:
            # The sender went away: store nothing if the writer hasn't taken it yet
            # (the sender got no answer and will retry).
            if item.abandon():
                self._discard(item)
            raise
        finally:
            timer.cancel()
            if item.timer is not None:
                item.timer.cancel()
                item.timer = None

    def _expire(self, item: _Pending, loop: asyncio.AbstractEventLoop) -> None:
        """The webhook's deadline passed: 503 unless the writer took it already; then its
        commit gets COMMIT_GRACE more to be confirmed."""
        if item.future.done():
            return
        if item.abandon():
            self._discard(item)
            item.future.set_exception(
                StoreTimeout("its deadline passed before it could be committed")
            )
        else:
            item.timer = loop.call_later(COMMIT_GRACE, self._give_up, item)

    def _give_up(self, item: _Pending) -> None:
        if not item.future.done():
            logger.error("a webhook's commit outlived its deadline; answered 503")
            item.future.set_exception(
                StoreTimeout("the database did not confirm the commit in time")
            )

    def _discard(self, item: _Pending) -> None:
        with contextlib.suppress(ValueError):  # the flusher took it already (and skips it)
            self._pending.remove(item)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch = [i for i in self._pending[: self.MAX_BATCH] if i.state == "queued"]
            del self._pending[: self.MAX_BATCH]
            if not batch:
                continue
            try:
                outcomes: list[events.Outcome] = await loop.run_in_executor(
                    self._executor, functools.partial(_guarded(events.store_claims), batch)
                )
            except Exception:  # store_claims catches database errors; this is a bug
                logger.exception("the ingest writer failed")
                outcomes = [StoreUnavailable("the webhook could not be stored")] * len(batch)
            for n, (item, outcome) in enumerate(zip(batch, outcomes, strict=True)):
                if n and n % SETTLE_CHUNK == 0:
                    await asyncio.sleep(0)
                if item.future.done():
                    continue
                if isinstance(outcome, NotStored):
                    item.future.set_exception(outcome)
                else:
                    item.future.set_result(outcome)

    def close_connections(self) -> None:
        """Close the writer thread's database connection (tests, before dropping the DB)."""
        self._executor.submit(connections.close_all).result()


_writer = _Writer()
# Source lookups: one thread of their own, so they never queue behind a stalled write.
_reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hookway-reader")

# Sources change rarely and every webhook needs one: a short cache keeps ingest off the
# database until the commit. Saving or deleting a Source in this process clears it; other
# processes see a change within SOURCE_CACHE_SECONDS (counted from when the lookup that
# read the source began).
SOURCE_CACHE_SECONDS = 1.0
# A source read this long ago is read again in the background while webhooks go on with
# the cached one, so under steady traffic no webhook waits for the lookup. When each
# webhook that found its source expired waited for a lookup of its own, queued on the
# reader thread (which shares the GIL with a busy event loop), ~2 % of webhooks waited
# 40-130 ms, once a second: that was ingest's p99 at 64 connections.
SOURCE_REFRESH_SECONDS = 0.5


class _CachedSource(NamedTuple):
    read_at: float  # time.monotonic() when its lookup began
    spec: events.SourceSpec | None  # None: no enabled source has this slug


_sources: dict[str, _CachedSource] = {}


class _Lookup(NamedTuple):
    future: Future[events.SourceSpec | None]
    began: float  # time.monotonic() when it was queued


# The lookup in flight per slug: every webhook that needs that source meanwhile waits for
# this one, rather than queueing one more behind it.
_lookups: dict[str, _Lookup] = {}
# Bumped by clear_source_cache: a lookup begun before a change doesn't cache what it read.
_generation = 0
_cache_lock = threading.Lock()  # _lookups, _generation, and _sources' writes


def clear_source_cache() -> None:
    """Forget cached sources and routes (after a change made in this process); lookups
    in flight finish for whoever waits on them, but cache nothing."""
    global _generation
    with _cache_lock:
        _generation += 1
        _sources.clear()
        _lookups.clear()
    events.clear_route_cache()


def _lookup(slug: str) -> Future[events.SourceSpec | None]:
    """The slug's lookup in flight, or a new one on the reader thread. One in flight for
    SOURCE_CACHE_SECONDS already (a stalled database) is not joined: what it reads may
    be older than a webhook may be served; a new one is queued behind it."""
    with _cache_lock:
        now = time.monotonic()
        running = _lookups.get(slug)
        if running is None or now - running.began >= SOURCE_CACHE_SECONDS:
            lookup = _Lookup(Future(), now)
            _lookups[slug] = lookup
            _reader.submit(_read_source, slug, lookup, _generation)
            running = lookup
        return running.future


def _read_source(slug: str, lookup: _Lookup, generation: int) -> None:
    """The reader thread's lookup: read the source, cache it unless the cache was cleared
    since the lookup began, and let the next webhook start a new lookup; its answer (or
    error) goes to whoever waits on ``lookup.future``."""
    try:
        spec = _guarded(events.get_source, reconnect=True)(slug)
    except BaseException as exc:
        # Whoever waits gets the error (a 503); a refresh nobody waited for is said here.
        logger.warning("looking up source %r failed: %s", slug, exc)
        _forget(slug, lookup)
        lookup.future.set_exception(exc)
        if not isinstance(exc, Exception):
            raise
        return
    with _cache_lock:
        if generation == _generation:
            if len(_sources) > 10_000:  # unknown slugs must not grow it without bound
                _sources.clear()
            _sources[slug] = _CachedSource(lookup.began, spec)
    _forget(slug, lookup)
    lookup.future.set_result(spec)


def _forget(slug: str, lookup: _Lookup) -> None:
    with _cache_lock:
        if _lookups.get(slug) is lookup:
            del _lookups[slug]


async def aget_source(slug: str, deadline: float | None = None) -> events.SourceSpec | None:
    """The enabled source with this slug, or None (cached for SOURCE_CACHE_SECONDS,
    read again in the background from SOURCE_REFRESH_SECONDS). Raises StoreTimeout if
    the database doesn't answer before ``deadline`` (``time.monotonic()``; default
    HOOKWAY_DB_TIMEOUT from now)."""
    now = time.monotonic()
    hit = _sources.get(slug)
    if hit is not None and now - hit.read_at < SOURCE_CACHE_SECONDS:
        if now - hit.read_at >= SOURCE_REFRESH_SECONDS:
            _lookup(slug)  # this webhook goes on with the cached source
        return hit.spec
    deadline = default_deadline() if deadline is None else deadline
    started = time.perf_counter()
    # Shielded: a webhook that stops waiting (its deadline, its sender gone) leaves the
    # shared lookup running for the others.
    lookup = asyncio.wrap_future(_lookup(slug))
    lookup.add_done_callback(_retrieve)
    try:
        return await asyncio.wait_for(asyncio.shield(lookup), timeout=max(0.0, deadline - now))
    except TimeoutError:
        raise StoreTimeout("the database did not answer the source lookup in time") from None
    finally:
        timing.add_db_time(time.perf_counter() - started)


async def astore_event(
    incoming: events.IncomingEvent, deadline: float | None = None
) -> events.StoredEvent:
    """Store one webhook durably (group commit); return the stored or original event.
    Raises a hookway.store.errors.NotStored (nothing stored) if it can't be committed
    before ``deadline`` (``time.monotonic()``; default HOOKWAY_DB_TIMEOUT from now)."""
    started = time.perf_counter()
    try:
        return await _writer.store(incoming, default_deadline() if deadline is None else deadline)
    finally:
        timing.add_db_time(time.perf_counter() - started)


def close_writer_connections() -> None:
    _writer.close_connections()
    _reader.submit(connections.close_all).result()


abeat = _db(deliveries.beat)

aclaim_due = _db(deliveries.claim_due)
arenew_leases = _db(deliveries.renew_leases)
arecord_attempts = _db(deliveries.record_attempts)
arelease = _db(deliveries.release)
aseconds_until_due = _db(deliveries.seconds_until_due)
apending_count = _db(deliveries.pending_count)
adata_version = _db(deliveries.data_version)

# Replay (hookway.store.replay): each returns a ReplayResult, what was created and why
# anything was skipped.
areplay_events = _db(replay.replay_events)
areplay_deliveries = _db(replay.replay_deliveries)
areplay_dead = _db(replay.replay_dead)

# Retention (hookway.store.retention): one short transaction per batch, and the dry run.
aprune_batch = _db(retention.prune_batch)
acount_prunable = _db(retention.count)

# A destination's operational state (hookway.store.destinations): each change returns a
# Change; raises a destinations.DestinationError when it can't be made.
adestination_states = _db(destinations.states)
apause_destination = _db(destinations.pause)
aresume_destination = _db(destinations.resume)
aenable_destination = _db(destinations.enable)

# Destination state changes (hookway.store.changelog) and circuits (hookway.store.circuit):
# the API's list of a destination's changes, the dispatcher's notification emails, and
# each destination's circuit state for metrics.
adestination_changes = _db(changelog.changes_of)
aclaim_emails = _db(changelog.claim_emails)
amark_emailed = _db(changelog.mark_emailed)
acircuit_states = _db(circuit.circuit_states)


def _send_mail(subject: str, body: str, recipients: list[str]) -> int:
    from django.core.mail import send_mail

    return send_mail(subject, body, None, recipients, fail_silently=False)


async def asend_mail(subject: str, body: str, recipients: list[str]) -> int:
    """Send one email through Django's email backend (SMTP is blocking I/O: on a worker
    thread, never the shared database thread); returns how many were sent."""
    return await sync_to_async(_send_mail, thread_sensitive=False)(subject, body, recipients)


# /metrics (hookway.metrics): the database's gauges on the request's thread, then the
# exposition (it reads the multiprocess files) on a worker thread, off the loop.
ametrics_gauges = _db(gauges.read)
arender_metrics = sync_to_async(exposition.render, thread_sensitive=False)
# Export the spans still buffered at shutdown (the exporter's blocking HTTP calls).
aflush_traces = sync_to_async(tracing.flush, thread_sensitive=False)

# The admin's lists at scale (hookway.store.records).
aestimated_count = _db(records.estimated_count)
aevent_names = _db(records.event_names)


def _reroutes(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``_db(func)`` for a change to sources, destinations or routes: afterwards this
    process forgets what ingest cached of them (other processes within a second)."""
    call = _db(func)

    @wraps(func)
    async def changed(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await call(*args, **kwargs)
        finally:
            clear_source_cache()

    return changed


# Sources, destinations and routes an operator changes (hookway.store.entries): each
# raises an entries.EntryError (NoSuchEntry, Managed, Conflict) when it can't be made.
acreate_source = _reroutes(entries.create_source)
aupdate_source = _reroutes(entries.update_source)
adelete_source = _reroutes(entries.delete_source)
aset_source_enabled = _reroutes(entries.set_source_enabled)
acreate_destination = _reroutes(entries.create_destination)
aupdate_destination = _reroutes(entries.update_destination)
adelete_destination = _reroutes(entries.delete_destination)
adisable_destination = _reroutes(entries.disable_destination)
acreate_route = _reroutes(entries.create_route)
aupdate_route = _reroutes(entries.update_route)
adelete_route = _reroutes(entries.delete_route)
aset_route_enabled = _reroutes(entries.set_route_enabled)
# What the API's destination test sends (hookway.store.deliveries.ping): an
# OutboundDelivery the sender takes like any other.
aping_delivery = _db(deliveries.ping)

# The API's filter test (hookway.routing.rules.trial): parsing a stored body and
# evaluating the rules is CPU work kept off the event loop.
atry_rules = sync_to_async(rules.trial, thread_sensitive=False)

# hookway.apublish: the sync publish on the thread Django gives the caller's sync code.
# Not _guarded: it may run inside a request, whose connection Django recycles itself.
apublish = sync_to_async(outbox.publish, thread_sensitive=True)


# Plain ``def`` handlers and Celery publishes (hookway.send.transport): their own threads,
# never the shared thread the dispatcher's database calls use, which a slow handler
# would hold up.
HANDLER_THREADS = 64
_handler_threads = ThreadPoolExecutor(HANDLER_THREADS, thread_name_prefix="hookway-handler")


def start_in_thread(func: Callable[[], R], abandon: Callable[[], bool]) -> asyncio.Future[R]:
    """Start ``func()`` on a handler thread (in a copy of the caller's context) and
    return its future, not awaited here: a timed-out call is left to finish. If
    ``abandon()`` is true when a thread takes it (it waited past its deadline for a free
    thread), it is not run and the future's result is None."""
    context = contextvars.copy_context()

    def run() -> R:
        if abandon():
            return None  # type: ignore[return-value]  # nobody awaits an abandoned call
        return context.run(func)

    return asyncio.get_running_loop().run_in_executor(_handler_threads, run)


async def acall_receivers(
    receivers: list[Callable[..., object]], signal: object, sender: type, named: dict[str, object]
) -> None:
    """Call sync signal receivers in a worker thread (not the shared thread the
    dispatcher's database calls use), as Django's ``Signal.asend`` would."""

    def call() -> None:
        for receiver in receivers:
            receiver(signal=signal, sender=sender, **named)

    await sync_to_async(call, thread_sensitive=False)()


async def aresponse_for_exception(request: HttpRequest, exc: Exception) -> HttpResponseBase:
    """Django's answer to an exception a view raised (``response_for_exception``: the
    500 page, the logged traceback, ``got_request_exception``), in a worker thread as
    Django's async handler runs it. Await it inside the ``except`` block: asgiref
    carries the exception being handled into the thread, where Django reads it."""
    return await sync_to_async(response_for_exception, thread_sensitive=False)(request, exc)


async def alog_response(request: HttpRequest, response: Any) -> None:
    """Django's log line for an answer of 400 or more (``log_response`` to
    ``django.request``; ``response`` has a ``status_code`` and a ``reason_phrase``), in
    a worker thread as Django's async handler writes it."""
    reason = response.reason_phrase
    await sync_to_async(log_response, thread_sensitive=False)(
        "%s: %s", reason, request.path, response=response, request=request
    )


async def async_sync_config(config: HookwayConfig) -> config_sync.SyncReport:
    report = await _db(config_sync.sync)(config)
    clear_source_cache()
    return report


async def async_sync_config_if_changed(
    config: HookwayConfig, path: str
) -> config_sync.SyncReport | None:
    report = await _db(config_sync.sync_if_changed)(config, path)
    clear_source_cache()
    return report


def run_sync(func: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run async Hookway code from sync code (management commands)."""
    return async_to_sync(func)(*args, **kwargs)


# The operator API's event stream (hookway.api.feed): one call per poll for the process.
astream_start = _db(changes.start)
achanges_since = _db(changes.changes_since)


# --- The operator API's long or cut-off requests (hookway.api.stats, hookway.api.stream).


def _query_handle() -> object:
    connection.ensure_connection()
    return connection.connection


async def aquery_handle() -> object:
    """The database connection of the thread this request's ORM queries run on (its
    driver-level handle), for ainterrupt_queries."""
    return await sync_to_async(_query_handle, thread_sensitive=True)()


def _interrupt(handle: object) -> None:
    cancel = getattr(handle, "cancel", None)  # psycopg: a cancel request to the server
    if cancel is None:
        cancel = getattr(handle, "interrupt", None)  # sqlite3: abort the running statement
    if cancel is not None:
        with contextlib.suppress(Exception):  # closed meanwhile: nothing runs on it
            cancel()


async def ainterrupt_queries(handle: object) -> None:
    """Abort the query running on ``handle``, if any. A cancelled ``sync_to_async`` does
    not stop its thread: asgiref waits for the function to return, so without this a
    query cut off by a timeout would hold its request (and its thread) to the end.
    The aborted query raises in its thread, where nobody waits for it any more."""
    # psycopg's cancel() is a round trip to the server: not on the event loop.
    await sync_to_async(_interrupt, thread_sensitive=False)(handle)


def _close_thread_connections() -> None:
    connections.close_all()


async def arelease_request_thread() -> None:
    """Give back what a long-lived response (the event stream) holds once its request's
    database work is done: close the request thread's connections (a PostgreSQL pool
    slot each) and shut down the request's thread, so an idle subscriber holds neither.
    Should the request make a thread-sensitive call later, asgiref starts a new thread
    for it (Django does, to close the response)."""
    await sync_to_async(_close_thread_connections, thread_sensitive=True)()
    context = SyncToAsync.thread_sensitive_context.get(None)
    if context is not None:
        executor = SyncToAsync.context_to_thread_executor.pop(context, None)
        if executor is not None:
            executor.shutdown(wait=False)
