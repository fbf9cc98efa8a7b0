"""Handler destinations against the real dispatcher and database: async and sync
handlers, failures and retries, Retry and Reject, timeouts, the ORM from a handler,
the loop-lag warning, replay, and the decorator's sync."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import httpx
import pytest

import hookway
from hookway import gate, handlers
from hookway.config import registry
from hookway.config.file import HookwayConfig
from hookway.models import Delivery, DeliveryState, Destination, Route, Source
from tests import handler_funcs
from tests.handler_funcs import book
from tests.integration.test_dispatcher import attempts_of, dispatcher, routes_to

pytestmark = pytest.mark.django_db(transaction=True)

H = "tests.handler_funcs:"


@pytest.fixture(autouse=True)
def _fresh_book() -> None:
    handler_funcs.reset()


async def post(client: httpx.AsyncClient, name: str = "push", **extra: Any) -> str:
    response = await client.post(
        "/hooks/src",
        json={"event_name": name, **extra},
        headers={"X-Gitlab-Event": "System Hook", "Idempotency-Key": f"k-{name}-{extra}"},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def run(**overrides: Any) -> Any:
    return await asyncio.wait_for(dispatcher(**overrides).run(), timeout=60)


async def only_delivery() -> Delivery:
    return await Delivery.objects.aget()


async def test_an_async_handler_gets_the_stored_event_on_the_dispatchers_loop(client):
    await routes_to({"name": "h", "handler": H + "on_push"})
    event_id = await post(client, "project_create", path="group/app")

    stats = await run()

    assert stats.succeeded == 1
    [call] = book.calls
    event = call.event
    assert isinstance(event, hookway.HandlerEvent)
    assert (event.id, event.source, event.event_name, event.attempt) == (
        event_id,
        "src",
        "project_create",
        1,
    )
    assert event.payload == {"event_name": "project_create", "path": "group/app"}
    assert event.body.startswith(b"{")
    assert b"group/app" in event.body
    assert event.headers["x-gitlab-event"] == "System Hook"
    assert event.delivery_id == (await only_delivery()).pk
    assert call.thread == threading.current_thread().name  # on the loop, not a thread
    [attempt] = await attempts_of(event.delivery_id)
    assert attempt.outcome == "success"
    assert attempt.response_body == "returned 'handled project_create'"
    assert attempt.duration_ms is not None


async def test_a_sync_handler_runs_in_a_thread(client):
    await routes_to({"name": "h", "handler": H + "on_push_sync"})
    await post(client)

    assert (await run()).succeeded == 1
    [call] = book.calls
    assert call.thread.startswith("hookway-handler")
    assert (await only_delivery()).state == DeliveryState.SUCCEEDED


async def test_a_failing_handler_is_recorded_with_its_traceback_and_retried(client):
    book.failures_left = 1
    await routes_to({"name": "h", "handler": H + "flaky", "max_attempts": 3})
    await post(client)

    stats = await run()

    assert (stats.succeeded, stats.retried) == (1, 1)
    delivery = await only_delivery()
    first, second = await attempts_of(delivery.pk)
    assert first.outcome == "retry"
    assert first.error_kind == "handler_error"
    assert first.error == "ValueError: the backend is down (attempt 1)"
    assert "Traceback" in first.response_body
    assert "in flaky" in first.response_body
    assert first.duration_ms is not None
    assert second.outcome == "success"
    assert [c.event.attempt for c in book.calls] == [1, 2]
    assert delivery.state == DeliveryState.SUCCEEDED


async def test_retry_waits_at_least_as_long_as_the_handler_asked(client):
    book.retry_after = 1.0  # the compressed schedule says 0.1 s
    await routes_to({"name": "h", "handler": H + "asks_to_retry"})
    await post(client)

    await run()

    first, second = book.calls
    assert second.at - first.at >= 1.0
    attempt = (await attempts_of((await only_delivery()).pk))[0]
    assert attempt.error_kind == "retry_requested"
    assert attempt.outcome == "retry"
    assert "1 s" in attempt.error


async def test_reject_kills_the_delivery_at_once_and_replay_runs_it_again(client):
    await routes_to({"name": "h", "handler": H + "rejects", "max_attempts": 5})
    await post(client)

    stats = await run()

    assert (stats.dead, stats.retried) == (1, 0)
    delivery = await only_delivery()
    assert delivery.state == DeliveryState.DEAD
    [attempt] = await attempts_of(delivery.pk)
    assert attempt.outcome == "failed"
    assert attempt.error_kind == "rejected"
    assert attempt.error.startswith("Reject: project is archived")

    book.reject = False
    result = await gate.areplay_deliveries([delivery.pk])
    assert len(result.created) == 1
    assert (await run()).succeeded == 1
    replay = await Delivery.objects.aget(replay_of=delivery)
    assert replay.state == DeliveryState.SUCCEEDED
    assert len(book.calls) == 2


async def test_an_async_handler_past_its_timeout_is_cancelled_and_retried(client):
    await routes_to(
        {"name": "h", "handler": H + "too_slow", "timeout_seconds": 0.3, "max_attempts": 2}
    )
    await post(client)

    stats = await run()

    assert stats.dead == 1
    attempts = await attempts_of((await only_delivery()).pk)
    assert [a.error_kind for a in attempts] == ["timeout", "timeout"]
    assert "timed out after 0.3 s" in attempts[0].error
    assert all(0.25 * 1000 <= (a.duration_ms or 0) < 5 * 1000 for a in attempts)
    assert book.cancelled == 2


async def test_a_timed_out_sync_handler_keeps_its_concurrency_slot_until_it_ends(client):
    await routes_to(
        {
            "name": "h",
            "handler": H + "too_slow_sync",
            "timeout_seconds": 0.2,
            "max_attempts": 1,
            "concurrency": 1,
        }
    )
    await post(client, "one")
    await post(client, "two")

    stats = await run()

    assert stats.dead == 2
    first, second = sorted(book.calls, key=lambda c: c.at)
    assert first.ended is not None
    # The first thread ran on after its attempt timed out; the second waited for it.
    assert second.at >= first.ended
    for delivery in [d async for d in Delivery.objects.all()]:
        [attempt] = await attempts_of(delivery.pk)
        assert attempt.error_kind == "timeout"
        assert "can't be stopped" in attempt.error


async def test_a_sync_handler_may_use_the_orm(client):
    await routes_to({"name": "h", "handler": H + "uses_the_orm"})
    event_id = await post(client, "user_create")

    assert (await run()).succeeded == 1
    assert book.orm_seen == ["src/user_create"]
    assert await Source.objects.filter(slug=f"seen-{event_id.lower()[-8:]}").aexists()


async def test_an_async_handler_that_blocks_the_loop_is_reported(client, caplog):
    caplog.set_level(logging.WARNING, logger="hookway.loop")
    await routes_to({"name": "blocker", "handler": H + "blocks_the_loop"})
    await post(client)

    assert (await run(loop_lag_warn_ms=200)).succeeded == 1

    warnings = [r.getMessage() for r in caplog.records if r.name == "hookway.loop"]
    assert warnings, "a 500 ms block of the loop went unreported"
    message = warnings[0]
    assert "event loop blocked for" in message
    lag_ms = float(message.split("blocked for ")[1].split(" ms")[0])
    assert lag_ms >= 300
    assert "blocker (handler tests.handler_funcs:blocks_the_loop" in message


async def test_a_handler_that_cannot_be_imported_fails_the_attempt_naming_it(client):
    await routes_to({"name": "h", "handler": H + "missing", "max_attempts": 1})
    await post(client)

    assert (await run()).dead == 1
    [attempt] = await attempts_of((await only_delivery()).pk)
    assert attempt.error_kind == "handler_error"
    assert "tests.handler_funcs:missing" in attempt.error


def test_importing_the_asgi_application_keeps_hookway_handler_the_decorator():
    import hookway.asgi  # imports the ASGI handler module too

    assert hookway.handler is handlers.handler


async def test_a_decorated_handler_becomes_a_managed_destination_and_route(client):
    await Source.objects.acreate(slug="src", verify="none")
    hookway.handler(source="src", events=["project_*"], max_attempts=3)(
        handler_funcs.on_project_event
    )
    try:
        config = registry.with_registered(HookwayConfig(), handlers.registered())
        await gate.async_sync_config(config)
    finally:
        handlers.unregister("on-project-event")

    destination = await Destination.objects.aget(name="on-project-event")
    assert destination.handler == H + "on_project_event"
    assert (destination.url, destination.managed, destination.max_attempts) == ("", True, 3)
    route = await Route.objects.aget(destination=destination)
    assert route.events == ["project_*"]

    await post(client, "project_create")
    await post(client, "user_create")
    assert (await run()).succeeded == 1
    assert [c.event.event_name for c in book.calls] == ["project_create"]
