"""Retention: pruning old events with their deliveries and attempts, a batch at a time.

An event is prunable once it is older than the retention period, unless one of its
deliveries is still pending (due, retrying or in flight) or is dead and nobody replayed
it yet: those events are kept until the dead retention period (never shorter than the
retention period) has passed too, or forever when it is 0.

Each batch is one short transaction deleting at most ``limit`` events (oldest first)
and what hangs off them, with statements that name those ids: ingest's writer waits at
most one batch for the lock (on SQLite the single writer lock is the database's). On
PostgreSQL the batch's events are locked ``FOR UPDATE SKIP LOCKED``, so dispatchers
pruning at once take different events, and a replay creating a delivery for one of
them waits for the batch instead of racing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet

from hookway.models import Attempt, Delivery, DeliveryState, Event
from hookway.store.db import db_now


class RetentionPolicy(NamedTuple):
    """How long events are kept, in days: ``days`` 0 keeps everything; events with an
    unreplayed dead delivery are kept ``dead_days`` (at least ``days``; 0: until replayed)."""

    days: int
    dead_days: int

    @property
    def enabled(self) -> bool:
        return self.days > 0


# Where the previous batch stopped, oldest first: (received_at, id) of its last event.
Cursor = tuple[datetime, str]


@dataclass
class Pruned:
    """What a prune removed (or, dry, would remove)."""

    events: int = 0
    deliveries: int = 0
    attempts: int = 0
    batches: int = 0

    def add(self, other: Pruned) -> None:
        self.events += other.events
        self.deliveries += other.deliveries
        self.attempts += other.attempts
        self.batches += other.batches


class Batch(NamedTuple):
    pruned: Pruned
    # None when this batch found fewer than its limit: nothing older is left to prune.
    cursor: Cursor | None


def prunable(policy: RetentionPolicy, now: datetime) -> QuerySet[Event]:
    """The events ``policy`` lets go at ``now``."""
    cutoff = now - timedelta(days=policy.days)
    pending = Delivery.objects.filter(event_id=OuterRef("pk"), state=DeliveryState.PENDING)
    replayed = Delivery.objects.filter(replay_of_id=OuterRef("pk"))
    dead = Delivery.objects.filter(event_id=OuterRef("pk"), state=DeliveryState.DEAD).exclude(
        Exists(replayed)
    )
    events = Event.objects.filter(received_at__lt=cutoff).exclude(Exists(pending))
    if policy.dead_days == 0:
        return events.exclude(Exists(dead))
    dead_cutoff = now - timedelta(days=max(policy.days, policy.dead_days))
    return events.exclude(Q(Exists(dead)) & Q(received_at__gte=dead_cutoff))


def count(policy: RetentionPolicy) -> Pruned:
    """What pruning now would remove (``manage.py prune --dry-run``); changes nothing."""
    if not policy.enabled:
        return Pruned()
    events = prunable(policy, db_now())
    return Pruned(
        events=events.count(),
        deliveries=Delivery.objects.filter(event__in=events).count(),
        attempts=Attempt.objects.filter(delivery__event__in=events).count(),
    )


def _table(model: type[Event] | type[Delivery] | type[Attempt]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def prune_batch(policy: RetentionPolicy, limit: int, after: Cursor | None = None) -> Batch:
    """Delete up to ``limit`` prunable events (oldest first, after ``after``) with their
    deliveries and attempts, in one transaction. Returns what was deleted and where the
    next batch starts (None: this was the last)."""
    if not policy.enabled:
        return Batch(Pruned(), None)
    with transaction.atomic():
        events = prunable(policy, db_now())
        if after is not None:
            at, pk = after
            # Kept events (still pending) before the cursor are not scanned again.
            events = events.filter(Q(received_at__gt=at) | Q(received_at=at, pk__gt=pk))
        events = events.order_by("received_at", "pk")
        if connection.vendor == "postgresql":
            events = events.select_for_update(skip_locked=True, of=("self",))
        rows = list(events.values_list("received_at", "pk")[:limit])
        if not rows:
            return Batch(Pruned(), None)
        ids = [pk for _, pk in rows]
        marks = ", ".join(["%s"] * len(ids))
        event, delivery, attempt = _table(Event), _table(Delivery), _table(Attempt)
        of_events = f"SELECT id FROM {delivery} WHERE event_id IN ({marks})"  # noqa: S608 - fixed names
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {attempt} WHERE delivery_id IN ({of_events})", ids)  # noqa: S608
            attempts = cursor.rowcount
            # A replay points at the delivery it replays (of the same event, so deleted
            # with it); an older one pointing across events would block the delete.
            cursor.execute(
                f"UPDATE {delivery} SET replay_of_id = NULL "  # noqa: S608 - fixed names
                f"WHERE replay_of_id IN ({of_events}) AND event_id NOT IN ({marks})",
                ids + ids,
            )
            cursor.execute(f"DELETE FROM {delivery} WHERE event_id IN ({marks})", ids)  # noqa: S608
            deliveries = cursor.rowcount
            cursor.execute(f"DELETE FROM {event} WHERE id IN ({marks})", ids)  # noqa: S608
            deleted = cursor.rowcount
    pruned = Pruned(events=deleted, deliveries=deliveries, attempts=attempts, batches=1)
    return Batch(pruned, rows[-1] if len(rows) == limit else None)
