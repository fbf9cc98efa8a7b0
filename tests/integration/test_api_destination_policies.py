"""A destination's rate limit, circuit breaker and disable-after over the operator API:
set and validated like the config file sets them, its circuit shown, and its state
changes listed with their reasons."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookway.models import Destination, DestinationChange
from hookway.policy import Change
from hookway.store import changelog
from tests.integration.apidata import key

pytestmark = pytest.mark.django_db(transaction=True)


async def test_policies_are_set_shown_changed_and_removed(client: httpx.AsyncClient) -> None:
    h = await key("write")

    made = await client.post(
        "/api/v1/destinations",
        json={
            "name": "ci",
            "url": "https://ci.example.com/",
            "rate_limit": "3000/min",
            "circuit_failures": 8,
            "circuit_cooldown_seconds": 10,
            "disable_after": "2d",
        },
        headers=h,
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["rate_limit"] == "3000/min"
    assert (body["circuit_failures"], body["circuit_cooldown_seconds"]) == (8, 10.0)
    assert body["disable_after_seconds"] == 2 * 86400
    assert (body["circuit"], body["failures_in_a_row"], body["failing_since"]) == (
        "closed",
        0,
        None,
    )

    changed = await client.patch(
        "/api/v1/destinations/ci", json={"rate_limit": "50/s", "disable_after": 0}, headers=h
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["rate_limit"], changed.json()["disable_after_seconds"]) == ("50/s", 0)
    # Left out: kept.
    assert changed.json()["circuit_failures"] == 8

    removed = await client.patch("/api/v1/destinations/ci", json={"rate_limit": ""}, headers=h)
    assert removed.json()["rate_limit"] == ""
    assert (await Destination.objects.aget(name="ci")).rate_limit == ""


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        (
            {"rate_limit": "50/d"},
            "destination.rate_limit: '50/d' is not a rate: expected \"<count>/s\"",
        ),
        ({"rate_limit": "0/s"}, "the count must be at least 1"),
        ({"rate_limit": "fast"}, "is not a rate"),
        ({"circuit_failures": -1}, "destination.circuit_failures"),
        ({"circuit_cooldown_seconds": 0}, "destination.circuit_cooldown_seconds"),
        ({"disable_after": "5 weeks"}, "destination.disable_after: '5 weeks' is not a duration"),
        ({"disable_after": -3}, "expected a duration of 0 or more"),
    ],
)
async def test_a_bad_policy_is_a_422_naming_it_and_changes_nothing(
    client: httpx.AsyncClient, fields: dict[str, Any], says: str
) -> None:
    h = await key("write")
    await client.post(
        "/api/v1/destinations", json={"name": "ci", "url": "https://ci.example.com/"}, headers=h
    )

    made = await client.post(
        "/api/v1/destinations",
        json={"name": "ci2", "url": "https://ci.example.com/", **fields},
        headers=h,
    )
    changed = await client.patch("/api/v1/destinations/ci", json=fields, headers=h)

    for response in (made, changed):
        assert response.status_code == 422, response.text
        assert says in response.json()["detail"]
    assert [d.name async for d in Destination.objects.all()] == ["ci"]
    ci = await Destination.objects.aget(name="ci")
    assert (ci.rate_limit, ci.circuit_failures) == ("", 5)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=20))
def test_any_rate_limit_text_is_taken_or_refused_with_a_reason_never_a_5xx(
    text: str, transactional_db: None
) -> None:
    from hookway.policy import parse_rate, rate_problem

    problem = rate_problem(text.strip())
    if problem is None and text.strip():
        rate = parse_rate(text.strip())
        assert rate.count >= 1
        assert 0 < rate.per_second <= 100_000
    elif text.strip():
        assert "rate" in problem or "count" in problem or "per second" in problem  # type: ignore[operator]


async def test_the_changes_of_a_destination_are_listed_newest_first_page_by_page(
    client: httpx.AsyncClient,
) -> None:
    def made() -> None:
        from django.db import transaction

        destination = Destination.objects.create(name="ci", url="https://ci.example.com/")
        with transaction.atomic():
            for i, change in enumerate([Change.CIRCUIT_OPENED, Change.CIRCUIT_HALF_OPEN] * 3):
                changelog.record(destination.pk, "ci", change, "a", "b", f"reason {i}")

    await sync_to_async(made)()
    h = await key("read")

    first = await client.get("/api/v1/destinations/ci/changes?limit=4", headers=h)
    second = await client.get(
        f"/api/v1/destinations/ci/changes?limit=4&cursor={first.json()['next']}", headers=h
    )
    missing = await client.get("/api/v1/destinations/nope/changes", headers=h)
    bad = await client.get("/api/v1/destinations/ci/changes?cursor=x1", headers=h)

    assert first.status_code == 200, first.text
    reasons = [c["reason"] for c in first.json()["items"] + second.json()["items"]]
    assert reasons == [f"reason {i}" for i in range(5, -1, -1)]
    assert second.json()["next"] is None
    assert first.json()["items"][0]["change"] == "circuit_half_open"
    assert set(first.json()["items"][0]) == {
        "id",
        "at",
        "change",
        "from_state",
        "to_state",
        "reason",
    }
    assert missing.status_code == 404
    assert bad.status_code == 400
    assert bad.json()["error"] == "bad_cursor"


async def test_pausing_over_the_api_is_a_recorded_change(client: httpx.AsyncClient) -> None:
    await Destination.objects.acreate(name="ci", url="https://ci.example.com/")
    h = await key("write")

    await client.post("/api/v1/destinations/ci/pause", json={"reason": "deploy"}, headers=h)
    await client.post("/api/v1/destinations/ci/resume", headers=h)
    await client.post("/api/v1/destinations/ci/disable", headers=h)
    await client.post("/api/v1/destinations/ci/enable", headers=h)

    listed = (await client.get("/api/v1/destinations/ci/changes", headers=h)).json()["items"]
    assert [(c["change"], c["reason"]) for c in reversed(listed)] == [
        ("paused", "paused by an operator: deploy"),
        ("resumed", "resumed by an operator"),
        ("disabled", "disabled by an operator"),
        ("enabled", "enabled by an operator; it was disabled: disabled by an operator"),
    ]
    assert await DestinationChange.objects.acount() == 4
