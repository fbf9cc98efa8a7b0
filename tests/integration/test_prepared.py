"""hookway.store.db.Prepared: a claim's queries compiled once per shape give the rows the
ORM gives for the same query, whatever the values, list sizes and slice, on SQLite and
PostgreSQL alike."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hookway.models import Delivery, Destination, Route, Source
from hookway.policy import CircuitState
from hookway.store import circuit, deliveries, lanes, pacing
from hookway.store.db import Prepared, Slots
from hookway.store.events import IncomingEvent, store_event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def backlog() -> dict[str, Any]:
    """Deliveries of every kind a claim tells apart: due, due later, leased, leased
    with the lease run out; to an ordered, a rate-limited and a plain destination."""
    source = Source.objects.create(slug="shop", verify="none")
    targets = [
        Destination.objects.create(name="plain", url="http://127.0.0.1:9/a"),
        Destination.objects.create(name="ordered", url="http://127.0.0.1:9/b", ordered=True),
        Destination.objects.create(
            name="limited", url="http://127.0.0.1:9/c", rate_limit="5/s", concurrency=2
        ),
    ]
    for target in targets:
        Route.objects.create(source=source, destination=target)
    start = timezone.now() - timedelta(seconds=30)
    for n in range(8):
        store_event(
            IncomingEvent(
                source_id=source.id,
                event_name="order.updated",
                delivery_id=f"d{n}",
                content_type="application/json",
                headers={"x-n": str(n)},
                body=json.dumps({"n": n}).encode(),
                received_at=start + timedelta(milliseconds=n),
                traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01" if n % 2 else "",
            )
        )
    ids = list(Delivery.objects.order_by("event__received_at", "pk").values_list("pk", flat=True))
    now = timezone.now()
    Delivery.objects.filter(pk__in=ids[0:3]).update(next_attempt_at=now + timedelta(minutes=5))
    Delivery.objects.filter(pk__in=ids[3:6]).update(
        lease_owner="w", lease_expires_at=now + timedelta(minutes=5)
    )
    Delivery.objects.filter(pk__in=ids[6:9]).update(
        lease_owner="w", lease_expires_at=now - timedelta(minutes=5)
    )
    return {"ids": ids, "destinations": [t.pk for t in targets]}


def _both(prepared: Prepared, flags: dict[str, Any] | None = None, **values: Any) -> tuple:
    with transaction.atomic():  # PostgreSQL's FOR UPDATE needs one
        fast = prepared.rows(flags, **values)
        orm = list(prepared.queryset(flags, **values))
    return fast, orm


def test_candidates_match_the_orm_for_every_shape(backlog: dict[str, Any]) -> None:
    ids, destinations = backlog["ids"], backlog["destinations"]
    now = timezone.now()
    compared = 0
    for ordered, full, held, limit in itertools.product(
        (False, True),
        ([], destinations[:1], destinations[1:]),
        ([], ids[6:7], ids[6:9], ids[::2]),  # sizes 1, 3 (bucket 4), 12 (bucket 16)
        (1, 3, 100),
    ):
        lists = {k: v for k, v in (("full", full), ("held", held)) if v}
        flags = {"ordered": ordered, "full": bool(full), "held": bool(held)}
        fast, orm = _both(
            deliveries._CANDIDATES,
            flags,
            now=now,
            horizon=pacing.horizon(now),
            limit=limit,
            **lists,
        )
        assert fast == orm, (ordered, full, held, limit)
        compared += bool(orm)
    assert compared > 20, "the backlog claims too little to compare anything"


def test_details_match_the_orm_with_every_value_converted(backlog: dict[str, Any]) -> None:
    ids = backlog["ids"]
    for size in (1, 2, 3, 5, 17, len(ids)):
        fast, orm = _both(deliveries._DETAILS, pks=ids[:size])
        assert sorted(fast) == sorted(orm)
        assert len(fast) == size
    row = deliveries._Details(*deliveries._DETAILS.rows(pks=ids[:1])[0])
    assert row.received_at.tzinfo is not None  # converted as the ORM converts it
    assert isinstance(row.headers, dict)  # JSON decoded
    assert bytes(row.body) == b'{"n": 0}'


def test_a_shape_is_compiled_once_and_its_limit_is_a_parameter(backlog: dict[str, Any]) -> None:
    prepared = Prepared(
        lambda s: (
            Delivery.objects.filter(pk__in=s.many("pks", Delivery._meta.pk))
            .order_by("pk")
            .values_list("pk", flat=False)
        )
    )
    ids = sorted(backlog["ids"])
    with CaptureQueriesContext(connection) as queries:
        assert prepared.rows(pks=ids[:3], limit=2) == [(ids[0],), (ids[1],)]
        assert prepared.rows(pks=ids[4:8], limit=3) == [(ids[4],), (ids[5],), (ids[6],)]
        assert prepared.rows(pks=ids[:5], limit=9) == [(i,) for i in ids[:5]]
    assert len(queries.captured_queries) == 3
    assert not any(str(Slots.LIMIT) in q["sql"] for q in queries.captured_queries)
    # Lists of 3 and 4 share a shape (padded to 4); 5 is the next (8).
    assert len(prepared._compiled) == 2


def test_an_empty_list_is_refused_rather_than_compiled(backlog: dict[str, Any]) -> None:
    with pytest.raises(AssertionError, match="empty list"):
        deliveries._DETAILS.rows(pks=[])


def test_every_other_claim_query_matches_the_orm(backlog: dict[str, Any]) -> None:
    plain, ordered, limited = backlog["destinations"]
    now = timezone.now()
    Destination.objects.filter(pk=plain).update(
        circuit_state=CircuitState.OPEN, circuit_retry_at=now - timedelta(seconds=1)
    )
    Destination.objects.filter(pk=ordered).update(
        circuit_state=CircuitState.HALF_OPEN, circuit_probe_until=now + timedelta(seconds=9)
    )
    Route.objects.filter(destination_id=limited).update(transform="{'n': payload.n}")
    cases: list[tuple[Prepared, dict[str, Any]]] = [
        (circuit._READY, {"now": now}),
        (circuit._READY, {"now": now - timedelta(seconds=5)}),
        (circuit._READY, {"now": now + timedelta(seconds=10)}),
        (deliveries._TRANSFORMS, {"slugs": {"shop"}, "destinations": {plain, limited}}),
        (deliveries._TRANSFORMS, {"slugs": {"shop", "x"}, "destinations": {plain}}),
        (deliveries._CONCURRENCY, {"pks": [plain, ordered, limited]}),
        (pacing._LIMITED, {"pks": [plain, limited]}),
        (pacing._LIMITED, {"pks": [ordered]}),
        (lanes._ORDERED, {"limit": 1}),
        (deliveries._HOLDING, {"pks": backlog["ids"], "worker": "w"}),
        (deliveries._HOLDING, {"pks": backlog["ids"][5:7], "worker": "w"}),
        (deliveries._HOLDING, {"pks": backlog["ids"], "worker": "other"}),
    ]
    found = 0
    for prepared, values in cases:
        fast, orm = _both(prepared, **values)
        assert fast == orm, values
        found += bool(orm)
    assert found >= 8, "the cases find too little to compare"


def test_an_empty_batch_of_results_records_nothing_and_asks_nothing(
    backlog: dict[str, Any],
) -> None:
    with CaptureQueriesContext(connection) as queries:
        assert deliveries.record_attempts("w", []) == set()
    assert queries.captured_queries == []


def test_lists_are_padded_to_a_power_of_two_only_up_to_a_bound() -> None:
    from hookway.store import db

    assert [db._bucket(n) for n in (1, 2, 3, 5, 1000, 1024)] == [1, 2, 4, 8, 1024, 1024]
    # Beyond it, each size is its own shape: padding would pass SQLite's parameter limit.
    assert db._bucket(db.MAX_PADDED + 1) == db.MAX_PADDED + 1
    assert db._bucket(16_385) == 16_385
