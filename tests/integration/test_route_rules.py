"""Route filters, match documents and transforms end to end, on the database under test
and real local receivers: which events fan out to which destination (and the record of
those that did not), the body a receiver gets, what the attempt records, the config
file's and the API's refusals, and the API's filter test."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hookway import gate
from hookway.config import file as config_file
from hookway.config.sync import sync
from hookway.models import Attempt, Delivery, DeliveryState, Destination, Event, Route, Source
from hookway.send import signing
from tests.integration.apidata import key
from tests.integration.test_dispatcher import run

pytestmark = pytest.mark.django_db(transaction=True)

WHSEC = "whsec_" + base64.b64encode(b"hookway-route-rules-test-key-32b").decode()
INVOICE = {
    "type": "invoice.paid",
    "data": {"amount": 150, "currency": "usd", "tags": ["vip"], "items": [{"sku": "a"}]},
}


async def route(source: Source, name: str, url: str, **rules: Any) -> Route:
    destination = await Destination.objects.acreate(
        name=name, url=url, **rules.pop("destination", {})
    )
    return await Route.objects.acreate(source=source, destination=destination, **rules)


async def post(client: httpx.AsyncClient, payload: Any, **headers: str) -> dict[str, Any]:
    response = await client.post(
        "/hooks/billing", json=payload, headers={"X-Event-Name": "invoice.paid", **headers}
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


async def filtered_out(event_id: str) -> list[dict[str, str]]:
    event = await Event.objects.aget(pk=event_id)
    assert isinstance(event.filtered_out, list)
    return event.filtered_out


async def test_a_filter_that_holds_delivers_and_one_that_does_not_creates_no_delivery(
    client: httpx.AsyncClient, receiver: Any
) -> None:
    big, small = receiver(), receiver()
    source = await Source.objects.acreate(slug="billing")
    await route(source, "big", big.url(), filter="payload.data.amount >= 100")
    await route(source, "small", small.url(), filter="payload.data.amount < 100")

    stored = await post(client, INVOICE)
    stats = await run()

    assert stored["deliveries"] == 1
    assert stats.succeeded == 1
    assert [json.loads(r.body) for r in big.received()] == [INVOICE]
    assert small.received() == []
    assert [d async for d in Delivery.objects.values_list("destination__name", flat=True)] == [
        "big"
    ]
    assert await filtered_out(stored["id"]) == [
        {"destination": "small", "reason": "filter is false"}
    ]


async def test_match_documents_in_each_form_select_the_events_they_describe(
    client: httpx.AsyncClient, receiver: Any
) -> None:
    got = receiver()
    source = await Source.objects.acreate(slug="billing")
    matches = {
        "dotted": {"payload.data.amount": {"$gte": 100, "$lt": 1000}},
        "nested": {"payload": {"data": {"currency": "usd"}}},
        "contains": {"payload.data.tags": "vip"},
        "in": {"payload.type": {"$in": ["invoice.paid", "invoice.voided"]}},
        "each": {"payload.data.items.$.sku": "a"},
        "absent": {"payload.data.refund": {"$exist": False}},
        "either": {"$or": [{"payload.data.currency": "eur"}, {"headers.x-team": "ops"}]},
        "header": {"headers.X-Team": {"$neq": "sales"}, "event_name": "invoice.paid"},
        "misses": {"payload.data.amount": {"$gt": 1000}},
        "not-in": {"payload.type": {"$nin": ["invoice.paid"]}},
    }
    for name, doc in matches.items():
        await route(source, name, got.url(f"/{name}"), match=doc)

    stored = await post(client, INVOICE, **{"X-Team": "ops"})
    await run()

    taken = sorted(r.path.strip("/") for r in got.received())
    assert taken == sorted(set(matches) - {"misses", "not-in"})
    assert stored["deliveries"] == len(taken)
    assert await filtered_out(stored["id"]) == [
        {"destination": "misses", "reason": "match: payload.data.amount $gt 1000: got 150"},
        {
            "destination": "not-in",
            "reason": 'match: payload.type $nin ["invoice.paid"]: got "invoice.paid"',
        },
    ]


async def test_a_filter_and_a_match_must_both_hold(
    client: httpx.AsyncClient, receiver: Any
) -> None:
    got = receiver()
    source = await Source.objects.acreate(slug="billing")
    doc = {"payload.data.currency": "usd"}
    await route(source, "both", got.url("/both"), filter="payload.data.amount > 100", match=doc)
    await route(
        source, "filter-no", got.url("/filter-no"), filter="payload.data.amount > 1000", match=doc
    )
    await route(
        source,
        "match-no",
        got.url("/match-no"),
        filter="payload.data.amount > 100",
        match={"payload.data.currency": "eur"},
    )

    stored = await post(client, INVOICE)
    await run()

    assert [r.path for r in got.received()] == ["/both"]
    reasons = {n["destination"]: n["reason"] for n in await filtered_out(stored["id"])}
    assert reasons == {
        "filter-no": "filter is false",
        "match-no": 'match: payload.data.currency $eq "eur": got "usd"',
    }


async def test_a_filter_that_fails_for_an_event_skips_it_and_says_why(
    client: httpx.AsyncClient, receiver: Any, caplog: pytest.LogCaptureFixture
) -> None:
    got = receiver()
    source = await Source.objects.acreate(slug="billing")
    await route(source, "refunds", got.url(), filter="payload.data.refund.amount > 0")

    first = await post(client, INVOICE)
    second = await post(client, {**INVOICE, "n": 2})
    await run()

    assert got.received() == []
    assert first["deliveries"] == second["deliveries"] == 0
    assert await Event.objects.acount() == 2  # stored all the same
    assert await filtered_out(first["id"]) == [
        {"destination": "refunds", "reason": "filter error: no such key: 'refund'"}
    ]
    # Said in the log once, not once per event.
    logged = [r for r in caplog.records if "route_filter_failed" in r.getMessage()]
    assert len(logged) == 1


async def test_a_transform_is_what_the_receiver_gets_signed_with_the_destinations_headers(
    client: httpx.AsyncClient, receiver: Any
) -> None:
    got = receiver()
    source = await Source.objects.acreate(slug="billing")
    await route(
        source,
        "ledger",
        got.url(),
        transform="{'amount': payload.data.amount, 'currency': payload.data.currency, "
        "'event': event_name, 'team': headers['x-team']}",
        destination={"headers": {"X-Static": "ledger"}, "signing_secret": WHSEC},
    )

    stored = await post(client, INVOICE, **{"X-Team": "ops"})
    stats = await run()

    assert stats.succeeded == 1
    (request,) = got.received()
    sent = {"amount": 150, "currency": "usd", "event": "invoice.paid", "team": "ops"}
    assert json.loads(request.body) == sent
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-static"] == "ledger"
    key_bytes = base64.b64decode(WHSEC.removeprefix("whsec_"))
    expected = signing.sign(
        key_bytes, request.webhook_id, int(request.headers["webhook-timestamp"]), request.body
    )
    assert request.headers["webhook-signature"] == expected
    (attempt,) = [a async for a in Attempt.objects.all()]
    assert attempt.request_body.encode() == request.body
    event = await Event.objects.aget(pk=stored["id"])
    assert json.loads(bytes(event.body)) == INVOICE  # the original stays
    # The API shows what was sent.
    detail = (await client.get(f"/api/v1/events/{stored['id']}", headers=await key("read"))).json()
    assert json.loads(detail["deliveries"][0]["attempt_log"][0]["request_body"]) == sent
    assert detail["payload"] == INVOICE


async def test_a_transform_that_fails_for_an_event_fails_its_delivery_permanently(
    client: httpx.AsyncClient, receiver: Any
) -> None:
    got = receiver()
    source = await Source.objects.acreate(slug="billing")
    await route(source, "ledger", got.url(), transform="{'refund': payload.data.refund}")

    stored = await post(client, INVOICE)
    stats = await run()

    assert got.received() == []
    assert stats.dead == 1
    delivery = await Delivery.objects.aget()
    assert delivery.state == DeliveryState.DEAD
    assert delivery.attempts == 1  # not retried: the same event fails the same way
    (attempt,) = [a async for a in Attempt.objects.all()]
    assert attempt.error_kind == "transform"
    assert attempt.error.startswith("transform failed: no such key: 'refund'")
    detail = (await client.get(f"/api/v1/events/{stored['id']}", headers=await key("read"))).json()
    assert detail["deliveries"][0]["attempt_log"][0]["error_kind"] == "transform"
    assert detail["deliveries"][0]["state"] == "dead"


async def test_a_fixed_transform_applies_to_the_replay(
    client: httpx.AsyncClient, receiver: Any
) -> None:
    got = receiver()
    source = await Source.objects.acreate(slug="billing")
    made = await route(source, "ledger", got.url(), transform="{'x': payload.nope}")
    stored = await post(client, INVOICE)
    await run()
    made.transform = "{'x': payload.type}"
    await made.asave()

    replayed = await client.post(
        f"/api/v1/events/{stored['id']}/replay", json={}, headers=await key("write")
    )
    await run()

    assert replayed.status_code == 200, replayed.text
    assert [json.loads(r.body) for r in got.received()] == [{"x": "invoice.paid"}]


CONFIG = """
[[sources]]
slug = "billing"

