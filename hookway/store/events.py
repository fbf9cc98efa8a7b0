"""Writing what ingest received: one Event and its Delivery rows in one transaction (the
transactional outbox). Sync code: the async side reaches it only through hookway.gate."""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, OperationalError, connection, transaction

from hookway import ids
from hookway.models import Delivery, DeliveryState, Event, Route, Source

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


# A source's enabled routes, cached like sources (hookway.gate): every batch needs them
# and they change rarely. Saving or deleting a Route or Destination in this process
# clears the cache; other processes see a change within ROUTE_CACHE_SECONDS.
ROUTE_CACHE_SECONDS = 1.0
_route_cache: dict[int, tuple[float, list[tuple[int, list[str]]]]] = {}


def clear_route_cache() -> None:
    _route_cache.clear()


def _routes(source_id: int) -> list[tuple[int, list[str]]]:
    now = time.monotonic()
    hit = _route_cache.get(source_id)
    if hit is not None and now - hit[0] < ROUTE_CACHE_SECONDS:
        return hit[1]
    routes = [
        (destination_id, patterns or [])
        for destination_id, patterns in Route.objects.filter(
            source_id=source_id, enabled=True, destination__enabled=True
        ).values_list("destination_id", "events")
    ]
    _route_cache[source_id] = (now, routes)
    return routes


def _notify_dispatchers() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])


Row = tuple[Any, ...]


def _write(batch: Sequence[IncomingEvent]) -> list[StoredEvent]:
    """Insert a batch inside the caller's transaction: dedupe (against the database and
    within the batch), then one multi-row insert of events and one of deliveries."""
    adapt = connection.ops.adapt_datetimefield_value
    results: list[StoredEvent] = []
    event_rows: list[Row] = []
    delivery_rows: list[Row] = []
    routes: dict[int, list[tuple[int, list[str]]]] = {}
    seen: dict[tuple[int, str], str] = {}
    for incoming in batch:
        key = (incoming.source_id, incoming.delivery_id) if incoming.delivery_id else None
        if key is not None:
            original = seen.get(key) or _existing(*key)
            if original is not None:
                results.append(StoredEvent(id=original, deliveries=0, duplicate=True))
                continue
        event_id = ids.event_id()
        if key is not None:
            seen[key] = event_id
        if incoming.source_id not in routes:
            routes[incoming.source_id] = _routes(incoming.source_id)
        received_at = adapt(incoming.received_at)
        event_rows.append(
            (
                event_id,
                incoming.source_id,
                incoming.event_name,
                incoming.delivery_id,
                incoming.content_type,
                json.dumps(incoming.headers),
                incoming.body,
                received_at,
            )
        )
        count = 0
        for destination_id, patterns in routes[incoming.source_id]:
            if route_matches(patterns, incoming.event_name):
                delivery_rows.append(
                    (
                        ids.delivery_id(),
                        event_id,
                        destination_id,
                        DeliveryState.PENDING.value,
                        0,
                        received_at,
                        "",
                        "",
                        received_at,
                    )
                )
                count += 1
        results.append(StoredEvent(id=event_id, deliveries=count, duplicate=False))
    with connection.cursor() as cursor:
        if event_rows:
            cursor.executemany(_EVENT_INSERT.sql(), event_rows)
        if delivery_rows:
            cursor.executemany(_DELIVERY_INSERT.sql(), delivery_rows)
    if delivery_rows:
        _notify_dispatchers()
    return results


class _Insert:
    """A prepared INSERT for one table, built from the model's own table and column
    names. Used instead of ``bulk_create`` on ingest's hot path: the writer thread holds
    the GIL while it prepares rows, and the ORM's per-field preparation cost about four
    times as much Python per event (59 us measured), time the event loop could not run."""

    def __init__(
        self, model: type[Event] | type[Delivery], columns: tuple[str, ...], json_column: str = ""
    ):
        self.model = model
        self.columns = columns
        self.json_column = json_column
        self._sql: dict[str, str] = {}

    def sql(self) -> str:
        vendor = connection.vendor
        if vendor not in self._sql:
            qn = connection.ops.quote_name
            fields = {f.column for f in self.model._meta.concrete_fields}
            assert set(self.columns) <= fields, "column list out of date with the model"
            marks = [
                "%s::jsonb" if c == self.json_column and vendor == "postgresql" else "%s"
                for c in self.columns
            ]
            self._sql[vendor] = (
                f"INSERT INTO {qn(self.model._meta.db_table)} "  # noqa: S608 - names from the model
                f"({', '.join(qn(c) for c in self.columns)}) VALUES ({', '.join(marks)})"
            )
        return self._sql[vendor]


_EVENT_INSERT = _Insert(
    Event,
    (
        "id",
        "source_id",
        "event_name",
        "delivery_id",
        "content_type",
        "headers",
        "body",
        "received_at",
    ),
    json_column="headers",
)
_DELIVERY_INSERT = _Insert(
    Delivery,
    (
        "id",
        "event_id",
        "destination_id",
        "state",
        "attempts",
        "next_attempt_at",
        "lease_owner",
        "last_error",
        "created_at",
    ),
)


def store_events(batch: Sequence[IncomingEvent]) -> list[StoredEvent]:
    """Store a batch of events (see ``_store_events``). On SQLite, waits for another
    process's write lock in sub-millisecond steps rather than with SQLite's busy
    handler, whose sleeps grow to 100 ms: with two web processes those sleeps were the
    whole p99 of ingest (bench/results/ingest.md). Gives up after HOOKWAY_DB_TIMEOUT
    with the OperationalError that ingest turns into 503."""
    if connection.vendor != "sqlite":
        return _store_events(batch)
    from django.conf import settings

    timeout = settings.HOOKWAY.db_timeout
    deadline = time.monotonic() + timeout
    pause = 0.0002
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                return _store_events(batch)
            except OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.002)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")


def _store_events(batch: Sequence[IncomingEvent]) -> list[StoredEvent]:
    """Store a batch of events, each with one delivery per matching route, in ONE
    transaction: one commit (one fsync) acknowledges them all (group commit).

    Returns one result per event, in order: the new event, or the original one
    (``duplicate=True``, nothing written) when its source already has an event with the
    same delivery id. Raises django.db.OperationalError when the database can't commit
    in time; then nothing of the batch is stored.
    """
    try:
        with transaction.atomic():
            return _write(batch)
    except IntegrityError:
        # Another process stored one of these delivery ids between our check and our
        # insert (PostgreSQL, several web processes). Redo the batch one event at a
        # time, so each duplicate is answered as such and the rest still commit.
        with transaction.atomic():
            out = []
            for incoming in batch:
                try:
                    with transaction.atomic():
                        out.extend(_write([incoming]))
                except IntegrityError:
                    assert incoming.delivery_id is not None
                    original = _existing(incoming.source_id, incoming.delivery_id)
                    if original is None:
                        raise
                    out.append(StoredEvent(id=original, deliveries=0, duplicate=True))
            return out


def store_event(incoming: IncomingEvent) -> StoredEvent:
    """Store one event (see store_events)."""
    return store_events([incoming])[0]


def database_ready() -> bool:
    """True when the database answers a trivial query."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)
