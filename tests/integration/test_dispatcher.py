"""The dispatcher against real local HTTP receivers: fan-out, retries, Retry-After, 410,
dead letters, replay, concurrency limits, SSRF refusal, graceful stop."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import pytest

from hookway import gate
from hookway.dispatch.dispatcher import (
    SHUTDOWN_REASON,
    START_CHUNK,
    Dispatcher,
    DispatcherConfig,
)
from hookway.models import Attempt, Delivery, DeliveryState, Destination, Route, Source
from hookway.send.client import make_client
from hookway.send.guard import Guard
from tests.loopcount import counting, per_iteration
from tests.receivers import Received, Reply

pytestmark = pytest.mark.django_db(transaction=True)


async def routes_to(*destinations: dict[str, Any], slug: str = "src") -> Source:
    source = await Source.objects.acreate(slug=slug, verify="none")
    for spec in destinations:
        spec = dict(spec)
        events = spec.pop("events", [])
        destination = await Destination.objects.acreate(**spec)
        await Route.objects.acreate(source=source, destination=destination, events=events)
    return source


async def post(
    client: httpx.AsyncClient, slug: str = "src", name: str = "push", **extra: Any
) -> dict[str, Any]:
    response = await client.post(f"/hooks/{slug}", json={"event_name": name, **extra})
    assert response.status_code == 202, response.text
    return dict(response.json())


def dispatcher(guard: Guard | None = None, **overrides: Any) -> Dispatcher:
    config = DispatcherConfig(
        concurrency=50,
        lease_seconds=5,
        poll_interval=0.05,
        shutdown_grace=2,
        retry_schedule=(0, 0.1),
        until_empty=True,
        listen_postgres=False,
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return Dispatcher(config, guard=guard or Guard(allow_private=True))


async def run(**overrides: Any) -> Any:
    return await asyncio.wait_for(dispatcher(**overrides).run(), timeout=60)


async def attempts_of(delivery_id: str) -> list[Attempt]:
    return [a async for a in Attempt.objects.filter(delivery_id=delivery_id).order_by("number")]


async def test_fan_out_to_slow_receivers_runs_concurrently(client, receiver):
    slow = receiver(lambda request, n: Reply(delay=0.6))
    await routes_to(*({"name": f"d{i}", "url": slow.url(f"/d{i}")} for i in range(3)))
    body = await post(client)
    assert body["deliveries"] == 3

    started = time.monotonic()
    stats = await run()
    elapsed = time.monotonic() - started

    assert stats.succeeded == 3
    got = slow.received()
    assert sorted(r.path for r in got) == ["/d0", "/d1", "/d2"]
    # Concurrent: every request arrived before the first one was answered.
    assert max(r.at for r in got) < min(r.answered_at for r in got)
    assert elapsed < 3 * 0.6, f"fan-out took {elapsed:.2f}s, about the sum of the delays"


async def test_retries_follow_the_schedule_and_keep_the_webhook_id(client, receiver):
    flaky = receiver(lambda request, n: Reply(status=500 if n <= 2 else 200))
    await routes_to({"name": "flaky", "url": flaky.url()})
    await post(client)

    await run(retry_schedule=(0, 0.3, 0.6))

    got = flaky.received()
    assert [r.headers["x-hookway-attempt"] for r in got] == ["1", "2", "3"]
    assert len({r.webhook_id for r in got}) == 1
    # Each wait is the schedule's entry minus at most 20 % jitter.
    assert got[1].at - got[0].answered_at >= 0.3 * 0.8 - 0.02
    assert got[2].at - got[1].answered_at >= 0.6 * 0.8 - 0.02
    delivery = await Delivery.objects.aget()
    assert delivery.state == DeliveryState.SUCCEEDED
    assert delivery.id == got[0].webhook_id
    outcomes = [(a.number, a.outcome, a.status_code) for a in await attempts_of(delivery.id)]
    assert outcomes == [(1, "retry", 500), (2, "retry", 500), (3, "success", 200)]


async def test_retry_after_is_honoured_for_503(client, receiver):
    busy = receiver(
        lambda request, n: Reply(status=503, headers={"Retry-After": "1"}) if n == 1 else Reply()
    )
    await routes_to({"name": "busy", "url": busy.url()})
    await post(client)

    await run(retry_schedule=(0, 0.05))

    first, second = busy.received()
    assert second.at - first.answered_at >= 0.95
    assert (await Delivery.objects.aget()).state == DeliveryState.SUCCEEDED


async def test_410_kills_the_delivery_and_disables_the_destination(client, receiver):
    gone = receiver(lambda request, n: Reply(status=410))
    await routes_to({"name": "gone", "url": gone.url()})
    await post(client)

    await run()

    assert len(gone.received()) == 1
    delivery = await Delivery.objects.aget()
    assert delivery.state == DeliveryState.DEAD
    destination = await Destination.objects.aget(name="gone")
    assert destination.enabled is False
    assert destination.disabled_reason.startswith("410")
    # New events still create a delivery for the disabled destination: it waits, unsent.
    waiting = await post(client)
    assert waiting["deliveries"] == 1
    await run()
    assert len(gone.received()) == 1
    assert (await Delivery.objects.aget(event_id=waiting["id"])).state == DeliveryState.PENDING


async def test_a_delivery_is_dead_after_max_attempts(client, receiver):
    broken = receiver(lambda request, n: Reply(status=500, body=b"boom"))
    await routes_to({"name": "broken", "url": broken.url(), "max_attempts": 3})
    await post(client)

    stats = await run(retry_schedule=(0, 0.05))

    assert len(broken.received()) == 3
    assert stats.dead == 1
    delivery = await Delivery.objects.aget()
    assert delivery.state == DeliveryState.DEAD
    assert delivery.completed_at is not None
    assert "gave up after 3 attempts" in delivery.last_error
    attempts = await attempts_of(delivery.id)
    assert [a.outcome for a in attempts] == ["retry", "retry", "failed"]
    assert all(a.response_body == "boom" and a.duration_ms is not None for a in attempts)


async def test_replaying_dead_deliveries_delivers_them_with_a_new_webhook_id(client, receiver):
    healthy = False
    target = receiver(lambda request, n: Reply(status=200 if healthy else 500))
    await routes_to({"name": "target", "url": target.url(), "max_attempts": 2})
    await post(client)
    await run(retry_schedule=(0, 0.05))
    dead = await Delivery.objects.aget()
    assert dead.state == DeliveryState.DEAD

    healthy = True
    from django.utils import timezone

    result = await gate.areplay_dead(timezone.now() - timezone.timedelta(hours=1), None)
    assert len(result.created) == 1
    # Replaying again creates nothing: that dead delivery has been replayed already.
    again = await gate.areplay_dead(timezone.now() - timezone.timedelta(hours=1), None)
    assert again.created == ()
    assert [s.kind for s in again.skipped] == [gate.SkipKind.ALREADY_REPLAYED]
    await run()

    replay = await Delivery.objects.aget(replay_of=dead)
    assert replay.state == DeliveryState.SUCCEEDED
    last = target.received()[-1]
    assert last.webhook_id == replay.id != dead.id
    assert (await Delivery.objects.aget(pk=dead.pk)).state == DeliveryState.DEAD


async def test_each_destination_gets_at_most_its_concurrency(client, receiver):
    slow = receiver(lambda request, n: Reply(delay=0.3))
    await routes_to({"name": "narrow", "url": slow.url(), "concurrency": 2})
    for _ in range(6):
        await post(client)

    await run()

    assert len(slow.received()) == 6
    assert slow.max_in_flight == 2


async def test_a_claims_sends_start_a_few_per_loop_iteration(client):
    # Each send's start runs a fraction of a millisecond of Python before its first
    # wait; a claim's whole batch started at once held the loop for tens of milliseconds
    # (bench/results/loop_lag.md). Count the loop's iterations with a callback that
    # reschedules itself, and see in which iteration each send reached the transport.
    await routes_to({"name": "many", "url": "http://127.0.0.1:9/hook"})
    for _ in range(14):
        await post(client)
    reached: list[int] = []
    with counting() as iterations:

        def handler(request: httpx.Request) -> httpx.Response:
            reached.append(iterations.now)
            return httpx.Response(200)

        d = dispatcher()
        d._client = make_client(transport=httpx.MockTransport(handler))
        stats = await asyncio.wait_for(d.run(), timeout=30)

    assert stats.succeeded == 14
    spread = per_iteration(reached)
    assert max(spread) <= START_CHUNK, spread
    assert len(spread) >= 4, spread


async def test_the_global_limit_caps_in_flight_deliveries(client, receiver):
    slow = receiver(lambda request, n: Reply(delay=0.3))
    await routes_to({"name": "a", "url": slow.url("/a")}, {"name": "b", "url": slow.url("/b")})
    for _ in range(5):
        await post(client)

    await run(concurrency=3)

    assert len(slow.received()) == 10
    assert slow.max_in_flight == 3


async def test_a_private_destination_is_refused_unless_allowed(client, receiver):
    local = receiver()
    await routes_to({"name": "local", "url": local.url()})
    await post(client)

    stats = await asyncio.wait_for(dispatcher(guard=Guard()).run(), timeout=30)

    assert stats.dead == 1
    assert local.received() == []
    delivery = await Delivery.objects.aget()
    assert delivery.state == DeliveryState.DEAD
    (attempt,) = await attempts_of(delivery.id)
    assert "127.0.0.1" in attempt.error
    assert "HOOKWAY_ALLOW_PRIVATE_DESTINATIONS" in attempt.error


async def test_redirects_are_not_followed(client, receiver):
    def behaviour(request: Received, n: int) -> Reply:
        if request.path == "/moved":
            return Reply(status=302, headers={"Location": "/elsewhere"})
        return Reply()

    target = receiver(behaviour)
    await routes_to({"name": "moved", "url": target.url("/moved"), "max_attempts": 1})
    await post(client)

    await run()

    assert [r.path for r in target.received()] == ["/moved"]
    (attempt,) = await attempts_of((await Delivery.objects.aget()).id)
    assert attempt.status_code == 302
    assert "redirect" in attempt.error


async def test_route_globs_pick_destinations_by_event_name(client, receiver):
    target = receiver()
    await routes_to(
        {"name": "pushes", "url": target.url("/push"), "events": ["push"]},
        {"name": "mrs", "url": target.url("/mr"), "events": ["merge_request*"]},
        {"name": "all", "url": target.url("/all")},
    )
    assert (await post(client, name="push"))["deliveries"] == 2
    assert (await post(client, name="merge_request_hook"))["deliveries"] == 2
    assert (await post(client, name="tag_push"))["deliveries"] == 1

    await run()

    paths = sorted(r.path for r in target.received())
    assert paths == ["/all", "/all", "/all", "/mr", "/push"]


async def test_stopping_releases_what_did_not_finish_within_the_grace_period(client, receiver):
    stuck = receiver(lambda request, n: Reply(delay=5))
    await routes_to({"name": "stuck", "url": stuck.url(), "timeout_seconds": 30})
    await post(client)
    d = dispatcher(until_empty=False, shutdown_grace=0.2)
    task = asyncio.create_task(d.run())
    for _ in range(200):
        if stuck._in_flight:
            break
        await asyncio.sleep(0.02)
    assert stuck._in_flight == 1

    d.stop()
    stats = await asyncio.wait_for(task, timeout=10)

    assert stats.released == 1
    delivery = await Delivery.objects.aget()
    assert delivery.state == DeliveryState.PENDING
    assert delivery.lease_owner == ""
    assert delivery.lease_expires_at is None
    (attempt,) = await attempts_of(delivery.id)
    assert attempt.outcome == "retry"
    assert attempt.error == SHUTDOWN_REASON


@pytest.mark.parametrize(
    "url", ["http://10.1.2.3/hook", "http://169.254.169.254/latest/meta-data", "http://[::1]:9/x"]
)
async def test_private_and_link_local_destinations_are_refused_with_a_recorded_error(client, url):
    # An injected transport records anything that would have left the machine, so even a
    # broken guard can't send traffic to these ranges from a test.
    sent: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda request: sent.append(request) or httpx.Response(200))
    await routes_to({"name": "inside", "url": url})
    await post(client)
    d = dispatcher(guard=Guard())
    d._client = make_client(transport=transport)

    stats = await asyncio.wait_for(d.run(), timeout=30)

    assert sent == []
    assert stats.dead == 1
    (attempt,) = await attempts_of((await Delivery.objects.aget()).id)
    assert attempt.outcome == "failed"
    assert "non-public address" in attempt.error
    assert "HOOKWAY_ALLOW_PRIVATE_DESTINATIONS" in attempt.error
    await d._client.aclose()


@pytest.mark.parametrize("kind", ["httpx", "aiohttp"])
async def test_both_transports_deliver_through_the_pinned_connection(client, receiver, kind):
    target = receiver()
    await routes_to({"name": "t", "url": target.url().replace("127.0.0.1", "localhost")})
    await post(client)
    d = dispatcher()
    d._client = make_client(kind=kind)

    stats = await asyncio.wait_for(d.run(), timeout=30)

    assert stats.succeeded == 1
    (got,) = target.received()
    assert got.headers["host"] == f"localhost:{target.port}"
    assert got.headers["webhook-id"] == (await Delivery.objects.aget()).id
    await d._client.aclose()


def dispatch_log(caplog: pytest.LogCaptureFixture) -> list[tuple[str, dict[str, Any]]]:
    import json

    return [
        (r.levelname, json.loads(r.getMessage()))
        for r in caplog.records
        if r.name == "hookway.dispatch" and r.getMessage().startswith("{")
    ]


async def test_each_failed_attempt_and_the_dead_delivery_are_logged(client, receiver, caplog):
    broken = receiver(lambda request, n: Reply(status=500))
    await routes_to({"name": "broken", "url": broken.url(), "max_attempts": 2})
    event = await post(client)
    caplog.set_level(logging.INFO, "hookway.dispatch")

    await run(retry_schedule=(0, 0.05))

    delivery = await Delivery.objects.aget()
    (failed, first), (dead, second) = dispatch_log(caplog)
    assert failed == "WARNING"
    assert first["event"] == "attempt_failed"
    assert first["event_id"] == event["id"]
    assert first["delivery_id"] == delivery.id
    assert first["destination"] == "broken"
    assert (first["attempt"], first["max_attempts"]) == (1, 2)
    assert (first["outcome"], first["error_kind"], first["status_code"]) == (
        "retry",
        "http_status",
        500,
    )
    assert first["next_attempt_at"]
    assert dead == "ERROR"
    assert second["event"] == "delivery_dead"
    assert second["attempt"] == 2
    assert "gave up after 2 attempts" in second["reason"]


async def test_a_410_logs_the_destination_disabled(client, receiver, caplog):
    gone = receiver(lambda request, n: Reply(status=410))
    await routes_to({"name": "gone", "url": gone.url()})
    await post(client)
    caplog.set_level(logging.INFO, "hookway.dispatch")

    await run()

    events = [(level, line["event"]) for level, line in dispatch_log(caplog)]
    assert events == [("ERROR", "delivery_dead"), ("ERROR", "destination_disabled")]


async def test_a_refused_connection_is_logged_and_recorded_as_refused_not_timed_out(client, caplog):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await routes_to({"name": "down", "url": f"http://127.0.0.1:{port}/hook", "max_attempts": 1})
    await post(client)
    caplog.set_level(logging.INFO, "hookway.dispatch")

    await run()

    (attempt,) = await attempts_of((await Delivery.objects.aget()).id)
    assert attempt.error_kind == "connection_refused"
    assert attempt.error.startswith("connection refused")
    assert attempt.duration_ms < 1000
    ((_, line),) = dispatch_log(caplog)
    assert line["error_kind"] == "connection_refused"
