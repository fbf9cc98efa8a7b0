"""What changed since a point: new events and finished attempts, for the operator API's
event stream (hookway.api.feed). Read-only; sync code reached through hookway.gate.

A point is (the last event id seen, the highest attempt id seen, the attempts at or
below it that were still in flight). Event ids are time-ordered and written under the
write lock (hookway.store.events), so they appear in id order; attempts are written down
in flight when claimed and finished later, in any order, hence the in-flight set."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Q

from hookway.models import Attempt, AttemptOutcome, DeliveryState, Event


@dataclass(frozen=True)
class NewEvent:
    id: str
    source: str
    event_name: str
    received_at: datetime
    delivery_id: str | None  # the sender's
    pending: int  # deliveries by the API's states (hookway.api.filters)
    failing: int
    delivered: int
    dead: int


@dataclass(frozen=True)
class AttemptRow:
    pk: int
    number: int
    outcome: str  # an AttemptOutcome
    status_code: int | None
    error_kind: str
    delivery_id: str
    destination: str
    event_id: str
    source: str
    event_name: str
    received_at: datetime
    sender_delivery_id: str | None


@dataclass(frozen=True)
class Changes:
    events: list[NewEvent]
    attempts: list[AttemptRow]  # new ones (in flight or not) and ones that finished


@dataclass(frozen=True)
class Start:
    event: str
    attempt: int
    in_flight: frozenset[int]


def start() -> Start:
    """Where a stream starting now begins: the newest event, the newest attempt, and
    the attempts still in flight."""
    newest = Event.objects.order_by("-id").values_list("id", flat=True).first() or ""
    last = Attempt.objects.aggregate(last=Max("pk"))["last"] or 0
    in_flight = frozenset(
        Attempt.objects.filter(outcome=AttemptOutcome.IN_FLIGHT, pk__lte=last).values_list(
            "pk", flat=True
        )
    )
    return Start(newest, last, in_flight)


_PENDING = Q(deliveries__state=DeliveryState.PENDING)


def changes_since(event: str, attempt: int, in_flight: Collection[int], limit: int) -> Changes:
    """Up to ``limit`` events with an id above ``event``, oldest first, and up to
    ``limit`` attempts: those with an id above ``attempt`` (in flight or finished) and
    those of ``in_flight`` that have finished, by id. Two queries."""
    events = [
        NewEvent(
            id=row["id"],
            source=row["source__slug"],
            event_name=row["event_name"],
            received_at=row["received_at"],
            delivery_id=row["delivery_id"],
            pending=row["n_pending"],
            failing=row["n_failing"],
            delivered=row["n_delivered"],
            dead=row["n_dead"],
        )
        for row in Event.objects.filter(id__gt=event)
        .order_by("id")
        .values("id", "source__slug", "event_name", "received_at", "delivery_id")
        .annotate(
            n_pending=Count("deliveries", filter=_PENDING & Q(deliveries__attempts=0)),
            n_failing=Count("deliveries", filter=_PENDING & Q(deliveries__attempts__gt=0)),
            n_delivered=Count("deliveries", filter=Q(deliveries__state=DeliveryState.SUCCEEDED)),
            n_dead=Count("deliveries", filter=Q(deliveries__state=DeliveryState.DEAD)),
        )[:limit]
    ]
    wanted = Q(pk__gt=attempt)
    if in_flight:
        wanted |= Q(pk__in=list(in_flight)) & ~Q(outcome=AttemptOutcome.IN_FLIGHT)
    attempts = [
        AttemptRow(*row)
        for row in Attempt.objects.filter(wanted)
        .order_by("pk")
        .values_list(
            "pk",
            "number",
            "outcome",
            "status_code",
            "error_kind",
            "delivery_id",
            "delivery__destination__name",
            "delivery__event_id",
            "delivery__event__source__slug",
            "delivery__event__event_name",
            "delivery__event__received_at",
            "delivery__event__delivery_id",
        )[:limit]
    ]
    return Changes(events, attempts)
