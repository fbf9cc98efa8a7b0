"""How Hookway is doing, as numbers: deliveries by state, the oldest backlog, events
received and attempts made per source, destination and minute. The operator API's
``/api/v1/stats`` and the console's overview read the same figures from here.

Async reads with the async ORM; each function is one or two queries, bounded by an
index range (a time window, a delivery state), never a scan of every event: the
overview must render in 300 ms with a million events stored (bench/console.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max, Min, Q
from django.db.models.functions import TruncMinute

from hookway.models import Attempt, AttemptOutcome, Delivery, DeliveryState, Event, Source

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class DeliveryCounts:
    """Deliveries by the API's state names (hookway.api.filters). ``delivered`` is None
    when it was not counted (it is most of the table: counting it reads the most)."""

    pending: int
    failing: int
    dead: int
    delivered: int | None = None


async def adelivery_counts(*, delivered: bool = True) -> DeliveryCounts:
    """Deliveries by state, all time; without ``delivered``, only those not delivered
    (an index range of the few waiting or dead rows, however many were delivered)."""
    rows = Delivery.objects.order_by()  # no default ordering in the GROUP BY
    if not delivered:
        rows = rows.filter(state__in=[DeliveryState.PENDING, DeliveryState.DEAD])
    counts = {"pending": 0, "failing": 0, "dead": 0, "delivered": 0}
    grouped = rows.values("state").annotate(
        total=Count("id"), tried=Count("id", filter=Q(attempts__gt=0))
    )
    async for row in grouped:
        if row["state"] == DeliveryState.PENDING:
            counts["pending"] += row["total"] - row["tried"]
            counts["failing"] += row["tried"]
        elif row["state"] == DeliveryState.SUCCEEDED:
            counts["delivered"] += row["total"]
        elif row["state"] == DeliveryState.DEAD:
            counts["dead"] += row["total"]
    return DeliveryCounts(
        pending=counts["pending"],
        failing=counts["failing"],
        dead=counts["dead"],
        delivered=counts["delivered"] if delivered else None,
    )


async def aoldest_pending(now: datetime) -> float | None:
    """Seconds since the oldest delivery still pending was created; None if none is."""
    found = await Delivery.objects.filter(state=DeliveryState.PENDING).aaggregate(
        oldest=Min("created_at")
    )
    oldest: datetime | None = found["oldest"]
    return None if oldest is None else round(max(0.0, (now - oldest).total_seconds()), 3)


@dataclass(frozen=True)
class SourceIngest:
    source: str
    last_hour: int
    last_day: int


async def asource_ingest(now: datetime) -> list[SourceIngest]:
    """Every source by slug, with the events it received in the last hour and day."""
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
        SourceIngest(slug, *counts.get(pk, (0, 0)))
        async for pk, slug in Source.objects.order_by("slug").values_list("pk", "slug")
    ]


@dataclass(frozen=True)
class Rate:
    """Attempts that ended in a window, and how many of them succeeded."""

    attempts: int
    succeeded: int

    @property
    def success_rate(self) -> float | None:
        return round(self.succeeded / self.attempts, 4) if self.attempts else None

    @property
    def failure_rate(self) -> float | None:
        rate = self.success_rate
        return None if rate is None else round(1 - rate, 4)


@dataclass(frozen=True)
class DestinationHealth:
    destination: str
    last_hour: Rate
    last_day: Rate


def _ended(since: datetime) -> Q:
    """Attempts started at or after ``since`` that have an outcome (an index range on
    started_at: migration 0010)."""
    return Q(started_at__gte=since) & ~Q(outcome=AttemptOutcome.IN_FLIGHT)


async def adestination_health(now: datetime) -> list[DestinationHealth]:
    """Destinations with attempts in the last day, by name, with their success rates
    over the last hour and day."""
    hour_ago, day_ago = now - HOUR, now - DAY
    ok = Q(outcome=AttemptOutcome.SUCCESS)
    recent = Q(started_at__gte=hour_ago)
    rows = (
        Attempt.objects.filter(_ended(day_ago))
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
            last_hour=Rate(row["hour"], row["hour_ok"]),
            last_day=Rate(row["day"], row["day_ok"]),
        )
        async for row in rows
    ]


@dataclass(frozen=True)
class Minute:
    """One minute of a window: events received, attempts that succeeded and failed."""

    at: datetime
    events: int = 0
    succeeded: int = 0
    failed: int = 0


@dataclass(frozen=True)
class Window:
    """The last hour, minute by minute (oldest first), and each destination's attempts
    in it (by destination id)."""

    minutes: list[Minute]
    by_destination: dict[int, Rate]

    @property
    def events(self) -> int:
        return sum(m.events for m in self.minutes)

    @property
    def attempts(self) -> Rate:
        return Rate(
            sum(m.succeeded + m.failed for m in self.minutes),
            sum(m.succeeded for m in self.minutes),
        )


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


async def alast_hour(now: datetime) -> Window:
    """Events received and attempts ended in the 60 minutes up to ``now``, per minute,
    and the attempts per destination: two grouped queries, each an index range over
    the hour (events by received_at, attempts by started_at)."""
    start = _minute(now) - timedelta(minutes=59)
    events: dict[datetime, int] = {}
    grouped_events = (
        Event.objects.filter(received_at__gte=start)
        .order_by()
        .annotate(minute=TruncMinute("received_at"))
        .values("minute")
        .annotate(n=Count("id"))
    )
    async for row in grouped_events:
        events[_minute(row["minute"])] = row["n"]
    ok = Q(outcome=AttemptOutcome.SUCCESS)
    outcomes: dict[datetime, tuple[int, int]] = {}
    per_destination: dict[int, tuple[int, int]] = {}
    grouped_attempts = (
        Attempt.objects.filter(_ended(start))
        .order_by()
        .annotate(minute=TruncMinute("started_at"))
        .values("minute", "delivery__destination_id")
        .annotate(n=Count("id"), ok=Count("id", filter=ok))
    )
    async for row in grouped_attempts:
        at = _minute(row["minute"])
        good, bad = outcomes.get(at, (0, 0))
        outcomes[at] = (good + row["ok"], bad + row["n"] - row["ok"])
        dest = row["delivery__destination_id"]
        total, succeeded = per_destination.get(dest, (0, 0))
        per_destination[dest] = (total + row["n"], succeeded + row["ok"])
    minutes = []
    for i in range(60):
        at = start + timedelta(minutes=i)
        good, bad = outcomes.get(at, (0, 0))
        minutes.append(Minute(at, events.get(at, 0), good, bad))
    return Window(minutes, {d: Rate(n, ok) for d, (n, ok) in per_destination.items()})


async def apending_by_destination() -> dict[int, int]:
    """Deliveries still pending, by destination id (an index range of pending rows)."""
    rows = (
        Delivery.objects.filter(state=DeliveryState.PENDING)
        .order_by()
        .values("destination_id")
        .annotate(n=Count("id"))
    )
    return {row["destination_id"]: row["n"] async for row in rows}


async def alast_received() -> dict[int, datetime]:
    """When each source last received an event, by source id: one index seek per
    source on (source, received_at)."""
    found: dict[int, datetime] = {}
    async for pk in Source.objects.order_by("slug").values_list("pk", flat=True):
        at = await Event.objects.filter(source_id=pk).aaggregate(last=Max("received_at"))
        if at["last"] is not None:
            found[pk] = at["last"]
    return found


@dataclass(frozen=True)
class DeadGroup:
    """Dead deliveries to one destination that failed with one error."""

    destination: str
    error: str
    count: int
    last_died_at: datetime | None
    replayed: int  # of them, already replayed


def dead_group_rows(destination: str | None = None, error: str | None = None) -> Q:
    """The dead deliveries of one group (both given) or of all (neither)."""
    q = Q(state=DeliveryState.DEAD)
    if destination is not None:
        q &= Q(destination__name=destination)
    if error is not None:
        q &= Q(last_error=error)
    return q


async def adead_groups(limit: int = 200) -> list[DeadGroup]:
    """Dead deliveries grouped by destination and last error, most first (at most
    ``limit`` groups)."""
    rows = (
        Delivery.objects.filter(dead_group_rows())
        .order_by()
        .values("destination__name", "last_error")
        .annotate(
            count=Count("id"),
            last=Max("completed_at"),
            replayed=Count("id", filter=Q(replays__isnull=False), distinct=True),
        )
        .order_by("-count", "destination__name", "last_error")[:limit]
    )
    return [
        DeadGroup(
            destination=row["destination__name"],
            error=row["last_error"],
            count=row["count"],
            last_died_at=row["last"],
            replayed=row["replayed"],
        )
        async for row in rows
    ]