[[destinations]]
name = "big"
url = "{url}"

[[routes]]
source = "billing"
destination = "big"
filter = 'payload.data.amount >= 100'
match = {{ "payload.data.currency" = {{ "$in" = ["usd", "eur"] }} }}
transform = '{{"amount": payload.data.amount}}'
"""


async def test_rules_from_the_config_file_are_synced_and_applied(
    client: httpx.AsyncClient, receiver: Any, tmp_path: Path
) -> None:
    got = receiver()
    path = tmp_path / "hookway.toml"
    path.write_text(CONFIG.format(url=got.url()))
    await sync_to_async(sync)(config_file.load(path))

    small = await post(client, {"data": {"amount": 5, "currency": "usd"}})
    big = await post(client, INVOICE)
    await run()

    row = await Route.objects.aget()
    assert (row.filter, row.match, row.managed) == (
        "payload.data.amount >= 100",
        {"payload.data.currency": {"$in": ["usd", "eur"]}},
        True,
    )
    assert (small["deliveries"], big["deliveries"]) == (0, 1)
    assert [json.loads(r.body) for r in got.received()] == [{"amount": 150}]


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("filter = 'payload.data.amount >='", "routes[0].filter: line 1, column 23: Syntax error"),
        ("filter = 'amount > 1'", "routes[0].filter: unknown variable 'amount'"),
        (
            'match = { "payload.amount" = { "$gtee" = 1 } }',
            'routes[0].match["payload.amount"]["$gtee"]: unknown operator',
        ),
        ('match = { "amount" = 1 }', "routes[0].match[\"amount\"]: 'amount' is not a variable"),
        ("transform = '{'", "routes[0].transform: line 1, column 2:"),
    ],
)
async def test_a_config_file_with_a_bad_rule_is_refused_whole_naming_the_place(
    tmp_path: Path, line: str, says: str
) -> None:
    path = tmp_path / "hookway.toml"
    plain = CONFIG.format(url="https://example.com/hooks").split("filter =")[0]
    path.write_text(plain + line + "\n")

    with pytest.raises(config_file.ConfigError) as caught:
        config_file.load(path)

    assert f"{path}: {says}" in str(caught.value), str(caught.value)
    assert not await Route.objects.aexists()


# -- the API -------------------------------------------------------------------------------


async def _entries() -> None:
    await sync_to_async(
        lambda: (
            Source.objects.create(slug="billing"),
            Destination.objects.create(name="ledger", url="https://ledger.example/hooks"),
        )
    )()


async def test_the_api_saves_and_shows_a_routes_rules(client: httpx.AsyncClient) -> None:
    await _entries()
    h = await key("write")
    rules = {
        "filter": "payload.data.amount >= 100",
        "match": {"payload.data.currency": {"$in": ["usd"]}},
        "transform": "{'amount': payload.data.amount}",
    }

    made = await client.post(
        "/api/v1/routes", json={"source": "billing", "destination": "ledger", **rules}, headers=h
    )
    pk = made.json()["id"]
    patched = await client.patch(
        f"/api/v1/routes/{pk}", json={"filter": "payload.data.amount >= 500"}, headers=h
    )
    cleared = await client.patch(
        f"/api/v1/routes/{pk}", json={"match": {}, "transform": ""}, headers=h
    )

    assert made.status_code == 201, made.text
    assert {k: made.json()[k] for k in rules} == rules
    assert patched.json()["filter"] == "payload.data.amount >= 500"
    assert patched.json()["match"] == rules["match"]  # left out: kept
    assert (cleared.json()["match"], cleared.json()["transform"]) == ({}, "")
    assert cleared.json()["filter"] == "payload.data.amount >= 500"


@pytest.mark.parametrize(
    ("rules", "says"),
    [
        ({"filter": "payload.amount >"}, "filter: line 1, column 17: Syntax error"),
        (
            {"filter": "size(payload.items.filter(i, i.tags.exists(t, t)))"},
            "filter: 'exists' inside 'filter'",
        ),
        (
            {"match": {"payload.amount": {"$in": 3}}},
            'match["payload.amount"]["$in"]: $in takes a list',
        ),
        ({"match": {"$or": []}}, 'match["$or"]: expected a non-empty list'),
        ({"transform": "payload.a +"}, "transform: line 1, column 12:"),
        ({"transform": "nope"}, "transform: unknown variable 'nope'"),
    ],
)
async def test_the_api_refuses_a_bad_rule_naming_the_place_and_changes_nothing(
    client: httpx.AsyncClient, rules: dict[str, Any], says: str
) -> None:
    await _entries()
    h = await key("write")
    made = await client.post(
        "/api/v1/routes", json={"source": "billing", "destination": "ledger"}, headers=h
    )
    pk = made.json()["id"]
    before = await Route.objects.values("filter", "match", "transform").aget()

    created = await client.post(
        "/api/v1/routes", json={"source": "billing", "destination": "ledger", **rules}, headers=h
    )
    patched = await client.patch(f"/api/v1/routes/{pk}", json=rules, headers=h)

    for answer in (created, patched):
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"] == "invalid_request"
        assert answer.json()["detail"].startswith(says), answer.json()["detail"]
    assert await Route.objects.acount() == 1
    assert await Route.objects.values("filter", "match", "transform").aget() == before


async def test_the_filter_test_tries_rules_on_a_sample(client: httpx.AsyncClient) -> None:
    h = await key("read")  # it saves nothing: a read key may use it

    hit = await client.post(
        "/api/v1/routes/test-filter",
        json={
            "filter": "payload.data.amount >= 100",
            "match": {"headers.x-team": "ops"},
            "transform": "{'amount': payload.data.amount}",
            "payload": INVOICE,
            "headers": {"X-Team": "ops"},
            "event_name": "invoice.paid",
            "source": "billing",
        },
        headers=h,
    )
    miss = await client.post(
        "/api/v1/routes/test-filter",
        json={"filter": "payload.data.refund > 0", "payload": INVOICE},
        headers=h,
    )

    assert hit.status_code == 200, hit.text
    assert hit.json() == {
        "matched": True,
        "reason": None,
        "filter": {"result": True, "problem": None},
        "match": {"result": True, "failed": None},
        "transform": {"body": {"amount": 150}, "problem": None},
        "event_id": None,
    }
    assert miss.json()["matched"] is False
    assert miss.json()["reason"] == "filter error: no such key: 'refund'"
    assert miss.json()["filter"] == {"result": None, "problem": "no such key: 'refund'"}


async def test_the_filter_test_tries_a_saved_routes_rules_on_a_stored_event(
    client: httpx.AsyncClient,
) -> None:
    source = await Source.objects.acreate(slug="billing")
    saved = await route(
        source,
        "ledger",
        "https://ledger.example/hooks",
        match={"payload.data.amount": {"$gt": 500}},
    )
    stored = await post(client, INVOICE)
    h = await key("read")

    answer = await client.post(
        "/api/v1/routes/test-filter",
        json={"route_id": saved.pk, "event_id": stored["id"]},
        headers=h,
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["matched"] is False
    assert answer.json()["match"] == {
        "result": False,
        "failed": "payload.data.amount $gt 500: got 150",
    }
    assert answer.json()["event_id"] == stored["id"]
    # The same reason the event recorded when it fanned out.
    assert await filtered_out(stored["id"]) == [
        {"destination": "ledger", "reason": "match: " + answer.json()["match"]["failed"]}
    ]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"payload": {}}, 422, "give a filter, a match or a transform"),
        ({"filter": "true", "route_id": 1}, 422, "filter: give route_id or the rules"),
        ({"filter": "true", "event_id": "evt_x", "payload": {}}, 422, "event_id: give a stored"),
        ({"filter": "true", "event_id": "evt_missing"}, 404, "no event evt_missing"),
        ({"route_id": 123456}, 404, "no route 123456"),
        ({"filter": "payload >"}, 422, "filter: line 1, column 10"),
    ],
)
async def test_the_filter_test_refuses_what_it_cant_try(
    client: httpx.AsyncClient, body: dict[str, Any], status: int, says: str
) -> None:
    answer = await client.post("/api/v1/routes/test-filter", json=body, headers=await key("read"))
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"].startswith(says), answer.json()["detail"]


rule_text = st.one_of(
    st.text(max_size=60),
    st.lists(
        st.sampled_from(
            [
                "payload",
                ".a",
                ".b",
                "[0]",
                " == ",
                " > ",
                "1",
                "'x'",
                "(",
                ")",
                " && ",
                ".exists(i, ",
                "i",
                "size(",
                "headers",
                "{",
                "}",
                ": ",
                ", ",
                "[",
                "]",
                "null",
            ]
        ),
        max_size=15,
    ).map("".join),
)
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)


def _documents(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.sampled_from(
        ["payload.a", "$or", "$and", "$in", "$gte", "$exist", "headers.x", "a", "$q"]
    ) | st.text(max_size=6)
    return st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3)


documents = st.recursive(json_leaf, _documents, max_leaves=12)


@example(body={"filter": "(" * 3000, "payload": {}})
@example(body={"match": {"payload": {"a": {"b": {"c": {}}}}}, "payload": None})
@example(body={"transform": "1.0/0.0", "payload": 1})
@example(body={"filter": "true", "payload": [[[[[[[[[[1]]]]]]]]]]})
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "filter": rule_text | json_leaf,
            "match": documents,
            "transform": rule_text,
            "payload": documents,
            "headers": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
            "route_id": st.integers(),
            "event_id": st.text(max_size=40),
        },
    )
)
async def test_no_rule_or_sample_makes_the_filter_test_or_a_route_save_answer_a_5xx(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    if not await Source.objects.filter(slug="billing").aexists():
        await _entries()
    h = await key("write")

    tried = await client.post("/api/v1/routes/test-filter", json=body, headers=h)
    rules = {k: body[k] for k in ("filter", "match", "transform") if k in body}
    saved = await client.post(
        "/api/v1/routes", json={"source": "billing", "destination": "ledger", **rules}, headers=h
    )

    assert tried.status_code in {200, 404, 422}, tried.text
    assert saved.status_code in {201, 422}, saved.text
    if tried.status_code != 200:
        assert tried.json()["detail"]
    if saved.status_code == 201:
        await sync_to_async(Route.objects.all().delete)()
        gate.clear_source_cache()
    else:
        assert not await Route.objects.aexists()
