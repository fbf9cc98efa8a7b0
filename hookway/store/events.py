"""Writing what ingest received: one Event and its Delivery rows in one transaction (the
transactional outbox). Sync code: the async side reaches it only through hookway.gate.

Ingest stores webhooks in groups (group commit: one transaction, one fsync, for every
webhook waiting), and each webhook has its own deadline: its sender must get an answer
within HOOKWAY_DB_TIMEOUT of arriving. So a group is a list of *claims*: the store takes
a claim (``Claim.take``) only once it can write it at once (SQLite: the write lock is
held; PostgreSQL: the transaction started, with statement timeouts set to the earliest
deadline taken), and the async side answers 503 for any claim still untaken at its
deadline. One webhook the database refuses fails alone: the others are written without
it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)

from hookway import conf, ids
from hookway.models import Delivery, DeliveryState, Event, Route, Source
from hookway.outbound import NOTIFY_CHANNEL
from hookway.routing import expr, lanes, rules
from hookway.store.db import AdaptedDatetime, Insert, db_now, disconnected
from hookway.store.errors import (
    NotStored,
    SourceGone,
    StoreTimeout,
    StoreUnavailable,
    Unstorable,
)

__all__ = [
    "NOTIFY_CHANNEL",
    "Claim",
    "IncomingEvent",
    "RouteTarget",
    "SourceSpec",
    "StoredEvent",
    "store_claims",
    "store_event",
    "store_events",
    "store_in_transaction",
]

logger = logging.getLogger("hookway.ingest")


@dataclass(frozen=True)
class SourceSpec:
    """A snapshot of a Source row, all that ingest needs, safe to pass between threads."""

    id: int
    slug: str
    # As stored: the view makes it a VerifyScheme just before verifying, so a row naming
    # no known scheme fails its requests there (500), not the source lookup.
    verify: str
    secrets: tuple[str, ...] = field(repr=False)
    require_event_name: bool
    max_body_bytes: int


@dataclass(frozen=True)
class IncomingEvent:
    source_id: int
    event_name: str
    delivery_id: str | None
    content_type: str
    headers: dict[str, str]
    body: bytes = field(repr=False)
    received_at: datetime
    client_ip: str | None = None
    # W3C Trace Context to store with the event (hookway.tracing); "" without a trace.
    traceparent: str = ""
    tracestate: str = ""


@dataclass(frozen=True)
class StoredEvent:
    id: str
    deliveries: int
    duplicate: bool
    # The earlier event whose delivery id this one reused with a different body.
    conflict_with: str = ""


class Claim(Protocol):
    """One webhook waiting to be stored, with its deadline (``time.monotonic()``)."""

    @property
    def incoming(self) -> IncomingEvent: ...

    @property
    def deadline(self) -> float: ...

    def take(self) -> bool:
        """Commit to writing it now; False if its deadline passed or it was given up."""
        ...

    def live(self) -> bool:
        """True while it may still be taken."""
        ...


@dataclass
class _Plain:
    """A claim with no one waiting on it (management commands, benchmarks, tests)."""

    incoming: IncomingEvent
    deadline: float

    def take(self) -> bool:
        return self.live()

    def live(self) -> bool:
        return time.monotonic() < self.deadline


def get_source(slug: str) -> SourceSpec | None:
    """Return the enabled source with this slug, or None if there is none."""
    row = (
        Source.objects.filter(slug=slug, enabled=True)
        .values_list("id", "slug", "verify", "secrets", "require_event_name", "max_body_bytes")
        .first()
    )
    if row is None:
        return None
    pk, found_slug, verify, secrets, require_event_name, max_body_bytes = row
    return SourceSpec(
        id=pk,
        slug=found_slug,
        verify=verify,
        secrets=tuple(str(s) for s in secrets) if isinstance(secrets, list) else (),
        require_event_name=require_event_name,
        max_body_bytes=max_body_bytes,
    )


# True when a route with these glob patterns takes this event (no patterns: all).
route_matches = rules.event_name_matches


class _Seen(NamedTuple):
    event_id: str
    body_sha256: str


def _existing(source_id: int, delivery_id: str) -> list[_Seen]:
    """Events of this source with this delivery id, oldest first."""
    return [
        _Seen(*row)
        for row in Event.objects.filter(source_id=source_id, delivery_id=delivery_id)
        .order_by("received_at", "id")
        .values_list("id", "body_sha256")
    ]


class RouteTarget(NamedTuple):
    """An enabled route of a source: where it delivers, the event names it takes, and
    its filter and match compiled (hookway.routing). Its destination may be paused or
    disabled: the delivery is created all the same and waits
    (hookway.store.destinations), so resuming or enabling it loses nothing."""

    destination_id: int
    patterns: list[str]
    route_id: int = 0
    destination_name: str = ""
    source_slug: str = ""
    compiled: rules.RouteRules | None = None
    # Why a stored filter or match can't be used (a row edited by hand): the route then
    # takes no event, and each says why.
    broken: str = ""
    # The destination's order_key, compiled, when it is ordered and has one; or why the
    # stored one can't be used (its deliveries then take the fallback lane, saying so).
    order_key: expr.Expression | None = None
    order_key_broken: str = ""

    @property
    def keyed(self) -> bool:
        """True when its deliveries each get a lane key from the event."""
        return self.order_key is not None or bool(self.order_key_broken)

    def key(self, event: rules.EventVariables) -> lanes.Key:
        """This event's lane key at the destination (lanes.FALLBACK and why, if none)."""
        if self.order_key_broken:
            return lanes.Key(lanes.FALLBACK, self.order_key_broken)
        if self.order_key is None:
            return lanes.Key(lanes.FALLBACK)
        return lanes.evaluate(self.order_key, event)

    def refuses(self, event: rules.EventVariables) -> str | None:
        """None when the route's filter and match take the event, else why not."""
        if self.broken:
            return self.broken
        if self.compiled is None or not self.compiled.selects:
            return None
        try:
            return rules.decide(self.compiled, event)
        except Exception as exc:  # a bug must not cost the event: it is still stored
            logger.exception("evaluating route %d's filter failed", self.route_id)
            return f"filter error: internal error ({type(exc).__name__})"


