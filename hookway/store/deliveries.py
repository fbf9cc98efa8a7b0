"""The delivery queue's queries: the only code the dispatcher uses to touch the delivery
tables. Verbs as names: ``claim_due``, ``record_attempts``, ``release``, ``next_due_at``.

The store decides nothing about retries (that is hookway.dispatch.retry) and does no
HTTP; it makes each state change atomic. Sync code, reached only through hookway.gate.

Claiming on PostgreSQL uses ``FOR UPDATE SKIP LOCKED`` so any number of dispatchers share
the queue without blocking each other; on SQLite the IMMEDIATE transaction already
serialises writers, so the same select-then-update is safe.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from hookway.config.file import resolve_secret
from hookway.models import Attempt, AttemptOutcome, Delivery, DeliveryState, Destination
from hookway.send.sender import AttemptResult, OutboundDelivery
from hookway.store.events import clear_route_cache

LEASE_EXPIRED = "lease expired before this attempt was recorded (its dispatcher stopped or died)"
ERROR_LIMIT = 2000


@dataclass(frozen=True)
class Settlement:
    """What to write for one finished attempt: its result and the delivery's next state."""

    result: AttemptResult
    state: str  # DeliveryState value
    next_attempt_at: datetime | None = None
    note: str = ""


def _due(now: datetime) -> Q:
    return Q(state=DeliveryState.PENDING, next_attempt_at__lte=now, destination__enabled=True) & (
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    )


def claim_due(
    worker: str, limit: int, lease_seconds: float, busy: Mapping[int, int] | None = None
) -> list[OutboundDelivery]:
    """Lease up to ``limit`` due deliveries to ``worker`` and write their attempts down
    (outcome "in flight") before anything is sent.

    ``busy`` maps destination id to this worker's in-flight count; no destination gets
    more than its ``concurrency`` minus that. Returns what to send, oldest due first.
    """
    busy = busy or {}
    now = timezone.now()
    with transaction.atomic():
        candidates = Delivery.objects.filter(_due(now)).order_by("next_attempt_at")
        full = [
            dest_id
            for dest_id, conc in Destination.objects.filter(pk__in=list(busy)).values_list(
                "pk", "concurrency"
            )
            if busy[dest_id] >= conc
        ]
        if full:
            candidates = candidates.exclude(destination_id__in=full)
        if connection.vendor == "postgresql":
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        rows = list(
            candidates.values_list(
                "pk",
                "destination_id",
                "attempts",
                "lease_expires_at",
                "destination__concurrency",
                "destination__timeout_seconds",
            )[:limit]
        )
        taken: dict[int, int] = defaultdict(int)
        chosen = []
        for pk, dest_id, attempts, expired_lease, concurrency, timeout in rows:
            if busy.get(dest_id, 0) + taken[dest_id] >= concurrency:
                continue
            taken[dest_id] += 1
            chosen.append((pk, dest_id, attempts, expired_lease, timeout))
        if not chosen:
            return []

        stale = [(pk, attempts) for pk, _, attempts, expired, _ in chosen if expired is not None]
        for pk, attempts in stale:
            Attempt.objects.filter(
                delivery_id=pk, number__lte=attempts, outcome=AttemptOutcome.IN_FLIGHT
            ).update(outcome=AttemptOutcome.RETRY, error=LEASE_EXPIRED)

        by_timeout: dict[float, list[str]] = defaultdict(list)
        for pk, _, _, _, timeout in chosen:
            by_timeout[timeout].append(pk)
        for timeout, pks in by_timeout.items():
            # The lease outlives the longest the attempt can take, so only a dead
            # dispatcher's deliveries are ever reclaimed.
            expires = now + timedelta(seconds=lease_seconds + timeout)
            Delivery.objects.filter(pk__in=pks).update(
                lease_owner=worker, lease_expires_at=expires, attempts=F("attempts") + 1
            )
        Attempt.objects.bulk_create(
            [
                Attempt(delivery_id=pk, number=attempts + 1, worker=worker, started_at=now)
                for pk, _, attempts, _, _ in chosen
            ]
        )
        details = Delivery.objects.filter(pk__in=[c[0] for c in chosen]).values_list(
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
        )
        out = [
            OutboundDelivery(
                delivery_id=pk,
                attempt=attempts,
                event_id=event_id,
                event_name=event_name,
                source_slug=source_slug,
                destination_id=dest_id,
                destination_name=dest_name,
                url=url,
                signing_secret=resolve_secret(secret) if secret else None,
                timeout=timeout,
                max_attempts=max_attempts,
                body=bytes(body),
                content_type=content_type,
            )
            for (
                pk,
                attempts,
                event_id,
                event_name,
                source_slug,
                dest_id,
                dest_name,
                url,
                secret,
                timeout,
                max_attempts,
                body,
                content_type,
                _due_at,
            ) in sorted(details, key=lambda row: row[-1])
        ]
        return out


