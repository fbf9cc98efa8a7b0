"""A destination's state changes, recorded with their reason, and notified.

``record`` runs inside the transaction that makes the change (under the destination's
row lock on PostgreSQL, SQLite's write lock otherwise), so a change is written exactly
once however many dispatchers see the failure that caused it, and so is its
notification: an event of Hookway's own source (``NOTIFY_SOURCE``) with one delivery to
each destination marked ``notifications``, delivered like any webhook (retries, attempts,
replay), and a row that a dispatcher with HOOKWAY_NOTIFY_EMAIL leases to email it once
(``claim_emails``, ``mark_emailed``). Sync code, reached through hookway.gate.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q

from hookway import ids, wakeup
from hookway.models import (
    Delivery,
    DeliveryState,
    Destination,
    DestinationChange,
    Event,
    Source,
)
from hookway.outbound import NOTIFY_CHANNEL
from hookway.policy import NOTIFIED, Change
from hookway.store.db import db_now

# Every state change, one line each, whichever process made it (docs/operations.md).
logger = logging.getLogger("hookway.destinations")

# The source of Hookway's own events. Not a valid slug in the config file or the API
# (they start with a letter or digit), so it can't clash with a user's; disabled, so
# nothing can be posted to it.
NOTIFY_SOURCE = "_hookway"
REASON_LIMIT = DestinationChange._meta.get_field("reason").max_length or 500
EMAIL_PENDING = "pending"
EMAIL_SENT = "sent"
# A change still unsent this long after it happened is not emailed (HOOKWAY_NOTIFY_EMAIL
# set only now, or no dispatcher could send for a day): old news, marked so.
EMAIL_EXPIRED = "expired"
EMAIL_MAX_AGE = timedelta(days=1)
# Changes that say something is wrong are logged as warnings; the rest as info.
_WARNINGS = frozenset({Change.CIRCUIT_OPENED, Change.CIRCUIT_REOPENED, Change.DISABLED})


@dataclass(frozen=True)
class Notice:
    """One recorded change, as notified and listed."""

    id: int
    destination: str
    change: str
    from_state: str
    to_state: str
    reason: str
    at: datetime

    @property
    def type(self) -> str:
        return f"destination.{self.change}"

    def payload(self) -> dict[str, object]:
        """The notification's JSON body (docs/delivery.md, "Notifications")."""
        return {
            "type": self.type,
            "timestamp": self.at.isoformat(),
            "data": {
                "destination": self.destination,
                "change": self.change,
                "from": self.from_state,
                "to": self.to_state,
                "reason": self.reason,
                "change_id": self.id,
            },
        }


def record(
    destination_id: int,
    name: str,
    change: Change,
    from_state: str,
    to_state: str,
    reason: str,
    now: datetime | None = None,
) -> Notice:
    """Write down one change of the destination (inside the caller's transaction); log
    it once committed, and queue its notifications if it is one of NOTIFIED."""
    assert connection.in_atomic_block, "record() belongs in the transaction of the change"
    now = now or db_now()
    notify = change in NOTIFIED
    row = DestinationChange.objects.create(
        destination_id=destination_id,
        at=now,
        change=change.value,
        from_state=from_state,
        to_state=to_state,
        reason=reason[:REASON_LIMIT],
        # Whichever process records it (a web process's admin too), the dispatchers that
        # have HOOKWAY_NOTIFY_EMAIL send it.
        email=EMAIL_PENDING if notify else "",
    )
    notice = Notice(row.pk, name, change.value, from_state, to_state, row.reason, now)
    if notify:
        _queue_notifications(notice, destination_id)
    transaction.on_commit(lambda: _log(notice))
    return notice


def _log(notice: Notice) -> None:
    level = logging.WARNING if notice.change in _WARNINGS else logging.INFO
    fields = {
        "event": "destination_state",
        "destination": notice.destination,
        "change": notice.change,
        "from": notice.from_state,
        "to": notice.to_state,
        "reason": notice.reason,
    }
    logger.log(level, json.dumps(fields, ensure_ascii=True))


def _notify_source() -> int:
    source, _ = Source.objects.get_or_create(
        slug=NOTIFY_SOURCE, defaults={"enabled": False, "verify": "none"}
    )
    return source.pk


def _queue_notifications(notice: Notice, about: int) -> None:
    """An event with the notice as its body and a delivery to every notification
    destination but the one it is about (which could not take it while broken; the
    email, when set, still tells)."""
    targets = list(
        Destination.objects.filter(notifications=True)
        .exclude(pk=about)
        .values_list("pk", flat=True)
    )
    if not targets:
        return
    body = json.dumps(notice.payload()).encode()
    event = Event.objects.create(
        id=ids.event_id(),
        source_id=_notify_source(),
        event_name=notice.type,
        delivery_id=f"destination-change-{notice.id}",
        content_type="application/json",
        headers={},
        body=body,
        body_sha256=hashlib.sha256(body).hexdigest(),
        received_at=notice.at,
    )
    Delivery.objects.bulk_create(
        [
            Delivery(
                id=ids.delivery_id(),
                event=event,
                destination_id=target,
                state=DeliveryState.PENDING,
                next_attempt_at=notice.at,
                created_at=notice.at,
            )
            for target in targets
        ]
    )
    wake_dispatchers()


def wake_dispatchers() -> None:
    """Wake every dispatcher once the caller's transaction commits: this process's
    through hookway.wakeup, the others through NOTIFY (PostgreSQL)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
    transaction.on_commit(wakeup.notify)


def _notice(row: DestinationChange, name: str) -> Notice:
    return Notice(row.pk, name, row.change, row.from_state, row.to_state, row.reason, row.at)


def changes_of(name: str, limit: int = 50, before: int | None = None) -> list[Notice] | None:
    """The destination's changes, newest first, at most ``limit``, those with an id
    below ``before`` when given; None if there is no such destination."""
    pk = Destination.objects.filter(name=name).values_list("pk", flat=True).first()
    if pk is None:
        return None
    rows = DestinationChange.objects.filter(destination_id=pk)
    if before is not None:
        rows = rows.filter(pk__lt=before)
    return [_notice(row, name) for row in rows.order_by("-id")[:limit]]


def claim_emails(worker: str, limit: int, lease_seconds: float) -> list[Notice]:
    """Lease up to ``limit`` changes whose email is still to be sent (none leased by
    another dispatcher, or its lease over), oldest first; a dispatcher that dies while
    sending leaves the lease to expire and another sends it."""
    with transaction.atomic():
        now = db_now()
        DestinationChange.objects.filter(email=EMAIL_PENDING, at__lt=now - EMAIL_MAX_AGE).update(
            email=EMAIL_EXPIRED, email_lease_until=None
        )
        due = DestinationChange.objects.filter(
            Q(email_lease_until__isnull=True) | Q(email_lease_until__lt=now),
            email=EMAIL_PENDING,
        ).order_by("id")
        if connection.vendor == "postgresql":
            due = due.select_for_update(skip_locked=True, of=("self",))
        rows = list(due.select_related("destination")[:limit])
        if not rows:
            return []
        DestinationChange.objects.filter(pk__in=[r.pk for r in rows]).update(
            email_lease_until=now + timedelta(seconds=lease_seconds)
        )
        return [_notice(row, row.destination.name) for row in rows]


def mark_emailed(change_ids: list[int]) -> int:
    """Record that these changes were emailed; returns how many."""
    if not change_ids:
        return 0
    with transaction.atomic():
        return DestinationChange.objects.filter(pk__in=change_ids, email=EMAIL_PENDING).update(
            email=EMAIL_SENT, emailed_at=db_now(), email_lease_until=None
        )
