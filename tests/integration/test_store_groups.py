"""A group of webhooks is written with one multi-row INSERT per table (per MAX_ROWS
rows): every row lands with its own values, in order, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from hookway.models import Delivery, Destination, Event, Route
from hookway.store.db import Insert
from hookway.store.events import IncomingEvent, store_events

pytestmark = pytest.mark.django_db(transaction=True)


def _incoming(source_id: int, n: int) -> IncomingEvent:
    return IncomingEvent(
        source_id=source_id,
        event_name=f"push-{n}",
        delivery_id=f"d-{n}",
        content_type="application/json",
        headers={"X-Number": str(n), "X-Quote": 'say "hi"'},
        body=json.dumps({"n": n}).encode(),
        received_at=timezone.now(),
        client_ip=f"10.0.{n // 256}.{n % 256}",
    )


@pytest.mark.parametrize("size", [1, Insert.MAX_ROWS, Insert.MAX_ROWS + 45])
def test_every_row_of_a_group_lands_with_its_own_values(make_source, size: int) -> None:
    source = make_source("groups")
    for name in ("one", "two"):  # two routes: twice as many deliveries as events
        destination = Destination.objects.create(name=name, url=f"http://127.0.0.1:9/{name}")
        Route.objects.create(source=source, destination=destination)

    stored = store_events([_incoming(source.id, n) for n in range(size)])

    assert [s.deliveries for s in stored] == [2] * size
    rows = {e.id: e for e in Event.objects.filter(source=source)}
    assert len(rows) == size
    for n, result in enumerate(stored):
        event = rows[result.id]
        assert event.event_name == f"push-{n}"
        assert event.delivery_id == f"d-{n}"
        assert bytes(event.body) == json.dumps({"n": n}).encode()
        assert event.headers == {"X-Number": str(n), "X-Quote": 'say "hi"'}
        assert event.client_ip == f"10.0.{n // 256}.{n % 256}"
        assert event.filtered_out == []
    assert Delivery.objects.filter(event__source=source).count() == 2 * size
    assert sorted(Delivery.objects.values_list("event_id", flat=True).distinct()) == sorted(rows)


def test_a_statement_holds_at_most_max_rows_rows(monkeypatch) -> None:
    executed: list[int] = []

    class Cursor:
        def execute(self, sql: str, params: list[object]) -> None:
            executed.append(len(params))

    insert = Insert(Delivery, ("id", "state"))
    monkeypatch.setattr(Insert, "MAX_ROWS", 3)
    insert.insert(Cursor(), [(str(i), "pending") for i in range(7)])

    assert executed == [6, 6, 2]  # rows of two columns: 3 + 3 + 1
