"""/api/v1/stats: what Hookway holds and how it is doing, in one answer.

Its parts are independent queries, run as concurrent tasks under one overall timeout
(HOOKWAY_STATS_TIMEOUT): a part that misses it comes back ``null`` and is named in
``timed_out``, and the rest still answer, so a dashboard polling a busy database gets a
partial answer in bounded time rather than a 500 or a hung request.

Concurrent on the event loop, not in the database: Django's async ORM runs every query
of a request on that request's one thread (``thread_sensitive``), so the parts' queries
run one after the other. A cut-off part's task is cancelled at once, but a query already
running in the thread cannot be: hookway.gate interrupts it (SQLite's ``interrupt()``,
PostgreSQL's cancel request), so the thread is free again within moments instead of
running the query to its end; parts not yet started never run."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema
from pydantic import Field

from hookway import conf, gate
from hookway.store import stats as store_stats

router = Router(tags=["stats"])
logger = logging.getLogger("hookway.api")


class DeliveryCounts(Schema):
    pending: int = Field(description="Waiting for their first attempt.")
    failing: int = Field(description="Waiting for a retry.")
    delivered: int
    dead: int


class SourceIngest(Schema):
    source: str = Field(description="The source's slug.")
    last_hour: int = Field(description="Events received in the last hour.")
    last_day: int = Field(description="Events received in the last 24 hours.")


class SuccessRate(Schema):
    attempts: int = Field(description="Attempts that ended in the window.")
    succeeded: int
    success_rate: float | None = Field(description="succeeded / attempts; null with none.")


class DestinationHealth(Schema):
    destination: str = Field(description="The destination's name.")
    last_hour: SuccessRate
    last_day: SuccessRate


class Stats(Schema):
    deliveries: DeliveryCounts | None = Field(description="Deliveries by state (all time).")
    sources: list[SourceIngest] | None = Field(description="Every source, by slug.")
    destinations: list[DestinationHealth] | None = Field(
        description="Destinations with attempts in the last day, by name."
    )
    oldest_pending_seconds: float | None = Field(
        description="Age of the oldest delivery not yet delivered nor dead; null if none."
    )
    timed_out: list[str] = Field(
        description="Parts that missed HOOKWAY_STATS_TIMEOUT: their value is null."
    )
    generated_at: datetime


async def delivery_counts(now: datetime) -> DeliveryCounts:
    counts = await store_stats.adelivery_counts()
    assert counts.delivered is not None
    return DeliveryCounts(
        pending=counts.pending,
        failing=counts.failing,
        delivered=counts.delivered,
        dead=counts.dead,
    )


async def source_ingest(now: datetime) -> list[SourceIngest]:
    return [
        SourceIngest(source=row.source, last_hour=row.last_hour, last_day=row.last_day)
        for row in await store_stats.asource_ingest(now)
    ]


def _rate(rate: store_stats.Rate) -> SuccessRate:
    return SuccessRate(
        attempts=rate.attempts, succeeded=rate.succeeded, success_rate=rate.success_rate
    )


async def destination_health(now: datetime) -> list[DestinationHealth]:
    return [
        DestinationHealth(
            destination=row.destination,
            last_hour=_rate(row.last_hour),
            last_day=_rate(row.last_day),
        )
        for row in await store_stats.adestination_health(now)
    ]


async def oldest_pending_seconds(now: datetime) -> float | None:
    return await store_stats.aoldest_pending(now)


# How long a cut-off part may take to end once its query is interrupted.
INTERRUPT_GRACE = 0.5
_stragglers: set[asyncio.Task[Any]] = set()


def _forget(task: asyncio.Task[Any]) -> None:
    _stragglers.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.warning("a timed-out stats query ended with %r", task.exception())


# The parts, by the name each has in the answer (and in ``timed_out``).
PARTS: dict[str, Callable[[datetime], Coroutine[Any, Any, Any]]] = {
    "deliveries": delivery_counts,
    "sources": source_ingest,
    "destinations": destination_health,
    "oldest_pending_seconds": oldest_pending_seconds,
}


Part = Callable[[datetime], Coroutine[Any, Any, Any]]


async def gather_parts(
    seconds: float, parts: Mapping[str, Part] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Run every part (``parts``, else PARTS; each called with the same now)
    concurrently for at most ``seconds`` in all. Returns each part's value (None for
    one that timed out) and the names of those that did, in their order. A part that
    fails raises, as any bug in a view would. (The console's overview runs its own
    parts through this too.)"""
    if parts is None:
        parts = PARTS
    now = timezone.now()
    deadline = time.monotonic() + seconds
    # The thread the parts' queries run on, so one still running at the deadline can be
    # interrupted there (hookway.gate.ainterrupt_queries).
    handle = await gate.aquery_handle()
    tasks: dict[str, asyncio.Task[Any]] = {
        name: asyncio.create_task(part(now), name=f"hookway-stats-{name}")
        for name, part in parts.items()
    }
    remaining = max(0.0, deadline - time.monotonic())
    _, pending = await asyncio.wait(tasks.values(), timeout=remaining)
    for task in pending:
        task.cancel()
    if pending:
        await gate.ainterrupt_queries(handle)
        # asgiref waits for a cancelled call's thread to return: the interrupted query
        # raises there at once; anything slower is left to end on its own, held here.
        _, stragglers = await asyncio.wait(pending, timeout=INTERRUPT_GRACE)
        for task in stragglers:
            _stragglers.add(task)
            task.add_done_callback(_forget)
    values: dict[str, Any] = {}
    timed_out: list[str] = []
    for name, task in tasks.items():
        if task in pending:
            values[name] = None
            timed_out.append(name)
        else:
            values[name] = task.result()
    return values, timed_out


@router.get("", response=Stats, summary="Counts, ingest and delivery health, oldest backlog")
async def stats(request: HttpRequest) -> Stats:
    values, timed_out = await gather_parts(conf.get().stats_timeout)
    return Stats(**values, timed_out=timed_out, generated_at=timezone.now())
