"""Browsing what Hookway stored: events and deliveries, filtered, newest first, a page at
a time. The operator API reads through these querysets (with the async ORM); the console
will too, so both answer the same question the same way.

Pages use keyset (cursor) pagination: a page ends at a row, and the next page starts
strictly after it in the list's total order (newest first, ties broken by id). Events
arriving between two requests sort before the first page, so paging on never repeats
or skips a row, and a page costs the same at row 10 as at row 1,000,000 (an OFFSET would
read and discard everything before it). The cursor is opaque to clients: base64url of
the last row's time and id.

Delivery states, as the API names them (hookway.api.filters): ``pending`` (stored
pending, no attempt yet), ``failing`` (stored pending after 1+ attempts), ``delivered``
(succeeded) and ``dead``. An event is in a state when any of its deliveries is.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils.dateparse import parse_datetime

from hookway.models import Attempt, Delivery, DeliveryState, Event

M = TypeVar("M", Event, Delivery)

MAX_LIMIT = 200
DEFAULT_LIMIT = 50

# The API's state name -> the stored rows it means.
STATES: dict[str, Q] = {
    "pending": Q(state=DeliveryState.PENDING, attempts=0),
    "failing": Q(state=DeliveryState.PENDING, attempts__gt=0),
    "delivered": Q(state=DeliveryState.SUCCEEDED),
    "dead": Q(state=DeliveryState.DEAD),
}


class BadCursor(ValueError):
    """A cursor this module did not make (or made for another list)."""


@dataclass(frozen=True)
class EventQuery:
    """Filters of the event list; every one given must hold. ``event`` is a glob."""

    source: str | None = None
    event: str | None = None
    state: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    delivery_id: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class DeliveryQuery:
    """Filters of the delivery list; every one given must hold."""

    destination: str | None = None
    state: str | None = None
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before
    event: str | None = None  # the event's id


def glob_regex(pattern: str) -> str:
    """A regular expression matching what the glob ``pattern`` matches (``*`` any run of
    characters, ``?`` one; everything else literal), that Python and PostgreSQL read the
    same way."""
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif char.isalnum() or char == "_":
            parts.append(char)
        else:
            parts.append("\\" + char if char.isascii() else char)
    # (?s): "." takes newlines too; \A and \Z anchor at the very ends in both dialects.
    return "(?s)\\A" + "".join(parts) + "\\Z"


def _event_name(rows: QuerySet[Event], pattern: str) -> QuerySet[Event]:
    if "*" not in pattern and "?" not in pattern:
        return rows.filter(event_name=pattern)
    return rows.filter(event_name__regex=glob_regex(pattern))


def events(query: EventQuery) -> QuerySet[Event]:
    """Events matching ``query``, newest first (received_at, then id), without their
    bodies and headers (a list does not show them)."""
    rows = Event.objects.defer("body", "headers").select_related("source")
    if query.id is not None:
        rows = rows.filter(pk=query.id)
    if query.source is not None:
        rows = rows.filter(source__slug=query.source)
    if query.event is not None:
        rows = _event_name(rows, query.event)
    if query.delivery_id is not None:
        rows = rows.filter(delivery_id=query.delivery_id)
    if query.since is not None:
        rows = rows.filter(received_at__gte=query.since)
    if query.until is not None:
        rows = rows.filter(received_at__lt=query.until)
    if query.state is not None:
        rows = rows.filter(
            Exists(Delivery.objects.filter(STATES[query.state], event_id=OuterRef("pk")))
        )
    deliveries = Delivery.objects.select_related("destination").only(
        "id", "event_id", "state", "attempts", "destination__name"
    )
    return rows.prefetch_related(
        Prefetch("deliveries", queryset=deliveries.order_by("created_at", "id"))
    ).order_by("-received_at", "-id")


def event_detail() -> QuerySet[Event]:
    """Events with their source, every delivery (with its destination) and every attempt
    of each, in three queries whatever their number; ``aget(pk=…)`` one."""
    attempts = Attempt.objects.order_by("number")
    deliveries = (
        Delivery.objects.select_related("destination")
        .prefetch_related(Prefetch("attempt_log", queryset=attempts))
        .order_by("created_at", "id")
    )
    return Event.objects.select_related("source").prefetch_related(
        Prefetch("deliveries", queryset=deliveries)
    )


def deliveries(query: DeliveryQuery) -> QuerySet[Delivery]:
    """Deliveries matching ``query``, newest first (created_at, then id)."""
    rows = Delivery.objects.select_related("destination", "event").only(
        *(f.name for f in Delivery._meta.concrete_fields),
        "destination__name",
        "event__event_name",
        "event__received_at",
        "event__source_id",
    )
    if query.destination is not None:
        rows = rows.filter(destination__name=query.destination)
    if query.state is not None:
        rows = rows.filter(STATES[query.state])
    if query.since is not None:
        rows = rows.filter(created_at__gte=query.since)
    if query.until is not None:
        rows = rows.filter(created_at__lt=query.until)
    if query.event is not None:
        rows = rows.filter(event_id=query.event)
    return rows.order_by("-created_at", "-id")


def _field(rows: QuerySet[M]) -> str:
    return "received_at" if rows.model is Event else "created_at"


def after(rows: QuerySet[M], cursor: str | None) -> QuerySet[M]:
    """``rows`` (ordered newest first by events() or deliveries()) past ``cursor``; raises
    BadCursor for one that is not a cursor of this list."""
    if not cursor:
        return rows
    at, pk = decode_cursor(cursor, rows.model)
    field = _field(rows)
    # "(at, pk) < (cursor's at, cursor's pk)", spelled so the first term alone is a
    # range on the (time, id) index: an OR of the two cases makes SQLite scan instead.
    return rows.filter(Q(**{f"{field}__lte": at}), Q(**{f"{field}__lt": at}) | Q(pk__lt=pk))


def cursor_of(row: Event | Delivery) -> str:
    """The cursor of the page that starts after ``row``."""
    at = row.received_at if isinstance(row, Event) else row.created_at
    raw = json.dumps([type(row).__name__[0], at.isoformat(), row.pk], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, model: type[Event] | type[Delivery]) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        kind, at, pk = json.loads(raw)
        when = parse_datetime(at) if isinstance(at, str) else None
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise BadCursor("not a cursor this list gave") from None
    if (
        kind != model.__name__[0]
        or when is None
        or when.tzinfo is None  # cursor_of writes the zone; a naive time was not made here
        or not isinstance(pk, str)
        or len(pk) > 32
    ):
        raise BadCursor("not a cursor this list gave")
    return when, pk


def page_size(limit: int | None) -> int:
    return DEFAULT_LIMIT if limit is None else max(1, min(limit, MAX_LIMIT))


@dataclass(frozen=True)
class Page(Generic[M]):
    """One page of a list: its rows, and the cursor of the page after it (None on the
    last page)."""

    rows: list[M]
    next: str | None


async def apage(rows: QuerySet[M], cursor: str | None, limit: int | None) -> Page[M]:
    """The page of ``rows`` (newest first, from events() or deliveries()) after
    ``cursor``, of at most ``limit`` rows; raises BadCursor for a cursor of another
    list. One row more than the page is read, to know whether another page follows.
    (The operator API's lists and the console's event list both page with this.)"""
    rows = after(rows, cursor)
    size = page_size(limit)
    found = [row async for row in rows[: size + 1]]
    more = len(found) > size
    found = found[:size]
    return Page(found, cursor_of(found[-1]) if more else None)
