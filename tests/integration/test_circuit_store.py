"""The circuit breaker, the rate limit and disable-after-failing as the store keeps them
(hookway.store.circuit, pacing, changelog), claim by claim and record by record, on
the real database: what the dispatcher sees, without its timing."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from hookway.models import (
    DISABLED_FAILING,
    Attempt,
    Delivery,
    Destination,
    DestinationChange,
    Event,
    Route,
    Source,
)
from hookway.outbound import AttemptResult, DeliveryState, ErrorKind, OutboundDelivery, Settlement
from hookway.policy import MAX_CIRCUIT_COOLDOWN, RATE_HORIZON
from hookway.store import changelog, circuit, deliveries, destinations

pytestmark = pytest.mark.django_db(transaction=True)

LEASE = 60.0


@pytest.fixture
def target(db: None) -> Destination:
    source = Source.objects.create(slug="shop")
    destination = Destination.objects.create(
        name="billing",
        url="https://billing.example.com/hooks",
        circuit_failures=3,
        circuit_cooldown_seconds=30,
    )
    Route.objects.create(source=source, destination=destination)
    return destination


def waiting(destination: Destination, count: int) -> list[str]:
    """``count`` deliveries to ``destination``, due now, oldest first."""
    now = timezone.now()
    source = Source.objects.get(slug="shop")
    made = []
    for i in range(count):
        event = Event.objects.create(source=source, event_name="order", body=b"{}", received_at=now)
        made.append(
            Delivery.objects.create(
                event=event,
                destination=destination,
                next_attempt_at=now + timedelta(microseconds=i),
                created_at=now,
            ).pk
        )
    return made


def settle(
    claimed: list[OutboundDelivery],
    outcome: str,
    *,
    kind: ErrorKind = ErrorKind.HTTP_STATUS,
    status: int | None = 503,
) -> None:
    """Record one attempt of each claimed delivery, as the dispatcher does."""
    success = outcome == "success"
    deliveries.record_attempts(
        "worker-1",
        [
            Settlement(
                AttemptResult(
                    delivery_id=c.delivery_id,
                    attempt=c.attempt,
                    destination_id=c.destination_id,
                    started_at=timezone.now(),
                    duration_ms=1.0,
                    outcome="success" if success else "retry",
                    status_code=200 if success else status,
                    error="" if success else f"HTTP {status}",
                    error_kind=ErrorKind.NONE if success else kind,
                ),
                DeliveryState.SUCCEEDED if success else DeliveryState.PENDING,
                retry_in=None if success else 0.0,
            )
            for c in claimed
        ],
    )


def row(destination: Destination) -> Destination:
    destination.refresh_from_db()
    return destination


def changes(destination: Destination) -> list[tuple[str, str, str]]:
    return list(
        DestinationChange.objects.filter(destination=destination)
        .order_by("id")
        .values_list("change", "from_state", "to_state")
    )


def cool_down_now(destination: Destination) -> None:
    """Let the cool-down end (rather than wait for it)."""
    Destination.objects.filter(pk=destination.pk).update(
        circuit_retry_at=timezone.now() - timedelta(seconds=1)
    )


def test_failures_in_a_row_open_the_circuit_and_nothing_more_is_claimed(target):
    waiting(target, 6)
    claimed = deliveries.claim_due("worker-1", 2, LEASE)
    settle(claimed, "retry")
    assert row(target).circuit_state == "closed"  # 2 of 3

    settle(deliveries.claim_due("worker-1", 1, LEASE), "retry")

    opened = row(target)
    assert opened.circuit_state == "open"
    assert opened.circuit_cooldown == 30
    assert opened.circuit_retry_at is not None
    assert opened.circuit_retry_at > timezone.now() + timedelta(seconds=25)
    assert changes(target) == [("circuit_opened", "closed", "open")]
    (change,) = DestinationChange.objects.all()
    assert change.reason == "3 failed attempts in a row, the last HTTP 503; a probe in 30 s"
    # Six due, none claimable: three wait for their retry, three for their first attempt.
    assert deliveries.claim_due("worker-2", 10, LEASE) == []
    assert deliveries.pending_count() == 6
    # The dispatcher sleeps until the cool-down is over, not until the retries are due.
    due_in = deliveries.seconds_until_due()
    assert due_in is not None
    assert 25 < due_in <= 30


def test_after_the_cool_down_one_probe_goes_and_its_failure_doubles_the_cool_down(target):
    made = waiting(target, 5)
    settle(deliveries.claim_due("worker-1", 3, LEASE), "retry")
    cool_down_now(target)

    (probe,) = deliveries.claim_due("worker-1", 10, LEASE)

    # The oldest due: the first one not attempted yet (the others' retries came later).
    assert probe.delivery_id == made[3]
    half = row(target)
    assert (half.circuit_state, half.circuit_probe) == ("half_open", probe.delivery_id)
    # One probe at a time, whichever dispatcher asks.
    assert deliveries.claim_due("worker-2", 10, LEASE) == []

    settle([probe], "retry")

    reopened = row(target)
    assert reopened.circuit_state == "open"
    assert reopened.circuit_cooldown == 60
    assert changes(target) == [
        ("circuit_opened", "closed", "open"),
        ("circuit_half_open", "open", "half_open"),
        ("circuit_reopened", "half_open", "open"),
    ]
    assert DestinationChange.objects.order_by("id").last().reason == (  # type: ignore[union-attr]
        f"the probe {probe.delivery_id} failed (HTTP 503); the next probe in 60 s"
    )


def test_the_cool_down_doubles_up_to_an_hour(target):
    waiting(target, 20)
    settle(deliveries.claim_due("worker-1", 3, LEASE), "retry")
    seen = []
    for _ in range(9):
        cool_down_now(target)
        settle(deliveries.claim_due("worker-1", 10, LEASE), "retry")
        seen.append(row(target).circuit_cooldown)
    assert seen == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    assert MAX_CIRCUIT_COOLDOWN == 3600


def test_a_successful_probe_closes_the_circuit_and_what_waited_is_claimable(target):
    waiting(target, 5)
    settle(deliveries.claim_due("worker-1", 3, LEASE), "retry")
    cool_down_now(target)
    probe = deliveries.claim_due("worker-1", 10, LEASE)

    settle(probe, "success")

    closed = row(target)
    assert (closed.circuit_state, closed.circuit_probe, closed.failures_in_a_row) == (
        "closed",
        "",
        0,
    )
    assert closed.failing_since is None
    assert changes(target)[-1] == ("circuit_closed", "half_open", "closed")
    # The other four (three retries, one first attempt) go now.
    assert len(deliveries.claim_due("worker-1", 10, LEASE)) == 4
    # Waiting used no attempts: the three that failed are on their second, the probe
    # made its one, the last its first.
    attempts = dict(Delivery.objects.values_list("pk", "attempts"))
    assert sorted(attempts.values()) == [1, 1, 2, 2, 2]
    assert Attempt.objects.count() == 3 + 1 + 4


def test_a_probe_cut_off_by_a_stopping_dispatcher_is_sent_again(target):
    waiting(target, 4)
    settle(deliveries.claim_due("worker-1", 3, LEASE), "retry")
    cool_down_now(target)
    (probe,) = deliveries.claim_due("worker-1", 10, LEASE)

    deliveries.release("worker-1", [probe.delivery_id], "stopping")

    assert row(target).circuit_state == "half_open"
    # Another probe goes at once (the oldest due one), still one at a time.
    (again,) = deliveries.claim_due("worker-2", 10, LEASE)
    assert row(target).circuit_probe == again.delivery_id
    assert deliveries.claim_due("worker-2", 10, LEASE) == []
    cut = Attempt.objects.get(delivery_id=probe.delivery_id)
    assert (cut.outcome, cut.error_kind) == ("retry", "interrupted")


def test_an_interrupted_attempt_never_opens_the_circuit(target):
    waiting(target, 4)
    settle(
        deliveries.claim_due("worker-1", 4, LEASE),
        "retry",
        kind=ErrorKind.INTERRUPTED,
        status=None,
    )
    assert (row(target).circuit_state, row(target).failures_in_a_row) == ("closed", 0)


def test_a_paused_destination_gets_no_probe_until_it_is_resumed(target):
    waiting(target, 4)
    settle(deliveries.claim_due("worker-1", 3, LEASE), "retry")
    cool_down_now(target)
    destinations.pause("billing", "maintenance")

    assert deliveries.claim_due("worker-1", 10, LEASE) == []

    destinations.resume("billing")
    assert len(deliveries.claim_due("worker-1", 10, LEASE)) == 1
    assert [c[0] for c in changes(target)] == [
        "circuit_opened",
        "paused",
        "resumed",
        "circuit_half_open",
    ]


def test_no_circuit_breaker_with_circuit_failures_zero(target):
    Destination.objects.filter(pk=target.pk).update(circuit_failures=0)
    waiting(target, 10)
    for _ in range(3):
        settle(deliveries.claim_due("worker-1", 10, LEASE), "retry")
    assert row(target).circuit_state == "closed"
    assert row(target).failures_in_a_row == 30


def test_failing_past_disable_after_disables_it_once_and_enabling_starts_afresh(target):
    Destination.objects.filter(pk=target.pk).update(disable_after_seconds=3600)
    waiting(target, 5)
    settle(deliveries.claim_due("worker-1", 3, LEASE), "retry")
    failing_since = row(target).failing_since
    assert failing_since is not None
    # An hour of failures later (moved back rather than waited for), the probe fails too.
    Destination.objects.filter(pk=target.pk).update(
        failing_since=failing_since - timedelta(hours=1)
    )
    cool_down_now(target)
    settle(deliveries.claim_due("worker-1", 10, LEASE), "retry")

    disabled = row(target)
    assert disabled.enabled is False
    assert disabled.disabled_reason.startswith(f"{DISABLED_FAILING} 1h since ")
    assert [c[0] for c in changes(target)] == [
        "circuit_opened",
        "circuit_half_open",
        "circuit_reopened",
        "disabled",
    ]
    last = DestinationChange.objects.order_by("id").last()
    assert last is not None
    assert last.reason.startswith("every attempt failed for 1h (disable_after), since ")
    # Its deliveries wait, none dead.
    assert not Delivery.objects.exclude(state=DeliveryState.PENDING).exists()
    assert deliveries.claim_due("worker-1", 10, LEASE) == []

    change = destinations.enable("billing")

    assert change.message == "'billing' enabled; 5 pending deliveries are sent, oldest first"
    fresh = row(target)
    assert (fresh.enabled, fresh.circuit_state, fresh.failures_in_a_row) == (True, "closed", 0)
    assert fresh.failing_since is None
    assert changes(target)[-1] == ("enabled", "disabled", "enabled")
    assert len(deliveries.claim_due("worker-1", 10, LEASE)) == 5


def test_a_410_disable_is_recorded_with_its_reason(target):
    waiting(target, 1)
    claimed = deliveries.claim_due("worker-1", 1, LEASE)
    deliveries.record_attempts(
        "worker-1",
        [
            Settlement(
                AttemptResult(
                    delivery_id=claimed[0].delivery_id,
                    attempt=1,
                    destination_id=target.pk,
                    started_at=timezone.now(),
                    duration_ms=1.0,
                    outcome="failed",
                    status_code=410,
                    error_kind=ErrorKind.HTTP_STATUS,
                    disable_destination=True,
                ),
                DeliveryState.DEAD,
            )
        ],
    )
    (change,) = DestinationChange.objects.all()
    assert (change.change, change.reason) == ("disabled", "the receiver answered 410 Gone")


def test_a_change_creates_one_notification_delivery_to_each_notification_destination(target):
    ops = Destination.objects.create(name="ops", url="https://ops.example.com/", notifications=True)
    waiting(target, 3)

    settle(deliveries.claim_due("worker-1", 3, LEASE), "retry")

    (note,) = Delivery.objects.filter(destination=ops)
    event = note.event
    assert event.source.slug == changelog.NOTIFY_SOURCE
    assert event.source.enabled is False
    assert event.event_name == "destination.circuit_opened"
    body = json.loads(bytes(event.body))
    change = DestinationChange.objects.get()
    assert body["type"] == "destination.circuit_opened"
    assert body["data"] == {
        "destination": "billing",
        "change": "circuit_opened",
        "from": "closed",
        "to": "open",
        "reason": change.reason,
        "change_id": change.pk,
    }
    # The half-open probing is recorded, not notified; a notification destination is
    # never told about itself.
    cool_down_now(target)
    deliveries.claim_due("worker-1", 10, LEASE)
    assert Delivery.objects.filter(destination=ops).count() == 1


def test_a_rate_limit_hands_out_slots_an_interval_apart_across_claims(target, monkeypatch):
    Destination.objects.filter(pk=target.pk).update(rate_limit="10/s", concurrency=100)
    waiting(target, 30)
    # The store's clock stands still, so the next slot is 0.1 s away however long the
    # claims below take on a busy machine.
    frozen = deliveries.db_now()
    monkeypatch.setattr(deliveries, "db_now", lambda: frozen)

    first = deliveries.claim_due("worker-1", 100, LEASE)
    # Slots 0, 0.1, 0.2, …: those within the horizon.
    assert len(first) == int(RATE_HORIZON * 10) + 1
    delays = [d.delay for d in first]
    # The first goes at once; the others wait for their slots (less what the claim took).
    assert delays[0] == 0.0
    assert 0 < delays[1] <= 0.1
    gaps = [b - a for a, b in itertools.pairwise(delays[1:])]
    assert all(abs(gap - 0.1) < 1e-6 for gap in gaps), gaps
    # Another dispatcher gets none: the next slot is past the horizon.
    assert deliveries.claim_due("worker-2", 100, LEASE) == []
    due_in = deliveries.seconds_until_due()
    assert due_in is not None
    assert 0 < due_in <= 0.1 + 1e-3
    # Nothing claimed beyond the slots: the rest wait with no attempt used.
    assert Delivery.objects.filter(attempts=0).count() == 30 - len(first)


def test_removing_a_rate_limit_frees_what_it_held_back(target):
    Destination.objects.filter(pk=target.pk).update(rate_limit="1/min", concurrency=100)
    waiting(target, 5)
    assert len(deliveries.claim_due("worker-1", 100, LEASE)) == 1
    assert deliveries.claim_due("worker-1", 100, LEASE) == []

    Destination.objects.filter(pk=target.pk).update(rate_limit="")

    assert len(deliveries.claim_due("worker-1", 100, LEASE)) == 4


def test_circuit_states_lists_every_destination(target):
    Destination.objects.create(name="audit", url="https://audit.example.com/")
    waiting(target, 3)
    settle(deliveries.claim_due("worker-1", 3, LEASE), "retry")

    states = {s.name: s for s in circuit.circuit_states()}

    assert states["billing"].state == "open"
    assert states["billing"].failures_in_a_row == 3
    assert states["billing"].retry_at is not None
    assert states["audit"].state == "closed"


def test_the_destination_list_says_when_its_circuit_is_open(target):
    waiting(target, 3)
    settle(deliveries.claim_due("worker-1", 3, LEASE), "retry")
    retry_at = row(target).circuit_retry_at
    assert retry_at is not None

    (state,) = destinations.states(["billing"])

    assert state.describe() == (
        f"circuit open (its deliveries wait, probe at {retry_at:%H:%M:%S} UTC)"
    )
    assert state.pending == 3
