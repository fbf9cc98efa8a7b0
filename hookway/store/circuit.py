"""The circuit breaker and the disable-after-failing rule, kept in each destination's row
so every dispatcher sharing the database obeys the same state (docs/delivery.md,
"Circuit breaker").

- Closed: deliveries are claimed as usual (hookway.store.deliveries).
- ``circuit_failures`` failed attempts in a row open it: nothing is claimed for the
  destination; its deliveries wait, due or not, without using attempts.
- Once ``circuit_retry_at`` passes, one claim takes the oldest due delivery as the
  probe and makes it half-open (``probe_claims``); only one probe is out at a time,
  until its lease would expire (a dispatcher that died with it frees the way).
- The probe's success closes it (any success does); its failure opens it again with
  the cool-down doubled (up to an hour).
- A destination whose attempts all failed for ``disable_after_seconds`` (and at least
  ``circuit_failures`` of them) is disabled; enabling it again closes its circuit.

Both halves run inside the transaction of the claim or of the recording: on
PostgreSQL the destination's row is locked (the recording's health update already
holds it), on SQLite the write lock serialises everything. Sync code.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.db import connection
from django.db.models import Q, QuerySet

from hookway.models import DISABLED_FAILING, Delivery, DeliveryState, Destination
from hookway.outbound import AttemptResult, ErrorKind, Settlement
from hookway.policy import Change, CircuitState, format_duration, next_cooldown
from hookway.store import changelog
from hookway.store.db import Prepared, Slots
from hookway.store.lanes import in_turn

OPEN, HALF_OPEN, CLOSED = CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.CLOSED


class Probe(NamedTuple):
    """A delivery claimed as its destination's probe (the fields claim_due needs)."""

    pk: str
    destination_id: int
    attempts: int
    lease_expires_at: datetime | None
    concurrency: int
    timeout: float


def _ready(s: Slots) -> QuerySet[Any, Any]:
    """Destinations whose circuit may send a probe now (a Prepared query's builder)."""
    now = s.one("now", Destination._meta.get_field("circuit_retry_at"))
    ready = Destination.objects.filter(
        Q(circuit_state=OPEN, circuit_retry_at__lte=now)
        | Q(circuit_state=HALF_OPEN)
        & (Q(circuit_probe_until__isnull=True) | Q(circuit_probe_until__lt=now)),
        enabled=True,
        paused=False,
    ).order_by("pk")
    if connection.vendor == "postgresql":
        # Another dispatcher choosing this destination's probe right now: let it.
        ready = ready.select_for_update(skip_locked=True, no_key=True)
    return ready.values_list(
        "pk", "name", "circuit_state", "concurrency", "timeout_seconds", "circuit_cooldown"
    )


_READY = Prepared(_ready)


def probe_claims(
    now: datetime,
    lease_seconds: float,
    busy: Mapping[int, int],
    held: Collection[str],
    limit: int,
    *,
    ordered: bool = True,
) -> list[Probe]:
    """For each sendable destination whose open circuit's cool-down is over (or whose
    probe was lost), take its oldest due delivery as the probe and make the circuit
    half-open. Inside claim_due's transaction; returns the probes (at most ``limit``).
    ``ordered``: as claim_due found it (hookway.store.lanes.in_turn)."""
    if limit <= 0:
        return []
    probes: list[Probe] = []
    for pk, name, state, concurrency, timeout, cooldown in _READY.rows(now=now):
        if len(probes) >= limit:
            break
        if busy.get(pk, 0) >= concurrency:
            continue
        # An ordered destination's probe is the head of one of its lanes: a probe
        # must not overtake a delivery ahead of it.
        due = Delivery.objects.filter(
            Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now),
            in_turn(now, ordered=ordered),
            destination_id=pk,
            state=DeliveryState.PENDING,
            next_attempt_at__lte=now,
        ).order_by("next_attempt_at")
        if held:
            due = due.exclude(pk__in=list(held))
        if connection.vendor == "postgresql":
            due = due.select_for_update(skip_locked=True)
        row = due.values_list("pk", "attempts", "lease_expires_at").first()
        if row is None:
            continue  # nothing due to probe with: it stays as it is
        delivery_id, attempts, lease_expires_at = row
        Destination.objects.filter(pk=pk).update(
            circuit_state=HALF_OPEN,
            circuit_probe=delivery_id,
            # The probe's lease, as claim_due sets it: past it, the probe is lost.
            circuit_probe_until=now + timedelta(seconds=lease_seconds + timeout),
            circuit_changed_at=now,
        )
        if state == OPEN:
            changelog.record(
                pk,
                name,
                Change.CIRCUIT_HALF_OPEN,
                OPEN,
                HALF_OPEN,
                f"its {cooldown:g} s cool-down is over: {delivery_id} is sent as the probe",
                now,
            )
        probes.append(Probe(delivery_id, pk, attempts, lease_expires_at, concurrency, timeout))
    return probes


