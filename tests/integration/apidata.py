"""Rows and keys for the operator API's tests: events with deliveries and attempts in
chosen states, written straight to the database (the API only reads them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from asgiref.sync import sync_to_async
from django.utils import timezone

from hookway.models import Attempt, Delivery, Destination, Event, Route, Source
from hookway.store import apikeys

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def key(scope: str = "write", name: str = "tests") -> dict[str, str]:
    """The Authorization header of a new key of ``scope``."""
    _, made = await sync_to_async(apikeys.create)(name, scope)
    return bearer(made)


def source_and_destination(slug: str = "gh", name: str = "ci") -> tuple[Source, Destination]:
    source, _ = Source.objects.get_or_create(slug=slug)
    destination, _ = Destination.objects.get_or_create(
        name=name, defaults={"url": "http://127.0.0.1:9/hooks"}
    )
    Route.objects.get_or_create(source=source, destination=destination)
    return source, destination


def event(
    source: Source,
    name: str = "push",
    *,
    at: datetime | None = None,
    body: bytes = b'{"ok": true}',
    deliveries: tuple[tuple[Destination, str, int], ...] = (),
    delivery_id: str | None = None,
) -> Event:
    """An event with a delivery per (destination, stored state, attempts); each attempt
    recorded with a status, latency and reply."""
    at = at or timezone.now()
    row = Event.objects.create(
        source=source,
        event_name=name,
        body=body,
        content_type="application/json",
        headers={"X-Test": "yes"},
        received_at=at,
        delivery_id=delivery_id,
    )
    for destination, state, attempts in deliveries:
        delivery = Delivery.objects.create(
            event=row,
            destination=destination,
            state=state,
            attempts=attempts,
            next_attempt_at=at,
            created_at=at,
            completed_at=at if state != "pending" else None,
        )
        for n in range(1, attempts + 1):
            last = n == attempts and state == "succeeded"
            Attempt.objects.create(
                delivery=delivery,
                number=n,
                started_at=at + timedelta(seconds=n),
                duration_ms=12.5,
                outcome="success" if last else "retry",
                status_code=200 if last else 503,
                error_kind="" if last else "http_status",
                error="" if last else "HTTP 503",
                response_body="x" * 3000 if not last else "ok",
            )
    return row
