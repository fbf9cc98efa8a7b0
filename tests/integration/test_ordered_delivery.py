"""Ordered delivery against a real local receiver that records arrival order: one
delivery in flight per ordered destination, in received order, a retry holding the lane,
and a dead delivery skipped or blocking as the destination says."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from hookway import gate
from hookway.config.file import ConfigError, check_destination
from hookway.dispatch.dispatcher import Dispatcher, DispatcherConfig
from hookway.models import Delivery, DeliveryState, Destination, Route, Source
from hookway.send.guard import Guard
from hookway.store.events import IncomingEvent, store_event
from tests.lanes import lane
from tests.receivers import Received, Receiver, Reply

pytestmark = pytest.mark.django_db(transaction=True)


def number(request: Received) -> int:
    return int(json.loads(request.body)["n"])


def arrivals(receiver: Receiver) -> list[int]:
    return [number(r) for r in receiver.received()]


make_events = sync_to_async(lane)


async def run(**overrides: Any) -> None:
    config = DispatcherConfig(
        concurrency=50,
        lease_seconds=5,
        poll_interval=0.05,
        shutdown_grace=2,
        retry_schedule=(0, 0.3),
        until_empty=True,
        listen_postgres=False,
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    await asyncio.wait_for(Dispatcher(config, guard=Guard(allow_private=True)).run(), timeout=60)


def fails_first_attempt_of(target: int) -> Any:
    def behaviour(request: Received, _: int) -> Reply:
        first = request.headers.get("x-hookway-attempt") == "1"
        # A little slow, so deliveries sent at once overlap at the receiver.
        status = 503 if number(request) == target and first else 200
        return Reply(status=status, delay=0.05)

    return behaviour


def always_fails(target: int) -> Any:
    return lambda request, _: Reply(status=500) if number(request) == target else Reply()


async def states() -> list[str]:
    rows = Delivery.objects.order_by("event__received_at", "pk").values_list("state", flat=True)
    return [state async for state in rows]


async def test_a_retry_holds_the_lane_so_the_receiver_sees_received_order(receiver) -> None:
    ordered = receiver(fails_first_attempt_of(2))
    await make_events(ordered.url(), 8, ordered=True, concurrency=20)
    await run()
    assert arrivals(ordered) == [0, 1, 2, 2, 3, 4, 5, 6, 7]
    assert ordered.max_in_flight == 1
    assert await states() == [DeliveryState.SUCCEEDED] * 8


async def test_without_ordered_the_same_retry_arrives_out_of_order(receiver) -> None:
    # The contrast that shows the test above can fail: the retry of event 2 comes after
    # later events once the destination is not ordered.
    unordered = receiver(fails_first_attempt_of(2))
    await make_events(unordered.url(), 8, concurrency=20)
    await run(retry_schedule=(0, 1.0))
    seen = arrivals(unordered)
    assert sorted(seen) == [0, 1, 2, 2, 3, 4, 5, 6, 7]
    assert seen != [0, 1, 2, 2, 3, 4, 5, 6, 7]  # the retry came after later events
    assert unordered.max_in_flight > 1


async def test_on_dead_skip_lets_the_lane_go_on_in_order(receiver) -> None:
    skip = receiver(always_fails(1))
    await make_events(skip.url(), 5, ordered=True, on_dead="skip", max_attempts=2)
    await run()
    assert arrivals(skip) == [0, 1, 1, 2, 3, 4]
    assert await states() == ["succeeded", "dead", "succeeded", "succeeded", "succeeded"]


async def test_on_dead_block_holds_the_lane_until_the_dead_delivery_is_replayed(
    receiver,
) -> None:
    failing = {"on": True}

    def behaviour(request: Received, _: int) -> Reply:
        return Reply(status=500) if number(request) == 1 and failing["on"] else Reply()

    block = receiver(behaviour)
    ids = await make_events(block.url(), 5, ordered=True, on_dead="block", max_attempts=2)
    await run()  # --until-empty: the blocked lane is not work it can do, so it stops
    assert arrivals(block) == [0, 1, 1]
    assert await states() == ["succeeded", "dead", "pending", "pending", "pending"]
    assert await gate.apending_count() == 0
    assert await gate.aseconds_until_due() is None

    failing["on"] = False
    replayed = await gate.areplay_deliveries([ids[1]])
    assert len(replayed.created) == 1
    await run()
    assert arrivals(block) == [0, 1, 1, 1, 2, 3, 4]
    assert block.max_in_flight == 1


async def test_lanes_of_two_ordered_destinations_do_not_wait_for_each_other(receiver) -> None:
    blocked = receiver(always_fails(0))
    free = receiver()

    @sync_to_async
    def setup() -> None:
        source = Source.objects.create(slug="two", verify="none")
        for name, target in (("a", blocked), ("b", free)):
            dest = Destination.objects.create(
                name=name, url=target.url(), ordered=True, on_dead="block", max_attempts=1
            )
            Route.objects.create(source=source, destination=dest)
        for n in range(3):
            store_event(
                IncomingEvent(
                    source_id=source.id,
                    event_name="x",
                    delivery_id=None,
                    content_type="application/json",
                    headers={},
                    body=json.dumps({"n": n}).encode(),
                    received_at=timezone.now(),
                )
            )

    await setup()
    await run()
    assert arrivals(blocked) == [0]
    assert arrivals(free) == [0, 1, 2]


def test_the_config_file_and_api_take_ordered_and_on_dead() -> None:
    config = check_destination(
        {"name": "ledger", "url": "https://l.example/in", "ordered": True, "on_dead": "block"}
    )
    assert (config.ordered, config.on_dead) == (True, "block")
    default = check_destination({"name": "ledger", "url": "https://l.example/in"})
    assert (default.ordered, default.on_dead) == (False, "skip")
    with pytest.raises(ConfigError, match=r"destination\.on_dead: expected \"skip\""):
        check_destination({"name": "l", "url": "https://l.example/", "on_dead": "stop"})
    with pytest.raises(ConfigError, match=r"destination\.ordered: expected true or false"):
        check_destination({"name": "l", "url": "https://l.example/", "ordered": "yes"})