def describe(result: AttemptResult) -> str:
    """One attempt's failure in a few words: "HTTP 503", "connection_refused: …"."""
    if result.status_code is not None:
        return f"HTTP {result.status_code}"
    what = result.error_kind.value or "error"
    return f"{what}: {result.error[:200]}" if result.error else what


def _counts(result: AttemptResult) -> bool:
    """Whether an attempt says anything about the destination: not one cut off by a
    stopping dispatcher, nor a handler's deliberate Reject of one event."""
    return result.error_kind not in (ErrorKind.INTERRUPTED, ErrorKind.REJECTED)


@dataclass
class _Row:
    pk: int
    name: str
    enabled: bool
    state: str
    probe: str
    cooldown: float
    base_cooldown: float
    threshold: int
    failures: int
    failing_since: datetime | None
    disable_after: float


def after_attempts(now: datetime, settlements: Sequence[Settlement]) -> None:
    """Move each destination's circuit on after these attempts (in the order they
    finished), and disable a destination failing for too long. Inside record_attempts'
    transaction, after the health columns were updated."""
    results: dict[int, list[AttemptResult]] = defaultdict(list)
    lost: dict[int, set[str]] = defaultdict(set)
    for s in settlements:
        r = s.result
        if _counts(r):
            results[r.destination_id].append(r)
        elif r.error_kind == ErrorKind.INTERRUPTED:
            lost[r.destination_id].add(r.delivery_id)
    touched = sorted(set(results) | set(lost))
    if not touched:
        return
    rows = Destination.objects.filter(pk__in=touched).order_by("pk")
    if connection.vendor == "postgresql":
        rows = rows.select_for_update(no_key=True)
    for values in rows.values_list(
        "pk",
        "name",
        "enabled",
        "circuit_state",
        "circuit_probe",
        "circuit_cooldown",
        "circuit_cooldown_seconds",
        "circuit_failures",
        "failures_in_a_row",
        "failing_since",
        "disable_after_seconds",
    ):
        row = _Row(*values)
        if not row.enabled:
            continue  # disabled meanwhile (a 410 in this batch): enabling resets it
        _move(row, results.get(row.pk, []), lost.get(row.pk, set()), now)