def _update_sql(model: type[Attempt] | type[Delivery], assignments: str, where: str) -> str:
    qn = connection.ops.quote_name
    return f"UPDATE {qn(model._meta.db_table)} SET {assignments} WHERE {where}"  # noqa: S608 - fixed names


def record_attempts(worker: str, settlements: Sequence[Settlement]) -> None:
    """Write finished attempts and move their deliveries on, in one transaction (a group
    commit: one fsync for the whole batch).

    Every attempt is recorded. A delivery is updated only while ``worker`` still holds
    its lease for that attempt: if the lease expired and another dispatcher reclaimed
    it, the newer claim wins.

    Two prepared statements run once per batch (``executemany``) rather than two ORM
    updates per attempt: this runs on a thread that shares the GIL with the dispatcher's
    event loop, and building queries one by one was most of its Python time.
    """
    adapt = connection.ops.adapt_datetimefield_value
    now = timezone.now()
    attempt_rows = []
    delivery_rows = []
    disable = set()
    for s in settlements:
        r = s.result
        final = s.state != DeliveryState.PENDING
        error = (r.error + (f"; {s.note}" if s.note else ""))[:ERROR_LIMIT]
        outcome = r.outcome if not (final and r.outcome == "retry") else AttemptOutcome.FAILED
        attempt_rows.append(
            (
                adapt(r.started_at),
                r.duration_ms,
                str(outcome),
                r.status_code,
                error,
                r.response_body,
                r.delivery_id,
                r.attempt,
            )
        )
        delivery_rows.append(
            (
                str(s.state),
                r.status_code,
                error,
                adapt(now) if final else None,
                adapt(s.next_attempt_at) if s.next_attempt_at is not None else None,
                r.delivery_id,
                worker,
                r.attempt,
            )
        )
        if r.disable_destination:
            disable.add(r.destination_id)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(
            _update_sql(
                Attempt,
                "started_at = %s, duration_ms = %s, outcome = %s, status_code = %s, "
                "error = %s, response_body = %s",
                "delivery_id = %s AND number = %s",
            ),
            attempt_rows,
        )
        cursor.executemany(
            _update_sql(
                Delivery,
                "state = %s, lease_owner = '', lease_expires_at = NULL, last_status_code = %s, "
                "last_error = %s, completed_at = COALESCE(%s, completed_at), "
                "next_attempt_at = COALESCE(%s, next_attempt_at)",
                "id = %s AND lease_owner = %s AND attempts = %s AND state = 'pending'",
            ),
            delivery_rows,
        )
        if disable:
            Destination.objects.filter(pk__in=disable).update(
                enabled=False,
                disabled_reason=f"410 Gone from the receiver at {now:%Y-%m-%d %H:%M:%S} UTC",
            )
            # .update() sends no signal: drop this process's cached routes now.
            transaction.on_commit(clear_route_cache)


def release(worker: str, delivery_ids: Sequence[str], reason: str) -> int:
    """Give back deliveries ``worker`` claimed but could not finish (shutdown): their
    in-flight attempts are recorded with ``reason`` and they are due again at once.
    Returns how many were released."""
    if not delivery_ids:
        return 0
    now = timezone.now()
    with transaction.atomic():
        Attempt.objects.filter(
            delivery_id__in=list(delivery_ids), worker=worker, outcome=AttemptOutcome.IN_FLIGHT
        ).update(outcome=AttemptOutcome.RETRY, error=reason)
        return Delivery.objects.filter(
            pk__in=list(delivery_ids), lease_owner=worker, state=DeliveryState.PENDING
        ).update(lease_owner="", lease_expires_at=None, next_attempt_at=now)


def next_due_at() -> datetime | None:
    """When the next delivery becomes claimable (due, or its lease expiring), or None."""
    pending = Delivery.objects.filter(state=DeliveryState.PENDING, destination__enabled=True)
    unleased = pending.filter(lease_expires_at__isnull=True).aggregate(t=Min("next_attempt_at"))[
        "t"
    ]
    leased = pending.filter(lease_expires_at__isnull=False).aggregate(t=Min("lease_expires_at"))[
        "t"
    ]
    times = [t for t in (unleased, leased) if t is not None]
    return min(times) if times else None


def pending_count() -> int:
    """Deliveries still to be made to enabled destinations (due now or later)."""
    return Delivery.objects.filter(state=DeliveryState.PENDING, destination__enabled=True).count()


def data_version() -> int:
    """SQLite's ``PRAGMA data_version``: it changes when *another* connection commits,
    so a dispatcher in another process than ingest can notice new events cheaply."""
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA data_version")
        row = cursor.fetchone()
        return int(row[0]) if row else 0
