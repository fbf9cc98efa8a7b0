"""A destination's extra headers end to end, from a sender's webhook to a real local
receiver: static headers, bearer and basic auth (env: secrets read at every attempt) and
the sender's headers forwarded by glob, never its secret header."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from hookway.models import Attempt, Delivery, DeliveryState, Destination, Route, Source
from tests.integration.test_dispatcher import run

pytestmark = pytest.mark.django_db(transaction=True)

GITLAB_TOKEN = "glpat-source-secret-3e1d"


async def gitlab_to(**destination: Any) -> Destination:
    source = await Source.objects.acreate(slug="gitlab", verify="gitlab", secrets=[GITLAB_TOKEN])
    created = await Destination.objects.acreate(name="consumer", **destination)
    await Route.objects.acreate(source=source, destination=created)
    return created


async def push(client: httpx.AsyncClient, n: int = 1) -> None:
    response = await client.post(
        "/hooks/gitlab",
        json={"object_kind": "push", "n": n},
        headers={
            "X-Gitlab-Token": GITLAB_TOKEN,
            "X-Gitlab-Event": "Push Hook",
            "X-Gitlab-Instance": "https://gitlab.example.com",
            "X-Gitlab-Event-UUID": f"uuid-{n}",
            "X-Other": "not forwarded",
        },
    )
    assert response.status_code == 202, response.text


async def test_a_gitlab_consumer_gets_its_headers_and_the_bearer_token(
    client, receiver, monkeypatch
):
    monkeypatch.setenv("HOOKWAY_TEST_CI_TOKEN", "ci-token-1")
    monkeypatch.setenv("HOOKWAY_TEST_CONSUMER_TOKEN", "consumer-secret")
    consumer = receiver()
    await gitlab_to(
        url=consumer.url(),
        headers={"X-Team": "ops", "X-Gitlab-Token": "env:HOOKWAY_TEST_CONSUMER_TOKEN"},
        bearer_token="env:HOOKWAY_TEST_CI_TOKEN",
        forward_headers=["X-Gitlab-*"],
    )
    await push(client)

    stats = await run()

    assert stats.succeeded == 1
    (got,) = consumer.received()
    assert got.headers["x-gitlab-event"] == "Push Hook"
    assert got.headers["x-gitlab-instance"] == "https://gitlab.example.com"
    assert got.headers["x-gitlab-event-uuid"] == "uuid-1"
    assert "x-other" not in got.headers
    assert got.headers["authorization"] == "Bearer ci-token-1"
    assert got.headers["x-team"] == "ops"
    # The consumer's own token, from the environment: never the source's secret.
    assert got.headers["x-gitlab-token"] == "consumer-secret"
    assert GITLAB_TOKEN not in str(got.headers)
    assert got.headers["x-hookway-source"] == "gitlab"


async def test_a_rotated_env_secret_is_used_from_the_next_attempt_without_a_restart(
    client, receiver, monkeypatch
):
    monkeypatch.setenv("HOOKWAY_TEST_CI_TOKEN", "old-token")
    consumer = receiver()
    await gitlab_to(url=consumer.url(), bearer_token="env:HOOKWAY_TEST_CI_TOKEN")
    await push(client, 1)
    await run()

    monkeypatch.setenv("HOOKWAY_TEST_CI_TOKEN", "new-token")
    await push(client, 2)
    await run()

    assert [r.headers["authorization"] for r in consumer.received()] == [
        "Bearer old-token",
        "Bearer new-token",
    ]


async def test_basic_auth_with_a_password_from_the_environment(client, receiver, monkeypatch):
    monkeypatch.setenv("HOOKWAY_TEST_CI_PASSWORD", "pw:with:colons")
    consumer = receiver()
    await gitlab_to(url=consumer.url(), basic_auth="ci:env:HOOKWAY_TEST_CI_PASSWORD")
    await push(client)

    await run()

    (got,) = consumer.received()
    assert (
        got.headers["authorization"] == "Basic " + base64.b64encode(b"ci:pw:with:colons").decode()
    )


@pytest.mark.parametrize("field", ["bearer_token", "signing_secret"])
async def test_an_unset_env_secret_kills_the_delivery_with_its_name_and_sends_nothing(
    client, receiver, monkeypatch, field
):
    monkeypatch.delenv("HOOKWAY_TEST_NO_SUCH", raising=False)
    consumer = receiver()
    await gitlab_to(url=consumer.url(), **{field: "env:HOOKWAY_TEST_NO_SUCH"})
    await push(client)

    stats = await run()

    assert stats.dead == 1
    assert consumer.received() == []
    delivery = await Delivery.objects.aget()
    assert delivery.state == DeliveryState.DEAD
    attempt = await Attempt.objects.aget(delivery=delivery)
    assert attempt.error_kind == "invalid_destination"
    assert attempt.error.startswith(
        f"not sent: {field}: environment variable HOOKWAY_TEST_NO_SUCH is not set or empty"
    )
