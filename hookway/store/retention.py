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

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
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
    # Seconds the transaction held its locks (on SQLite, the database's write lock), from
    # the moment it had them to its commit: not the time spent waiting for them.
    held: float = 0.0


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


_replay_of_indexes: dict[str, str] = {}


def _replay_of_index(cursor: CursorWrapper) -> str:
    """On SQLite, `` INDEXED BY <the index on delivery.replay_of_id>``; elsewhere "".

    Almost every delivery's replay_of_id is NULL, and SQLite's planner statistics (once
    ANALYZE or ``PRAGMA optimize`` has run) say only that the index has one value for
    all its rows: it then scans every delivery for each batch (~300 ms at 2,000,000
    deliveries) instead of looking the batch's ids up. PostgreSQL's statistics count
    NULLs apart and need no hint."""
    if connection.vendor != "sqlite":
        return ""
    table = Delivery._meta.db_table
    if table not in _replay_of_indexes:
        found = connection.introspection.get_constraints(cursor, table)
        names = [
            name
            for name, c in found.items()
            if c["index"] and c["columns"] == ["replay_of_id"] and not c["unique"]
        ]
        _replay_of_indexes[table] = (
            f" INDEXED BY {connection.ops.quote_name(names[0])}" if names else ""
        )
    return _replay_of_indexes[table]


def prune_batch(policy: RetentionPolicy, limit: int, after: Cursor | None = None) -> Batch:
    """Delete up to ``limit`` prunable events (oldest first, after ``after``) with their
    deliveries and attempts, in one transaction. Returns what was deleted and where the
    next batch starts (None: this was the last)."""
    if not policy.enabled:
        return Batch(Pruned(), None)
    with transaction.atomic():
        # BEGIN (IMMEDIATE on SQLite) has run: from here the batch holds the lock.
        took_lock = time.monotonic()
        events = prunable(policy, db_now())
        if after is not None:
            at, pk = after
            # Kept events (still pending) before the cursor are not scanned again.
            # The leading received_at >= at keeps this a range on the received_at index:
            # the OR alone can turn it into a scan of every event since the cursor.
            events = events.filter(Q(received_at__gte=at) & (Q(received_at__gt=at) | Q(pk__gt=pk)))
        events = events.order_by("received_at", "pk")
        if connection.vendor == "postgresql":
            events = events.select_for_update(skip_locked=True, of=("self",))
        rows = list(events.values_list("received_at", "pk")[:limit])
        if not rows:
            return Batch(Pruned(), None, time.monotonic() - took_lock)
        ids = [pk for _, pk in rows]
        marks = ", ".join(["%s"] * len(ids))
        event, delivery, attempt = _table(Event), _table(Delivery), _table(Attempt)
        of_events = f"SELECT id FROM {delivery} WHERE event_id IN ({marks})"  # noqa: S608 - fixed names
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {attempt} WHERE delivery_id IN ({of_events})", ids)  # noqa: S608
            attempts = cursor.rowcount
            # A replay points at the delivery it replays (of the same event, so deleted
            # with it); an older one pointing across events would block the delete.
            replays = (
                f"SELECT id FROM {delivery}{_replay_of_index(cursor)} "  # noqa: S608 - fixed names
                f"WHERE replay_of_id IN ({of_events})"
            )
            cursor.execute(
                f"UPDATE {delivery} SET replay_of_id = NULL "  # noqa: S608 - fixed names
                f"WHERE id IN ({replays}) AND event_id NOT IN ({marks})",
                ids + ids,
            )
            cursor.execute(f"DELETE FROM {delivery} WHERE event_id IN ({marks})", ids)  # noqa: S608
            deliveries = cursor.rowcount
            cursor.execute(f"DELETE FROM {event} WHERE id IN ({marks})", ids)  # noqa: S608
            deleted = cursor.rowcount
    held = time.monotonic() - took_lock  # with the commit
    pruned = Pruned(events=deleted, deliveries=deliveries, attempts=attempts, batches=1)
    return Batch(pruned, rows[-1] if len(rows) == limit else None, held)
