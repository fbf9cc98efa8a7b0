"""Writing what ingest received: one Event and its Delivery rows in one transaction (the
transactional outbox). Sync code: the async side reaches it only through hookway.gate."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection, transaction

from hookway.models import Delivery, Event, Route, Source

# Sent with every commit that adds deliveries, so standalone dispatchers LISTENing on
# PostgreSQL wake at once (the notification is delivered only if the transaction commits).
NOTIFY_CHANNEL = "hookway_deliveries"


@dataclass(frozen=True)
class SourceSpec:
    """A snapshot of a Source row, all that ingest needs, safe to pass between threads."""

    id: int
    slug: str
    verify: str
    secrets: tuple[str, ...]
    require_event_name: bool
    max_body_bytes: int


@dataclass(frozen=True)
class IncomingEvent:
    source_id: int
    event_name: str
    delivery_id: str | None
    content_type: str
    headers: dict[str, str]
    body: bytes
    received_at: datetime


@dataclass(frozen=True)
class StoredEvent:
    id: str
    deliveries: int
    duplicate: bool


def get_source(slug: str) -> SourceSpec | None:
    """Return the enabled source with this slug, or None if there is none."""
    row = (
        Source.objects.filter(slug=slug, enabled=True)
        .values_list("id", "slug", "verify", "secrets", "require_event_name", "max_body_bytes")
        .first()
    )
    if row is None:
        return None
    secrets = row[3] if isinstance(row[3], list) else []
    return SourceSpec(
        id=row[0],
        slug=row[1],
        verify=row[2],
        secrets=tuple(str(s) for s in secrets),
        require_event_name=row[4],
        max_body_bytes=row[5],
    )


def route_matches(patterns: list[str], event_name: str) -> bool:
    """True when a route with these glob patterns takes this event (no patterns: all)."""
    if not patterns:
        return True
    return any(fnmatch.fnmatchcase(event_name, str(p)) for p in patterns)


def _existing(source_id: int, delivery_id: str) -> str | None:
    return (
        Event.objects.filter(source_id=source_id, delivery_id=delivery_id)
        .values_list("id", flat=True)
        .first()
    )


def store_event(incoming: IncomingEvent) -> StoredEvent:
    """Store an event and one delivery per matching route, atomically.

    Returns the new event, or the original one (``duplicate=True``) when this source
    already has an event with the same delivery id; a duplicate writes nothing.
    Raises django.db.OperationalError when the database can't commit in time.
    """
    try:
        with transaction.atomic():
            if incoming.delivery_id is not None:
                original = _existing(incoming.source_id, incoming.delivery_id)
                if original is not None:
                    return StoredEvent(id=original, deliveries=0, duplicate=True)
            event = Event.objects.create(
                source_id=incoming.source_id,
                event_name=incoming.event_name,
                delivery_id=incoming.delivery_id,
                content_type=incoming.content_type,
                headers=incoming.headers,
                body=incoming.body,
                received_at=incoming.received_at,
            )
            routes = Route.objects.filter(
                source_id=incoming.source_id, enabled=True, destination__enabled=True
            ).values_list("destination_id", "events")
            deliveries = [
                Delivery(
                    event=event,
                    destination_id=destination_id,
                    next_attempt_at=incoming.received_at,
                    created_at=incoming.received_at,
                )
                for destination_id, patterns in routes
                if route_matches(patterns or [], incoming.event_name)
            ]
            if deliveries:
                Delivery.objects.bulk_create(deliveries)
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
            return StoredEvent(id=event.id, deliveries=len(deliveries), duplicate=False)
    except IntegrityError:
        # Two requests with the same delivery id raced on PostgreSQL; the unique
        # constraint let one win. Answer as a duplicate of the winner.
        if incoming.delivery_id is not None:
            original = _existing(incoming.source_id, incoming.delivery_id)
            if original is not None:
                return StoredEvent(id=original, deliveries=0, duplicate=True)
        raise


def database_ready() -> bool:
    """True when the database answers a trivial query."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)
