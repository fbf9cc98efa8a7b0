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
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Min, Q
from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema
from pydantic import Field

from hookway import conf, gate
from hookway.api.filters import ApiState
from hookway.models import Attempt, AttemptOutcome, Delivery, DeliveryState, Event, Source

router = Router(tags=["stats"])
logger = logging.getLogger("hookway.api")

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


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
    counts = dict.fromkeys(ApiState, 0)
    rows = (
        Delivery.objects.order_by()  # no default ordering in the GROUP BY
        .values("state")
        .annotate(total=Count("id"), tried=Count("id", filter=Q(attempts__gt=0)))
    )
    async for row in rows:
        if row["state"] == DeliveryState.PENDING:
            counts[ApiState.PENDING] += row["total"] - row["tried"]
            counts[ApiState.FAILING] += row["tried"]
        elif row["state"] == DeliveryState.SUCCEEDED:
            counts[ApiState.DELIVERED] += row["total"]
        elif row["state"] == DeliveryState.DEAD:
            counts[ApiState.DEAD] += row["total"]
    return DeliveryCounts(**{state.value: n for state, n in counts.items()})


async def source_ingest(now: datetime) -> list[SourceIngest]:
    hour_ago, day_ago = now - HOUR, now - DAY
    counts: dict[int, tuple[int, int]] = {}
    rows = (
        Event.objects.filter(received_at__gte=day_ago)
        .order_by()
        .values("source_id")
        .annotate(last_day=Count("id"), last_hour=Count("id", filter=Q(received_at__gte=hour_ago)))
    )
    async for row in rows:
        counts[row["source_id"]] = (row["last_hour"], row["last_day"])
    return [
        SourceIngest(
            source=slug, last_hour=counts.get(pk, (0, 0))[0], last_day=counts.get(pk, (0, 0))[1]
        )
        async for pk, slug in Source.objects.order_by("slug").values_list("pk", "slug")
    ]


def _rate(attempts: int, succeeded: int) -> SuccessRate:
    return SuccessRate(
        attempts=attempts,
        succeeded=succeeded,
        success_rate=round(succeeded / attempts, 4) if attempts else None,
    )


async def destination_health(now: datetime) -> list[DestinationHealth]:
    hour_ago, day_ago = now - HOUR, now - DAY
    ok = Q(outcome=AttemptOutcome.SUCCESS)
    recent = Q(started_at__gte=hour_ago)
    rows = (
        Attempt.objects.filter(started_at__gte=day_ago)
        .exclude(outcome=AttemptOutcome.IN_FLIGHT)
        .order_by("delivery__destination__name")
        .values("delivery__destination__name")
        .annotate(
            day=Count("id"),
            day_ok=Count("id", filter=ok),
            hour=Count("id", filter=recent),
            hour_ok=Count("id", filter=ok & recent),
        )
    )
    return [
        DestinationHealth(
            destination=row["delivery__destination__name"],
            last_hour=_rate(row["hour"], row["hour_ok"]),
            last_day=_rate(row["day"], row["day_ok"]),
        )
        async for row in rows
    ]


async def oldest_pending_seconds(now: datetime) -> float | None:
    found = await Delivery.objects.filter(state=DeliveryState.PENDING).aaggregate(
        oldest=Min("created_at")
    )
    oldest: datetime | None = found["oldest"]
    return None if oldest is None else round(max(0.0, (now - oldest).total_seconds()), 3)


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


async def gather_parts(seconds: float) -> tuple[dict[str, Any], list[str]]:
    """Run every part concurrently for at most ``seconds`` in all. Returns each
    part's value (None for one that timed out) and the names of those that did, in
    PARTS order. A part that fails raises, as any bug in a view would."""
    now = timezone.now()
    deadline = time.monotonic() + seconds
    # The thread the parts' queries run on, so one still running at the deadline can be
    # interrupted there (hookway.gate.ainterrupt_queries).
    handle = await gate.aquery_handle()
    tasks: dict[str, asyncio.Task[Any]] = {
        name: asyncio.create_task(part(now), name=f"hookway-stats-{name}")
        for name, part in PARTS.items()
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
