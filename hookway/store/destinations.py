"""A destination's operational state: paused, resumed, enabled again after a 410.

While a destination is paused or disabled, new events still create its deliveries; they
wait (the claim query, hookway.store.deliveries, skips them) and are sent oldest first
once it is resumed and enabled. Every change is one committed row update that the next
claim of every dispatcher reads, so it applies across processes without a restart; on
PostgreSQL it also wakes the dispatchers LISTENing, since deliveries may be due at once.

Pausing is state, not configuration: it works on destinations the config file manages,
and the file's sync never touches it. Enabling a destination the receiver disabled (410)
works on those too, and the sync then keeps it enabled (hookway.config.sync). Sync code,
reached from async code only through hookway.gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Count, Q

from hookway.models import DISABLED_IN_FILE, REMOVED_FROM_FILE, DeliveryState, Destination
from hookway.outbound import NOTIFY_CHANNEL
from hookway.policy import Change as StateChange
from hookway.store import changelog, circuit
from hookway.store.db import db_now

REASON_LIMIT = Destination._meta.get_field("paused_reason").max_length or 500


class DestinationError(Exception):
    """A change to a destination that can't be made; the message says why."""


class NoSuchDestination(DestinationError):
    pass


class ConfigFileDecides(DestinationError):
    """The config file disabled this destination: only the file turns it back on."""


@dataclass(frozen=True)
class DestinationState:
    """A snapshot of one destination's state, with its deliveries still pending."""

    name: str
    enabled: bool
    disabled_reason: str
    paused: bool
    paused_at: datetime | None
    paused_reason: str
    managed: bool
    pending: int
    circuit: str = "closed"  # a CircuitState value (hookway.store.circuit)
    circuit_retry_at: datetime | None = None

    @property
    def state(self) -> str:
        """ "active", "paused", "disabled", or "paused, disabled"."""
        states = [s for s, on in (("paused", self.paused), ("disabled", not self.enabled)) if on]
        return ", ".join(states) or "active"

    def describe(self) -> str:
        """The state in words, with when and why."""
        parts = []
        if self.paused:
            since = f" since {self.paused_at:%Y-%m-%d %H:%M:%S} UTC" if self.paused_at else ""
            why = f" ({self.paused_reason})" if self.paused_reason else ""
            parts.append(f"paused{since}{why}")
        if not self.enabled:
            parts.append(
                f"disabled ({self.disabled_reason})" if self.disabled_reason else "disabled"
            )
        elif self.circuit == "open":
            probe = (
                f", probe at {self.circuit_retry_at:%H:%M:%S} UTC" if self.circuit_retry_at else ""
            )
            parts.append(f"circuit open (its deliveries wait{probe})")
        elif self.circuit == "half_open":
            parts.append("circuit half-open (a probe is out)")
        return "; ".join(parts) or "active"


@dataclass(frozen=True)
class Change:
    """What a pause, resume or enable did: ``changed`` is False when the destination was
    already so. ``message`` says it in words; ``after`` is the state it left."""

    changed: bool
    message: str
    after: DestinationState


def _pending() -> Count:
    return Count("deliveries", filter=Q(deliveries__state=DeliveryState.PENDING))


def _snapshot(row: Destination, pending: int) -> DestinationState:
    return DestinationState(
        name=row.name,
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        paused=row.paused,
        paused_at=row.paused_at,
        paused_reason=row.paused_reason,
        managed=row.managed,
        pending=pending,
        circuit=row.circuit_state,
        circuit_retry_at=row.circuit_retry_at,
    )


def states(names: list[str] | None = None) -> list[DestinationState]:
    """Every destination (or those named), by name, with its pending deliveries."""
    rows = Destination.objects.annotate(pending_count=_pending()).order_by("name")
    if names is not None:
        rows = rows.filter(name__in=names)
    return [_snapshot(row, row.pending_count) for row in rows]


def _locked(name: str) -> Destination:
    rows = Destination.objects.filter(name=name)
    if connection.vendor == "postgresql":
        rows = rows.select_for_update(no_key=True)
    row = rows.first()
    if row is None:
        raise NoSuchDestination(f"no destination named {name!r}")
    return row


