"""GET /api/v1/stats: counts by the API's delivery states, ingest per source, success
rates per destination, the oldest backlog, and a partial answer when a part is slow."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from hookway import gate
from hookway.api import stats
from hookway.models import Attempt, Delivery, Destination, Event, Source
from hookway.store import apikeys

pytestmark = pytest.mark.django_db(transaction=True)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _seed() -> None:
    now = timezone.now()
    gitlab = Source.objects.create(slug="gitlab")
    Source.objects.create(slug="quiet")
    ci = Destination.objects.create(name="ci", url="http://127.0.0.1:9/")
    old = Event.objects.create(source=gitlab, body=b"{}", received_at=now - timedelta(hours=3))
    new = Event.objects.create(source=gitlab, body=b"{}", received_at=now - timedelta(minutes=5))
    Event.objects.create(source=gitlab, body=b"{}", received_at=now - timedelta(days=2))

    def delivery(event: Event, state: str, attempts: int, age: timedelta) -> Delivery:
        return Delivery.objects.create(
            event=event,
            destination=ci,
            state=state,
            attempts=attempts,
            next_attempt_at=now,
            created_at=now - age,
        )

    delivery(new, "pending", 0, timedelta(seconds=30))
    delivery(old, "pending", 2, timedelta(hours=3))
    done = delivery(new, "succeeded", 1, timedelta(minutes=5))
    delivery(old, "dead", 3, timedelta(hours=3))
    Attempt.objects.create(delivery=done, number=1, started_at=now, outcome="success")
    Attempt.objects.create(
        delivery=done, number=2, started_at=now - timedelta(hours=2), outcome="retry"
    )
    Attempt.objects.create(delivery=done, number=3, started_at=now, outcome="in_flight")


async def test_stats_counts_states_sources_destinations_and_the_oldest_backlog(
    client: httpx.AsyncClient,
) -> None:
    await sync_to_async(_seed)()
    _, key = await sync_to_async(apikeys.create)("dash", "read")

    response = await client.get("/api/v1/stats", headers=bearer(key))

    assert response.status_code == 200
    body = response.json()
    assert body["deliveries"] == {"pending": 1, "failing": 1, "delivered": 1, "dead": 1}
    assert body["sources"] == [
        {"source": "gitlab", "last_hour": 1, "last_day": 2},
        {"source": "quiet", "last_hour": 0, "last_day": 0},
    ]
    assert body["destinations"] == [
        {
            "destination": "ci",
            "last_hour": {"attempts": 1, "succeeded": 1, "success_rate": 1.0},
            "last_day": {"attempts": 2, "succeeded": 1, "success_rate": 0.5},
        }
    ]
    assert 3 * 3600 - 60 < body["oldest_pending_seconds"] < 3 * 3600 + 60
    assert body["timed_out"] == []


async def test_a_slow_part_comes_back_null_and_named_while_the_others_answer(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sync_to_async(_seed)()
    _, key = await sync_to_async(apikeys.create)("dash", "read")
    cancelled = asyncio.Event()

    async def never(now: Any) -> None:
        try:
            await asyncio.Event().wait()  # never set: only the timeout ends it
        finally:
            cancelled.set()

    monkeypatch.setitem(stats.PARTS, "destinations", never)
    monkeypatch.setattr(
        settings, "HOOKWAY", dataclasses.replace(settings.HOOKWAY, stats_timeout=0.5)
    )

    response = await client.get("/api/v1/stats", headers=bearer(key))

    assert response.status_code == 200
    body = response.json()
    assert body["timed_out"] == ["destinations"]
    assert body["destinations"] is None
    assert body["deliveries"] == {"pending": 1, "failing": 1, "delivered": 1, "dead": 1}
    assert body["sources"][0]["source"] == "gitlab"
    assert body["oldest_pending_seconds"] is not None
    assert cancelled.is_set()  # the slow part was stopped, not left running


async def test_stats_needs_a_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/stats")

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


async def test_stats_is_documented_in_openapi(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/api/v1/openapi.json")).json()

    operation = schema["paths"]["/api/v1/stats"]["get"]
    assert "timed_out" in schema["components"]["schemas"]["Stats"]["properties"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Stats"
    }


SLOW_QUERY = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
    "SELECT count(*) FROM c",
    "postgresql": "SELECT pg_sleep(60)",
}


async def test_a_query_cut_off_by_the_timeout_is_interrupted_and_frees_its_thread() -> None:
    handle = await gate.aquery_handle()
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow() -> None:
        loop.call_soon_threadsafe(started.set)
        with connection.cursor() as cursor:
            cursor.execute(SLOW_QUERY[connection.vendor])

    task = asyncio.create_task(sync_to_async(slow, thread_sensitive=True)())
    await started.wait()
    await asyncio.sleep(0.2)  # into the query (an interrupt before it is a no-op)

    await gate.ainterrupt_queries(handle)

    with pytest.raises(DatabaseError):
        await asyncio.wait_for(task, timeout=30)  # not 60 s, nor forever
    # The thread is free for the next query.
    assert await Source.objects.acount() == 0
