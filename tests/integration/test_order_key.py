"""Ordered delivery with an ``order_key``: one lane per key, against a real local
receiver that records arrival order. In order within a key, keys in parallel (up to the
destination's concurrency), a retry or a dead delivery holding only its own key's lane,
an event the key can't be evaluated for going in the empty key's lane (saying why),
replays keeping their key, and the key's validation in the config file and the API."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections import defaultdict
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from hookway import gate
from hookway.config import file as config_file
from hookway.config.file import ConfigError, check_destination
from hookway.dispatch.dispatcher import Dispatcher, DispatcherConfig
from hookway.models import Delivery, DeliveryState, Destination, Route, Source
from hookway.routing import lanes
from hookway.routing.errors import EvalError
from hookway.send.guard import Guard
from hookway.store.events import IncomingEvent, store_event
from tests.integration.apidata import key as api_key
from tests.receivers import Received, Receiver, Reply

pytestmark = pytest.mark.django_db(transaction=True)

# Two customers' events, interleaved: a0 b0 a1 b1 ...
INTERLEAVED = [{"customer": c, "n": n} for n in range(4) for c in ("a", "b")]


def tag(request: Received) -> tuple[str, int]:
    body = json.loads(request.body)
    return str(body.get("customer", "?")), int(body["n"])


def by_arrival(receiver: Receiver) -> list[Received]:
    return sorted(receiver.received(), key=lambda r: r.at)


def lanes_seen(receiver: Receiver) -> dict[str, list[int]]:
    """Each customer's event numbers in the order they arrived."""
    seen: dict[str, list[int]] = defaultdict(list)
    for request in by_arrival(receiver):
        customer, n = tag(request)
        seen[customer].append(n)
    return dict(seen)


def overlapped(requests: list[Received]) -> bool:
    """True when two of these requests were at the receiver at once."""
    spans = sorted((r.at, r.answered_at) for r in requests)
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))


@sync_to_async
def make_events(url: str, payloads: list[dict[str, Any]], **destination: Any) -> list[str]:
    """One event per payload, received one millisecond apart, routed to one destination
    made with ``destination``'s fields; returns the delivery ids in received order."""
    source = Source.objects.create(slug="shop", verify="none")
    target = Destination.objects.create(name="ledger", url=url, **destination)
    Route.objects.create(source=source, destination=target)
    start = timezone.now() - timedelta(seconds=10)
    for i, payload in enumerate(payloads):
        store_event(
            IncomingEvent(
                source_id=source.id,
                event_name="order.updated",
                delivery_id=None,
                content_type="application/json",
                headers={"X-Tenant": str(payload.get("customer", ""))},
                body=json.dumps(payload).encode(),
                received_at=start + timedelta(milliseconds=i),
            )
        )
    return list(Delivery.objects.order_by("event__received_at").values_list("pk", flat=True))


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
    for name, value in overrides.items():
        setattr(config, name, value)
    await asyncio.wait_for(Dispatcher(config, guard=Guard(allow_private=True)).run(), timeout=60)


async def keys_and_states() -> list[tuple[str, str, str]]:
    rows = Delivery.objects.order_by("event__received_at", "pk").values_list(
        "order_key", "state", "order_key_error"
    )
    return [row async for row in rows]


async def test_two_keys_arrive_in_order_within_each_and_in_parallel_across_them(
    receiver,
) -> None:
    # The receiver holds key a's first request until every one of key b's has arrived:
    # that can only end well if b's lane goes on while a's is in flight.
    b_done = threading.Event()
    held = {"released_by_b": False}
    lock = threading.Lock()
    b_seen = [0]

    def behaviour(request: Received, _: int) -> Reply:
        customer, n = tag(request)
        if customer == "b":
            with lock:
                b_seen[0] += 1
                if b_seen[0] == 4:
                    b_done.set()
        elif n == 0:
            held["released_by_b"] = b_done.wait(timeout=10)
        return Reply(delay=0.02)

    target = receiver(behaviour)
    await make_events(
        target.url(), INTERLEAVED, ordered=True, order_key="payload.customer", concurrency=20
    )
    await run()

    assert held["released_by_b"], "key b's deliveries waited for key a's first one"
    assert lanes_seen(target) == {"a": [0, 1, 2, 3], "b": [0, 1, 2, 3]}
    requests = by_arrival(target)
    a_first = next(r for r in requests if tag(r) == ("a", 0))
    b_all = [r for r in requests if tag(r)[0] == "b"]
    # a0 and b0 are sent together, so either may arrive first; every b arrived before a0
    # was answered.
    assert all(r.at < a_first.answered_at for r in b_all)
    # One at a time within a key, two at once across keys.
    for customer in ("a", "b"):
        assert not overlapped([r for r in requests if tag(r)[0] == customer])
    assert target.max_in_flight == 2
    assert [(k, s) for k, s, _ in await keys_and_states()] == [
        (c, DeliveryState.SUCCEEDED) for c in ("a", "b") * 4
    ]


