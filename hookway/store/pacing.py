"""Per-destination rate limits (``rate_limit = "50/s"``), held across every dispatcher
sharing the database, without Redis.

Rows of destinations are locked ``FOR NO KEY UPDATE`` here and in the circuit breaker:
a plain ``FOR UPDATE`` would also block ingest's foreign-key checks on the destination
(``FOR KEY SHARE``) while a webhook's deliveries are inserted, and a dispatcher waiting
on that webhook's transaction in turn deadlocked with it.

Each rate-limited destination's row keeps ``rate_next_at``: the earliest time its next
delivery may go (GCRA's theoretical arrival time). A claim, inside its transaction and
holding the row (``FOR UPDATE`` on PostgreSQL, the write lock on SQLite), gives each
delivery it takes the next free slot, ``interval`` after the previous one, and moves
``rate_next_at`` on: two dispatchers can never get the same slot. Slots are handed out
at most RATE_HORIZON ahead; a delivery whose slot is later is not claimed at all (it
waits, pending, its attempts untouched), and the dispatcher holds each claimed one until
its slot comes. A burst is thereby smoothed into an even stream, never refused.
Sync code, called by hookway.store.deliveries.claim_due.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from django.db import connection
from django.db.models import Q, QuerySet

from hookway.models import Destination
from hookway.policy import RATE_HORIZON, rate_interval
from hookway.store.db import Prepared, Slots


class _Claimed(Protocol):
    @property
    def pk(self) -> str: ...

    @property
    def destination_id(self) -> int: ...


C = TypeVar("C", bound=_Claimed)


def horizon(now: datetime) -> datetime:
    """How far ahead of ``now`` a claim takes rate-limit slots."""
    return now + timedelta(seconds=RATE_HORIZON)


def has_slot(now: Any, until: Any = None) -> Q:
    """Deliveries whose destination has a rate-limit slot within the horizon (``until``,
    ``horizon(now)`` unless given), or no rate limit (one removed leaves its last slot
    behind, which then means nothing)."""
    return (
        Q(destination__rate_limit="")
        | Q(destination__rate_next_at__isnull=True)
        | Q(destination__rate_next_at__lte=horizon(now) if until is None else until)
    )


def _limited(s: Slots) -> QuerySet[Any, Any]:
    """The rate-limited destinations among ``pks`` (a Prepared query's builder)."""
    limited = Destination.objects.filter(pk__in=s.many("pks", Destination._meta.pk)).exclude(
        rate_limit=""
    )
    if connection.vendor == "postgresql":
        limited = limited.select_for_update(no_key=True)  # one claim at a time
    return limited.order_by("pk").values_list("pk", "rate_limit", "rate_next_at")


_LIMITED = Prepared(_limited)


def reserve(now: datetime, chosen: Sequence[C]) -> tuple[list[C], dict[str, float]]:
    """Give each of ``chosen`` (in order) of a rate-limited destination its slot; return
    those that got one (and every other) with, for each delivery that must wait for
    its slot, the seconds from ``now`` until then."""
    by_destination: dict[int, list[C]] = defaultdict(list)
    for row in chosen:
        by_destination[row.destination_id].append(row)
    if not by_destination:
        return [], {}
    last = horizon(now)
    dropped: set[str] = set()
    delays: dict[str, float] = {}
    for pk, text, next_at in _LIMITED.rows(pks=list(by_destination)):
        interval = rate_interval(text)
        if interval is None:
            continue
        slot = max(next_at or now, now)
        step = timedelta(seconds=interval)
        for row in by_destination[pk]:
            if slot > last:
                dropped.add(row.pk)
                continue
            wait = (slot - now).total_seconds()
            if wait > 0:
                delays[row.pk] = wait
            slot += step
        Destination.objects.filter(pk=pk).update(rate_next_at=slot)
    return [row for row in chosen if row.pk not in dropped], delays


def gate_times(now: datetime, destination_ids: Sequence[int]) -> dict[int, datetime]:
    """For these destinations, the time before which a claim gets no slot (only those
    whose next slot is beyond the horizon)."""
    ahead = timedelta(seconds=RATE_HORIZON)
    rows = (
        Destination.objects.filter(pk__in=list(destination_ids), rate_next_at__gt=now + ahead)
        .exclude(rate_limit="")
        .values_list("pk", "rate_next_at")
    )
    return {pk: next_at - ahead for pk, next_at in rows if next_at is not None}
