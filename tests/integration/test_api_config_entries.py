"""/api/v1/sources, /destinations and /routes: made, read, changed, removed, enabled and
disabled through the API, validated by the config file's rules; secrets never leave;
entries the config file manages are read-only (409 naming the file)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async

from hookway.models import Destination, Route, Source
from hookway.secrets import fingerprint
from tests.integration.apidata import event, key, source_and_destination

pytestmark = pytest.mark.django_db(transaction=True)

WHSEC = "whsec_aG9va3dheS1hcGktdGVzdC1zaWduaW5nLWtleQ=="
SECRETS = {
    "source": "gh-api-secret-8c1f2e",
    "signing": WHSEC,
    "bearer": "bearer-api-secret-4d2a7b",
    "password": "basic-api-password-93b1",
    "url_password": "url-api-password-61fe",
    "header": "header-api-value-2f0c",
}


async def test_a_source_is_made_changed_disabled_and_removed(client: httpx.AsyncClient) -> None:
    h = await key("write")

    made = await client.post(
        "/api/v1/sources",
        json={"slug": "gh", "verify": "github", "secrets": [SECRETS["source"]]},
        headers=h,
    )
    changed = await client.patch(
        "/api/v1/sources/gh", json={"max_body_bytes": 2048, "require_event_name": True}, headers=h
    )
    disabled = await client.post("/api/v1/sources/gh/disable", headers=h)
    webhook = await client.post("/hooks/gh", json={})
    enabled = await client.post("/api/v1/sources/gh/enable", headers=h)
    listed = await client.get("/api/v1/sources", headers=h)
    removed = await client.delete("/api/v1/sources/gh", headers=h)
    gone = await client.get("/api/v1/sources/gh", headers=h)

    assert made.status_code == 201, made.text
    assert made.json()["secret_set"] is True
    assert made.json()["secret_fingerprints"] == [fingerprint(SECRETS["source"])]
    assert changed.status_code == 200, changed.text
    assert changed.json()["max_body_bytes"] == 2048
    assert changed.json()["require_event_name"] is True
    assert changed.json()["secret_set"] is True  # kept: not in the PATCH
    assert disabled.json()["enabled"] is False
    assert webhook.status_code == 404  # ingest saw the change at once (its cache cleared)
    assert enabled.json()["enabled"] is True
    assert [s["slug"] for s in listed.json()] == ["gh"]
    assert removed.status_code == 204
    assert gone.status_code == 404


async def test_a_source_with_stored_events_is_not_removed(client: httpx.AsyncClient) -> None:
    await sync_to_async(lambda: event(source_and_destination()[0]))()

    response = await client.delete("/api/v1/sources/gh", headers=await key("write"))

    assert response.status_code == 409
    assert "disable it instead" in response.json()["detail"]
    assert await Source.objects.filter(slug="gh").aexists()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"slug": "Not A Slug"}, "source.slug"),
        ({"slug": "gh", "verify": "gitlab"}, "needs a secret"),
        ({"slug": "gh", "verify": "standard-webhooks", "secrets": ["nope"]}, "whsec_"),
        ({"slug": "gh", "secrets": ["env:HOOKWAY_TEST_UNSET_VAR"]}, "HOOKWAY_TEST_UNSET_VAR"),
        ({"slug": "gh", "max_body_bytes": 0}, "max_body_bytes"),
        ({"slug": "gh", "verify": "rot13"}, "verify"),
    ],
)
async def test_a_source_the_config_file_would_refuse_is_a_422(
    client: httpx.AsyncClient, body: dict[str, Any], says: str
) -> None:
    response = await client.post("/api/v1/sources", json=body, headers=await key("write"))

    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert says in response.json()["detail"]
    assert not await Source.objects.aexists()


async def test_a_destination_is_made_paused_resumed_disabled_enabled_and_removed(
    client: httpx.AsyncClient,
) -> None:
    h = await key("write")

    made = await client.post(
        "/api/v1/destinations",
        json={"name": "ci", "url": "https://ci.example.com/hooks", "signing_secret": WHSEC},
        headers=h,
    )
    changed = await client.patch(
        "/api/v1/destinations/ci",
        json={"timeout_seconds": 3, "bearer_token": SECRETS["bearer"]},
        headers=h,
    )
    paused = await client.post(
        "/api/v1/destinations/ci/pause", json={"reason": "deploy"}, headers=h
    )
    paused_again = await client.post("/api/v1/destinations/ci/pause", json={}, headers=h)
    resumed = await client.post("/api/v1/destinations/ci/resume", headers=h)
    disabled = await client.post("/api/v1/destinations/ci/disable", headers=h)
    enabled = await client.post("/api/v1/destinations/ci/enable", headers=h)
    cleared = await client.patch("/api/v1/destinations/ci", json={"signing_secret": ""}, headers=h)
    removed = await client.delete("/api/v1/destinations/ci", headers=h)

    assert made.status_code == 201, made.text
    assert made.json()["signing_secret_set"] is True
    assert made.json()["signing_secret_fingerprint"]
    assert changed.json()["timeout_seconds"] == 3
    assert changed.json()["bearer_token_set"] is True
    assert changed.json()["signing_secret_set"] is True
    assert paused.json()["changed"] is True
    assert paused.json()["destination"]["state"] == "paused"
    assert paused.json()["destination"]["paused_reason"] == "deploy"
    assert paused_again.json()["changed"] is False
    assert resumed.json()["destination"]["state"] == "active"
    assert disabled.json()["destination"]["state"] == "disabled"
    assert enabled.json()["changed"] is True
    assert enabled.json()["destination"]["enabled"] is True
    assert cleared.json()["signing_secret_set"] is False
    assert cleared.json()["signing_secret_fingerprint"] is None
    assert removed.status_code == 204
    assert not await Destination.objects.aexists()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"url": "ftp://ci.example.com/"}, "http:// or https://"),
        ({"url": "https://ci.example.com:99999/"}, "out of range"),
        ({"url": "https://ci.example.com/", "name": "Bad Name"}, "destination.name"),
        ({"url": "https://ci.example.com/", "signing_secret": "plain"}, "whsec_"),
        ({"url": "https://ci.example.com/", "timeout_seconds": 0}, "timeout_seconds"),
        (
            {"url": "https://ci.example.com/", "bearer_token": "t", "basic_auth": "u:p"},
            "not both",
        ),
        ({"url": "https://ci.example.com/", "headers": {"webhook-id": "x"}}, "webhook-id"),
        ({"url": "https://ci.example.com/", "headers": {"X-Api-Key": "literal"}}, "env:"),
        ({"url": "https://ci.example.com/", "on_dead": "stop"}, "destination.on_dead"),
    ],
)
async def test_a_destination_the_config_file_would_refuse_is_a_422(
    client: httpx.AsyncClient, body: dict[str, Any], says: str
) -> None:
    response = await client.post(
        "/api/v1/destinations", json={"name": "ci", **body}, headers=await key("write")
    )

    assert response.status_code == 422, response.text
    assert says in response.json()["detail"]
    assert not await Destination.objects.aexists()


async def test_a_destination_is_made_ordered_and_its_dead_policy_changed(
    client: httpx.AsyncClient,
) -> None:
    h = await key("write")
    made = await client.post(
        "/api/v1/destinations",
        json={"name": "ledger", "url": "https://l.example.com/in", "ordered": True},
        headers=h,
    )
    changed = await client.patch(
        "/api/v1/destinations/ledger", json={"on_dead": "block"}, headers=h
    )
    refused = await client.patch("/api/v1/destinations/ledger", json={"on_dead": "x"}, headers=h)

    assert made.status_code == 201, made.text
    assert (made.json()["ordered"], made.json()["on_dead"]) == (True, "skip")
    assert (changed.json()["ordered"], changed.json()["on_dead"]) == (True, "block")
    assert refused.status_code == 422
    assert "on_dead" in refused.json()["detail"]
    row = await Destination.objects.aget(name="ledger")
    assert (row.ordered, row.on_dead) == (True, "block")


async def test_routes_are_made_changed_disabled_and_removed(client: httpx.AsyncClient) -> None:
    await sync_to_async(
        lambda: (
            Source.objects.create(slug="gh"),
            Destination.objects.create(name="ci", url="https://x.example/"),
        )
    )()
    h = await key("write")

    made = await client.post(
        "/api/v1/routes", json={"source": "gh", "destination": "ci", "events": ["push"]}, headers=h
    )
    route = made.json()["id"]
    twice = await client.post(
        "/api/v1/routes", json={"source": "gh", "destination": "ci"}, headers=h
    )
    unknown = await client.post(
        "/api/v1/routes", json={"source": "gh", "destination": "no"}, headers=h
    )
    changed = await client.patch(f"/api/v1/routes/{route}", json={"events": ["tag_*"]}, headers=h)
    disabled = await client.post(f"/api/v1/routes/{route}/disable", headers=h)
    enabled = await client.post(f"/api/v1/routes/{route}/enable", headers=h)
    listed = await client.get("/api/v1/routes", headers=h)
    removed = await client.delete(f"/api/v1/routes/{route}", headers=h)
    missing = await client.get(f"/api/v1/routes/{route}", headers=h)
    huge = await client.get(f"/api/v1/routes/{10**30}", headers=h)

    assert made.status_code == 201, made.text
    assert made.json()["events"] == ["push"]
    assert twice.status_code == 409
    assert unknown.status_code == 422
    assert "no destination 'no'" in unknown.json()["detail"]
    assert changed.json()["events"] == ["tag_*"]
    assert disabled.json()["enabled"] is False
    assert enabled.json()["enabled"] is True
    assert [(r["source"], r["destination"]) for r in listed.json()] == [("gh", "ci")]
    assert removed.status_code == 204
    assert missing.status_code == huge.status_code == 404
    assert not await Route.objects.aexists()


async def test_entries_the_config_file_manages_are_read_only_and_the_409_names_the_file(
    client: httpx.AsyncClient, settings: Any, tmp_path: Path
) -> None:
    config = tmp_path / "hookway.toml"
    settings.HOOKWAY = dataclasses.replace(settings.HOOKWAY, config_path=config)

    @sync_to_async
    def seed() -> int:
        source = Source.objects.create(slug="gl", managed=True)
        destination = Destination.objects.create(name="bot", url="https://x.example/", managed=True)
        return Route.objects.create(source=source, destination=destination, managed=True).pk

    route = await seed()
    h = await key("write")
    attempts = [
        ("PATCH", "/api/v1/sources/gl", {"max_body_bytes": 10}),
        ("DELETE", "/api/v1/sources/gl", None),
        ("POST", "/api/v1/sources/gl/disable", None),
        ("PATCH", "/api/v1/destinations/bot", {"timeout_seconds": 1}),
        ("DELETE", "/api/v1/destinations/bot", None),
        ("POST", "/api/v1/destinations/bot/disable", None),
        ("PATCH", f"/api/v1/routes/{route}", {"events": []}),
        ("DELETE", f"/api/v1/routes/{route}", None),
        ("POST", f"/api/v1/routes/{route}/disable", None),
    ]
    for method, path, body in attempts:
        response = await client.request(method, path, json=body, headers=h)
        assert response.status_code == 409, (method, path, response.text)
        assert response.json()["error"] == "managed_by_config_file"
        assert str(config) in response.json()["detail"]
    # Operational state is not configuration: a managed destination still pauses.
    paused = await client.post("/api/v1/destinations/bot/pause", json={}, headers=h)
    assert paused.status_code == 200
    source = await Source.objects.aget(slug="gl")
    assert (source.max_body_bytes, source.enabled) == (1024 * 1024, True)
    assert await Route.objects.filter(pk=route, enabled=True).aexists()


async def test_a_managed_destination_the_file_disabled_is_not_enabled_here(
    client: httpx.AsyncClient,
) -> None:
    await Destination.objects.acreate(
        name="bot",
        url="https://x.example/",
        managed=True,
        enabled=False,
        disabled_reason="disabled in the config file",
    )

    response = await client.post("/api/v1/destinations/bot/enable", headers=await key("write"))

    assert response.status_code == 409
    assert "config file" in response.json()["detail"]


async def test_no_answer_ever_holds_a_secret(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOKWAY_TEST_HEADER", SECRETS["header"])
    h = await key("write")
    bodies: list[str] = []

    async def call(method: str, path: str, body: Any = None) -> httpx.Response:
        response = await client.request(method, path, json=body, headers=h)
        assert response.status_code < 500, response.text
        bodies.append(response.text)
        return response

    await call(
        "POST", "/api/v1/sources", {"slug": "gh", "verify": "token", "secrets": [SECRETS["source"]]}
    )
    await call("PATCH", "/api/v1/sources/gh", {"secrets": [SECRETS["source"], "second-one-x"]})
    await call(
        "POST",
        "/api/v1/destinations",
        {
            "name": "ci",
            "url": "https://ci.example.com/hooks",
            "signing_secret": SECRETS["signing"],
            "basic_auth": f"deploy:{SECRETS['password']}",
            "headers": {"X-Api-Key": "env:HOOKWAY_TEST_HEADER"},
        },
    )
    await call(
        "POST",
        "/api/v1/destinations",
        {"name": "cd", "url": f"https://deploy:{SECRETS['url_password']}@cd.example.com/"},
    )
    await call("PATCH", "/api/v1/destinations/cd", {"bearer_token": SECRETS["bearer"]})
    await call("POST", "/api/v1/routes", {"source": "gh", "destination": "ci"})
    await call("POST", "/api/v1/destinations/ci/pause", {})
    await call("POST", "/api/v1/destinations/ci/disable")
    await call("POST", "/api/v1/destinations/ci/enable")
    await call("POST", "/api/v1/destinations/ci/resume")
    await call("POST", "/api/v1/sources/gh/disable")
    for path in [
        "/api/v1/sources",
        "/api/v1/sources/gh",
        "/api/v1/destinations",
        "/api/v1/destinations/ci",
        "/api/v1/destinations/cd",
        "/api/v1/routes",
        "/api/v1/openapi.json",
    ]:
        await call("GET", path)
    # A refused change doesn't echo what it was given either.
    await call("PATCH", "/api/v1/destinations/ci", {"bearer_token": SECRETS["bearer"]})

    assert len(bodies) == 19
    everything = "\n".join(bodies)
    for name, secret in SECRETS.items():
        assert secret not in everything, name
    assert "deploy:***@cd.example.com" in everything
    assert "env:HOOKWAY_TEST_HEADER" in everything


async def test_changes_reach_ingest_at_once(client: httpx.AsyncClient) -> None:
    h = await key("write")
    await client.post("/api/v1/sources", json={"slug": "gh"}, headers=h)
    first = await client.post("/hooks/gh", json={"event_name": "push"})
    await client.post(
        "/api/v1/destinations", json={"name": "ci", "url": "https://x.example/"}, headers=h
    )
    await client.post("/api/v1/routes", json={"source": "gh", "destination": "ci"}, headers=h)

    second = await client.post("/hooks/gh", json={"event_name": "push"})

    assert first.json()["deliveries"] == 0
    assert second.json()["deliveries"] == 1