def _after(name: str) -> DestinationState:
    (state,) = states([name])
    return state


def _wake() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])


def _pending_then(state: DestinationState, waits: str = "") -> str:
    """What happens to its pending deliveries: they are sent, or they wait ``waits``."""
    n = state.pending
    if not n:
        return "nothing is pending"
    what = "1 pending delivery" if n == 1 else f"{n} pending deliveries"
    if waits:
        return f"{what} {'waits' if n == 1 else 'wait'} {waits}"
    return f"{what} {'is' if n == 1 else 'are'} sent, oldest first"


def pause(name: str, reason: str = "") -> Change:
    """Pause the destination: nothing more is sent to it (attempts already under way
    finish) and its new deliveries wait. Raises NoSuchDestination."""
    reason = reason.strip()[:REASON_LIMIT]
    with transaction.atomic():
        row = _locked(name)
        if row.paused:
            after = _after(name)
            return Change(False, f"'{name}' is already {after.describe()}", after)
        now = db_now()
        Destination.objects.filter(pk=row.pk).update(
            paused=True, paused_at=now, paused_reason=reason
        )
        changelog.record(
            row.pk,
            name,
            StateChange.PAUSED,
            "active",
            "paused",
            f"paused by an operator: {reason}" if reason else "paused by an operator",
            now,
        )
        after = _after(name)
    return Change(True, f"'{name}' paused; {_pending_then(after, 'until it is resumed')}", after)


def resume(name: str) -> Change:
    """Resume the destination: its waiting deliveries are sent, oldest first (if it is
    enabled). Raises NoSuchDestination."""
    with transaction.atomic():
        row = _locked(name)
        if not row.paused:
            after = _after(name)
            return Change(False, f"'{name}' is not paused ({after.describe()})", after)
        Destination.objects.filter(pk=row.pk).update(paused=False, paused_at=None, paused_reason="")
        changelog.record(
            row.pk, name, StateChange.RESUMED, "paused", "active", "resumed by an operator"
        )
        after = _after(name)
        if after.enabled:
            _wake()
    if not after.enabled:
        return Change(
            True,
            f"'{name}' resumed, but it is {after.describe()}; "
            f"{_pending_then(after, 'until it is enabled')}",
            after,
        )
    return Change(True, f"'{name}' resumed; {_pending_then(after)}", after)


def enable(name: str) -> Change:
    """Enable the destination again (after a 410 or an operator disabled it): its
    waiting deliveries are sent, oldest first (unless it is paused). Raises
    NoSuchDestination, or ConfigFileDecides for a managed destination the config file
    disabled or no longer lists."""
    with transaction.atomic():
        row = _locked(name)
        if row.enabled:
            after = _after(name)
            return Change(False, f"'{name}' is already enabled ({after.describe()})", after)
        if row.managed and row.disabled_reason in (DISABLED_IN_FILE, REMOVED_FROM_FILE):
            if row.disabled_reason == DISABLED_IN_FILE:
                what = "is disabled in the config file (enabled = false): change it there"
            else:
                what = "was removed from the config file: add it back there"
            raise ConfigFileDecides(f"'{name}' {what}; the next sync would disable it again")
        # A fresh start: its circuit closes and its failures are forgotten, or the
        # failure that disabled it (disable_after) would disable it again at once.
        Destination.objects.filter(pk=row.pk).update(
            enabled=True, disabled_reason="", **circuit.reset_values()
        )
        was = f"; it was disabled: {row.disabled_reason}" if row.disabled_reason else ""
        changelog.record(
            row.pk, name, StateChange.ENABLED, "disabled", "enabled", f"enabled by an operator{was}"
        )
        after = _after(name)
        if not after.paused:
            _wake()
    if after.paused:
        return Change(
            True,
            f"'{name}' enabled, but it is {after.describe()}; "
            f"{_pending_then(after, 'until it is resumed')}",
            after,
        )
    return Change(True, f"'{name}' enabled; {_pending_then(after)}", after)
