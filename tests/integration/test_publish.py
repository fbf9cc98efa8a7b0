"""hookway.publish / apublish: the app's own events, stored like received webhooks, in
the caller's transaction (the outbox), and delivered by the dispatcher."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import transaction

import hookway
from hookway import outbox, wakeup
from hookway.dispatch.dispatcher import Dispatcher, DispatcherConfig
from hookway.models import Delivery, Destination, Event, Route, Source
from hookway.send.guard import Guard

pytestmark = pytest.mark.django_db(transaction=True)


def orders_to(url: str, events: list[str] | None = None) -> Source:
    source = Source.objects.create(slug="orders", verify="none")
    destination = Destination.objects.create(name="customer", url=url)
    Route.objects.create(source=source, destination=destination, events=events or [])
    return source


async def deliver_all() -> None:
    config = DispatcherConfig(
        concurrency=10,
        lease_seconds=5,
        poll_interval=0.05,
        shutdown_grace=2,
        retry_schedule=(0, 0.1),
        until_empty=True,
        listen_postgres=False,
    )
    await asyncio.wait_for(Dispatcher(config, guard=Guard(allow_private=True)).run(), timeout=60)


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
def wakes(monkeypatch: pytest.MonkeyPatch) -> Wakes:
    recorder = Wakes()
    monkeypatch.setattr(wakeup, "notify", recorder)
    return recorder


def test_an_event_published_in_a_rolled_back_transaction_is_not_stored(wakes):
    orders_to("http://127.0.0.1:9/hook")

    class OrderFailed(Exception):
        pass

    published = []

    def place_order() -> None:
        with transaction.atomic():
            User.objects.create(username="buyer")
            published.append(hookway.publish("orders", "order.paid", {"order": 1}))
            raise OrderFailed

    with pytest.raises(OrderFailed):
        place_order()

    assert published[0].deliveries == 1

    assert not User.objects.exists()
    assert not Event.objects.exists()
    assert not Delivery.objects.exists()
    assert wakes.count == 0  # nothing committed: the dispatcher is not woken


def test_an_event_published_in_a_transaction_commits_with_it_and_wakes_after(wakes):
    orders_to("http://127.0.0.1:9/hook")

    with transaction.atomic():
        User.objects.create(username="buyer")
        published = hookway.publish("orders", "order.paid", {"order": 1})
        assert wakes.count == 0  # not before the commit

    assert wakes.count == 1
    event = Event.objects.get()
    assert event.id == published.id
    assert event.event_name == "order.paid"
    assert json.loads(bytes(event.body)) == {"order": 1}
    assert Delivery.objects.filter(event=event).count() == 1
    assert User.objects.filter(username="buyer").exists()


def test_outside_a_transaction_publish_commits_at_once(wakes):
    orders_to("http://127.0.0.1:9/hook")
    published = hookway.publish("orders", "order.paid", {"order": 2})
    assert wakes.count == 1
    assert Event.objects.filter(pk=published.id).exists()


def test_routes_filter_published_events_like_received_ones(wakes):
    orders_to("http://127.0.0.1:9/hook", events=["order.*"])
    assert hookway.publish("orders", "order.paid", {}).deliveries == 1
    assert hookway.publish("orders", "invoice.sent", {}).deliveries == 0
    assert Event.objects.count() == 2
    assert wakes.count == 1  # only the one with a delivery wakes the dispatcher


def test_an_unknown_or_disabled_source_is_a_clear_error_naming_it():
    with pytest.raises(hookway.UnknownSource, match="no enabled source named 'shop'"):
        hookway.publish("shop", "order.paid", {})
    Source.objects.create(slug="paused", verify="none", enabled=False)
    with pytest.raises(hookway.UnknownSource, match="'paused'"):
        hookway.publish("paused", "order.paid", {})
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("name", "payload", "problem"),
    [
        ("", {}, "event_name must be a non-empty string"),
        ("x" * 256, {}, "event_name must be a non-empty string"),
        ("order.paid", {"at": object()}, "not JSON-serializable"),
        ("order.paid", {"n": float("nan")}, "not JSON-serializable"),
        ("order.paid", b"not json", "must be a JSON document"),
    ],
)
def test_a_bad_event_name_or_payload_is_refused_before_anything_is_stored(name, payload, problem):
    orders_to("http://127.0.0.1:9/hook")
    with pytest.raises(ValueError, match=problem):
        hookway.publish("orders", name, payload)
    assert not Event.objects.exists()


def test_the_payload_takes_what_djangos_json_encoder_takes(wakes):
    orders_to("http://127.0.0.1:9/hook")
    published = hookway.publish("orders", "order.paid", {"total": Decimal("9.90")})
    assert json.loads(bytes(Event.objects.get(pk=published.id).body)) == {"total": "9.90"}


def test_an_idempotency_key_makes_a_second_publish_a_duplicate(wakes):
    orders_to("http://127.0.0.1:9/hook")
    first = hookway.publish("orders", "order.paid", {"order": 3}, idempotency_key="order-3")
    again = hookway.publish("orders", "order.paid", {"order": 3}, idempotency_key="order-3")
    assert again == outbox.Published(id=first.id, deliveries=0, duplicate=True)
    assert Event.objects.count() == 1


async def test_a_committed_order_and_its_event_are_delivered(receiver):
    customer = receiver()
    await sync_to_async(orders_to)(customer.url())

    def place_order() -> str:
        with transaction.atomic():
            User.objects.create(username="buyer")
            return hookway.publish("orders", "order.paid", {"order": 4}).id

    event_id = await sync_to_async(place_order)()
    await deliver_all()

    [request] = customer.received()
    assert json.loads(request.body) == {"order": 4}
    assert request.headers["x-hookway-event"] == "order.paid"
    assert request.headers["x-hookway-source"] == "orders"
    assert request.headers["content-type"] == "application/json"
    assert await Delivery.objects.filter(event_id=event_id, state="succeeded").aexists()


async def test_apublish_stores_commits_and_is_delivered(receiver):
    customer = receiver()
    await sync_to_async(orders_to)(customer.url())

    published = await hookway.apublish("orders", "order.paid", {"order": 5})

    assert published.deliveries == 1
    assert await Event.objects.filter(pk=published.id).aexists()
    await deliver_all()
    assert [json.loads(r.body) for r in customer.received()] == [{"order": 5}]


async def test_apublish_names_an_unknown_source():
    with pytest.raises(hookway.UnknownSource, match="'nowhere'"):
        await hookway.apublish("nowhere", "order.paid", {})


async def test_a_publish_committed_on_another_thread_wakes_a_dispatcher_on_this_loop():
    # hookway.publish's wake-up runs on the committing thread, not the dispatcher's loop:
    # the loop, asleep in its selector, must be woken through call_soon_threadsafe.
    woke = asyncio.Event()
    wakeup.subscribe(woke)
    timer = threading.Timer(0.05, wakeup.notify)
    try:
        started = time.monotonic()
        timer.start()
        await asyncio.wait_for(woke.wait(), timeout=5)
        assert time.monotonic() - started < 1
    finally:
        timer.cancel()
        wakeup.unsubscribe(woke)


def test_importing_hookway_imports_no_django_models():
    code = (
        "import sys, hookway; "
        "assert 'hookway.models' not in sys.modules, 'models'; "
        "assert 'django.db.models' not in sys.modules, 'django models'; "
        "assert callable(hookway.__getattr__)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
