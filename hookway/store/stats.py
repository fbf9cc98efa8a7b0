"""How Hookway is doing, as numbers: deliveries by state, the oldest backlog, events
received and attempts made per source, destination and minute. The operator API's
``/api/v1/stats`` and the console's overview read the same figures from here.

Async reads with the async ORM; each function is one or two queries, bounded by an
index range (a time window, a delivery state), never a scan of every event: the
overview must render in 300 ms with a million events stored (bench/console.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import CharField, Count, Func, Max, Q
from django.db.models.sql.compiler import SQLCompiler

from hookway.models import Attempt, AttemptOutcome, Delivery, DeliveryState, Event, Source

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# Ids per IN (...) list: well under SQLite's and PostgreSQL's limits on parameters.
CHUNK = 2000


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
    # Counting columns of the (state, attempts, destination) index, not the id (which
    # is not in it: naming it would read every counted row from the table).
    grouped = rows.values("state").annotate(
        total=Count("*"), tried=Count("attempts", filter=Q(attempts__gt=0))
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


@dataclass(frozen=True)
class Backlog:
    """What is not delivered: the counts, and the pending deliveries per destination id."""

    counts: DeliveryCounts
    pending_by_destination: dict[int, int]


async def abacklog() -> Backlog:
    """DeliveryCounts without ``delivered``, and the pending deliveries by destination,
    from one scan of the (state, attempts, destination) index's pending and dead
    ranges."""
    counts = {"pending": 0, "failing": 0, "dead": 0}
    by_destination: dict[int, int] = {}
    # Grouped in the index's own order (state, attempts, destination): read from the
    # index alone, and no planner picks another index for it (one by destination and
    # state took 0.5 s at a million, reading each row's attempts from the table).
    rows = (
        Delivery.objects.filter(state__in=[DeliveryState.PENDING, DeliveryState.DEAD])
        .order_by()
        .values_list("state", "attempts", "destination_id")
        .annotate(n=Count("*"))
    )
    async for state, attempts, destination_id, n in rows:
        if state == DeliveryState.DEAD:
            counts["dead"] += n
            continue
        counts["failing" if attempts else "pending"] += n
        by_destination[destination_id] = by_destination.get(destination_id, 0) + n
    return Backlog(DeliveryCounts(**counts), by_destination)


async def aoldest_pending(now: datetime) -> float | None:
    """Seconds since the oldest delivery still pending was created; None if none is."""
    # The first of the (state, created_at, id) index's pending range, as an ORDER BY
    # that index answers alone (a MIN() may be planned on another index by state).
    oldest = (
        await Delivery.objects.filter(state=DeliveryState.PENDING)
        .order_by("created_at", "id")
        .values_list("created_at", flat=True)
        .afirst()
    )
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


class MinuteOf(Func):
    """A time column's minute, ``YYYY-MM-DD HH:MM`` in UTC, computed in the database.
    (Django's TruncMinute calls a Python function for every row on SQLite: 100,000
    rows of a busy hour took a second and a half; this is a substring of the stored
    text.)"""

    output_field = CharField()

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, Any]:
        # Django stores an aware time on SQLite as UTC text: "2026-03-01 12:00:05.123456".
        return self.as_sql(compiler, connection, template="SUBSTR(%(expressions)s, 1, 16)")

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, Any]:
        template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')"
        return self.as_sql(compiler, connection, template=template)


def _parse_minute(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


async def alast_hour(now: datetime) -> Window:
    """Events received and attempts ended in the 60 minutes up to ``now``, per minute,
    and the attempts per destination: two grouped queries, each an index range over
    the hour holding the columns it counts (events by received_at; attempts by
    started_at, with their outcome and delivery)."""
    start = _minute(now) - timedelta(minutes=59)
    events: dict[datetime, int] = {}
    grouped_events = (
        Event.objects.filter(received_at__gte=start)
        .order_by()
        .annotate(minute=MinuteOf("received_at"))
        .values("minute")
        .annotate(n=Count("id"))
    )
    async for row in grouped_events:
        events[_parse_minute(row["minute"])] = row["n"]
    outcomes: dict[datetime, tuple[int, int]] = {}
    grouped_attempts = (
        Attempt.objects.filter(_ended(start))
        .order_by()
        .annotate(minute=MinuteOf("started_at"))
        .values("minute", "outcome")
        .annotate(n=Count("id"))
    )
    async for row in grouped_attempts:
        at = _parse_minute(row["minute"])
        good, bad = outcomes.get(at, (0, 0))
        if row["outcome"] == AttemptOutcome.SUCCESS:
            outcomes[at] = (good + row["n"], bad)
        else:
            outcomes[at] = (good, bad + row["n"])
    per_destination = await _destination_rates(start)
    minutes = []
    for i in range(60):
        at = start + timedelta(minutes=i)
        good, bad = outcomes.get(at, (0, 0))
        minutes.append(Minute(at, events.get(at, 0), good, bad))
    return Window(minutes, per_destination)


async def _destination_rates(start: datetime) -> dict[int, Rate]:
    """Each destination's attempts since ``start``. A success ends its delivery, so the
    successes are the deliveries created since then that succeeded (an index range of
    (destination, state, created_at) per destination: no row read); the failures are
    the failed attempts, whose deliveries are looked up to find their destination.
    (Joining every attempt of a busy hour to its delivery took 100-400 ms at 36,000
    events an hour; the failed ones are few while a destination is mostly healthy.)"""
    succeeded: dict[int, int] = {}
    grouped = (
        Delivery.objects.filter(state=DeliveryState.SUCCEEDED, created_at__gte=start)
        .order_by()
        .values("destination_id")
        .annotate(n=Count("*"))
    )
    async for row in grouped:
        succeeded[row["destination_id"]] = row["n"]
    # The failed attempts' deliveries from the attempts' index, then their destinations
    # by primary key. Not one join: with statistics (ANALYZE), SQLite may plan it from
    # the delivery side and read every delivery (3-5 s at a million).
    per_delivery: dict[str, int] = {}
    failures = (
        Attempt.objects.filter(_ended(start))
        .exclude(outcome=AttemptOutcome.SUCCESS)
        .order_by()
        .values_list("delivery_id", flat=True)
    )
    async for delivery_id in failures:
        per_delivery[delivery_id] = per_delivery.get(delivery_id, 0) + 1
    failed: dict[int, int] = {}
    ids = list(per_delivery)
    for first in range(0, len(ids), CHUNK):
        rows = Delivery.objects.filter(pk__in=ids[first : first + CHUNK]).values_list(
            "pk", "destination_id"
        )
        async for pk, destination_id in rows:
            failed[destination_id] = failed.get(destination_id, 0) + per_delivery[pk]
    return {
        d: Rate(succeeded.get(d, 0) + failed.get(d, 0), succeeded.get(d, 0))
        for d in succeeded.keys() | failed.keys()
    }


async def apending_by_destination() -> dict[int, int]:
    """Deliveries still pending, by destination id (an index range of pending rows)."""
    rows = (
        Delivery.objects.filter(state=DeliveryState.PENDING)
        .order_by()
        .values("destination_id")
        .annotate(n=Count("*"))
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
