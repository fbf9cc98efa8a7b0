"""/api/v1/deliveries: every delivery of every event, newest first, and replaying them
in bulk by filter (hookway.store.replay, through the gate: idempotent unless ``force``,
every skip with its reason)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
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
from hookway.api.errors import ApiError
from hookway.api.filters import ApiState, api_state
from hookway.models import Delivery
from hookway.store import browse

router = Router(tags=["deliveries"])

# The most deliveries one bulk replay takes: one transaction, and an answer listing each.
MAX_BULK = 10_000


class DeliveryFilters(Schema):
    destination: str | None = Field(None, max_length=64, description="The destination's name.")
    state: ApiState | None = None
    since: datetime | None = Field(None, description="Created at or after (ISO 8601).")
    until: datetime | None = Field(None, description="Created before (ISO 8601).")
    event: str | None = Field(None, max_length=32, description="The event's id (evt_…).")


class DeliveryItem(Schema):
    id: str = Field(description="Sent as webhook-id.")
    event: str
    event_name: str
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


class DeliveryPage(Schema):
    items: list[DeliveryItem]
    next: str | None = Field(description="Pass as `cursor` for the next (older) page.")


class BulkReplayIn(DeliveryFilters):
    force: bool = Field(False, description="Replay what was replayed already, too.")
    dry_run: bool = Field(False, description="Create nothing; say what would be replayed.")


class CreatedOut(Schema):
    delivery_id: str
    event_id: str
    destination: str
    replay_of: str | None
    waits: str = Field(description="Why it won't be sent yet (destination paused or disabled).")


class SkippedOut(Schema):
    subject: str
    kind: str = Field(description="already_replayed, pending, no_route, no_target, no_such_…")
    reason: str
    done: bool = Field(description="Skipped because it is already done (not an error).")
    forceable: bool = Field(description="`force` would replay it anyway.")


class ReplayOut(Schema):
    dry_run: bool
    replayed: int = Field(description="Deliveries created (with dry_run: that would be).")
    created: list[CreatedOut]
    skipped: list[SkippedOut]


def replay_answer(result: gate.ReplayResult, *, dry_run: bool) -> dict[str, Any]:
    """The API's answer for a ReplayResult; raises 404 / 409 when the request failed (it
    created nothing and asked for something that can't be done)."""
    answer = {
        "dry_run": dry_run,
        "replayed": len(result.created),
        "created": [
            {
                "delivery_id": c.delivery_id,
                "event_id": c.event_id,
                "destination": c.destination,
                "replay_of": c.replay_of,
                "waits": c.waits,
            }
            for c in result.created
        ],
        "skipped": [
            {
                "subject": s.subject,
                "kind": s.kind.value,
                "reason": s.reason,
                "done": s.done,
                "forceable": s.forceable,
            }
            for s in result.skipped
        ],
    }
    if result.failed:
        missing = [s for s in result.refused if s.kind.value.startswith("no_such_")]
        status, code = (404, "not_found") if missing else (409, "not_replayed")
        raise ApiError(status, code, "; ".join(str(s) for s in result.refused), extra=answer)
    return answer


def _query(filters: DeliveryFilters) -> browse.DeliveryQuery:
    return browse.DeliveryQuery(
        destination=filters.destination,
        state=filters.state.value if filters.state else None,
        since=aware(filters.since),
        until=aware(filters.until),
        event=filters.event,
    )


def item(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.pk,
        "event": delivery.event_id,
        "event_name": delivery.event.event_name,
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
    }


@router.get("", response={200: DeliveryPage, **READ_ERRORS}, summary="List deliveries")
async def list_deliveries(
    request: HttpRequest,
    filters: Query[DeliveryFilters],
    paging: Query[PageParams],
) -> dict[str, Any]:
    return await keyset_page(browse.deliveries(_query(filters)), paging, item)


@router.post(
    "/replay",
    auth=WRITE,
    response={200: ReplayOut, 409: ErrorOut, **WRITE_ERRORS},
    summary="Replay every delivery matching the filters (dry_run: count them)",
)
async def replay_deliveries(request: HttpRequest, body: BulkReplayIn) -> dict[str, Any]:
    ids = [
        pk
        async for pk in browse.deliveries(_query(body))
        .order_by("created_at", "id")
        .values_list("pk", flat=True)[: MAX_BULK + 1]
    ]
    if len(ids) > MAX_BULK:
        raise ApiError(
            422,
            "too_many",
            f"more than {MAX_BULK} deliveries match: narrow the filters (since/until)",
        )
    result = await gate.areplay_deliveries(ids, force=body.force, dry_run=body.dry_run)
    return replay_answer(result, dry_run=body.dry_run)
