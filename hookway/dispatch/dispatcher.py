"""The dispatcher: an asyncio loop that claims due deliveries, sends them concurrently and
records every attempt.

Shape (after Procrastinate's worker): named tasks with an owner (``_supervise``), each
restarted with backoff and its traceback logged if it fails; every database call retried
with backoff on database errors, so a restarted database or a terminated connection
only delays deliveries. A stop request and a cancellation end the same way: no new
claims, in-flight sends get the grace period, their results are recorded, whatever is
left is released back to the queue. It never builds SQL (the store does, through
hookway.gate) and never makes HTTP calls itself (the sender does).

Concurrency is bounded globally (``concurrency``) and per destination (each
destination's ``concurrency``, enforced at claim time so nothing waits holding a lease).
New work wakes it at once: the in-process signal from ingest, PostgreSQL LISTEN/NOTIFY
from other processes, SQLite's data_version, and a poll every ``poll_interval`` seconds
as the backstop.

Leases: a claim leases a delivery for its destination's timeout plus ``lease_seconds``;
the sender enforces that timeout as a deadline over the whole attempt, and the renew
task extends the leases of every delivery this dispatcher still holds (sending, or
waiting for its result to be written) every third of ``lease_seconds``. A dispatcher
never claims a delivery it holds, so only a dead dispatcher's deliveries are sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

from django.db import DatabaseError

from hookway import conf, gate, wakeup
from hookway.dispatch import retention, retry
from hookway.loopmonitor import WATCH_INTERVAL, LoopLagMonitor
from hookway.metrics import registry as metrics
from hookway.outbound import (
    NOTIFY_CHANNEL,
    AttemptResult,
    DeliveryState,
    ErrorKind,
    OutboundDelivery,
    Settlement,
)
from hookway.send.client import Client, make_client
from hookway.send.guard import Guard
from hookway.send.transport import Transports

logger = logging.getLogger("hookway.dispatch")

T = TypeVar("T")

SQLITE_WATCH_INTERVAL = 0.05
CLAIM_BATCH = 100
# Sends started per loop iteration: each start runs ~0.3-0.5 ms of Python before its first
# wait, so a claim's batch is started in chunks, the loop serving what else is ready
# (ingest, answers) between them.
START_CHUNK = 4
SHUTDOWN_REASON = "the dispatcher stopped before this attempt finished; released for retry"
# Backoff after a failed database call or a crashed task: doubles from the first value
# up to the last, with jitter so dispatchers don't retry in step.
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0
# A task that ran this long before failing starts its backoff over.
HEALTHY_RUN = 60.0
# At shutdown, how long results and releases may wait for a failing database before
# they are given up (their leases then expire and the deliveries are sent again).
WRITE_GRACE = 15.0
# Notification emails (HOOKWAY_NOTIFY_EMAIL): taken this many at a time, each leased for
# EMAIL_LEASE seconds while it is sent, with EMAIL_TIMEOUT for the whole sending.
EMAIL_BATCH = 20
EMAIL_LEASE = 120.0
EMAIL_TIMEOUT = 60.0

TaskState = Literal["running", "restarting", "stopped"]


def new_worker_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(3)}"


def _backoff(failures: int) -> float:
    # The doubling stops long after the cap is reached: 2 ** 1024 no longer fits a float
    # (OverflowError), and a database down for an hour and a half fails that often.
    doublings = min(max(0, failures - 1), 32)
    base = min(BACKOFF_MAX, BACKOFF_FIRST * 2.0**doublings)
    return base * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security


@dataclass
class DispatcherConfig:
    concurrency: int = 200
    lease_seconds: float = 60.0
    poll_interval: float = 1.0
    shutdown_grace: float = 10.0
    retry_schedule: Sequence[float] = (0, 5)
    until_empty: bool = False
    listen_postgres: bool = True
    watch_sqlite: bool = True
    record_batch: int = 200
    # Warn when the loop is blocked this long (hookway.loopmonitor); 0: no watch.
    loop_lag_warn_ms: float = 200.0
    # Celery destinations' app, "module:attribute"; None: Celery's current app.
    celery_app: str | None = None
    # Where destination state changes are emailed (HOOKWAY_NOTIFY_EMAIL); () for nowhere.
    notify_email: Sequence[str] = ()
    # Retention (hookway.dispatch.retention): 0 days prunes nothing. Off unless
    # configured, so a dispatcher built in code never deletes what it wasn't told to.
    retention_days: int = 0
    dead_retention_days: int = 90
    prune_batch: int = 500
    prune_interval: float = 600.0

    @classmethod
    def from_settings(cls, **overrides: object) -> DispatcherConfig:
        s = conf.get()
        config = cls(
            concurrency=s.dispatcher_concurrency,
            lease_seconds=s.lease_seconds,
            poll_interval=s.poll_interval,
            shutdown_grace=s.shutdown_grace,
            retry_schedule=s.retry_schedule,
            loop_lag_warn_ms=s.loop_lag_warn_ms,
            celery_app=s.celery_app,
            notify_email=tuple(s.notify_email),
            retention_days=s.retention_days,
            dead_retention_days=s.dead_retention_days,
            prune_batch=s.prune_batch,
            prune_interval=s.prune_interval,
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(config, key, value)
        return config


@dataclass
class Stats:
    claimed: int = 0
    succeeded: int = 0
    retried: int = 0
    dead: int = 0
    released: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass
class TaskHealth:
    """One supervised task's state, for readiness and logs."""

    state: TaskState = "running"
    failures: int = 0
    last_error: str = ""


