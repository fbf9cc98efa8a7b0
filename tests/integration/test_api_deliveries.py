"""GET /api/v1/deliveries (filters, keyset pages), POST /deliveries/replay (by filter,
dry_run counts, idempotent unless force) and POST /events/{id}/replay (to every
destination or chosen ones, every skip with its reason)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from asgiref.sync import sync_to_async

from hookway.models import Delivery, Route
from tests.integration.apidata import T0, event, key, source_and_destination

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def world() -> dict[str, str]:
    gh, ci = source_and_destination("gh", "ci")
    _, archive = source_and_destination("gh", "archive")
    rows = {
        "a": event(gh, at=T0, deliveries=((ci, "dead", 3), (archive, "succeeded", 1))),
        "b": event(gh, at=T0 + timedelta(minutes=1), deliveries=((ci, "dead", 3),)),
        "c": event(gh, at=T0 + timedelta(minutes=2), deliveries=((ci, "pending", 1),)),
    }
    return {name: row.pk for name, row in rows.items()}


async def listed(client: httpx.AsyncClient, h: dict[str, str], query: str) -> list[tuple[str, str]]:
    response = await client.get(f"/api/v1/deliveries?{query}", headers=h)
    assert response.status_code == 200, response.text
    return [(d["event"], d["destination"], d["state"]) for d in response.json()["items"]]


async def test_deliveries_are_listed_newest_first_and_filtered(client: httpx.AsyncClient) -> None:
    e = await world()
    h = await key("read")

    everything = await listed(client, h, "")
    dead_ci = await listed(client, h, "destination=ci&state=dead")
    failing = await listed(client, h, "state=failing")
    late = await listed(client, h, "since=2026-03-01T12:01:00Z&until=2026-03-01T12:02:00Z")
    of_a = await listed(client, h, f"event={e['a']}")

    assert [x[0] for x in everything] == [e["c"], e["b"], e["a"], e["a"]]
    assert dead_ci == [(e["b"], "ci", "dead"), (e["a"], "ci", "dead")]
    assert failing == [(e["c"], "ci", "failing")]
    assert late == [(e["b"], "ci", "dead")]
    assert sorted(of_a) == [(e["a"], "archive", "delivered"), (e["a"], "ci", "dead")]


async def test_delivery_pages_follow_the_cursor(client: httpx.AsyncClient) -> None:
    await world()
    h = await key("read")

    first = await client.get("/api/v1/deliveries?limit=3", headers=h)
    second = await client.get(
        f"/api/v1/deliveries?limit=3&cursor={first.json()['next']}", headers=h
    )

    ids = [d["id"] for d in first.json()["items"] + second.json()["items"]]
    assert len(ids) == len(set(ids)) == 4
    assert second.json()["next"] is None


async def test_bulk_replay_counts_with_dry_run_then_replays_once(client: httpx.AsyncClient) -> None:
    e = await world()
    h = await key("write")
    body = {"destination": "ci", "state": "dead"}

    dry = await client.post("/api/v1/deliveries/replay", json={**body, "dry_run": True}, headers=h)
    count_after_dry = await Delivery.objects.acount()
    real = await client.post("/api/v1/deliveries/replay", json=body, headers=h)
    again = await client.post("/api/v1/deliveries/replay", json=body, headers=h)
    forced = await client.post("/api/v1/deliveries/replay", json={**body, "force": True}, headers=h)

    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] is True
    assert dry.json()["replayed"] == 2
    assert count_after_dry == 4
    assert real.json()["replayed"] == 2
    assert {c["event_id"] for c in real.json()["created"]} == {e["a"], e["b"]}
    assert all(c["replay_of"] for c in real.json()["created"])
    assert again.status_code == 200
    assert again.json()["replayed"] == 0
    assert {s["kind"] for s in again.json()["skipped"]} == {"already_replayed"}
    assert all(s["done"] and s["forceable"] for s in again.json()["skipped"])
    # The two dead originals again, and not the two replays: they are pending.
    assert forced.json()["replayed"] == 2
    assert await Delivery.objects.acount() == 8


async def test_replaying_an_event_goes_to_its_destinations_or_the_chosen_ones(
    client: httpx.AsyncClient,
) -> None:
    e = await world()
    h = await key("write")

    chosen = await client.post(
        f"/api/v1/events/{e['a']}/replay", json={"destinations": ["archive"]}, headers=h
    )
    every = await client.post(f"/api/v1/events/{e['a']}/replay", json={}, headers=h)

    assert chosen.status_code == 200, chosen.text
    assert [c["destination"] for c in chosen.json()["created"]] == ["archive"]
    assert [c["destination"] for c in every.json()["created"]] == ["ci"]
    assert [(s["subject"], s["kind"]) for s in every.json()["skipped"]] == [
        (f"{e['a']} → archive", "pending")
    ]


async def test_an_event_replay_that_cannot_be_done_says_why(client: httpx.AsyncClient) -> None:
    e = await world()
    h = await key("write")
    await Route.objects.filter(destination__name="archive").adelete()

    no_route = await client.post(
        f"/api/v1/events/{e['b']}/replay", json={"destinations": ["archive"]}, headers=h
    )
    forced = await client.post(
        f"/api/v1/events/{e['b']}/replay",
        json={"destinations": ["archive"], "force": True},
        headers=h,
    )
    unknown_destination = await client.post(
        f"/api/v1/events/{e['b']}/replay", json={"destinations": ["nope"]}, headers=h
    )
    unknown_event = await client.post("/api/v1/events/evt_nope/replay", json={}, headers=h)

    assert no_route.status_code == 409
    assert no_route.json()["error"] == "not_replayed"
    assert "no route" in no_route.json()["detail"]
    assert no_route.json()["skipped"][0]["kind"] == "no_route"
    assert forced.status_code == 200
    assert forced.json()["replayed"] == 1
    assert unknown_destination.status_code == 404
    assert unknown_event.status_code == 404
