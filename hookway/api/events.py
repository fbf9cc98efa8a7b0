"""/api/v1/events: what Hookway received, newest first; one event with its deliveries and
every attempt; its raw body; and replaying it."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from pydantic import Field

from hookway import gate
from hookway.api.auth import WRITE
from hookway.api.common import (
    READ_ERRORS,
    WRITE_ERRORS,
    ErrorOut,
    PageParams,
    aware,
    keyset_page,
)
from hookway.api.deliveries import ReplayOut, replay_answer
from hookway.api.errors import ApiError, not_found
from hookway.api.filters import ApiState, EventFilters, api_state
from hookway.models import Attempt, Delivery, Event
from hookway.store import browse

router = Router(tags=["events"])

# The most of a receiver's response an attempt shows (the attempt stores up to 20 KB).
EXCERPT = 2000


class DeliverySummary(Schema):
    id: str
    destination: str
    state: ApiState
    attempts: int


class EventOut(Schema):
    id: str
    source: str
    event_name: str
    delivery_id: str | None = Field(description="The sender's delivery id (dedupe key).")
    content_type: str
    received_at: datetime
    deliveries: list[DeliverySummary]


class EventPage(Schema):
    items: list[EventOut]
    next: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )


class AttemptOut(Schema):
    number: int
    started_at: datetime
    latency_ms: float | None = Field(description="How long the attempt took.")
    outcome: str = Field(description="in_flight, success, retry or failed.")
    status_code: int | None
    error_kind: str = Field(description="Why it failed, in one word (empty when it did not).")
    error_detail: str = Field(description="What went wrong, in words (empty when nothing did).")
    response_excerpt: str = Field(description=f"The first {EXCERPT} characters of the reply.")
    response_truncated: bool
    request_body: str | None = Field(
        None,
        description="The body this attempt sent when the route's transform made it; null: "
        "the event's body as stored was sent.",
    )


class DeliveryOut(Schema):
    id: str = Field(description="Sent as webhook-id.")
    destination: str
    state: ApiState
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str
    created_at: datetime
    completed_at: datetime | None
    replay_of: str | None
    order_key: str = Field(
        description='Its lane at an ordered destination with an order_key ("": the '
        "destination's one lane, or the fallback when the key could not be evaluated)."
    )
    order_key_error: str = Field(
        description="Why its order_key could not be evaluated for this event (it then went "
        'in the empty key\'s lane); "" when it could, or the destination has none.'
    )
    attempt_log: list[AttemptOut]


class FilteredOut(Schema):
    destination: str
    reason: str = Field(
        description="e.g. 'filter is false', 'match: payload.amount $gte 100: got 5', "
        "'filter error: no such key: ...'"
    )


class EventDetail(Schema):
    id: str
    source: str
    event_name: str
    delivery_id: str | None
    content_type: str
    received_at: datetime
    conflict_with: str = Field(
        description="The event whose delivery id this one reused with another body, if any."
    )
    headers: dict[str, Any] = Field(description="The sender's headers Hookway kept.")
    client_ip: str | None = Field(
        description="The sender's IP address: the TCP peer, or the client a trusted proxy "
        "(FORWARDED_ALLOW_IPS) named in X-Forwarded-For; null for published events."
    )
    size: int = Field(description="The body's length in bytes.")
    body_encoding: Literal["json", "base64"] = Field(
        description="json: `payload` is the parsed body; base64: the body is not UTF-8 "
        "JSON and `body_base64` holds it."
    )
    payload: Any = None
    body_base64: str | None = None
    deliveries: list[DeliveryOut]
    filtered_out: list[FilteredOut] = Field(
        default_factory=list,
        description="Routes whose filter or match did not take this event, and why.",
    )


class ReplayIn(Schema):
    destinations: list[str] | None = Field(
        None,
        description="Replay only to these destinations; omitted: every destination a route "
        "now takes the event to, and every one it was delivered to before.",
    )
    force: bool = Field(
        False,
        description="Replay even what is already replayed or still pending, and to a named "
        "destination no route leads to.",
    )


def summary(event: Event) -> dict[str, Any]:
    return {
        "id": event.pk,
        "source": event.source.slug,
        "event_name": event.event_name,
        "delivery_id": event.delivery_id,
        "content_type": event.content_type,
        "received_at": event.received_at,
        "deliveries": [
            {
                "id": d.pk,
                "destination": d.destination.name,
                "state": api_state(d.state, d.attempts),
                "attempts": d.attempts,
            }
            for d in event.deliveries.all()
        ],
    }


def attempt_out(attempt: Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "started_at": attempt.started_at,
        "latency_ms": attempt.duration_ms,
        "outcome": attempt.outcome,
        "status_code": attempt.status_code,
        "error_kind": attempt.error_kind,
        "error_detail": attempt.error,
        "response_excerpt": attempt.response_body[:EXCERPT],
        "response_truncated": len(attempt.response_body) > EXCERPT,
        "request_body": attempt.request_body or None,
    }


def delivery_out(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.pk,
        "destination": delivery.destination.name,
        "state": api_state(delivery.state, delivery.attempts),
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at if delivery.state == "pending" else None,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": delivery.created_at,
        "completed_at": delivery.completed_at,
        "replay_of": delivery.replay_of_id,
        "order_key": delivery.order_key,
        "order_key_error": delivery.order_key_error,
        "attempt_log": [attempt_out(a) for a in delivery.attempt_log.all()],
    }


def body_fields(body: bytes) -> dict[str, Any]:
    """The body as parsed JSON when it is UTF-8 JSON, else base64."""
    try:
        return {"body_encoding": "json", "payload": json.loads(body.decode("utf-8"))}
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {"body_encoding": "base64", "body_base64": base64.b64encode(body).decode()}


def _event_id(event_id: str) -> str:
    if len(event_id) > Event._meta.get_field("id").max_length:  # type: ignore[operator]
        raise not_found("event", event_id)
    return event_id


@router.get("", response={200: EventPage, **READ_ERRORS}, summary="List events, newest first")
async def list_events(
    request: HttpRequest,
    filters: Query[EventFilters],
    paging: Query[PageParams],
) -> dict[str, Any]:
    query = browse.EventQuery(
        source=filters.source,
        event=filters.event,
        state=filters.state.value if filters.state else None,
        since=aware(filters.since),
        until=aware(filters.until),
        delivery_id=filters.delivery_id,
        id=filters.id,
    )
    return await keyset_page(browse.events(query), paging, summary)


@router.get(
    "/{event_id}",
    response={200: EventDetail, 404: ErrorOut, **READ_ERRORS},
    summary="One event: headers, payload, deliveries and every attempt",
)
async def get_event(request: HttpRequest, event_id: str) -> dict[str, Any]:
    try:
        event = await browse.event_detail().aget(pk=_event_id(event_id))
    except Event.DoesNotExist:
        raise not_found("event", event_id) from None
    body = bytes(event.body)
    return {
        **summary(event),
        "conflict_with": event.conflict_with,
        "headers": event.headers if isinstance(event.headers, dict) else {},
        "client_ip": event.client_ip,
        "size": len(body),
        **body_fields(body),
        "deliveries": [delivery_out(d) for d in event.deliveries.all()],
        "filtered_out": _filtered_out(event.filtered_out),
    }


def _filtered_out(notes: object) -> list[dict[str, str]]:
    if not isinstance(notes, list):
        return []
    return [
        {"destination": str(n.get("destination", "")), "reason": str(n.get("reason", ""))}
        for n in notes
        if isinstance(n, dict)
    ]


@router.get(
    "/{event_id}/body",
    response={404: ErrorOut, **READ_ERRORS},
    summary="The event's raw body, with its original content type",
    openapi_extra={
        "responses": {
            200: {
                "description": "The body byte for byte, with the sender's content type "
                "(JSON, a form, XML, anything: so any value)",
                "content": {"*/*": {"schema": {}}},
            }
        }
    },
)
async def get_body(request: HttpRequest, event_id: str) -> HttpResponse:
    row = await Event.objects.filter(pk=_event_id(event_id)).values("body", "content_type").afirst()
    if row is None:
        raise not_found("event", event_id)
    response = HttpResponse(bytes(row["body"]), content_type=row["content_type"] or None)
    # The sender chose the content type: a browser must not run it as a page of this site.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"
    return response


@router.post(
    "/{event_id}/replay",
    auth=WRITE,
    response={200: ReplayOut, 409: ErrorOut, **WRITE_ERRORS},
    summary="Replay the event to every destination it goes to, or to chosen ones",
)
async def replay_event(request: HttpRequest, event_id: str, body: ReplayIn) -> dict[str, Any]:
    if not await Event.objects.filter(pk=_event_id(event_id)).aexists():
        raise not_found("event", event_id)
    if body.destinations is None:
        results = [await gate.areplay_events([event_id], force=body.force)]
    else:
        if not body.destinations:
            raise ApiError(400, "bad_request", "destinations: name at least one (or omit it)")
        results = [
            await gate.areplay_events([event_id], name, force=body.force)
            for name in dict.fromkeys(body.destinations)
        ]
    return replay_answer(
        gate.ReplayResult(
            tuple(c for r in results for c in r.created),
            tuple(s for r in results for s in r.skipped),
        ),
        dry_run=False,
    )
