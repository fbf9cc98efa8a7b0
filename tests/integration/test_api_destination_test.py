"""POST /api/v1/destinations/{name}/test against real local servers: a signed
hookway.ping through the dispatcher's sender, and each outcome's status (200, 502, 503,
504) with what the operator needs to know."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hookway.models import Attempt, Delivery, Destination, Event
from hookway.send import signing
from tests import handler_funcs
from tests.conftest import free_port
from tests.integration.apidata import key
from tests.receivers import Receiver, Reply

pytestmark = pytest.mark.django_db(transaction=True)

WHSEC = "whsec_" + base64.b64encode(b"destination-test-signing-key-32b").decode()


@pytest.fixture
def private_allowed(settings: Any) -> None:
    settings.HOOKWAY = dataclasses.replace(settings.HOOKWAY, allow_private_destinations=True)


async def destination(url: str, **fields: Any) -> None:
    await Destination.objects.acreate(name="ci", url=url, **fields)


async def send_test(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post("/api/v1/destinations/ci/test", headers=await key("write"))


async def test_a_2xx_is_200_with_status_and_latency_and_the_ping_is_signed(
    client: httpx.AsyncClient, receiver: Callable[..., Receiver], private_allowed: None
) -> None:
    r = receiver(lambda request, n: Reply(204, body=b""))
    await destination(r.url(), signing_secret=WHSEC, bearer_token="ping-token")

    response = await send_test(client)

    assert response.status_code == 200, response.text
    assert response.json()["ok"] is True
    assert response.json()["status"] == 204
    assert response.json()["latency_ms"] > 0
    (ping,) = r.received()
    assert ping.headers["x-hookway-event"] == "hookway.ping"
    assert ping.headers["authorization"] == "Bearer ping-token"
    assert ping.webhook_id == response.json()["webhook_id"]
    assert json.loads(ping.body)["type"] == "hookway.ping"
    expected = signing.sign(
        base64.b64decode(WHSEC.removeprefix("whsec_")),
        ping.webhook_id,
        int(ping.headers["webhook-timestamp"]),
        ping.body,
    )
    assert ping.headers["webhook-signature"] == expected
    # Nothing is stored: a test is not an event.
    assert await Event.objects.acount() == await Delivery.objects.acount() == 0
    assert await Attempt.objects.acount() == 0


async def test_an_error_status_is_502_with_the_status_and_an_excerpt(
    client: httpx.AsyncClient, receiver: Callable[..., Receiver], private_allowed: None
) -> None:
    r = receiver(lambda request, n: Reply(500, body=b"database is down" + b"." * 5000))
    await destination(r.url())

    response = await send_test(client)

    assert response.status_code == 502
    assert response.json()["error"] == "destination_error"
    assert response.json()["status"] == 500
    assert response.json()["response_excerpt"].startswith("database is down")
    assert len(response.json()["response_excerpt"]) == 2000


async def test_a_refused_connection_is_503_with_the_reason(
    client: httpx.AsyncClient, private_allowed: None
) -> None:
    await destination(f"http://127.0.0.1:{free_port()}/hooks")

    response = await send_test(client)

    assert response.status_code == 503
    assert response.json()["error"] == "destination_unreachable"
    assert response.json()["kind"] == "connection_refused"
    assert "refused" in response.json()["detail"]


async def test_the_ssrf_guard_s_refusal_is_503_with_the_reason(
    client: httpx.AsyncClient, receiver: Callable[..., Receiver], settings: Any
) -> None:
    settings.HOOKWAY = dataclasses.replace(settings.HOOKWAY, allow_private_destinations=False)
    r = receiver()
    await destination(r.url())

    response = await send_test(client)

    assert response.status_code == 503
    assert response.json()["kind"] == "refused_by_guard"
    assert r.received() == []


async def test_a_receiver_that_stalls_is_504_after_the_destination_s_timeout(
    client: httpx.AsyncClient, receiver: Callable[..., Receiver], private_allowed: None
) -> None:
    r = receiver(lambda request, n: Reply(200, delay=5))
    await destination(r.url(), timeout_seconds=0.5)

    response = await send_test(client)

    assert response.status_code == 504
    assert response.json()["error"] == "destination_timeout"
    assert response.json()["kind"] == "timeout"
    assert 400 <= response.json()["latency_ms"] < 3000


async def test_an_unknown_destination_is_404(client: httpx.AsyncClient) -> None:
    response = await send_test(client)

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("handler", {"handler": "tests.handler_funcs:on_push"}),
        ("celery", {"celery_task": "tests.celery_app.record_event"}),
    ],
)
async def test_a_handler_or_celery_destination_is_409_and_nothing_runs(
    client: httpx.AsyncClient, kind: str, fields: dict[str, str]
) -> None:
    handler_funcs.reset()
    await Destination.objects.acreate(name="ci", url="", **fields)

    response = await send_test(client)

    assert response.status_code == 409
    assert response.json()["error"] == "not_http"
    assert f"a {kind} destination" in response.json()["detail"]
    assert await Attempt.objects.acount() == 0
    assert handler_funcs.book.calls == []
    shown = await client.get("/api/v1/destinations/ci", headers=await key("read", name="reader"))
    assert shown.json()["kind"] == kind
    assert shown.json()["url"] == ""
    assert shown.json()["handler" if kind == "handler" else "celery_task"] == next(
        iter(fields.values())
    )
    edited = await client.patch(
        "/api/v1/destinations/ci", json={"timeout_seconds": 5}, headers=await key("write")
    )
    assert edited.status_code == 409
    assert edited.json()["error"] == "not_http"
