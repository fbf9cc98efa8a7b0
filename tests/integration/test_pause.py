"""Pausing, resuming and enabling a destination, with the dispatcher and real local
receivers: new events still create its deliveries, which wait unsent and are delivered in
order of arrival once it is resumed (or enabled again after a 410)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
from io import StringIO

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command

from hookway import gate
from hookway.models import Attempt, Delivery, DeliveryState, Destination
from hookway.store.deliveries import SPARED
from tests import conftest
from tests.integration.test_dispatcher import dispatcher, post, routes_to, run
from tests.receivers import Received, Reply

pytestmark = pytest.mark.django_db(transaction=True)


def seqs(requests: list[Received]) -> list[int]:
    return [json.loads(r.body)["seq"] for r in requests]


async def deliveries_to(name: str) -> list[Delivery]:
    return [
        d
        async for d in Delivery.objects.filter(destination__name=name).order_by(
            "event__received_at"
        )
    ]


async def test_a_paused_destination_gets_deliveries_that_wait_then_arrive_in_order(
    client, receiver
):
    target = receiver()
    await routes_to(
        {"name": "paused", "url": target.url("/paused"), "concurrency": 1},
        {"name": "other", "url": target.url("/other")},
    )
    change = await gate.apause_destination("paused", "receiver maintenance")
    assert change.changed
    assert (await Destination.objects.aget(name="paused")).paused_at is not None

    answers = [await post(client, seq=i) for i in range(5)]

    # The ingest answer counts the waiting delivery too.
    assert [a["deliveries"] for a in answers] == [2] * 5
    await run()
    assert target.received("/paused") == []
    assert sorted(seqs(target.received("/other"))) == [0, 1, 2, 3, 4]
    waiting = await deliveries_to("paused")
    assert [(d.state, d.attempts) for d in waiting] == [(DeliveryState.PENDING, 0)] * 5

    change = await gate.aresume_destination("paused")
    assert change.message == "'paused' resumed; 5 pending deliveries are sent, oldest first"
    await run()

    got = target.received("/paused")
    assert seqs(got) == [0, 1, 2, 3, 4]
    assert [r.webhook_id for r in got] == [d.pk for d in waiting]
    assert all(d.state == DeliveryState.SUCCEEDED for d in await deliveries_to("paused"))


async def manage(*args: str) -> str:
    """Run ``manage.py`` in another process on the test database; return its output
    (standard output: its log lines, such as the state change, go to standard error)."""
    env = {**os.environ, "DATABASE_URL": conftest.test_database_url()}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "manage.py",
        *args,
        cwd=conftest.ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, (out + err).decode()
    return out.decode()


async def test_a_running_dispatcher_sees_a_pause_and_a_resume_made_by_another_process(
    client, receiver
):
    third = threading.Event()

    def behaviour(request: Received, n: int) -> Reply:
        if n == 3:
            third.set()
        return Reply()

    target = receiver(behaviour)
    await routes_to({"name": "d", "url": target.url(), "concurrency": 1})
    running = dispatcher(until_empty=False)
    task = asyncio.create_task(running.run())
    try:
        out = await manage("destination", "pause", "d", "--reason", "deploying the receiver")
        assert out.strip() == "'d' paused; nothing is pending"
        for i in range(3):
            await post(client, seq=i)
        await asyncio.sleep(1.0)  # 20 polls of the running dispatcher
        assert target.received() == []

        out = await manage("destination", "resume", "d")

        assert out.strip() == "'d' resumed; 3 pending deliveries are sent, oldest first"
        assert await asyncio.to_thread(third.wait, 20)
    finally:
        running.stop()  # lets the third finish
        await asyncio.wait_for(task, 30)
    assert seqs(target.received()) == [0, 1, 2]


async def test_a_delivery_in_flight_when_its_destination_is_paused_finishes_and_is_not_dead(
    client, receiver, caplog
):
    caplog.set_level(logging.INFO, "hookway.dispatch")
    arrived = threading.Event()

    def behaviour(request: Received, n: int) -> Reply:
        arrived.set()
        return Reply(status=500, delay=0.8) if n == 1 else Reply()

    target = receiver(behaviour)
    await routes_to({"name": "d", "url": target.url(), "max_attempts": 1})
    await post(client)
    sending = asyncio.create_task(run())
    assert await asyncio.to_thread(arrived.wait, 30)

    await gate.apause_destination("d")
    await sending

    # Its last attempt failed, but the destination is paused: it waits, not dead.
    delivery = await Delivery.objects.aget()
    assert (delivery.state, delivery.attempts) == (DeliveryState.PENDING, 1)
    (attempt,) = [a async for a in Attempt.objects.filter(delivery=delivery)]
    assert (attempt.outcome, attempt.status_code) == ("retry", 500)
    assert SPARED in attempt.error
    assert len(target.received()) == 1
    # ...and the log says so: not "dead".
    said = [
        (r.levelname, json.loads(r.getMessage())["event"])
        for r in caplog.records
        if r.name == "hookway.dispatch" and r.getMessage().startswith("{")
    ]
    assert said == [("WARNING", "delivery_waiting")]

    await gate.aresume_destination("d")
    await run()

    delivery = await Delivery.objects.aget()
    assert (delivery.state, delivery.attempts) == (DeliveryState.SUCCEEDED, 2)
    assert [r.webhook_id for r in target.received()] == [delivery.pk, delivery.pk]


async def test_a_410_disabled_destination_keeps_its_new_deliveries_until_enabled(client, receiver):
    gone = True
    target = receiver(lambda request, n: Reply(status=410 if gone else 200))
    await routes_to({"name": "d", "url": target.url(), "concurrency": 1})
    first = await post(client, seq=0)
    await run()
    destination = await Destination.objects.aget(name="d")
    assert destination.enabled is False
    assert destination.disabled_reason.startswith("410 Gone")

    later = [await post(client, seq=i) for i in (1, 2, 3)]

    assert [a["deliveries"] for a in later] == [1, 1, 1]
    await run()
    assert seqs(target.received()) == [0]

    gone = False
    out = StringIO()
    await sync_to_async(call_command)("destination", "enable", "d", stdout=out)
    assert out.getvalue().strip() == "'d' enabled; 3 pending deliveries are sent, oldest first"
    await run()

    assert seqs(target.received()) == [0, 1, 2, 3]
    assert (await Delivery.objects.aget(event_id=first["id"])).state == DeliveryState.DEAD
    assert {d.state for d in await deliveries_to("d")} == {
        DeliveryState.DEAD,
        DeliveryState.SUCCEEDED,
    }


async def test_resuming_a_destination_that_is_also_disabled_keeps_its_deliveries_waiting(
    client, receiver
):
    target = receiver()
    await routes_to({"name": "d", "url": target.url()})
    await Destination.objects.filter(name="d").aupdate(enabled=False, disabled_reason="by hand")
    await gate.apause_destination("d")
    await post(client)

    change = await gate.aresume_destination("d")

    assert change.message == (
        "'d' resumed, but it is disabled (by hand); 1 pending delivery waits until it is enabled"
    )
    await run()
    assert target.received() == []
    change = await gate.aenable_destination("d")
    assert change.message == "'d' enabled; 1 pending delivery is sent, oldest first"
    await run()
    assert len(target.received()) == 1