def _move(row: _Row, results: list[AttemptResult], lost: set[str], now: datetime) -> None:
    mine = Destination.objects.filter(pk=row.pk)
    succeeded = next((r for r in results if r.outcome == "success"), None)
    probed = next((r for r in results if r.delivery_id == row.probe), None)
    failed = [r for r in results if r.outcome != "success"]
    if row.state != CLOSED and succeeded is not None:
        mine.update(
            circuit_state=CLOSED,
            circuit_changed_at=now,
            circuit_retry_at=None,
            circuit_cooldown=0.0,
            circuit_probe="",
            circuit_probe_until=None,
        )
        changelog.record(
            row.pk,
            row.name,
            Change.CIRCUIT_CLOSED,
            row.state,
            CLOSED,
            f"{succeeded.delivery_id} was delivered"
            + (f" (HTTP {succeeded.status_code})" if succeeded.status_code else ""),
            now,
        )
        changelog.wake_dispatchers()  # what waited is due now
        return
    if row.state == HALF_OPEN and probed is not None and probed.outcome != "success":
        cooldown = next_cooldown(row.cooldown, row.base_cooldown)
        mine.update(
            circuit_state=OPEN,
            circuit_changed_at=now,
            circuit_retry_at=now + timedelta(seconds=cooldown),
            circuit_cooldown=cooldown,
            circuit_probe="",
            circuit_probe_until=None,
        )
        changelog.record(
            row.pk,
            row.name,
            Change.CIRCUIT_REOPENED,
            HALF_OPEN,
            OPEN,
            f"the probe {probed.delivery_id} failed ({describe(probed)}); "
            f"the next probe in {cooldown:g} s",
            now,
        )
    elif row.state == HALF_OPEN and row.probe in lost:
        # The probe was cut off (its dispatcher stopped): send another at the next claim.
        mine.update(circuit_probe="", circuit_probe_until=None)
    elif (
        row.state == CLOSED
        and row.threshold > 0
        and row.failures >= row.threshold
        and failed
        and results[-1].outcome != "success"
    ):
        cooldown = row.base_cooldown
        mine.update(
            circuit_state=OPEN,
            circuit_changed_at=now,
            circuit_retry_at=now + timedelta(seconds=cooldown),
            circuit_cooldown=cooldown,
        )
        changelog.record(
            row.pk,
            row.name,
            Change.CIRCUIT_OPENED,
            CLOSED,
            OPEN,
            f"{row.failures} failed attempts in a row, the last {describe(failed[-1])}; "
            f"a probe in {cooldown:g} s",
            now,
        )
    if (
        failed
        and row.disable_after > 0
        and row.failing_since is not None
        and row.failures >= max(1, row.threshold)
        and now - row.failing_since >= timedelta(seconds=row.disable_after)
    ):
        since = f"{row.failing_since:%Y-%m-%d %H:%M:%S} UTC"
        window = format_duration(row.disable_after)
        mine.update(enabled=False, disabled_reason=f"{DISABLED_FAILING} {window} since {since}")
        changelog.record(
            row.pk,
            row.name,
            Change.DISABLED,
            "enabled",
            "disabled",
            f"every attempt failed for {window} (disable_after), since {since}: "
            f"{row.failures} in a row, the last {describe(failed[-1])}",
            now,
        )


def reset_values() -> dict[str, object]:
    """The fields that close a destination's circuit and forget its failures: for an
    operator enabling it again, which is a fresh start."""
    return {
        "circuit_state": CLOSED,
        "circuit_retry_at": None,
        "circuit_cooldown": 0.0,
        "circuit_probe": "",
        "circuit_probe_until": None,
        "failures_in_a_row": 0,
        "failing_since": None,
    }


def release_probes(delivery_ids: Sequence[str]) -> None:
    """These deliveries were given back unfinished: a probe among them is lost, so the
    next claim sends another."""
    Destination.objects.filter(
        circuit_state=HALF_OPEN, circuit_probe__in=list(delivery_ids)
    ).update(circuit_probe="", circuit_probe_until=None)


@dataclass(frozen=True)
class CircuitSnapshot:
    """One destination's circuit, for metrics and lists."""

    name: str
    state: str  # a CircuitState value
    enabled: bool
    paused: bool
    failures_in_a_row: int
    changed_at: datetime | None
    retry_at: datetime | None


def circuit_states() -> list[CircuitSnapshot]:
    """Every destination's circuit state, by name (for hookway's Prometheus metrics:
    ``hookway_destination_circuit_state``-style gauges)."""
    return [
        CircuitSnapshot(*row)
        for row in Destination.objects.order_by("name").values_list(
            "name",
            "circuit_state",
            "enabled",
            "paused",
            "failures_in_a_row",
            "circuit_changed_at",
            "circuit_retry_at",
        )
    ]