class Dispatcher:
    def __init__(
        self,
        config: DispatcherConfig,
        *,
        client: Client | None = None,
        guard: Guard | None = None,
        worker_id: str | None = None,
    ):
        self.config = config
        self.worker_id = worker_id or new_worker_id()
        self.guard = guard or Guard.from_settings()
        self._client = client
        self._owns_client = client is None
        self.stats = Stats()
        self.tasks: dict[str, TaskHealth] = {}
        self.running = False
        self._stopping = asyncio.Event()
        self._claiming_done = asyncio.Event()
        self._wake = asyncio.Event()
        self._inflight: dict[str, asyncio.Task[None]] = {}
        # Deliveries that ran out of attempts, until their result is written (and said).
        self._dying: dict[str, OutboundDelivery] = {}
        # What was in flight since the loop-lag watch last looked (it names them).
        self._seen: dict[str, OutboundDelivery] = {}
        self._transports: Transports | None = None
        self._busy: dict[int, int] = {}
        # Finished attempts not yet written, oldest first; the record task writes them in
        # batches and removes them only once the write committed.
        self._outbox: list[Settlement] = []
        self._outbox_changed = asyncio.Event()
        self._give_up_writes = asyncio.Event()
        self._cancelled: list[str] = []
        self._progress = time.monotonic()
        # Destination names by id, for the metrics' labels (settlements carry the id).
        self._names: dict[int, str] = {}

    # -- public -----------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the dispatcher to stop: no new claims; in-flight sends get the grace period."""
        self._stopping.set()
        self._wake.set()

    @property
    def healthy(self) -> bool:
        """True while every task runs (none is waiting to restart after a failure) and
        the claim loop made progress recently."""
        stale_after = max(30.0, 3 * self.config.poll_interval)
        return (
            self.running
            and all(t.state == "running" for t in self.tasks.values())
            and time.monotonic() - self._progress < stale_after
        )

    def held(self) -> set[str]:
        """Deliveries this dispatcher holds: sending, or waiting for their result to be
        written."""
        return set(self._inflight) | {s.result.delivery_id for s in self._outbox}

    async def run(self) -> Stats:
        """Run until ``stop()`` (or, with ``until_empty``, until nothing is pending), then
        shut down gracefully; returns the counts of what it did.

        Cancelling ``run()`` shuts down the same way (claims stop, in-flight sends get
        the grace period, results are recorded, the rest released) before the
        cancellation propagates; a second cancellation skips the grace period."""
        client = self._client or make_client(max_connections=self.config.concurrency)
        self._client = client
        self._transports = Transports(
            client,
            self.guard,
            gate.start_in_thread,
            wake=self._wake.set,
            celery_app=self.config.celery_app,
        )
        wakeup.subscribe(self._wake)
        self.running = True
        supervised = {
            "claim": self._claim_loop,
            "record": self._record_loop,
            "renew": self._renew_loop,
        }
        if self.config.retention_days > 0:
            supervised["prune"] = self._prune_loop
        if self.config.loop_lag_warn_ms > 0:
            supervised["looplag"] = self._loop_lag_loop
        if self.config.notify_email:
            supervised["email"] = self._email_loop
        if self.config.listen_postgres and _is_postgres():
            supervised["listen"] = self._listen_loop
        elif self.config.watch_sqlite and not _is_postgres():
            supervised["watch"] = self._watch_sqlite_loop
        tasks = {
            name: asyncio.create_task(self._supervise(name, loop), name=f"hookway-{name}")
            for name, loop in supervised.items()
        }
        logger.info(
            "dispatcher %s running (concurrency %d)", self.worker_id, self.config.concurrency
        )
        cancelled = False
        try:
            await self._claiming_done.wait()
        except asyncio.CancelledError:
            cancelled = True
        self.stop()
        shutdown = asyncio.create_task(self._shutdown(tasks), name="hookway-shutdown")
        while not shutdown.done():
            try:
                await asyncio.shield(shutdown)
            except asyncio.CancelledError:
                # Cancelled again while shutting down: stop waiting for in-flight sends.
                cancelled = True
                for task in list(self._inflight.values()):
                    task.cancel()
        self.running = False
        wakeup.unsubscribe(self._wake)
        if self._owns_client:
            await client.aclose()
        logger.info(
            "dispatcher %s stopped: %d delivered, %d to retry, %d dead, %d released",
            self.worker_id,
            self.stats.succeeded,
            self.stats.retried,
            self.stats.dead,
            self.stats.released,
        )
        shutdown.result()  # a failure of the shutdown itself is the caller's to see
        if cancelled:
            raise asyncio.CancelledError
        return self.stats

    # -- supervision ------------------------------------------------------------------

    async def _supervise(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Run ``loop`` until it returns; if it raises, log the traceback and run it
        again after a backoff (its state says "restarting" meanwhile)."""
        health = self.tasks.setdefault(name, TaskHealth())
        while True:
            started = time.monotonic()
            health.state = "running"
            try:
                await loop()
            except asyncio.CancelledError:
                health.state = "stopped"
                raise
            except Exception as exc:  # any failure: the owner logs it and restarts the task
                if time.monotonic() - started > HEALTHY_RUN:
                    health.failures = 0
                health.failures += 1
                health.last_error = f"{type(exc).__name__}: {exc}"
                health.state = "restarting"
                delay = _backoff(health.failures)
                logger.exception(
                    "dispatcher task %s failed (%d in a row); restarting in %.1f s",
                    name,
                    health.failures,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            health.state = "stopped"
            return

    async def _retrying(
        self,
        what: str,
        call: Callable[..., Awaitable[T]],
        *args: object,
        give_up: asyncio.Event | None = None,
    ) -> T | None:
        """``await call(*args)``, retried with backoff while it raises a database
        error; returns None if ``give_up`` is set before it succeeds."""
        failures = 0
        while True:
            try:
                return await call(*args)
            except DatabaseError as exc:
                failures += 1
                delay = _backoff(failures)
                logger.warning(
                    "dispatcher %s: %s failed (%s: %s); retrying in %.1f s",
                    self.worker_id,
                    what,
                    type(exc).__name__,
                    str(exc).strip() or "-",
                    delay,
                )
            if give_up is None:
                await asyncio.sleep(delay)
                continue
            try:
                await asyncio.wait_for(give_up.wait(), timeout=delay)
            except TimeoutError:
                continue
            return None

    # -- claiming ---------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            self._progress = time.monotonic()
            # At most CLAIM_BATCH per claim: starting a thousand sends in one loop
            # iteration (after a thousand-row claim) stalled the loop for ~400 ms in
            # bench/results/delivery.md; batches keep each step short, and the next
            # claim follows at once while the previous batch is sending.
            free = min(self.config.concurrency - len(self._inflight), CLAIM_BATCH)
            claimed: list[OutboundDelivery] = []
            if free > 0:
                claimed = (
                    await self._retrying(
                        "claiming",
                        gate.aclaim_due,
                        self.worker_id,
                        free,
                        self.config.lease_seconds,
                        self._busy_now(),
                        self.held(),
                        give_up=self._stopping,
                    )
                    or []
                )
                for n, delivery in enumerate(claimed):
                    if n and n % START_CHUNK == 0:
                        await asyncio.sleep(0)
                    self._start(delivery)
                if len(claimed) == free:
                    continue  # there may be more due right now
            if self.config.until_empty and not claimed and not self._inflight:
                await self._flushed()
                pending = await self._retrying(
                    "counting pending deliveries", gate.apending_count, give_up=self._stopping
                )
                if pending == 0:
                    break
            timeout = self.config.poll_interval
            if not claimed and not self._inflight:
                due = await self._retrying(
                    "finding the next due time", gate.aseconds_until_due, give_up=self._stopping
                )
                if due is not None:
                    timeout = min(timeout, due)
            await self._sleep(timeout)
        self._claiming_done.set()

    async def _sleep(self, seconds: float) -> None:
        """Wait for new work, a freed slot, a stop request, or the timeout."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        if not self._stopping.is_set():
            self._wake.clear()

    def _busy_now(self) -> dict[int, int]:
        """Per destination: deliveries in flight, plus calls still running on threads
        after their attempts timed out (a thread can't be stopped; it still holds one
        of the destination's concurrency slots until it ends)."""
        busy = dict(self._busy)
        if self._transports is not None:
            for dest, n in self._transports.lingering().items():
                busy[dest] = busy.get(dest, 0) + n
        return busy

    def _start(self, delivery: OutboundDelivery) -> None:
        self._seen[delivery.delivery_id] = delivery
        self._names[delivery.destination_id] = delivery.destination_name
        self.stats.claimed += 1
        self._busy[delivery.destination_id] = self._busy.get(delivery.destination_id, 0) + 1
        task = asyncio.create_task(
            self._deliver(delivery), name=f"hookway-send-{delivery.delivery_id}"
        )
        self._inflight[delivery.delivery_id] = task

    # -- sending ----------------------------------------------------------------------

    async def _deliver(self, delivery: OutboundDelivery) -> None:
        assert self._transports is not None
        try:
            try:
                if delivery.delay > 0:
                    # Its rate-limit slot (at most RATE_HORIZON away): the claim took the
                    # slot from every other dispatcher, so it goes then and not before.
                    await asyncio.sleep(delivery.delay)
                result = await self._transports.send(delivery)
            except asyncio.CancelledError:
                self._cancelled.append(delivery.delivery_id)
                raise
            except Exception as exc:  # a bug must not lose the delivery: record and retry
                logger.exception("sending %s failed unexpectedly", delivery.delivery_id)
                result = AttemptResult(
                    delivery_id=delivery.delivery_id,
                    attempt=delivery.attempt,
                    destination_id=delivery.destination_id,
                    started_at=datetime.now(UTC),
                    duration_ms=0.0,
                    outcome="retry",
                    error=f"internal error: {type(exc).__name__}: {exc}",
                    error_kind=ErrorKind.INTERNAL,
                )
            settlement = self._settle(delivery, result)
            self._outbox.append(settlement)
            self._outbox_changed.set()
            if settlement.state == DeliveryState.DEAD:
                # Said once it is written: the store keeps a delivery of a paused or
                # disabled destination pending instead (record_attempts says which).
                self._dying[delivery.delivery_id] = delivery
            else:
                _log_outcome(delivery, settlement)
        finally:
            self._inflight.pop(delivery.delivery_id, None)
            left = self._busy.get(delivery.destination_id, 1) - 1
            if left > 0:
                self._busy[delivery.destination_id] = left
            else:
                self._busy.pop(delivery.destination_id, None)
            self._wake.set()

    def _settle(self, delivery: OutboundDelivery, result: AttemptResult) -> Settlement:
        if result.outcome == "success":
            self.stats.succeeded += 1
            return Settlement(result, DeliveryState.SUCCEEDED)
        if result.outcome == "failed":
            self.stats.dead += 1
            return Settlement(result, DeliveryState.DEAD, note="permanent failure: not retried")
        if retry.is_last(delivery.attempt, delivery.max_attempts):
            self.stats.dead += 1
            return Settlement(
                result,
                DeliveryState.DEAD,
                note=f"gave up after {delivery.attempt} attempts (max_attempts "
                f"{delivery.max_attempts})",
            )
        self.stats.retried += 1
        delay = retry.delay_after(delivery.attempt, self.config.retry_schedule, result.retry_after)
        return Settlement(result, DeliveryState.PENDING, retry_in=delay)

    # -- recording --------------------------------------------------------------------

    async def _record_loop(self) -> None:
        """Write results in batches: one transaction (one fsync) per batch. Results leave
        the outbox only once written, so a failed write (or a restart of this task)
        loses none; their leases are renewed meanwhile, so retrying is safe."""
        while True:
            if not self._outbox:
                if self._claiming_done.is_set() and not self._inflight:
                    return
                self._outbox_changed.clear()
                await self._outbox_changed.wait()
                continue
            batch = self._outbox[: self.config.record_batch]
            written = await self._retrying(
                "recording attempts",
                _write_batch,
                self.worker_id,
                batch,
                give_up=self._give_up_writes,
            )
            if written is None:
                return  # shutting down and the database still fails: see _shutdown
            self._count(batch, written)
            for settlement in batch:
                dying = self._dying.pop(settlement.result.delivery_id, None)
                if dying is not None:
                    _log_outcome(
                        dying, settlement, kept_pending=settlement.result.delivery_id in written
                    )
            del self._outbox[: len(batch)]
            self._outbox_changed.set()

    def _count(self, batch: list[Settlement], kept_pending: set[str]) -> None:
        """Count written attempts (hookway.metrics): once written, so a write retried
        is counted once and an attempt lost with its process is not."""
        for s in batch:
            r = s.result
            if s.state == DeliveryState.SUCCEEDED:
                outcome = "succeeded"
            elif s.state == DeliveryState.DEAD and r.delivery_id not in kept_pending:
                outcome = "dead"
            else:
                outcome = "retry"
            name = self._names.get(r.destination_id, str(r.destination_id))
            metrics.attempt_recorded(name, r.duration_ms / 1000, outcome)

    async def _flushed(self) -> None:
        """Wait until every finished attempt so far is written."""
        while self._outbox:
            self._outbox_changed.clear()
            await self._outbox_changed.wait()

    # -- leases -----------------------------------------------------------------------

    async def _renew_loop(self) -> None:
        """Extend the leases of everything this dispatcher holds, and record its
        heartbeat, every third of ``lease_seconds``."""
        interval = self.config.lease_seconds / 3
        while not self._claiming_done.is_set() or self._inflight or self._outbox:
            await self._retrying(
                "renewing leases",
                gate.arenew_leases,
                self.worker_id,
                self.held(),
                self.config.lease_seconds,
            )
            try:
                await asyncio.wait_for(self._stopped_and_idle(), timeout=interval)
            except TimeoutError:
                continue

    async def _stopped_and_idle(self) -> None:
        await self._claiming_done.wait()
        while self._inflight or self._outbox:
            self._outbox_changed.clear()
            await self._outbox_changed.wait()

    # -- stopping ---------------------------------------------------------------------

    async def _shutdown(self, tasks: dict[str, asyncio.Task[None]]) -> None:
        """Stop claiming, give in-flight sends the grace period, record every result,
        release what was cut off, and stop the other tasks."""
        claim = tasks["claim"]
        if not claim.done():
            # The claim loop sees the stop at its next step; a claim in progress
            # finishes (its deliveries are then in flight, and drained below).
            await asyncio.wait([claim])
        self._claiming_done.set()
        if self._inflight:
            pending = set(self._inflight.values())
            logger.info(
                "waiting up to %.1f s for %d in-flight deliveries",
                self.config.shutdown_grace,
                len(pending),
            )
            _, still = await asyncio.wait(pending, timeout=self.config.shutdown_grace)
            for task in still:
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)
        self._outbox_changed.set()
        # Writing results and releasing get WRITE_GRACE against a failing database.
        timer = asyncio.get_running_loop().call_later(WRITE_GRACE, self._give_up_writes.set)
        try:
            # The record task returns once everything is written, or once writes are
            # given up; one that keeps crashing is cut off after the same grace.
            record = tasks["record"]
            await asyncio.wait([record], timeout=WRITE_GRACE + BACKOFF_MAX)
            record.cancel()
            if self._outbox:
                logger.error(
                    "dispatcher %s: %d attempt results could not be written before "
                    "shutdown; their deliveries will be sent again when their leases expire",
                    self.worker_id,
                    len(self._outbox),
                )
            if self._cancelled:
                released = await self._retrying(
                    "releasing deliveries",
                    gate.arelease,
                    self.worker_id,
                    list(self._cancelled),
                    SHUTDOWN_REASON,
                    give_up=self._give_up_writes,
                )
                self.stats.released += released or 0
                self._cancelled.clear()
        finally:
            timer.cancel()
        for name, task in tasks.items():
            if name != "record" and not task.done():
                task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)

    # -- notification emails ----------------------------------------------------------

    async def _email_loop(self) -> None:
        """Email each destination state change due one (HOOKWAY_NOTIFY_EMAIL) once: a
        change is leased to this dispatcher while it is sent, so of several dispatchers
        one sends it; one that fails to send is tried again once its lease is over."""
        while not self._stopping.is_set():
            notices = (
                await self._retrying(
                    "claiming notification emails",
                    gate.aclaim_emails,
                    self.worker_id,
                    EMAIL_BATCH,
                    EMAIL_LEASE,
                    give_up=self._stopping,
                )
                or []
            )
            sent: list[int] = []
            for notice in notices:
                subject, body = notification_email(notice)
                try:
                    async with asyncio.timeout(EMAIL_TIMEOUT):
                        await gate.asend_mail(subject, body, list(self.config.notify_email))
                except Exception:  # SMTP or the backend: logged, tried again after the lease
                    logger.exception(
                        "emailing the change of destination %s (%s) failed; trying again in %.0f s",
                        notice.destination,
                        notice.change,
                        EMAIL_LEASE,
                    )
                    continue
                sent.append(notice.id)
            if sent:
                await self._retrying("recording sent emails", gate.amark_emailed, sent)
            if len(notices) == EMAIL_BATCH:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.config.poll_interval)

    # -- retention --------------------------------------------------------------------

    async def _prune_loop(self) -> None:
        """Prune what the retention settings let go, at start and every
        ``prune_interval`` seconds. Safe with several dispatchers: on PostgreSQL each
        batch skips events another is pruning; on SQLite the write lock takes turns."""
        policy = gate.RetentionPolicy(self.config.retention_days, self.config.dead_retention_days)
        while not self._stopping.is_set():
            pruned = await self._retrying(
                "pruning old events",
                functools.partial(retention.prune, stop=self._stopping),
                policy,
                self.config.prune_batch,
                give_up=self._stopping,
            )
            if pruned is not None and pruned.events:
                logger.info(
                    "dispatcher %s pruned %s older than %d days",
                    self.worker_id,
                    retention.describe(pruned),
                    policy.days,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.config.prune_interval)

    # -- loop lag -----------------------------------------------------------------------

    async def _loop_lag_loop(self) -> None:
        """Log a warning whenever this loop was blocked past ``loop_lag_warn_ms``, naming
        the deliveries in flight meanwhile (hookway.loopmonitor)."""
        monitor = LoopLagMonitor(
            WATCH_INTERVAL,
            keep=1000,
            warn_after=self.config.loop_lag_warn_ms / 1000,
            blame=self._in_flight_since_last_look,
        )
        await monitor.run(self._claiming_done)

    def _in_flight_since_last_look(self) -> str:
        seen, self._seen = self._seen, {}
        for delivery_id in self._inflight:
            if delivery_id in seen:
                self._seen[delivery_id] = seen[delivery_id]
        # Handlers first: a blocking call on the loop is most likely theirs.
        ranked = sorted(seen.values(), key=lambda d: d.kind != "handler")
        names = [
            f"{d.destination_name} ({d.kind}{' ' + d.handler if d.handler else ''}, "
            f"delivery {d.delivery_id})"
            for d in ranked[:5]
        ]
        if len(seen) > 5:
            names.append(f"and {len(seen) - 5} more deliveries")
        return ", ".join(names)

    # -- SQLite: watch for other processes' commits ----------------------------------

    async def _watch_sqlite_loop(self) -> None:
        """Wake when another process commits (ingest in a web process). SQLite has no
        LISTEN/NOTIFY, but ``PRAGMA data_version`` changes exactly then, and reading it
        is a trivial query; the poll interval stays the backstop."""
        last: int | None = None
        failures = 0
        while not self._stopping.is_set():
            try:
                version: int | None = await gate.adata_version()
                failures = 0
            except DatabaseError as exc:
                failures += 1
                delay = _backoff(failures)
                logger.warning(
                    "watching the SQLite database failed (%s); polling, retry in %.1f s",
                    exc,
                    delay,
                )
                version = None
                await asyncio.sleep(delay)
            if version is not None and last is not None and version != last:
                self._wake.set()
            last = version
            await asyncio.sleep(SQLITE_WATCH_INTERVAL)

    # -- PostgreSQL LISTEN ------------------------------------------------------------

    async def _listen_loop(self) -> None:
        """Wake on NOTIFY from ingest in any process; reconnect with backoff on failure."""
        import psycopg

        failures = 0
        while not self._stopping.is_set():
            try:
                conn = await psycopg.AsyncConnection.connect(_pg_conninfo(), autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    failures = 0
                    # Anything committed while the connection was down woke nobody.
                    self._wake.set()
                    async for _ in conn.notifies():
                        self._wake.set()
            except psycopg.Error as exc:
                failures += 1
                delay = _backoff(failures)
                logger.warning(
                    "LISTEN connection lost (%s); polling until it is back (retry in %.1f s)",
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)


def notification_email(notice: gate.Notice) -> tuple[str, str]:
    """The subject and body of the email telling of one destination state change."""
    what = notice.change.replace("_", " ")
    subject = f"[Hookway] {notice.destination}: {what}"
    body = "\n".join(
        [
            f"Destination {notice.destination}: {what} ({notice.from_state} -> "
            f"{notice.to_state}) at {notice.at:%Y-%m-%d %H:%M:%S} UTC.",
            "",
            f"Why: {notice.reason}",
            "",
            json.dumps(notice.payload(), indent=2),
            "",
        ]
    )
    return subject, body


def _log_outcome(
    delivery: OutboundDelivery, settlement: Settlement, *, kept_pending: bool = False
) -> None:
    """One structured line per failed attempt (WARNING), dead delivery and disabled
    destination (ERROR), so failures are seen without opening the admin."""
    r = settlement.result
    if r.outcome == "success":
        return
    fields: dict[str, object] = {
        "event": "attempt_failed",
        "event_id": delivery.event_id,
        "delivery_id": delivery.delivery_id,
        "destination": delivery.destination_name,
        "attempt": r.attempt,
        "max_attempts": delivery.max_attempts,
        "outcome": r.outcome,
        "error_kind": r.error_kind.value,
        "status_code": r.status_code,
        "error": r.error[:300],
        "duration_ms": round(r.duration_ms, 1),
    }
    if settlement.state == DeliveryState.PENDING and settlement.retry_in is not None:
        fields["retry_in_s"] = round(settlement.retry_in, 1)
        fields["next_attempt_at"] = (
            datetime.now(UTC) + timedelta(seconds=settlement.retry_in)
        ).isoformat(timespec="seconds")
        logger.warning(json.dumps(fields, ensure_ascii=True))
    elif kept_pending:
        # Out of attempts while its destination is paused or disabled: it waits.
        fields["event"] = "delivery_waiting"
        fields["reason"] = "destination paused or disabled: kept pending until it is back"
        logger.warning(json.dumps(fields, ensure_ascii=True))
    else:
        fields["event"] = "delivery_dead"
        fields["reason"] = settlement.note
        logger.error(json.dumps(fields, ensure_ascii=True))
    if r.disable_destination:
        logger.error(
            json.dumps(
                {
                    "event": "destination_disabled",
                    "destination": delivery.destination_name,
                    "reason": "the receiver answered 410 Gone",
                    "delivery_id": delivery.delivery_id,
                },
                ensure_ascii=True,
            )
        )


async def _write_batch(worker: str, batch: list[Settlement]) -> set[str]:
    """Record ``batch``; the deliveries kept pending rather than dead (record_attempts)."""
    return await gate.arecord_attempts(worker, batch)


def _is_postgres() -> bool:
    from django.db import connections

    return bool(connections["default"].vendor == "postgresql")


def _pg_conninfo() -> str:
    from django.db import connections
    from psycopg.conninfo import make_conninfo

    # The connection's own settings: under the test runner they name the test database.
    db = connections["default"].settings_dict
    params: dict[str, Any] = {"dbname": db["NAME"]}
    for key, name in (
        ("USER", "user"),
        ("PASSWORD", "password"),
        ("HOST", "host"),
        ("PORT", "port"),
    ):
        if db.get(key):
            params[name] = db[key]
    return make_conninfo(**params)
