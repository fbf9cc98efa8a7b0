"""A claim builds the ordered lanes' rule only when some destination is ordered; without
one it claims only unordered destinations' deliveries, so a destination made ordered
between that check and the claim is left for the next claim, never claimed out of turn."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hookway.models import Attempt, Delivery
from hookway.store import deliveries, lanes
from hookway.store.db import Insert
from tests.lanes import lane

pytestmark = pytest.mark.django_db(transaction=True)


def _lane(ordered: bool, count: int = 3) -> list[str]:
    return lane("http://127.0.0.1:9/", count, ordered=ordered)


def _claimed(**kw: object) -> list[str]:
    return [d.delivery_id for d in deliveries.claim_due("w", 10, 60, **kw)]


def test_an_ordered_lane_gives_one_delivery_at_a_time() -> None:
    ids = _lane(ordered=True)

    assert _claimed() == ids[:1]
    assert _claimed(held={ids[0]}) == []  # its head is in flight


def test_without_ordered_destinations_every_due_delivery_is_claimed_without_lane_queries() -> None:
    ids = _lane(ordered=False)

    with CaptureQueriesContext(connection) as queries:
        claimed = _claimed()

    assert sorted(claimed) == sorted(ids)
    assert not any("EXISTS" in q["sql"].upper() for q in queries.captured_queries)


def test_a_destination_made_ordered_after_the_check_waits_for_the_next_claim(
    monkeypatch,
) -> None:
    ids = _lane(ordered=True)
    # The claim's check ran before the destination was made ordered.
    monkeypatch.setattr(lanes, "any_ordered", lambda: False)

    assert _claimed() == []
    assert Delivery.objects.filter(pk__in=ids, lease_owner="").count() == len(ids)

    monkeypatch.undo()
    assert _claimed() == ids[:1]


def test_a_claim_writes_each_attempt_as_the_orm_would_with_its_defaults() -> None:
    ids = _lane(ordered=False, count=2)
    deliveries.claim_due("worker-7", 10, 60)

    fields = [f for f in Attempt._meta.concrete_fields if not f.primary_key]
    given = {"delivery", "number", "worker", "started_at"}
    for attempt in Attempt.objects.filter(delivery_id__in=ids):
        assert attempt.number == 1
        assert attempt.worker == "worker-7"
        assert abs((timezone.now() - attempt.started_at).total_seconds()) < 60
        for field in fields:
            if field.name not in given:
                expected = "" if field.name == "request_body" else field.get_default()
                assert getattr(attempt, field.attname) == expected, field.name
    assert Attempt.objects.filter(delivery_id__in=ids).count() == 2


def test_an_insert_that_must_be_complete_refuses_a_missing_column() -> None:
    with pytest.raises(AssertionError, match="a column is missing"):
        Insert(Attempt, ("delivery_id", "number"), complete=True).sql()
