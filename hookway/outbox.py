"""Publishing the app's own events: ``hookway.publish`` and ``hookway.apublish``.

A published event is stored exactly as a received webhook is (hookway.store.events: the
same Event row, one Delivery per matching route of its source) and delivered the same
way. ``publish`` writes with the caller's database connection, inside the caller's
``transaction.atomic()`` when there is one (the transactional outbox): the event and its
deliveries commit together with the caller's own rows, or not at all, and the dispatcher
is woken only once they commit. ``apublish`` is its async twin: Django has no async
transactions, so it stores the event in a transaction of its own, committed before it
returns (docs/django-app.md, "Publishing").
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from hookway import tracing, wakeup
from hookway.store import events

__all__ = ["Published", "UnknownSource", "apublish", "publish"]

CONTENT_TYPE = "application/json"
MAX_EVENT_NAME = 255  # Event.event_name's max_length


class UnknownSource(LookupError):
    """``publish`` named no enabled source: add it to the config file or the admin."""


@dataclass(frozen=True)
class Published:
    """What ``publish`` stored: the event's id and how many deliveries its routes
    created, or (``duplicate``) the id of the event stored earlier with the same
    ``idempotency_key`` and payload, for which nothing new was stored."""

    id: str
    deliveries: int
    duplicate: bool = False


def _body(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray | memoryview):
        body = bytes(payload)
        try:
            json.loads(body)
        except ValueError:
            raise ValueError("hookway.publish: a bytes payload must be a JSON document") from None
        return body
    try:
        return json.dumps(payload, cls=DjangoJSONEncoder, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"hookway.publish: the payload is not JSON-serializable: {exc}") from None


def publish(
    source: str, event_name: str, payload: object, *, idempotency_key: str | None = None
) -> Published:
    """Store an event of ``source`` named ``event_name`` with ``payload`` (a value
    Django's JSON encoder takes, or a JSON document as bytes), routed like a webhook
    received at ``/hooks/<source>``; return what was stored.

    Inside ``transaction.atomic()`` it commits (or rolls back) with the caller's
    transaction; outside one it commits at once. An ``idempotency_key`` makes it a
    webhook's delivery id: publishing the same key and payload again stores nothing and
    returns the first event (``duplicate``). Raises UnknownSource when no enabled source
    has that slug, ValueError for an empty name or a payload that is not JSON."""
    if not isinstance(event_name, str) or not event_name or len(event_name) > MAX_EVENT_NAME:
        raise ValueError(
            f"hookway.publish: event_name must be a non-empty string of at most "
            f"{MAX_EVENT_NAME} characters, not {event_name!r}"
        )
    body = _body(payload)
    spec = events.get_source(source)
    if spec is None:
        raise UnknownSource(
            f"hookway.publish: no enabled source named {source!r}; add it to the config "
            f'file ([[sources]] slug = "{source}") or in the admin, and route it'
        )
    # The caller's trace, when it has one (hookway.tracing): its deliveries continue it.
    traceparent, tracestate = tracing.stored_context()
    incoming = events.IncomingEvent(
        source_id=spec.id,
        event_name=event_name,
        delivery_id=idempotency_key,
        content_type=CONTENT_TYPE,
        headers={"Content-Type": CONTENT_TYPE},
        body=body,
        received_at=timezone.now(),
        traceparent=traceparent,
        tracestate=tracestate,
    )
    stored = events.store_in_transaction(incoming)
    if stored.deliveries:
        # After the commit (at once outside a transaction; never after a rollback).
        transaction.on_commit(wakeup.notify)
    return Published(id=stored.id, deliveries=stored.deliveries, duplicate=stored.duplicate)


async def apublish(
    source: str, event_name: str, payload: object, *, idempotency_key: str | None = None
) -> Published:
    """``publish`` from async code: the event is stored and committed in a transaction
    of its own, on the thread Django runs the request's sync code on, before this
    returns. To commit it with other writes, call ``publish`` inside the same
    ``transaction.atomic()`` in sync code (``sync_to_async`` around the whole function)."""
    from hookway import gate  # the gate imports this module

    return await gate.apublish(source, event_name, payload, idempotency_key=idempotency_key)
