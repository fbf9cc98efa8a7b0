"""Replay: new deliveries for events already stored. A replay never changes the original
delivery or its attempts; it adds a delivery (with a new ``webhook-id``) that points back
at what it replays. Sync code, reached from async code only through hookway.gate."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from hookway.models import Delivery, DeliveryState, Destination, Event, Route
from hookway.store.events import NOTIFY_CHANNEL, route_matches


def _create(rows: list[Delivery]) -> int:
    if rows:
        Delivery.objects.bulk_create(rows)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
    return len(rows)


def replay_events(event_ids: Iterable[str], destination: str | None = None) -> int:
    """Create a delivery of each event to every destination it was routed to before and
    every destination its source's routes now match (or only ``destination``).
    Returns how many deliveries were created."""
    now = timezone.now()
    rows: list[Delivery] = []
    with transaction.atomic():
        for event in Event.objects.filter(pk__in=list(event_ids)):
            targets = set(event.deliveries.values_list("destination_id", flat=True))
            for destination_id, patterns in Route.objects.filter(
                source_id=event.source_id, enabled=True
            ).values_list("destination_id", "events"):
                if route_matches(patterns or [], event.event_name):
                    targets.add(destination_id)
            if destination is not None:
                targets &= set(
                    Destination.objects.filter(name=destination).values_list("pk", flat=True)
                )
            rows.extend(
                Delivery(event=event, destination_id=t, next_attempt_at=now, created_at=now)
                for t in sorted(targets)
            )
        return _create(rows)


def replay_deliveries(delivery_ids: Iterable[str]) -> int:
    """Create a new delivery for each given delivery (same event, same destination)."""
    now = timezone.now()
    with transaction.atomic():
        rows = [
            Delivery(
                event_id=d.event_id,
                destination_id=d.destination_id,
                next_attempt_at=now,
                created_at=now,
                replay_of=d,
            )
            for d in Delivery.objects.filter(pk__in=list(delivery_ids))
        ]
        return _create(rows)


def replay_dead(since: datetime, destination: str | None = None) -> int:
    """Replay every dead delivery that died at or after ``since`` (optionally only to one
    destination) and has not been replayed yet. Returns how many were created."""
    dead = Delivery.objects.filter(
        state=DeliveryState.DEAD, completed_at__gte=since, replays__isnull=True
    )
    if destination is not None:
        dead = dead.filter(destination__name=destination)
    return replay_deliveries(list(dead.values_list("pk", flat=True)))