class _CachedRoutes(NamedTuple):
    read_at: float  # time.monotonic()
    routes: list[RouteTarget]


# A source's enabled routes, cached like sources (hookway.gate): every batch needs them
# and they change rarely. Saving or deleting a Route or Destination in this process
# clears the cache; other processes see a change within ROUTE_CACHE_SECONDS.
ROUTE_CACHE_SECONDS = 1.0
_route_cache: dict[int, _CachedRoutes] = {}


def clear_route_cache() -> None:
    _route_cache.clear()


def _routes(source_id: int) -> list[RouteTarget]:
    now = time.monotonic()
    hit = _route_cache.get(source_id)
    if hit is not None and now - hit.read_at < ROUTE_CACHE_SECONDS:
        return hit.routes
    routes = [
        _target(*row)
        for row in Route.objects.filter(source_id=source_id, enabled=True).values_list(
            "pk",
            "destination_id",
            "destination__name",
            "source__slug",
            "events",
            "filter",
            "match",
            "destination__ordered",
            "destination__order_key",
        )
    ]
    _route_cache[source_id] = _CachedRoutes(now, routes)
    return routes


def _target(
    pk: int,
    destination_id: int,
    destination_name: str,
    source_slug: str,
    patterns: list[str] | None,
    filter: str,
    match: object,
    ordered: bool = False,
    order_key: str = "",
) -> RouteTarget:
    compiled: rules.RouteRules | None = None
    broken = ""
    if filter or match:
        try:
            # Compiled programs are cached by text (hookway.routing.expr): refreshing
            # this cache every second compiles nothing new.
            compiled = rules.check(filter, match or None)
        except rules.RuleError as exc:
            broken = f"the route's rules can't be used: {exc}"
    key: expr.Expression | None = None
    key_broken = ""
    if ordered and order_key:
        try:
            key = lanes.check(order_key)
        except rules.RuleError as exc:
            key_broken = (
                f"order_key error: the destination's order_key can't be used ({exc}); "
                "sent in the empty key's lane"
            )
    return RouteTarget(
        destination_id,
        patterns or [],
        route_id=pk,
        destination_name=destination_name,
        source_slug=source_slug,
        compiled=compiled,
        broken=broken,
        order_key=key,
        order_key_broken=key_broken,
    )


def _notify_dispatchers() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])


class _EventRow(NamedTuple):
    """One row of _EVENT_INSERT: its fields are the columns written, in order."""

    id: str
    source_id: int
    event_name: str
    delivery_id: str | None
    content_type: str
    headers: str  # JSON text
    body: bytes
    body_sha256: str
    conflict_with: str
    filtered_out: str  # JSON text
    received_at: AdaptedDatetime
    client_ip: Any
    traceparent: str
    tracestate: str


