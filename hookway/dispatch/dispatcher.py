"""The dispatcher: an asyncio loop that claims due deliveries, sends them concurrently and
records every attempt.

Shape (after Procrastinate's worker): named tasks with an owner, watched with
``asyncio.wait(FIRST_COMPLETED)``; a stop event ends claiming; in-flight sends get a grace
period, then whatever is left is released back to the queue. It never builds SQL (the
store does, through hookway.gate) and never makes HTTP calls itself (the sender does).

Concurrency is bounded globally (``concurrency``) and per destination (each
destination's ``concurrency``, enforced at claim time so nothing waits holding a lease).
New work wakes it at once: the in-process signal from ingest, PostgreSQL LISTEN/NOTIFY
from other processes, and a poll every ``poll_interval`` seconds as the backstop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from django.db import DatabaseError
from django.utils import timezone

from hookway import gate
from hookway.dispatch import retry, wakeup
from hookway.models import DeliveryState
from hookway.send import sender
from hookway.send.client import make_client
from hookway.send.guard import Guard
from hookway.store.deliveries import Settlement
from hookway.store.events import NOTIFY_CHANNEL

logger = logging.getLogger("hookway.dispatch")

SQLITE_WATCH_INTERVAL = 0.05
CLAIM_BATCH = 100
SHUTDOWN_REASON = "the dispatcher stopped before this attempt finished; released for retry"


def new_worker_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(3)}"


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

    @classmethod
    def from_settings(cls, **overrides: object) -> DispatcherConfig:
        from django.conf import settings

        s = settings.HOOKWAY
        config = cls(
            concurrency=s.dispatcher_concurrency,
            lease_seconds=s.lease_seconds,
            poll_interval=s.poll_interval,
            shutdown_grace=s.shutdown_grace,
            retry_schedule=s.retry_schedule,
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


class Dispatcher:
    def __init__(
        self,
        config: DispatcherConfig,
        *,
        client: httpx.AsyncClient | None = None,
        guard: Guard | None = None,
        worker_id: str | None = None,
    ):
        self.config = config
        self.worker_id = worker_id or new_worker_id()
        self.guard = guard or Guard.from_settings()
        self._client = client
        self._owns_client = client is None
        self.stats = Stats()
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._busy: dict[int, int] = {}
        self._results: asyncio.Queue[Settlement | None] = asyncio.Queue()
        self._cancelled: list[str] = []

    # -- public -----------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the dispatcher to stop: no new claims; in-flight sends get the grace period."""
        self._stopping.set()

    async def run(self) -> Stats:
        """Run until ``stop()`` (or, with ``until_empty``, until nothing is pending).
        Returns the counts of what it did."""
        client = self._client or make_client(max_connections=self.config.concurrency)
        self._client = client
        listener = wakeup.subscribe()
        tasks = {
            asyncio.create_task(self._claim_loop(listener), name="hookway-claim"),
            asyncio.create_task(self._record_loop(), name="hookway-record"),
        }
        if self.config.listen_postgres and _is_postgres():
            tasks.add(asyncio.create_task(self._listen_loop(), name="hookway-listen"))
        elif self.config.watch_sqlite and not _is_postgres():
            tasks.add(asyncio.create_task(self._watch_sqlite_loop(), name="hookway-listen"))
        logger.info(
            "dispatcher %s started (concurrency %d)", self.worker_id, self.config.concurrency
        )
        claim = next(t for t in tasks if t.get_name() == "hookway-claim")
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not claim and task.exception() is not None:
                    logger.error(
                        "dispatcher task %s failed", task.get_name(), exc_info=task.exception()
                    )
            self._stopping.set()
            with contextlib.suppress(Exception):
                await claim
            await self._drain()
        finally:
            await self._results.put(None)
            for task in tasks:
                if task.get_name() == "hookway-listen":
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            wakeup.unsubscribe(listener)
            if self._owns_client:
                await client.aclose()
        logger.info(
            "dispatcher %s stopped: %d succeeded, %d retried, %d dead, %d released",
            self.worker_id,
            self.stats.succeeded,
            self.stats.retried,
            self.stats.dead,
            self.stats.released,
        )
        return self.stats

    # -- claiming ---------------------------------------------------------------------

    async def _claim_loop(self, listener: asyncio.Event) -> None:
        while not self._stopping.is_set():
            # At most CLAIM_BATCH per claim: starting a thousand sends in one loop
            # iteration (after a thousand-row claim) stalled the loop for ~400 ms in
            # bench/results/delivery.md; batches keep each step short, and the next
            # claim follows at once while the previous batch is sending.
            free = min(self.config.concurrency - len(self._inflight), CLAIM_BATCH)
            claimed: list[sender.OutboundDelivery] = []
            if free > 0:
                try:
                    claimed = await gate.aclaim_due(
                        self.worker_id, free, self.config.lease_seconds, dict(self._busy)
                    )
                except DatabaseError as exc:
                    logger.warning("claiming failed, retrying: %s", exc)
                    await self._sleep(min(self.config.poll_interval, 1.0), listener)
                    continue
                for delivery in claimed:
                    self._start(delivery)
                if len(claimed) == free:
                    continue  # there may be more due right now
            if self.config.until_empty and not claimed and not self._inflight:
                await self._results.join()
                if await gate.apending_count() == 0:
                    return
            timeout = self.config.poll_interval
            if not claimed and not self._inflight:
                due = await gate.anext_due_at()
                if due is not None:
                    timeout = min(timeout, max(0.0, (due - timezone.now()).total_seconds()))
            await self._sleep(timeout, listener)

    async def _sleep(self, seconds: float, listener: asyncio.Event) -> None:
        """Wait for new work, a freed slot, a stop request, or the timeout."""
        waiters = [
            asyncio.create_task(e.wait())
            for e in (listener, self._wake, self._slot_freed, self._stopping)
        ]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            listener.clear()
            self._wake.clear()
            self._slot_freed.clear()

    def _start(self, delivery: sender.OutboundDelivery) -> None:
        self.stats.claimed += 1
        self._busy[delivery.destination_id] = self._busy.get(delivery.destination_id, 0) + 1
        task = asyncio.create_task(
            self._deliver(delivery), name=f"hookway-send-{delivery.delivery_id}"
        )
        self._inflight[delivery.delivery_id] = task

    # -- sending ----------------------------------------------------------------------

    async def _deliver(self, delivery: sender.OutboundDelivery) -> None:
        assert self._client is not None
        try:
            try:
                result = await sender.send(self._client, self.guard, delivery)
            except asyncio.CancelledError:
                self._cancelled.append(delivery.delivery_id)
                raise
            except Exception as exc:  # a bug must not lose the delivery: record and retry
                logger.exception("sending %s failed unexpectedly", delivery.delivery_id)
                result = sender.AttemptResult(
                    delivery_id=delivery.delivery_id,
                    attempt=delivery.attempt,
                    destination_id=delivery.destination_id,
                    started_at=timezone.now(),
                    duration_ms=0.0,
                    outcome="retry",
                    error=f"internal error: {type(exc).__name__}: {exc}",
                )
            await self._results.put(self._settle(delivery, result))
        finally:
            self._inflight.pop(delivery.delivery_id, None)
            left = self._busy.get(delivery.destination_id, 1) - 1
            if left > 0:
                self._busy[delivery.destination_id] = left
            else:
                self._busy.pop(delivery.destination_id, None)
            self._slot_freed.set()

    def _settle(
        self, delivery: sender.OutboundDelivery, result: sender.AttemptResult
    ) -> Settlement:
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
                note=f"gave up after {delivery.attempt} attempts (max_attempts)",
            )
        self.stats.retried += 1
        delay = retry.delay_after(delivery.attempt, self.config.retry_schedule, result.retry_after)
        return Settlement(
            result, DeliveryState.PENDING, next_attempt_at=timezone.now() + timedelta(seconds=delay)
        )

    # -- recording --------------------------------------------------------------------

    async def _record_loop(self) -> None:
        """Write results in batches: one transaction (one fsync) per batch."""
        finished = False
        while not finished:
            first = await self._results.get()
            batch: list[Settlement] = []
            taken = 1
            if first is None:
                finished = True
            else:
                batch.append(first)
            while len(batch) < self.config.record_batch and not self._results.empty():
                item = self._results.get_nowait()
                taken += 1
                if item is None:
                    finished = True
                else:
                    batch.append(item)
            while batch:
                try:
                    await gate.arecord_attempts(self.worker_id, batch)
                    break
                except Exception:
                    # Keep the results: the leases still hold these deliveries, so
                    # retrying the write is safe; giving up would only let them expire.
                    logger.exception("recording %d attempts failed; retrying", len(batch))
                    await asyncio.sleep(0.5)
            for _ in range(taken):
                self._results.task_done()

    # -- stopping ---------------------------------------------------------------------

    async def _drain(self) -> None:
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
        await self._results.join()
        if self._cancelled:
            released = await gate.arelease(self.worker_id, list(self._cancelled), SHUTDOWN_REASON)
            self.stats.released += released
            self._cancelled.clear()

    # -- SQLite: watch for other processes' commits ----------------------------------

    async def _watch_sqlite_loop(self) -> None:
        """Wake when another process commits (ingest in a web process). SQLite has no
        LISTEN/NOTIFY, but ``PRAGMA data_version`` changes exactly then, and reading it
        is a trivial query; the poll interval stays the backstop."""
        last: int | None = None
        while not self._stopping.is_set():
            try:
                version = await gate.adata_version()
            except DatabaseError as exc:
                logger.warning("watching the SQLite database failed (%s); polling", exc)
                version = None
            if version is not None and last is not None and version != last:
                self._wake.set()
            last = version
            await asyncio.sleep(SQLITE_WATCH_INTERVAL)

    # -- PostgreSQL LISTEN ------------------------------------------------------------

    async def _listen_loop(self) -> None:
        """Wake on NOTIFY from ingest in any process; reconnect with backoff on failure."""
        import psycopg

        backoff = 0.5
        while not self._stopping.is_set():
            try:
                conn = await psycopg.AsyncConnection.connect(_pg_conninfo(), autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    backoff = 0.5
                    async for _ in conn.notifies():
                        self._wake.set()
            except psycopg.Error as exc:
                logger.warning("LISTEN connection lost (%s); polling until it is back", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)


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
