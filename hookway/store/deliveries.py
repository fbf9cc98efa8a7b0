"""The delivery queue's queries: the only code the dispatcher uses to touch the delivery
tables. Verbs as names: ``claim_due``, ``renew_leases``, ``record_attempts``,
``release``, ``seconds_until_due``.

The store decides nothing about retries (that is hookway.dispatch.retry) and does no
HTTP; it makes each state change atomic. Sync code, reached only through hookway.gate.

Claiming on PostgreSQL uses ``FOR UPDATE SKIP LOCKED`` so any number of dispatchers share
the queue without blocking each other; on SQLite the IMMEDIATE transaction already
serialises writers, so the same select-then-update is safe.

Every time written or compared here (leases, due times, completion) comes from
``db_now()``, the database's clock (hookway.store.db).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

from django.db import connection, transaction
from django.db.models import Min, Q, QuerySet

from hookway import headers, ids
from hookway.models import (
    Attempt,
    AttemptOutcome,
    Change,
    CircuitState,
    Delivery,
    Destination,
    Event,
    Route,
    Source,
    Worker,
)
from hookway.outbound import DeliveryState, ErrorKind, OutboundDelivery, Settlement
from hookway.policy import RATE_HORIZON
from hookway.routing import rules
from hookway.secrets import resolve_secret
from hookway.store import changelog, circuit, lanes, pacing
from hookway.store.db import AdaptedDatetime, Insert, Prepared, Slots, db_now
from hookway.store.events import clear_route_cache
from hookway.store.lanes import in_turn

logger = logging.getLogger("hookway.dispatch")

LEASE_EXPIRED = "lease expired before this attempt was recorded (its dispatcher stopped or died)"
LEASE_LOST = (
    "written after this dispatcher's lease had expired and another claimed the delivery "
    "again (it could not renew the lease: the database was out of its reach for longer)"
)
SPARED = (
    "out of attempts while its destination is paused or disabled: kept pending (not dead) "
    "for one more attempt once it is resumed and enabled"
)
ERROR_LIMIT = 2000
# Worker rows not seen for this long are removed when another process writes its own.
WORKER_FORGET_AFTER = timedelta(days=1)

# Worker.kind: a web process (its readiness checks) or a dispatcher (its lease renewals).
WorkerKind = Literal["web", "dispatcher"]


# Deliveries of a paused or disabled destination wait: never claimed, never counted as
# work left (a dispatcher run --until-empty stops), until it is resumed or enabled. Every
# claim reads the destination's row, so a change applies to every dispatcher at once.
_SENDABLE = Q(destination__enabled=True, destination__paused=False)


def _due(now: Any, *, ordered: bool = True, horizon: Any = None) -> Q:
    """Claimable now: due, its destination sendable with its circuit closed and a
    rate-limit slot within reach (hookway.store.circuit and pacing), not leased, its
    turn in its lane (hookway.store.lanes.in_turn, with ``ordered``). ``now`` and
    ``horizon`` (pacing's, from ``now``) may be a Prepared query's slots."""
    return (
        Q(state=DeliveryState.PENDING, next_attempt_at__lte=now)
        & _SENDABLE
        & Q(destination__circuit_state=CircuitState.CLOSED)
        & pacing.has_slot(now, horizon)
        & (Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        & in_turn(now, ordered=ordered)
    )


class _AttemptRow(NamedTuple):
    """A claim's attempt, in flight (the columns of _ATTEMPT_INSERT, in order)."""

    delivery_id: str
    number: int
    worker: str
    started_at: AdaptedDatetime
    duration_ms: float | None = None
    outcome: str = AttemptOutcome.IN_FLIGHT.value
    status_code: int | None = None
    error_kind: str = ""
    error: str = ""
    response_body: str = ""
    request_body: str = ""


# Not bulk_create: building Attempt objects and their fields' values was a third of the
# dispatcher's database thread's Python while it drained a backlog (hookway.store.db.Insert).
_ATTEMPT_INSERT = Insert(Attempt, _AttemptRow._fields, complete=True)


class _Candidate(NamedTuple):
    pk: str
    destination_id: int
    attempts: int
    lease_expires_at: datetime | None
    concurrency: int
    timeout: float


class _Details(NamedTuple):
    pk: str
    attempts: int
    event_id: str
    event_name: str
    source_slug: str
    destination_id: int
    destination_name: str
    url: str
    signing_secret: str
    timeout: float
    max_attempts: int
    body: bytes | memoryview
    content_type: str
    next_attempt_at: datetime
    headers: object  # JSON: a dict of name to a literal or env:NAME
    bearer_token: str
    basic_auth: str
    forward_headers: object  # JSON: a list of glob patterns
    handler: str
    celery_task: str
    received_at: datetime
    traceparent: str | None  # None: stored before tracing existed
    tracestate: str | None


# The fields _Candidate and _Details are read from, in order.
_CANDIDATE_FIELDS = (
    "pk",
    "destination_id",
    "attempts",
    "lease_expires_at",
    "destination__concurrency",
    "destination__timeout_seconds",
)
_DETAIL_FIELDS = (
    "pk",
    "attempts",
    "event_id",
    "event__event_name",
    "event__source__slug",
    "destination_id",
    "destination__name",
    "destination__url",
    "destination__signing_secret",
    "destination__timeout_seconds",
    "destination__max_attempts",
    "event__body",
    "event__content_type",
    "next_attempt_at",
    "destination__headers",
    "destination__bearer_token",
    "destination__basic_auth",
    "destination__forward_headers",
    "destination__handler",
    "destination__celery_task",
    "event__received_at",
    "event__traceparent",
    "event__tracestate",
)

_AT = Delivery._meta.get_field("next_attempt_at")
_DELIVERY_PK = Delivery._meta.pk
_DESTINATION_PK = Destination._meta.pk


def _candidates(s: Slots, *, ordered: bool, full: bool, held: bool) -> QuerySet[Any, Any]:
    """claim_due's candidates, oldest due first (a Prepared query's builder): ``full``,
    destinations at their concurrency; ``held``, deliveries this worker still holds."""
    now = s.one("now", _AT)
    candidates = Delivery.objects.filter(
        _due(now, ordered=ordered, horizon=s.one("horizon", _AT))
    ).order_by("next_attempt_at")
    if full:
        candidates = candidates.exclude(destination__id__in=s.many("full", _DESTINATION_PK))
    if held:
        candidates = candidates.exclude(pk__in=s.many("held", _DELIVERY_PK))
    if connection.vendor == "postgresql":
        candidates = candidates.select_for_update(skip_locked=True, of=("self",))
    return candidates.values_list(*_CANDIDATE_FIELDS)


_CANDIDATES = Prepared(_candidates)


def _details(s: Slots) -> QuerySet[Any, Any]:
    """What sending each claimed delivery needs (a Prepared query's builder)."""
    return Delivery.objects.filter(pk__in=s.many("pks", _DELIVERY_PK)).values_list(*_DETAIL_FIELDS)


_DETAILS = Prepared(_details)
_CONCURRENCY = Prepared(
    lambda s: Destination.objects.filter(pk__in=s.many("pks", _DESTINATION_PK)).values_list(
        "pk", "concurrency"
    )
)
# A claim's lease, in raw SQL as record_attempts' updates are.
_LEASE_SET = "lease_owner = %s, lease_expires_at = %s, attempts = attempts + 1"


def claim_due(
    worker: str,
    limit: int,
    lease_seconds: float,
    busy: Mapping[int, int] | None = None,
    held: Collection[str] = (),
) -> list[OutboundDelivery]:
    """Lease up to ``limit`` due deliveries to ``worker`` and write their attempts down
    (outcome "in flight") before anything is sent.

    ``busy`` maps destination id to this worker's in-flight count; no destination gets
    more than its ``concurrency`` minus that. ``held`` names deliveries this worker is
    still working on (sending, or recording the result): they are never claimed again,
    even if their lease ran out meanwhile. A destination whose circuit is open gets at
    most its probe (hookway.store.circuit); a rate-limited one only the slots within
    RATE_HORIZON, each delivery's ``delay`` saying when to send it (hookway.store.pacing).
    Returns what to send, oldest due first.
    """
    busy = busy or {}
    with transaction.atomic():
        now = db_now()
        # Rate-limit slots are times on the database's clock; the dispatcher waits for
        # them from when this returns, so what this claim took is taken off their delay.
        started = time.monotonic()
        ordered = lanes.any_ordered()
        full = [
            dest_id
            for dest_id, conc in (_CONCURRENCY.rows(pks=list(busy)) if busy else [])
            if busy[dest_id] >= conc
        ]
        # Each list only when it has something to leave out.
        lists = {name: value for name, value in (("full", full), ("held", list(held))) if value}
        rows = [
            _Candidate(*row)
            for row in _CANDIDATES.rows(
                {"ordered": ordered, "full": "full" in lists, "held": "held" in lists},
                now=now,
                horizon=pacing.horizon(now),
                limit=limit,
                **lists,
            )
        ]
        taken: dict[int, int] = defaultdict(int)
        chosen: list[_Candidate] = []
        for row in rows:
            if busy.get(row.destination_id, 0) + taken[row.destination_id] >= row.concurrency:
                continue
            taken[row.destination_id] += 1
            chosen.append(row)
        chosen.extend(
            _Candidate(*probe)
            for probe in circuit.probe_claims(
                now, lease_seconds, busy, held, limit - len(chosen), ordered=ordered
            )
        )
        chosen, delays = pacing.reserve(now, chosen)
        if not chosen:
            return []

        for row in chosen:
            if row.lease_expires_at is not None:
                Attempt.objects.filter(
                    delivery_id=row.pk, number__lte=row.attempts, outcome=AttemptOutcome.IN_FLIGHT
                ).update(
                    outcome=AttemptOutcome.RETRY,
                    error=LEASE_EXPIRED,
                    error_kind=ErrorKind.INTERRUPTED,
                )

        by_timeout: dict[float, list[str]] = defaultdict(list)
        for row in chosen:
            # One waiting for its rate-limit slot holds its lease that much longer.
            by_timeout[row.timeout + (RATE_HORIZON if row.pk in delays else 0.0)].append(row.pk)
        adapt = connection.ops.adapt_datetimefield_value
        with connection.cursor() as cursor:
            for timeout, pks in by_timeout.items():
                # The lease outlives the longest the attempt can take (the sender
                # enforces the timeout as a deadline over the whole attempt), and the
                # dispatcher renews it while it still holds the delivery (recording can
                # be slow when the database is): only a dead dispatcher's deliveries are
                # reclaimed.
                expires = now + timedelta(seconds=lease_seconds + timeout)
                cursor.execute(
                    _update_sql(Delivery, _LEASE_SET, f"id IN ({', '.join(['%s'] * len(pks))})"),
                    [worker, adapt(expires), *pks],
                )
            started_at = adapt(now)
            _ATTEMPT_INSERT.insert(
                cursor,
                [_AttemptRow(row.pk, row.attempts + 1, worker, started_at) for row in chosen],
            )
        details = [_Details(*row) for row in _DETAILS.rows(pks=[row.pk for row in chosen])]
        transforms = _route_transforms(details)
        # The sender's stored headers, only for the events whose destination forwards some
        # or gets the whole event (a handler, a Celery task), or whose route transforms it.
        forwarding = [
            d.event_id
            for d in details
            if d.forward_headers
            or d.handler
            or d.celery_task
            or (d.source_slug, d.destination_id) in transforms
        ]
        stored: dict[str, dict[str, object]] = (
            dict(Event.objects.filter(pk__in=forwarding).values_list("pk", "headers"))
            if forwarding
            else {}
        )
        spent = time.monotonic() - started
        outbound = [
            _outbound(d, stored.get(d.event_id), max(0.0, delays.get(d.pk, 0.0) - spent))
            for d in sorted(details, key=lambda d: d.next_attempt_at)
        ]
        if transforms:
            outbound = _transformed(outbound, transforms, stored)
        return outbound


def _route_transforms(details: Sequence[_Details]) -> dict[tuple[str, int], str]:
    """The transform of each claimed delivery's route (the route from its event's source
    to its destination, as it is now: a fixed transform applies from the next attempt),
    keyed by (source slug, destination id); only routes that have one."""
    return {
        (slug, destination_id): text
        for slug, destination_id, text in _TRANSFORMS.rows(
            slugs={d.source_slug for d in details},
            destinations={d.destination_id for d in details},
        )
    }


_TRANSFORMS = Prepared(
    lambda s: (
        Route.objects.filter(
            source__slug__in=s.many("slugs", Source._meta.get_field("slug")),
            destination__id__in=s.many("destinations", _DESTINATION_PK),
        )
        .exclude(transform="")
        .values_list("source__slug", "destination_id", "transform")
    )
)


def _transformed(
    outbound: list[OutboundDelivery],
    transforms: Mapping[tuple[str, int], str],
    stored: Mapping[str, object],
) -> list[OutboundDelivery]:
    """The deliveries with their routes' transforms applied (docs/delivery.md,
    "Transformations"): the body the transform makes, sent as JSON and written on the
    attempt before it is sent; or, when it fails for this event, the reason, which
    fails the attempt permanently (hookway.send.transport). The event keeps its body."""
    done: list[OutboundDelivery] = []
    for delivery in outbound:
        text = transforms.get((delivery.source_slug, delivery.destination_id))
        if text is None:
            done.append(delivery)
            continue
        headers = stored.get(delivery.event_id)
        event = rules.EventVariables(
            delivery.body,
            headers if isinstance(headers, dict) else {},
            delivery.event_name,
            delivery.source_slug,
        )
        try:
            body = rules.reshape(rules.check(transform=text).transform_or_raise(), event)
        except (rules.RuleError, rules.EvalError) as exc:
            reason = f"{exc} ({event.body_problem})" if event.body_problem else str(exc)
            done.append(replace(delivery, transform_error=f"transform failed: {reason}"))
            continue
        except Exception as exc:  # a bug: the attempt fails, the dispatcher goes on
            logger.exception("transforming delivery %s failed", delivery.delivery_id)
            reason = f"internal error ({type(exc).__name__})"
            done.append(replace(delivery, transform_error=f"transform failed: {reason}"))
            continue
        # What is sent is recorded before it is sent; the text column can't hold U+0000,
        # which JSON escapes anyway.
        Attempt.objects.filter(delivery_id=delivery.delivery_id, number=delivery.attempt).update(
            request_body=body.decode()
        )
        done.append(replace(delivery, body=body, content_type="application/json"))
    return done


def _outbound(
    d: _Details, stored_headers: dict[str, object] | None, delay: float = 0.0
) -> OutboundDelivery:
    # Secrets are resolved at every claim: a changed env: variable counts from the next
    # attempt, and one that is unset fails the attempt with its name.
    extra = headers.resolve(
        d.headers, d.bearer_token, d.basic_auth, d.forward_headers, stored_headers
    )
    # A signing secret that names an unset variable fails the attempt, with its name:
    # sending unsigned would pass a receiver that doesn't check and confuse one that does.
    signing_secret = resolve_secret(d.signing_secret) if d.signing_secret else None
    problem = extra.problem
    if d.signing_secret and signing_secret is None and not problem:
        problem = f"signing_secret: environment variable {d.signing_secret[4:]} is not set or empty"
    event_headers: tuple[tuple[str, str], ...] = ()
    if (d.handler or d.celery_task) and isinstance(stored_headers, dict):
        event_headers = tuple((str(k), str(v)) for k, v in stored_headers.items())
    return OutboundDelivery(
        delivery_id=d.pk,
        attempt=d.attempts,
        event_id=d.event_id,
        event_name=d.event_name,
        source_slug=d.source_slug,
        destination_id=d.destination_id,
        destination_name=d.destination_name,
        url=d.url,
        signing_secret=signing_secret,
        timeout=d.timeout,
        max_attempts=d.max_attempts,
        body=bytes(d.body),
        content_type=d.content_type,
        headers=extra.headers,
        bearer_token=extra.bearer_token,
        basic_auth=extra.basic_auth,
        forwarded_headers=extra.forwarded_headers,
        problem=problem,
        handler=d.handler,
        celery_task=d.celery_task,
        event_headers=event_headers,
        received_at=d.received_at,
        delay=delay,
        traceparent=d.traceparent or "",
        tracestate=d.tracestate or "",
    )


PING_EVENT = "hookway.ping"


def ping(name: str, body: bytes) -> OutboundDelivery | None:
    """A ``hookway.ping`` to the destination named ``name``, as the dispatcher would send
    an event (its URL, signing secret, headers, auth and timeout, resolved now), with
    ``body`` as JSON, a new webhook-id and nothing stored; None if there is no such
    destination. For the operator's "test this destination": the attempt is not recorded."""
    row = (
        Destination.objects.filter(name=name)
        .values_list(
            "pk",
            "name",
            "url",
            "signing_secret",
            "timeout_seconds",
            "max_attempts",
            "headers",
            "bearer_token",
            "basic_auth",
            "handler",
            "celery_task",
        )
        .first()
    )
    if row is None:
        return None
    pk, name, url, signing_secret, timeout, max_attempts, static, bearer, basic, *kind = row
    handler, celery_task = kind
    details = _Details(
        pk=ids.delivery_id(),
        attempts=1,
        event_id=ids.event_id(),
        event_name=PING_EVENT,
        source_slug="hookway",
        destination_id=pk,
        destination_name=name,
        url=url,
        signing_secret=signing_secret,
        timeout=timeout,
        max_attempts=max_attempts,
        body=body,
        content_type="application/json",
        next_attempt_at=db_now(),
        headers=static,
        bearer_token=bearer,
        basic_auth=basic,
        forward_headers=[],  # a ping has no sender's headers to forward
        handler=handler,
        celery_task=celery_task,
        received_at=db_now(),
        traceparent="",
        tracestate="",
    )
    return _outbound(details, None)


def renew_leases(
    worker: str,
    delivery_ids: Collection[str],
    lease_seconds: float,
    kind: WorkerKind = "dispatcher",
) -> int:
    """Extend ``worker``'s leases on these deliveries to ``lease_seconds`` from now, and
    record the worker's heartbeat. Returns how many leases were extended (a lease another
    dispatcher took over after it expired is not extended)."""
    with transaction.atomic():
        now = db_now()
        beat(worker, kind, now)
        if not delivery_ids:
            return 0
        return Delivery.objects.filter(
            pk__in=list(delivery_ids), lease_owner=worker, state=DeliveryState.PENDING
        ).update(lease_expires_at=now + timedelta(seconds=lease_seconds))


def beat(worker: str, kind: WorkerKind, now: datetime | None = None) -> None:
    """Record that ``worker`` is alive (a committed write: readiness proves the database
    takes writes with it) and forget workers gone for a day."""
    with transaction.atomic():
        now = now or db_now()
        updated = Worker.objects.filter(pk=worker).update(seen_at=now)
        if not updated:
            Worker.objects.create(id=worker, kind=kind, started_at=now, seen_at=now)
            Worker.objects.filter(seen_at__lt=now - WORKER_FORGET_AFTER).delete()


def _update_sql(
    model: type[Attempt] | type[Delivery] | type[Destination], assignments: str, where: str
) -> str:
    qn = connection.ops.quote_name
    return f"UPDATE {qn(model._meta.db_table)} SET {assignments} WHERE {where}"  # noqa: S608 - fixed names


_ATTEMPT_SET = (
    "started_at = %s, duration_ms = %s, outcome = %s, status_code = %s, "
    "error_kind = %s, error = %s, response_body = %s"
)
_ATTEMPT_WHERE = "delivery_id = %s AND number = %s"


class _AttemptUpdate(NamedTuple):
    """The parameters of _ATTEMPT_SET and _ATTEMPT_WHERE, in their placeholders' order."""

    started_at: AdaptedDatetime
    duration_ms: float
    outcome: str
    status_code: int | None
    error_kind: str
    error: str
    response_body: str
    delivery_id: str
    number: int


_DELIVERY_SET = (
    "state = %s, lease_owner = '', lease_expires_at = NULL, last_status_code = %s, "
    "last_error = %s, completed_at = COALESCE(%s, completed_at), "
    "next_attempt_at = COALESCE(%s, next_attempt_at)"
)
_DELIVERY_WHERE = "id = %s AND lease_owner = %s AND attempts = %s AND state = 'pending'"


class _DeliveryUpdate(NamedTuple):
    """The parameters of _DELIVERY_SET and _DELIVERY_WHERE, in their placeholders' order."""

    state: str
    last_status_code: int | None
    last_error: str
    completed_at: AdaptedDatetime  # None keeps the column's value
    next_attempt_at: AdaptedDatetime  # None keeps the column's value
    delivery_id: str
    lease_owner: str
    attempts: int


_HEALTH_SET = (
    "last_success_at = COALESCE(%s, last_success_at), "
    "failures_in_a_row = failures_in_a_row * %s + %s, "
    "failing_since = CASE WHEN %s = 0 THEN %s ELSE COALESCE(failing_since, %s) END"
)


class _HealthUpdate(NamedTuple):
    """The parameters of _HEALTH_SET and ``id = %s``: a batch with a success sets
    ``last_success_at`` and restarts the count (``keep`` 0); one without adds to it.
    ``failing_since`` is when the failures since the last success began: kept while
    they go on, set now by a batch that fails after a success (or has no failure)."""

    last_success_at: AdaptedDatetime  # None keeps the column's value
    keep: int
    failures: int
    keep_again: int  # keep, for the CASE
    failing_since: AdaptedDatetime  # with a success: now if failures followed it, else None
    failing_from: AdaptedDatetime  # without one: now, unless it was failing already
    destination_id: int


def _health(settlements: Sequence[Settlement], at: AdaptedDatetime) -> list[_HealthUpdate]:
    """Each destination's health after these attempts, in the order they finished: the
    last success and the failures since. An interrupted attempt (its dispatcher stopped)
    says nothing about the destination and counts neither way. Sorted by destination,
    so concurrent dispatchers lock the rows in one order."""
    seen: dict[int, tuple[bool, int]] = {}
    for s in settlements:
        r = s.result
        # A handler's Reject refuses one event: its destination works.
        if r.error_kind in (ErrorKind.INTERRUPTED, ErrorKind.REJECTED):
            continue
        succeeded, failures = seen.get(r.destination_id, (False, 0))
        if r.outcome == "success":
            seen[r.destination_id] = (True, 0)
        else:
            seen[r.destination_id] = (succeeded, failures + 1)
    return [
        _HealthUpdate(
            last_success_at=at if succeeded else None,
            keep=0 if succeeded else 1,
            failures=failures,
            keep_again=0 if succeeded else 1,
            failing_since=at if failures else None,
            failing_from=at,
            destination_id=dest_id,
        )
        for dest_id, (succeeded, failures) in sorted(seen.items())
    ]


def _recorded_outcome(s: Settlement) -> AttemptOutcome:
    """The attempt's outcome as recorded: a retry its delivery won't get is a failure."""
    if s.state != DeliveryState.PENDING and s.result.outcome == "retry":
        return AttemptOutcome.FAILED
    return AttemptOutcome(s.result.outcome)


def _spare_waiting(settlements: Sequence[Settlement]) -> list[Settlement]:
    """Keep pending, rather than dead, a delivery whose last attempt failed while its
    destination was paused or disabled (the attempt was under way when the operator
    paused it, or a 410 disabled it): pausing must not let deliveries run out of
    attempts. It gets one more attempt once the destination is resumed and enabled."""
    exhausted = [
        s for s in settlements if s.state == DeliveryState.DEAD and s.result.outcome == "retry"
    ]
    if not exhausted:
        return list(settlements)
    waiting = {s.result.destination_id for s in settlements if s.result.disable_destination}
    waiting.update(
        Destination.objects.filter(
            Q(paused=True) | Q(enabled=False),
            pk__in={s.result.destination_id for s in exhausted},
        ).values_list("pk", flat=True)
    )
    spare = {id(s) for s in exhausted if s.result.destination_id in waiting}
    spared = [
        replace(s, state=DeliveryState.PENDING, retry_in=0.0, note=SPARED) if id(s) in spare else s
        for s in settlements
    ]
    if count := len(spare):
        logger.warning("%d deliveries out of attempts kept pending: %s", count, SPARED)
    return spared


def _holding(s: Slots) -> QuerySet[Any, Any]:
    """Which of ``pks`` ``worker`` still holds, locked on PostgreSQL until the commit (a
    Prepared query's builder)."""
    holding = Delivery.objects.filter(
        pk__in=s.many("pks", _DELIVERY_PK),
        lease_owner=s.one("worker", Delivery._meta.get_field("lease_owner")),
        state=DeliveryState.PENDING,
    )
    if connection.vendor == "postgresql":
        holding = holding.select_for_update()
    return holding.values_list("pk", "attempts")


_HOLDING = Prepared(_holding)


def record_attempts(worker: str, settlements: Sequence[Settlement]) -> set[str]:
    """Write finished attempts and move their deliveries on, in one transaction (a group
    commit: one fsync for the whole batch).

    Every attempt is recorded. A delivery is updated only while ``worker`` still holds
    its lease for that attempt: if the lease expired and another dispatcher reclaimed
    it, the newer claim wins, and the attempt says so (LEASE_LOST), since the receiver
    may then get the delivery twice. Each destination's health (its last success and
    failures in a row) moves on with its attempts, in the same transaction.

    Two prepared statements run once per batch (``executemany``) rather than two ORM
    updates per attempt: this runs on a thread that shares the GIL with the dispatcher's
    event loop, and building queries one by one was most of its Python time.

    Returns the ids of deliveries that ran out of attempts but were kept pending, their
    destination being paused or disabled (see _spare_waiting): not dead.
    """
    if not settlements:
        return set()
    adapt = connection.ops.adapt_datetimefield_value
    with transaction.atomic(), connection.cursor() as cursor:
        now = db_now()
        # Which of these deliveries this worker still holds, locked until commit so no
        # claim takes one over between this check and the update below.
        held = set(_HOLDING.rows(pks=[s.result.delivery_id for s in settlements], worker=worker))
        settlements = _spare_waiting(settlements)
        spared = {s.result.delivery_id for s in settlements if s.note == SPARED}
        attempt_rows: list[_AttemptUpdate] = []
        delivery_rows: list[_DeliveryUpdate] = []
        disable: set[int] = set()
        lost = 0
        for s in settlements:
            r = s.result
            final = s.state != DeliveryState.PENDING
            kept = (r.delivery_id, r.attempt) in held
            notes = [r.error, s.note, "" if kept else LEASE_LOST]
            error = "; ".join(note for note in notes if note)[:ERROR_LIMIT]
            due = now + timedelta(seconds=s.retry_in) if s.retry_in is not None else None
            attempt_rows.append(
                _AttemptUpdate(
                    started_at=adapt(r.started_at),
                    duration_ms=r.duration_ms,
                    outcome=_recorded_outcome(s).value,
                    status_code=r.status_code,
                    error_kind=r.error_kind.value,
                    error=error,
                    response_body=r.response_body,
                    delivery_id=r.delivery_id,
                    number=r.attempt,
                )
            )
            if kept:
                delivery_rows.append(
                    _DeliveryUpdate(
                        state=s.state.value,
                        last_status_code=r.status_code,
                        last_error=error,
                        completed_at=adapt(now) if final else None,
                        next_attempt_at=adapt(due) if due is not None else None,
                        delivery_id=r.delivery_id,
                        lease_owner=worker,
                        attempts=r.attempt,
                    )
                )
            else:
                lost += 1
            if r.disable_destination:
                disable.add(r.destination_id)
        cursor.executemany(_update_sql(Attempt, _ATTEMPT_SET, _ATTEMPT_WHERE), attempt_rows)
        if delivery_rows:
            cursor.executemany(_update_sql(Delivery, _DELIVERY_SET, _DELIVERY_WHERE), delivery_rows)
        if health := _health(settlements, adapt(now)):
            cursor.executemany(_update_sql(Destination, _HEALTH_SET, "id = %s"), health)
        if lost:
            logger.warning(
                "%d attempt results of %s came after their leases were taken over: %s",
                lost,
                worker,
                LEASE_LOST,
            )
        if disable:
            _disable_gone(disable, now)
        circuit.after_attempts(now, settlements)
    return spared


def _disable_gone(destination_ids: set[int], now: datetime) -> None:
    """Disable the destinations whose receiver answered 410, recording the change."""
    reason = f"410 Gone from the receiver at {now:%Y-%m-%d %H:%M:%S} UTC"
    gone = Destination.objects.filter(pk__in=destination_ids, enabled=True).order_by("pk")
    if connection.vendor == "postgresql":
        gone = gone.select_for_update(no_key=True)
    for pk, name in list(gone.values_list("pk", "name")):
        Destination.objects.filter(pk=pk).update(enabled=False, disabled_reason=reason)
        changelog.record(
            pk, name, Change.DISABLED, "enabled", "disabled", "the receiver answered 410 Gone", now
        )
    # .update() sends no signal: drop this process's cached routes now.
    transaction.on_commit(clear_route_cache)


def release(worker: str, delivery_ids: Sequence[str], reason: str) -> int:
    """Give back deliveries ``worker`` claimed but could not finish (shutdown): their
    in-flight attempts are recorded with ``reason`` and they are due again at once.
    Returns how many were released."""
    if not delivery_ids:
        return 0
    with transaction.atomic():
        now = db_now()
        Attempt.objects.filter(
            delivery_id__in=list(delivery_ids), worker=worker, outcome=AttemptOutcome.IN_FLIGHT
        ).update(outcome=AttemptOutcome.RETRY, error=reason, error_kind=ErrorKind.INTERRUPTED)
        circuit.release_probes(delivery_ids)
        return Delivery.objects.filter(
            pk__in=list(delivery_ids), lease_owner=worker, state=DeliveryState.PENDING
        ).update(lease_owner="", lease_expires_at=None, next_attempt_at=now)


def seconds_until_due() -> float | None:
    """Seconds until the next delivery becomes claimable (due, or its lease expiring,
    and its destination's circuit and rate limit let it go), on the database's clock;
    0 if one is claimable now; None if nothing is pending. Deliveries waiting for their
    turn in an ordered lane count once it is theirs."""
    now = db_now()
    pending = Delivery.objects.filter(_SENDABLE, in_turn(now), state=DeliveryState.PENDING)
    # Per destination: an open circuit or a rate limit may hold back what is due.
    earliest: dict[int, list[datetime]] = {
        row["destination_id"]: [t for t in (row["unleased"], row["leased"]) if t is not None]
        for row in pending.values("destination_id").annotate(
            unleased=Min("next_attempt_at", filter=Q(lease_expires_at__isnull=True)),
            leased=Min("lease_expires_at", filter=Q(lease_expires_at__isnull=False)),
        )
    }
    if not earliest:
        return None
    gates = pacing.gate_times(now, list(earliest))
    for pk, state, retry_at, probe_until in (
        Destination.objects.filter(pk__in=list(earliest))
        .exclude(circuit_state=CircuitState.CLOSED)
        .values_list("pk", "circuit_state", "circuit_retry_at", "circuit_probe_until")
    ):
        gate = retry_at if state == CircuitState.OPEN else probe_until
        if gate is not None:
            gates[pk] = max(gate, gates.get(pk, gate))
    times: list[datetime] = [
        max(min(found), gates[pk]) if pk in gates else min(found)
        for pk, found in earliest.items()
        if found
    ]
    if not times:
        return None
    return max(0.0, (min(times) - now).total_seconds())


def pending_count() -> int:
    """Deliveries still to be made to enabled destinations not paused (due now or later),
    but not those of an ordered lane blocked by a dead delivery, nor those waiting for
    their turn behind one that is counted."""
    return Delivery.objects.filter(
        _SENDABLE, in_turn(db_now()), state=DeliveryState.PENDING
    ).count()


def data_version() -> int:
    """SQLite's ``PRAGMA data_version``: it changes when *another* connection commits,
    so a dispatcher in another process than ingest can notice new events cheaply."""
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA data_version")
        row = cursor.fetchone()
        return int(row[0]) if row else 0