class _DeliveryRow(NamedTuple):
    """One row of _DELIVERY_INSERT: its fields are the columns written, in order."""

    id: str
    event_id: str
    destination_id: int
    state: str
    attempts: int
    next_attempt_at: AdaptedDatetime
    lease_owner: str
    last_error: str
    created_at: AdaptedDatetime
    order_key: str
    order_key_error: str


def _write(batch: Sequence[IncomingEvent]) -> list[StoredEvent]:
    """Insert a batch inside the caller's transaction: dedupe (against the database and
    within the batch), then one multi-row insert of events and one of deliveries.

    A delivery id seen before is a duplicate only with the same body (by SHA-256): most
    schemes don't sign the id, so a captured body replayed under a chosen id must not
    turn the real event with that id into a "duplicate". The same id with another body
    is stored as a new event marked ``conflict_with`` the first one."""
    # Looked up once per group: each ``connection.ops`` goes through Django's
    # connection handler and asgiref's Local, on the writer thread that shares the GIL
    # with the event loop.
    ops = connection.ops
    adapt = ops.adapt_datetimefield_value
    adapt_ip = ops.adapt_ipaddressfield_value
    results: list[StoredEvent] = []
    event_rows: list[_EventRow] = []
    delivery_rows: list[_DeliveryRow] = []
    routes: dict[int, list[RouteTarget]] = {}
    seen: dict[tuple[int, str], list[_Seen]] = {}
    due = adapt(db_now())
    for incoming in batch:
        digest = hashlib.sha256(incoming.body).hexdigest()
        conflict_with = ""
        key = None
        if incoming.delivery_id:
            key = (incoming.source_id, incoming.delivery_id)
            if key not in seen:
                seen[key] = _existing(*key)
            earlier = seen[key]
            same = next((e for e in earlier if e.body_sha256 == digest), None)
            if same is not None:
                results.append(StoredEvent(id=same.event_id, deliveries=0, duplicate=True))
                continue
            if earlier:
                conflict_with = earlier[0].event_id
        event_id = ids.event_id()
        if key is not None:
            seen[key].append(_Seen(event_id, digest))
        if incoming.source_id not in routes:
            routes[incoming.source_id] = _routes(incoming.source_id)
        taken, filtered_out = _fan_out(incoming, routes[incoming.source_id])
        event_rows.append(
            _EventRow(
                id=event_id,
                source_id=incoming.source_id,
                event_name=incoming.event_name,
                delivery_id=incoming.delivery_id,
                content_type=incoming.content_type,
                headers=json.dumps(incoming.headers),
                body=incoming.body,
                body_sha256=digest,
                conflict_with=conflict_with,
                filtered_out=json.dumps(filtered_out) if filtered_out else "[]",
                received_at=adapt(incoming.received_at),
                client_ip=adapt_ip(incoming.client_ip),
                traceparent=incoming.traceparent,
                tracestate=incoming.tracestate,
            )
        )
        for route, lane in taken:
            delivery_rows.append(
                _DeliveryRow(
                    id=ids.delivery_id(),
                    event_id=event_id,
                    destination_id=route.destination_id,
                    state=DeliveryState.PENDING.value,
                    attempts=0,
                    next_attempt_at=due,
                    lease_owner="",
                    last_error="",
                    created_at=due,
                    order_key=lane.value,
                    order_key_error=lane.problem,
                )
            )
        results.append(
            StoredEvent(
                id=event_id, deliveries=len(taken), duplicate=False, conflict_with=conflict_with
            )
        )
    with connection.cursor() as cursor:
        _EVENT_INSERT.insert(cursor, event_rows)
        _DELIVERY_INSERT.insert(cursor, delivery_rows)
    if delivery_rows:
        _notify_dispatchers()
    return results


def _fan_out(
    incoming: IncomingEvent, routes: list[RouteTarget]
) -> tuple[list[tuple[RouteTarget, lanes.Key]], list[dict[str, str]]]:
    """The routes that take this event, each with its delivery's lane key (the
    destination's order_key, once per destination), and those whose filter or match did
    not, with why (kept on the event). The body is parsed at most once, and only when a
    route whose event names match has a filter, a match or an order_key."""
    taken: list[tuple[RouteTarget, lanes.Key]] = []
    filtered_out: list[dict[str, str]] = []
    event: rules.EventVariables | None = None
    keys: dict[int, lanes.Key] = {}
    for route in routes:
        if not route_matches(route.patterns, incoming.event_name):
            continue
        if event is None and (route.compiled is not None or route.broken or route.keyed):
            event = rules.EventVariables(
                incoming.body, incoming.headers, incoming.event_name, route.source_slug
            )
        if event is not None and (route.compiled is not None or route.broken):
            reason = route.refuses(event)
            if reason is not None:
                filtered_out.append({"destination": route.destination_name, "reason": reason})
                rules.log_skip(route.route_id, route.destination_name, reason)
                continue
        key = lanes.Key(lanes.FALLBACK)
        if event is not None and route.keyed:
            if route.destination_id not in keys:
                keys[route.destination_id] = route.key(event)
                if keys[route.destination_id].problem:
                    lanes.log_fallback(
                        route.destination_id,
                        route.destination_name,
                        keys[route.destination_id].problem,
                    )
            key = keys[route.destination_id]
        taken.append((route, key))
    return taken, filtered_out


