"""A claim builds the ordered lanes' rule only when some destination is ordered; without
one it claims only unordered destinations' deliveries, so a destination made ordered
between that check and the claim is left for the next claim, never claimed out of turn."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hookway.models import Delivery
from hookway.store import deliveries, lanes
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
