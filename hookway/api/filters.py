"""The event filters the list (``GET /api/v1/events``) and the stream
(``GET /api/v1/stream``) share, so a subscriber sees exactly what the list would show.

``state`` is the API's delivery state, which splits the stored ``pending`` in two:

=========  =====================================================
pending    waiting for its first attempt (stored pending, 0 attempts)
failing    waiting for a retry (stored pending, 1+ attempts)
delivered  a 2xx came back (stored succeeded)
dead       gave up (stored dead)
=========  =====================================================

An event matches a state when any of its deliveries is in it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from ninja import Schema
from pydantic import Field


class ApiState(StrEnum):
    PENDING = "pending"
    FAILING = "failing"
    DELIVERED = "delivered"
    DEAD = "dead"


def api_state(stored_state: str, attempts: int) -> ApiState:
    """The API's name for a delivery in ``stored_state`` after ``attempts`` attempts."""
    if stored_state == "succeeded":
        return ApiState.DELIVERED
    if stored_state == "dead":
        return ApiState.DEAD
    return ApiState.FAILING if attempts else ApiState.PENDING


class EventFilters(Schema):
    """Query parameters; every one given must hold."""

    source: str | None = Field(None, description="The source's slug.")
    event: str | None = Field(
        None, max_length=255, description="Event name, or a glob: `push`, `merge_*`, `*_hook`."
    )
    state: ApiState | None = Field(None, description="Any of the event's deliveries is in it.")
    since: datetime | None = Field(None, description="Received at or after (ISO 8601).")
    until: datetime | None = Field(None, description="Received before (ISO 8601).")
    delivery_id: str | None = Field(
        None, max_length=255, description="The sender's delivery id (e.g. X-GitHub-Delivery)."
    )
    id: str | None = Field(None, max_length=32, description="Hookway's event id (evt_…).")