async def test_the_same_events_without_an_order_key_are_one_lane(receiver) -> None:
    # The contrast: ordered without order_key keeps every event in one lane, so key b
    # waits for key a's held request (released here by the receiver's own timeout).
    def behaviour(request: Received, _: int) -> Reply:
        return Reply(delay=0.3 if tag(request) == ("a", 0) else 0.0)

    target = receiver(behaviour)
    await make_events(target.url(), INTERLEAVED, ordered=True, concurrency=20)
    await run()
    requests = by_arrival(target)
    assert [tag(r) for r in requests] == [(p["customer"], p["n"]) for p in INTERLEAVED]
    assert target.max_in_flight == 1


async def test_keys_in_parallel_stay_within_the_destinations_concurrency(receiver) -> None:
    target = receiver(lambda request, _: Reply(delay=0.1))
    payloads = [{"customer": f"c{c}", "n": n} for n in range(2) for c in range(6)]
    await make_events(
        target.url(), payloads, ordered=True, order_key="payload.customer", concurrency=3
    )
    await run()
    assert target.max_in_flight == 3
    assert all(numbers == [0, 1] for numbers in lanes_seen(target).values())


async def test_a_retry_holds_only_its_own_keys_lane(receiver) -> None:
    def behaviour(request: Received, _: int) -> Reply:
        first = request.headers.get("x-hookway-attempt") == "1"
        return Reply(status=503 if tag(request) == ("a", 1) and first else 200)

    target = receiver(behaviour)
    await make_events(target.url(), INTERLEAVED, ordered=True, order_key="payload.customer")
    await run(retry_schedule=(0, 1.0))

    assert lanes_seen(target) == {"a": [0, 1, 1, 2, 3], "b": [0, 1, 2, 3]}
    requests = by_arrival(target)
    retry = [r for r in requests if tag(r) == ("a", 1)][1]
    # Key b did not wait for key a's retry a second later; key a's later events did.
    assert all(r.at < retry.at for r in requests if tag(r)[0] == "b")
    assert all(r.at > retry.at for r in requests if tag(r) in {("a", 2), ("a", 3)})
    assert {s for _, s, _ in await keys_and_states()} == {DeliveryState.SUCCEEDED}


async def test_on_dead_block_holds_only_the_dead_deliverys_key(receiver) -> None:
    failing = {"on": True}

    def behaviour(request: Received, _: int) -> Reply:
        return Reply(status=500) if tag(request) == ("a", 1) and failing["on"] else Reply()

    target = receiver(behaviour)
    ids = await make_events(
        target.url(),
        INTERLEAVED,
        ordered=True,
        order_key="payload.customer",
        on_dead="block",
        max_attempts=2,
    )
    await run()  # --until-empty: key a's blocked lane is no work it can do
    assert lanes_seen(target) == {"a": [0, 1, 1], "b": [0, 1, 2, 3]}
    states = [(k, s) for k, s, _ in await keys_and_states()]
    assert states == [
        ("a", "succeeded"),
        ("b", "succeeded"),
        ("a", "dead"),
        ("b", "succeeded"),
        ("a", "pending"),
        ("b", "succeeded"),
        ("a", "pending"),
        ("b", "succeeded"),
    ]
    assert await gate.apending_count() == 0

    failing["on"] = False
    replayed = await gate.areplay_deliveries([ids[2]])  # a1, the dead one
    assert len(replayed.created) == 1
    replay = await Delivery.objects.aget(pk=replayed.created[0].delivery_id)
    assert replay.order_key == "a", "a replay keeps its original's lane"
    await run()
    assert lanes_seen(target) == {"a": [0, 1, 1, 1, 2, 3], "b": [0, 1, 2, 3]}


async def test_on_dead_skip_lets_only_that_keys_lane_go_on(receiver) -> None:
    target = receiver(lambda request, _: Reply(status=500) if tag(request) == ("b", 0) else Reply())
    await make_events(
        target.url(), INTERLEAVED, ordered=True, order_key="payload.customer", max_attempts=1
    )
    await run()
    assert lanes_seen(target) == {"a": [0, 1, 2, 3], "b": [0, 1, 2, 3]}
    assert [s for _, s, _ in await keys_and_states()].count("dead") == 1


