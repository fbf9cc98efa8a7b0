"""A destination's health (its last success, its failures in a row), kept by the store as
attempts are recorded, and shown on the admin's destination list."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from hookway.models import Delivery, Destination, Event, Route, Source
from hookway.outbound import AttemptResult, DeliveryState, ErrorKind, Settlement
from hookway.store import deliveries

ADMIN = "/admin/hookway"


@pytest.fixture
def destination(db: None) -> Destination:
    source = Source.objects.create(slug="github")
    destination = Destination.objects.create(name="ci-bot", url="https://ci.example.com/hooks")
    Route.objects.create(source=source, destination=destination)
    return destination


def attempt(destination: Destination, outcome: str, kind: ErrorKind = ErrorKind.NONE) -> None:
    """Store an event with one delivery to ``destination``, claim it, and record one
    attempt with ``outcome``, as the dispatcher does."""
    now = timezone.now()
    event = Event.objects.create(
        source=Source.objects.get(slug="github"), event_name="push", body=b"{}", received_at=now
    )
    Delivery.objects.create(
        event=event, destination=destination, next_attempt_at=now, created_at=now
    )
    (claimed,) = deliveries.claim_due("worker-1", 10, 60.0)
    success = outcome == "success"
    result = AttemptResult(
        delivery_id=claimed.delivery_id,
        attempt=claimed.attempt,
        destination_id=destination.pk,
        started_at=now,
        duration_ms=12.0,
        outcome="success" if success else "retry",
        status_code=200 if success else 503,
        error="" if success else "HTTP 503",
        error_kind=ErrorKind.NONE if success else kind,
    )
    state = DeliveryState.SUCCEEDED if success else DeliveryState.DEAD
    deliveries.record_attempts("worker-1", [Settlement(result, state)])


def health(destination: Destination) -> tuple[datetime | None, int]:
    destination.refresh_from_db()
    return destination.last_success_at, destination.failures_in_a_row


def test_failures_in_a_row_count_up_and_a_success_resets_them(destination):
    assert health(destination) == (None, 0)

    attempt(destination, "failure")
    attempt(destination, "failure")
    assert health(destination) == (None, 2)

    before = timezone.now()
    attempt(destination, "success")
    last_success, failures = health(destination)
    assert failures == 0
    assert last_success is not None
    assert last_success >= before

    attempt(destination, "failure")
    assert health(destination) == (last_success, 1)


def test_an_interrupted_attempt_counts_neither_way(destination):
    attempt(destination, "failure")
    attempt(destination, "failure", kind=ErrorKind.INTERRUPTED)
    assert health(destination) == (None, 1)


def test_within_one_batch_only_the_failures_after_the_last_success_count(destination):
    now = timezone.now()
    source = Source.objects.get(slug="github")
    for _ in range(4):
        event = Event.objects.create(source=source, event_name="push", body=b"{}", received_at=now)
        Delivery.objects.create(
            event=event, destination=destination, next_attempt_at=now, created_at=now
        )
    claimed = deliveries.claim_due("worker-1", 10, 60.0)
    outcomes = ["retry", "success", "retry", "retry"]
    settlements = [
        Settlement(
            AttemptResult(
                delivery_id=c.delivery_id,
                attempt=c.attempt,
                destination_id=destination.pk,
                started_at=now,
                duration_ms=1.0,
                outcome=outcome,  # type: ignore[arg-type]
            ),
            DeliveryState.SUCCEEDED if outcome == "success" else DeliveryState.DEAD,
        )
        for c, outcome in zip(claimed, outcomes, strict=True)
    ]
    deliveries.record_attempts("worker-1", settlements)

    last_success, failures = health(destination)
    assert last_success is not None
    assert failures == 2


def test_the_destination_list_shows_the_last_success_and_the_failures_in_a_row(destination):
    other = Destination.objects.create(name="billing", url="https://billing.example.com/")
    Destination.objects.filter(pk=other.pk).update(
        last_success_at=datetime(2025, 3, 14, 9, 30, 7, tzinfo=UTC), failures_in_a_row=0
    )
    attempt(destination, "failure")
    attempt(destination, "failure")
    attempt(destination, "failure")
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))

    response = admin.get(f"{ADMIN}/destination/")

    page = response.content.decode()
    assert "Last success" in page
    assert "Failures in a row" in page
    rows = {obj.name: obj for obj in response.context["cl"].result_list}
    assert rows["ci-bot"].failures_in_a_row == 3
    ci_row = page[page.index(">ci-bot<") :].split("</tr>")[0]
    assert '<td class="field-failures_in_a_row">3</td>' in ci_row
    assert '<td class="field-last_success_at nowrap">-</td>' in ci_row
    billing_row = page[page.index(">billing<") :].split("</tr>")[0]
    assert "2025-03-14 09:30:07 UTC" in billing_row
    assert '<td class="field-failures_in_a_row">0</td>' in billing_row
