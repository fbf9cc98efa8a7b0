"""The event stream's watcher and fan-out (hookway.api.feed, hookway.api.stream) on a
real database: what subscribers get, what filters keep out, what a resume replays, and
what a slow or departed client costs (nothing: it is dropped, its queue freed)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hookway import gate, wakeup
from hookway.api import feed as feed_module
from hookway.api import stream
from hookway.api.cursor import Cursor, Message
from hookway.api.feed import OVERFLOW, Feed, Subscriber
from hookway.api.filters import EventFilters
from hookway.models import Attempt, Delivery
from hookway.store import changes
from hookway.store.events import IncomingEvent, store_event

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 15  # generous: the machine is shared; nothing here measures time


@pytest.fixture
async def feed(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Feed]:
    monkeypatch.setattr(
        settings,
        "HOOKWAY",
        dataclasses.replace(
            settings.HOOKWAY, stream_poll_interval=0.05, stream_heartbeat=0.2, stream_queue=50
        ),
    )
    current = feed_module.current()
    yield current
    await current.stop()


async def ingest(source_id: int, name: str = "push") -> str:
    incoming = IncomingEvent(
        source_id=source_id,
        event_name=name,
        delivery_id=None,
        content_type="application/json",
        headers={},
        body=b"{}",
        received_at=timezone.now(),
    )
    stored = await sync_to_async(store_event)(incoming)
    wakeup.notify()
    return stored.id


async def next_message(subscriber: Subscriber) -> Message:
    item = await asyncio.wait_for(subscriber.queue.get(), WAIT)
    assert isinstance(item, Message)
    return item


async def test_a_subscriber_gets_new_events_and_delivery_outcomes(
    feed: Feed, source: Callable[..., Any]
) -> None:
    demo = await source("demo")
    subscriber, _ = await feed.subscribe(EventFilters())

    event_id = await ingest(demo.pk)
    event = await next_message(subscriber)
    delivery = await Delivery.objects.aget(event_id=event_id)
    attempt = await Attempt.objects.acreate(
        delivery=delivery, number=1, started_at=timezone.now(), outcome="in_flight"
    )
    await asyncio.sleep(0.2)  # a poll or more sees it in flight: no message for that
    attempt.outcome, attempt.status_code = "success", 200
    await attempt.asave()
    outcome = await next_message(subscriber)

    assert (event.kind, event.data["id"], event.data["source"]) == ("event", event_id, "demo")
    assert event.data["deliveries"] == {"pending": 1, "failing": 0, "delivered": 0, "dead": 0}
    assert outcome.kind == "delivery"
    assert outcome.data == {
        "delivery": delivery.pk,
        "event": event_id,
        "source": "demo",
        "event_name": "push",
        "destination": "catch-all-demo",
        "state": "delivered",
        "attempt": 1,
        "status_code": 200,
        "error_kind": None,
    }
    assert subscriber.queue.empty()


async def test_filters_decide_who_gets_what(feed: Feed, source: Callable[..., Any]) -> None:
    a, b = await source("a"), await source("b")
    only_a, _ = await feed.subscribe(EventFilters(source="a"))
    merges, _ = await feed.subscribe(EventFilters(event="merge_*"))
    everyone, _ = await feed.subscribe(EventFilters())

    await ingest(b.pk, "push")
    await ingest(a.pk, "push")
    merge = await ingest(b.pk, "merge_request")
    got = [(await next_message(everyone)).event_id for _ in range(3)]

    assert (await next_message(only_a)).source == "a"
    assert (await next_message(merges)).event_id == merge
    assert only_a.queue.empty()
    assert merges.queue.empty()
    assert got == sorted(got)  # in id order


async def test_many_subscribers_share_one_fetch_per_poll(
    feed: Feed, source: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = await source("demo")
    fetches = 0
    real = gate.achanges_since

    async def counting(*args: Any) -> changes.Changes:
        nonlocal fetches
        fetches += 1
        return await real(*args)

    monkeypatch.setattr(gate, "achanges_since", counting)
    subscribers = [(await feed.subscribe(EventFilters()))[0] for _ in range(200)]
    polls_before, fetches_before = feed.polls, fetches
    for _ in range(3):
        await ingest(demo.pk)
    for s in subscribers:
        for _ in range(3):
            await next_message(s)

    assert feed.polls > polls_before
    assert fetches - fetches_before == feed.polls - polls_before
    # And a fetch is two queries, however many subscribe.
    cursor = feed.cursor
    assert cursor is not None

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            changes.changes_since(cursor.event, cursor.attempt, {1, 2, 3}, 500)
        return len(queries)

    assert await sync_to_async(count_queries)() == 2


async def test_a_slow_client_is_dropped_with_a_last_message(
    feed: Feed, source: Callable[..., Any]
) -> None:
    demo = await source("demo")
    slow, _ = await feed.subscribe(EventFilters())
    fast, _ = await feed.subscribe(EventFilters())

    for _ in range(settings.HOOKWAY.stream_queue + 5):
        await ingest(demo.pk)
        await next_message(fast)  # the others go on

    assert slow.dropped
    assert slow.queue.qsize() == 1
    assert slow.queue.get_nowait() is OVERFLOW
    assert feed.count() == 1


async def test_a_departed_client_frees_its_queue(feed: Feed, source: Callable[..., Any]) -> None:
    await source("demo")
    events = stream._events(None, EventFilters(), None)  # type: ignore[arg-type]

    first = await asyncio.wait_for(anext(events), WAIT)
    assert feed.count() == 1
    await events.aclose()  # what Django does when the client goes away

    assert first.startswith(b"retry:")
    assert feed.count() == 0


async def test_heartbeats_keep_a_quiet_stream_alive(feed: Feed) -> None:
    events = stream._events(None, EventFilters(), None)  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(anext(events), WAIT)
        beat = await asyncio.wait_for(anext(events), WAIT)
    finally:
        await events.aclose()

    assert beat == b": keepalive\n\n"


async def test_resume_replays_what_was_missed_once_and_nothing_else(
    feed: Feed, source: Callable[..., Any]
) -> None:
    demo = await source("demo")
    seen: list[str] = []
    first = stream._events(None, EventFilters(), None)  # type: ignore[arg-type]
    await anext(first)
    for _ in range(3):
        await ingest(demo.pk)
    last_id = ""
    while len(seen) < 3:
        chunk = (await asyncio.wait_for(anext(first), WAIT)).decode()
        if not chunk.startswith("id:"):
            continue  # a heartbeat between two polls
        last_id = chunk.split("\n")[0].removeprefix("id: ")
        seen.append(chunk.split('"id":"')[1][:30])
    await first.aclose()
    missed = [await ingest(demo.pk) for _ in range(4)]

    second = stream._events(None, EventFilters(), Cursor.decode(last_id))  # type: ignore[arg-type]
    await anext(second)
    ingest_task = asyncio.create_task(ingest(demo.pk))
    more: list[str] = []
    try:
        while len(more) < 5:
            chunk = (await asyncio.wait_for(anext(second), WAIT)).decode()
            if chunk.startswith("id:"):
                more.append(chunk.split('"id":"')[1][:30])
    finally:
        await second.aclose()
    later = await ingest_task

    assert more == [*missed, later]
    assert not set(seen) & set(more)
