"""The event stream's messages and its resume cursor (the SSE ``id:``).

A cursor says exactly which changes a client has been given, so a reconnect with
``Last-Event-ID`` gives it the rest and nothing twice:

- ``event``: every event with an id up to this one. Event ids are time-ordered (ULIDs,
  hookway.ids) and written under the database's write lock, so they become visible in
  id order.
- ``attempt`` and ``pending``: every finished attempt with an id up to ``attempt``,
  except those in ``pending``, which were still in flight. Attempts are numbered when
  they are claimed but finish in any order (a slow destination's attempt finishes after
  a fast one's), so a single high-water mark would skip the slow one.

Encoded as ``<event id>.<attempt, hex>[.<pending, hex, '-'-separated>]``; ``pending``
holds only attempts in flight at the time, so it stays as small as the dispatchers'
concurrency."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from hookway.api.filters import ApiState, EventFilters
from hookway.models import AttemptOutcome
from hookway.store.changes import AttemptRow, Changes, NewEvent

_EVENT_ID = re.compile(r"(evt_[0-9a-z]{26})?\Z")
MAX_PENDING = 10_000


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Cursor:
    event: str = ""
    attempt: int = 0
    pending: frozenset[int] = frozenset()

    def has_event(self, event_id: str) -> bool:
        return event_id <= self.event

    def has_attempt(self, pk: int) -> bool:
        return pk <= self.attempt and pk not in self.pending

    def has(self, message: Message) -> bool:
        """True when a client at this cursor was given ``message`` already."""
        if message.kind == "event":
            return self.has_event(message.event_id)
        return self.has_attempt(message.attempt_pk)

    def merge(self, other: Cursor) -> Cursor:
        """What a client has been given when it has been given what both say."""
        low, high = (self, other) if self.attempt <= other.attempt else (other, self)
        # Not given under either: pending in ``high`` and, in ``low``, pending or past it.
        pending = frozenset(p for p in high.pending if p in low.pending or p > low.attempt)
        return Cursor(max(self.event, other.event), high.attempt, pending)

    def encode(self) -> str:
        text = f"{self.event}.{self.attempt:x}"
        if self.pending:
            text += "." + "-".join(f"{p:x}" for p in sorted(self.pending))
        return text

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """The cursor ``encode`` wrote; BadCursor if ``text`` is not one."""
        parts = text.strip().split(".")
        if len(parts) not in (2, 3) or not _EVENT_ID.match(parts[0]):
            raise BadCursor(f"{text[:100]!r} is not an id this stream sent")
        try:
            attempt = int(parts[1], 16)
            pending = frozenset(int(p, 16) for p in parts[2].split("-")) if len(parts) == 3 else ()
        except ValueError:
            raise BadCursor(f"{text[:100]!r} is not an id this stream sent") from None
        if attempt < 0 or len(pending) > MAX_PENDING or any(not 0 < p <= attempt for p in pending):
            raise BadCursor(f"{text[:100]!r} is not an id this stream sent")
        return cls(parts[0], attempt, frozenset(pending))


@dataclass(frozen=True)
class Message:
    """One change, as the stream sends it, with what filters match it against."""

    kind: Literal["event", "delivery"]
    data: dict[str, Any]
    event_id: str
    source: str
    event_name: str
    received_at: datetime
    sender_delivery_id: str | None
    states: frozenset[ApiState]
    attempt_pk: int = 0
    # Where the watcher was once it had produced this message.
    cursor: Cursor = field(default_factory=Cursor)

    def sse(self, cursor: Cursor) -> str:
        body = json.dumps(self.data, separators=(",", ":"), default=str)
        return f"id: {cursor.encode()}\nevent: {self.kind}\ndata: {body}\n\n"


def matches(filters: EventFilters, message: Message) -> bool:
    """True when ``message`` concerns an event the event list would show with these
    filters (for an outcome: its event, with the delivery's new state)."""
    f = filters
    if f.source is not None and message.source != f.source:
        return False
    if f.event is not None and not fnmatch.fnmatchcase(message.event_name, f.event):
        return False
    if f.state is not None and f.state not in message.states:
        return False
    if f.since is not None and message.received_at < _aware(f.since):
        return False
    if f.until is not None and message.received_at >= _aware(f.until):
        return False
    if f.delivery_id is not None and message.sender_delivery_id != f.delivery_id:
        return False
    return f.id is None or message.event_id == f.id


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_OUTCOME_STATE = {
    AttemptOutcome.SUCCESS: ApiState.DELIVERED,
    AttemptOutcome.RETRY: ApiState.FAILING,
    AttemptOutcome.FAILED: ApiState.DEAD,
}


def _event_message(row: NewEvent, cursor: Cursor) -> Message:
    counts = {
        ApiState.PENDING: row.pending,
        ApiState.FAILING: row.failing,
        ApiState.DELIVERED: row.delivered,
        ApiState.DEAD: row.dead,
    }
    return Message(
        kind="event",
        data={
            "id": row.id,
            "source": row.source,
            "event_name": row.event_name,
            "received_at": row.received_at.isoformat(),
            "deliveries": {state.value: n for state, n in counts.items()},
        },
        event_id=row.id,
        source=row.source,
        event_name=row.event_name,
        received_at=row.received_at,
        sender_delivery_id=row.delivery_id,
        states=frozenset(s for s, n in counts.items() if n),
        cursor=cursor,
    )


def _outcome_message(row: AttemptRow, cursor: Cursor) -> Message:
    state = _OUTCOME_STATE[AttemptOutcome(row.outcome)]
    return Message(
        kind="delivery",
        data={
            "delivery": row.delivery_id,
            "event": row.event_id,
            "source": row.source,
            "event_name": row.event_name,
            "destination": row.destination,
            "state": state.value,
            "attempt": row.number,
            "status_code": row.status_code,
            "error_kind": row.error_kind or None,
        },
        event_id=row.event_id,
        source=row.source,
        event_name=row.event_name,
        received_at=row.received_at,
        sender_delivery_id=row.sender_delivery_id,
        states=frozenset({state}),
        attempt_pk=row.pk,
        cursor=cursor,
    )


def _everyone(source: str) -> bool:
    return True


def advance(
    cursor: Cursor, changes: Changes, wanted: Callable[[str], bool] = _everyone
) -> tuple[list[Message], Cursor]:
    """The messages ``changes`` make for a reader at ``cursor`` (events first, then
    outcomes, each in id order), each carrying the cursor just after it, and the cursor
    after them all. Changes of a source nobody ``wanted`` move the cursor and make no
    message: a crowd of subscribers to a quiet source costs nothing per busy event."""
    out: list[Message] = []
    for event in changes.events:
        if cursor.has_event(event.id):
            continue
        cursor = Cursor(event.id, cursor.attempt, cursor.pending)
        if wanted(event.source):
            out.append(_event_message(event, cursor))
    for row in changes.attempts:
        finished = row.outcome != AttemptOutcome.IN_FLIGHT
        if row.pk > cursor.attempt:
            pending = cursor.pending if finished else cursor.pending | {row.pk}
            cursor = Cursor(cursor.event, row.pk, pending)
        elif row.pk in cursor.pending and finished:
            cursor = Cursor(cursor.event, cursor.attempt, cursor.pending - {row.pk})
        else:
            continue
        if finished and wanted(row.source):
            out.append(_outcome_message(row, cursor))
    return out, cursor