_EVENT_INSERT = Insert(Event, _EventRow._fields, json_columns=("headers", "filtered_out"))
_DELIVERY_INSERT = Insert(Delivery, _DeliveryRow._fields)


Outcome = StoredEvent | NotStored


def store_claims(claims: Sequence[Claim]) -> list[Outcome]:
    """Store a group of webhooks in one transaction (one commit, one fsync): each with
    one delivery per matching route, or as a duplicate of an earlier event.

    Returns one outcome per claim, in order: the StoredEvent, or the NotStored error
    saying why nothing of it was stored (its deadline passed, the database is
    unavailable, its source is gone, the database refused its data). Never raises for
    the database's sake; a bug is logged with its traceback and answered as unavailable.
    """
    outcomes: dict[int, Outcome] = {}
    taken: list[int] = []
    try:
        try:
            _transaction(claims, taken, outcomes, careful=False)
        except IntegrityError:
            # SQLite checks foreign keys at COMMIT (Django declares them DEFERRABLE
            # INITIALLY DEFERRED), so a source or destination deleted since it was
            # cached fails the whole group there. Write the group again, each webhook
            # checked against the database, so only the one whose source is gone fails.
            outcomes.clear()
            clear_route_cache()
            _transaction(claims, taken, outcomes, careful=True)
        except (OperationalError, InterfaceError) as exc:
            if not disconnected(exc):
                raise
            # The connection died (a restarted server, a terminated backend): one
            # more try on a new one, so the group isn't refused for a stale socket.
            logger.warning("the database connection broke (%s); reconnecting", exc)
            connection.close()
            outcomes.clear()
            _transaction(claims, taken, outcomes, careful=False)
    except (OperationalError, InterfaceError, IntegrityError) as exc:
        logger.error("storing %d webhooks failed: %s", len(claims), str(exc).strip())
        if not connection.in_atomic_block:
            connection.close()  # it may be broken (a terminated backend): reconnect next time
        failure: NotStored = StoreUnavailable(f"the database could not commit: {exc}")
        outcomes = {i: failure for i, _ in enumerate(claims)}
    except Exception:  # a bug in one group must not leave its senders waiting
        logger.exception("storing %d webhooks failed unexpectedly", len(claims))
        failure = StoreUnavailable("the webhook could not be stored")
        outcomes = {i: failure for i, _ in enumerate(claims)}
    expired = StoreTimeout("its deadline passed before it could be committed")
    return [outcomes.get(i, expired) for i, _ in enumerate(claims)]


def _transaction(
    claims: Sequence[Claim], taken: list[int], outcomes: dict[int, Outcome], *, careful: bool
) -> None:
    """One transaction: get the write lock, take the live claims (unless ``taken``
    already holds a previous try's), write them, commit. ``outcomes`` holds what was
    written once it returns.

    The write lock (SQLite's, taken by BEGIN IMMEDIATE; PostgreSQL's ROW EXCLUSIVE on
    the two tables, which waits only for a lock held against writes: a migration, an
    operator's LOCK TABLE) is tried in short steps while a claim is live, and claims are
    taken only once it is held: a locked database then delays only claims still free to
    answer 503 at their deadline. The steps are sub-millisecond sleeps rather than
    SQLite's busy handler, whose sleeps grow to 100 ms (with two web processes those
    sleeps were the whole p99 of ingest: bench/results/ingest.md)."""
    retry_until = max((claims[i].deadline for i in taken), default=0.0)
    pause = 0.0002
    with _busy_handler_off():
        while (time.monotonic() < retry_until) if taken else any(c.live() for c in claims):
            locked = False
            try:
                with transaction.atomic():
                    _lock_for_writes()
                    locked = True
                    if not taken:
                        taken.extend(i for i, c in enumerate(claims) if c.take())
                    if not taken:
                        return
                    _bound_statements(min(claims[i].deadline for i in taken))
                    _write_taken(claims, taken, outcomes, careful=careful)
                return
            except OperationalError as exc:
                if locked or not _lock_busy(exc):
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.002)
    if taken:
        raise OperationalError("the write lock was not available in time")