async def test_an_event_the_key_fails_for_goes_in_the_empty_keys_lane_saying_why(
    receiver, client: httpx.AsyncClient
) -> None:
    # Events 1 and 3 have no customer: they share the empty key's lane, in order, and
    # each delivery says why; the keyed ones go as usual. Ingest never fails for it.
    payloads = [
        {"customer": "a", "n": 0},
        {"n": 1},
        {"customer": None, "n": 2},
        {"n": 3},
        {"customer": 7, "n": 4},
        {"customer": True, "n": 5},
    ]

    def behaviour(request: Received, _: int) -> Reply:
        # Slow for the keyless ones, so their lane would show if it ran two at once.
        return Reply(delay=0.1 if tag(request)[0] == "?" else 0.0)

    target = receiver(behaviour)
    await make_events(target.url(), payloads, ordered=True, order_key="payload.customer")
    await run()

    rows = await keys_and_states()
    assert [(k, s) for k, s, _ in rows] == [
        ("a", "succeeded"),
        ("", "succeeded"),
        ("", "succeeded"),
        ("", "succeeded"),
        ("7", "succeeded"),
        ("true", "succeeded"),
    ]
    errors = [e for _, _, e in rows]
    assert errors[0] == errors[4] == errors[5] == ""
    assert errors[1].startswith("order_key error: no such key: 'customer'")
    assert errors[1].endswith("sent in the empty key's lane")
    assert errors[2].startswith("order_key error: it gave null, not a string, an int or a bool")
    keyless = [r for r in by_arrival(target) if tag(r)[0] in {"?", "None"}]
    assert [json.loads(r.body)["n"] for r in keyless] == [1, 2, 3]
    assert not overlapped(keyless)

    # The API shows each delivery's key and why the fallback.
    h = await api_key("read")
    listed = await client.get("/api/v1/deliveries", headers=h)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert sorted(d["order_key"] for d in items) == ["", "", "", "7", "a", "true"]
    assert {d["order_key_error"].split(":")[1].strip() for d in items if not d["order_key"]} == {
        "no such key",
        "it gave null, not a string, an int or a bool; sent in the empty key's lane",
    }
    event_id = (
        await Delivery.objects.filter(order_key="", order_key_error__contains="null")
        .values_list("event_id", flat=True)
        .aget()
    )
    detail = await client.get(f"/api/v1/events/{event_id}", headers=h)
    assert detail.status_code == 200, detail.text
    [delivery] = detail.json()["deliveries"]
    assert delivery["order_key"] == ""
    assert "it gave null" in delivery["order_key_error"]


async def test_a_body_that_is_not_json_is_stored_and_goes_in_the_empty_keys_lane(
    receiver,
) -> None:
    target = receiver()

    @sync_to_async
    def setup() -> None:
        source = Source.objects.create(slug="raw", verify="none")
        dest = Destination.objects.create(
            name="ledger", url=target.url(), ordered=True, order_key="payload.customer"
        )
        Route.objects.create(source=source, destination=dest)
        store_event(
            IncomingEvent(
                source_id=source.id,
                event_name="x",
                delivery_id=None,
                content_type="text/plain",
                headers={},
                body=b"not json",
                received_at=timezone.now(),
            )
        )

    await setup()
    await run()
    [(key, state, error)] = await keys_and_states()
    assert (key, state) == ("", "succeeded")
    assert "the body is not JSON" in error


async def test_keys_from_headers_and_the_event_name_and_a_replayed_event_keeps_its_key(
    receiver,
) -> None:
    target = receiver()
    await make_events(
        target.url(),
        [{"customer": "a", "n": 0}, {"customer": "b", "n": 1}],
        ordered=True,
        order_key="headers['x-tenant'] + ':' + event_name",
    )
    await run()
    assert [k for k, _, _ in await keys_and_states()] == ["a:order.updated", "b:order.updated"]

    # A later change of the expression applies to new deliveries: a replay keeps the
    # lane its original was in.
    await Destination.objects.filter(name="ledger").aupdate(order_key="'other'")
    event_id = (
        await Delivery.objects.filter(order_key="b:order.updated")
        .values_list("event_id", flat=True)
        .aget()
    )
    result = await gate.areplay_events([event_id])
    [created] = result.created
    replay = await Delivery.objects.aget(pk=created.delivery_id)
    assert (replay.order_key, replay.replay_of_id is not None) == ("b:order.updated", True)


@given(
    st.one_of(
        st.text(max_size=400),
        st.integers(min_value=-(2**63), max_value=2**64 - 1),
        st.booleans(),
    )
)
def test_any_key_value_fits_the_column_and_equal_values_give_equal_keys(value: Any) -> None:
    key = lanes.as_key(value)
    assert len(key) <= lanes.MAX_KEY
    assert "\x00" not in key
    key.encode("utf-8")  # no lone surrogate: both databases can store it
    assert lanes.as_key(value) == key
    if isinstance(value, str) and len(value) <= lanes.MAX_KEY and value.isprintable():
        assert key == value or "\\" in key


def test_long_keys_stay_distinct_and_other_kinds_are_refused() -> None:
    assert lanes.as_key("x" * 300) != lanes.as_key("x" * 299 + "y")
    assert lanes.as_key(True) == "true"
    assert lanes.as_key(12) == "12"
    for value in (1.5, None, [1], {"a": 1}, b"x"):
        with pytest.raises(EvalError, match="not a string, an int or a bool"):
            lanes.as_key(value)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        (
            {"ordered": True, "order_key": "payload.customer +"},
            "destination.order_key: line 1, column 19: Syntax error",
        ),
        (
            {"ordered": True, "order_key": "customer"},
            "destination.order_key: unknown variable 'customer'",
        ),
        (
            {"ordered": True, "order_key": "lower(payload.customer)"},
            "destination.order_key: unknown function 'lower'",
        ),
        (
            {"order_key": "payload.customer"},
            "destination.order_key: only for an ordered destination (set ordered = true",
        ),
        ({"ordered": True, "order_key": ""}, "destination.order_key: must not be empty"),
        ({"ordered": True, "order_key": 5}, "destination.order_key: expected a string"),
    ],
)
def test_check_destination_refuses_a_bad_order_key_naming_the_place(
    fields: dict[str, Any], says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        check_destination({"name": "ledger", "url": "https://l.example/in", **fields})
    assert says in str(caught.value), str(caught.value)


def test_the_config_file_takes_an_order_key_and_points_at_a_bad_one() -> None:
    good = config_file.parse(
        '[[destinations]]\nname = "ledger"\nurl = "https://l.example/in"\nordered = true\n'
        "order_key = 'payload.customer.id'\n"
    )
    assert good.destinations[0].order_key == "payload.customer.id"
    with pytest.raises(ConfigError) as caught:
        config_file.parse(
            '[[destinations]]\nname = "ledger"\nurl = "https://l.example/in"\nordered = true\n'
            "order_key = 'payload..id'\n"
        )
    assert "hookway.toml: destinations[0].order_key: line 1, column 9:" in str(caught.value)


async def test_the_api_sets_shows_changes_and_refuses_an_order_key(
    client: httpx.AsyncClient,
) -> None:
    h = await api_key("write")
    made = await client.post(
        "/api/v1/destinations",
        json={
            "name": "ledger",
            "url": "https://l.example/in",
            "ordered": True,
            "order_key": "payload.customer",
        },
        headers=h,
    )
    assert made.status_code == 201, made.text
    assert made.json()["order_key"] == "payload.customer"

    bad = await client.patch(
        "/api/v1/destinations/ledger", json={"order_key": "payload.customer +"}, headers=h
    )
    assert bad.status_code == 422
    assert "destination.order_key: line 1, column 19" in bad.json()["detail"]
    unordered = await client.patch(
        "/api/v1/destinations/ledger", json={"ordered": False}, headers=h
    )
    assert unordered.status_code == 422
    assert "only for an ordered destination" in unordered.json()["detail"]
    assert (await Destination.objects.aget(name="ledger")).order_key == "payload.customer"

    changed = await client.patch(
        "/api/v1/destinations/ledger", json={"order_key": "string(payload.id)"}, headers=h
    )
    assert changed.json()["order_key"] == "string(payload.id)"
    removed = await client.patch(
        "/api/v1/destinations/ledger", json={"ordered": False, "order_key": ""}, headers=h
    )
    assert removed.status_code == 200, removed.text
    assert (removed.json()["ordered"], removed.json()["order_key"]) == (False, "")

    refused = await client.post(
        "/api/v1/destinations",
        json={"name": "l2", "url": "https://l.example/in", "order_key": "payload.x"},
        headers=h,
    )
    assert refused.status_code == 422
    assert not await Destination.objects.filter(name="l2").aexists()