@contextlib.contextmanager
def _busy_handler_off() -> Iterator[None]:
    """On SQLite, wait for the write lock here, not in SQLite's busy handler."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout = 0")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA busy_timeout = {int(conf.get().db_timeout * 1000)}")


def _lock_for_writes() -> None:
    """PostgreSQL: take the tables' write locks, waiting at most 100 ms (SQLite's
    BEGIN IMMEDIATE has taken its write lock already)."""
    if connection.vendor == "postgresql":
        qn = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                "SET LOCAL lock_timeout = 100; "
                f"LOCK TABLE {qn(Event._meta.db_table)}, {qn(Delivery._meta.db_table)} "
                "IN ROW EXCLUSIVE MODE"
            )


def _lock_busy(exc: OperationalError) -> bool:
    """True when ``exc`` says another transaction holds the write lock."""
    if connection.vendor == "sqlite":
        return "locked" in str(exc)
    return getattr(exc.__cause__, "sqlstate", None) == "55P03"  # lock_not_available


def _bound_statements(deadline: float) -> None:
    """PostgreSQL: statements may still wait (a row another transaction is inserting):
    bound them by the earliest deadline taken. Foreign keys are checked per statement,
    not at COMMIT, so a webhook whose source was just deleted fails alone."""
    if connection.vendor == "postgresql":
        budget = max(1, int((deadline - time.monotonic()) * 1000))
        with connection.cursor() as cursor:
            cursor.execute(
                f"SET LOCAL statement_timeout = {budget}; SET LOCAL lock_timeout = {budget}; "
                "SET CONSTRAINTS ALL IMMEDIATE"
            )


def _write_taken(
    claims: Sequence[Claim], taken: list[int], outcomes: dict[int, Outcome], *, careful: bool
) -> None:
    """Write the taken claims inside the caller's transaction: all at once, or, if the
    database refuses one of them (or ``careful``), each in its own savepoint so the
    others still go in."""
    if not taken:
        return
    if not careful:
        try:
            with transaction.atomic():
                stored = _write([claims[i].incoming for i in taken])
        except (IntegrityError, DataError):
            pass
        else:
            for i, result in zip(taken, stored, strict=True):
                outcomes[i] = result
            return
    for i in taken:
        outcomes[i] = _write_alone(claims[i].incoming)


def _write_alone(incoming: IncomingEvent) -> Outcome:
    """Write one webhook in a savepoint, its source checked first; return why not if
    the database refuses it."""
    error: DatabaseError | None = None
    for _ in range(2):
        if not Source.objects.filter(pk=incoming.source_id).exists():
            return SourceGone("its source was deleted")
        try:
            with transaction.atomic():
                return _write([incoming])[0]
        except DataError as exc:
            logger.warning("the database refused a webhook's data: %s", str(exc).strip())
            return Unstorable(f"the database refused this webhook's data: {str(exc).strip()}")
        except IntegrityError as exc:
            # A route or destination vanished since the routes were cached, or another
            # process stored this delivery id first: look again with fresh routes.
            clear_route_cache()
            error = exc
    logger.error("a webhook could not be stored: %s", error)
    return StoreUnavailable(f"the webhook could not be stored: {error}")


def store_events(batch: Sequence[IncomingEvent]) -> list[StoredEvent]:
    """Store events now, with HOOKWAY_DB_TIMEOUT to do it (for code with no sender
    waiting: commands, benchmarks, tests); raise the first NotStored."""
    deadline = time.monotonic() + conf.get().db_timeout
    out: list[StoredEvent] = []
    for outcome in store_claims([_Plain(incoming, deadline) for incoming in batch]):
        if isinstance(outcome, NotStored):
            raise outcome
        out.append(outcome)
    return out


def store_event(incoming: IncomingEvent) -> StoredEvent:
    """Store one event (see store_events)."""
    return store_events([incoming])[0]


def store_in_transaction(incoming: IncomingEvent) -> StoredEvent:
    """Store one event and its deliveries inside the caller's transaction (a savepoint
    in it; a transaction of its own outside one): hookway.publish's outbox write, which
    commits or rolls back with whatever else the caller writes. Raises the database's
    error (IntegrityError if the source was deleted meanwhile) rather than answering
    for a caller whose transaction it can't see the end of."""
    with transaction.atomic():
        return _write([incoming])[0]
