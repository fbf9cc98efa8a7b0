"""The circuit breaker, auto-disable, notifications and the rate limit with a running
dispatcher and real local receivers: a receiver that fails then recovers, counting
every request it gets."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from hookway import conf, gate
from hookway.models import (
    DISABLED_FAILING,
    Attempt,
    Delivery,
    DeliveryState,
    Destination,
    DestinationChange,
)
from tests.integration.test_dispatcher import dispatcher, post, routes_to
from tests.receivers import Received, Reply

pytestmark = pytest.mark.django_db(transaction=True)


class Switch:
    """A receiver's behaviour: 503 while ``failing``, 200 otherwise."""

    def __init__(self) -> None:
        self.failing = threading.Event()
        self.failing.set()

    def __call__(self, request: Received, n: int) -> Reply:
        return Reply(status=503) if self.failing.is_set() else Reply()


async def wait_until(check: Callable[[], Any], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {within} s waiting for {what}")


async def changes_of(name: str) -> list[DestinationChange]:
    return [
        c async for c in DestinationChange.objects.filter(destination__name=name).order_by("id")
    ]


async def kinds(name: str) -> list[str]:
    return [c.change for c in await changes_of(name)]


async def test_the_breaker_opens_probes_and_closes_against_a_receiver_that_recovers(
    client, receiver
):
    switch = Switch()
    target = receiver(switch)
    await routes_to(
        {
            "name": "flaky",
            "url": target.url(),
            "concurrency": 1,
            "max_attempts": 3,
            "circuit_failures": 3,
            "circuit_cooldown_seconds": 1.0,
        }
    )
    for i in range(10):
        await post(client, seq=i)
    running = dispatcher(until_empty=False, retry_schedule=(0, 0.05))
    task = asyncio.create_task(running.run())
    try:
        await wait_until(lambda: _has(kinds("flaky"), "circuit_reopened"), 30, "a probe to fail")
        switch.failing.clear()
        await wait_until(lambda: _has(kinds("flaky"), "circuit_closed"), 30, "a probe to succeed")
        await wait_until(_all_delivered, 30, "every delivery")
    finally:
        running.stop()
        await asyncio.wait_for(task, 30)

    got = target.received()
    assert await kinds("flaky") == [
        "circuit_opened",
        "circuit_half_open",
        "circuit_reopened",
        "circuit_half_open",
        "circuit_closed",
    ]
    opened, half, reopened, half_again, closed = await changes_of("flaky")
    # Between the circuit opening and each probe nothing was sent: the retries (due
    # every 50 ms) waited. (A send claimed just before the opening may start a moment
    # after it was written: 0.2 s of margin, a fifth of the cool-down.)
    margin = timedelta(seconds=0.2)
    async for a in Attempt.objects.filter(delivery__destination__name="flaky"):
        for start, end in ((opened.at + margin, half.at), (reopened.at + margin, half_again.at)):
            assert not start < a.started_at < end, (a.started_at, start, end)
    # Each cool-down was waited out (the second doubled).
    assert half.at - opened.at >= timedelta(seconds=1.0)
    assert half_again.at - reopened.at >= timedelta(seconds=2.0)
    # Failed sends: the three that opened it (plus at most one claimed before it
    # opened) and the failed probe; a 50 ms retry schedule would have made dozens.
    failures = [r for r in got if _failed(r, got)]
    assert 4 <= len(failures) <= 5, len(failures)
    # Nothing went dead for waiting, although max_attempts is 3: the budget counts real
    # attempts only, and every one is on record.
    assert {d.state async for d in Delivery.objects.all()} == {DeliveryState.SUCCEEDED}
    assert sum([d.attempts async for d in Delivery.objects.all()]) == len(got)
    assert max([d.attempts async for d in Delivery.objects.all()]) <= 2
    assert closed.reason.endswith("was delivered (HTTP 200)")


def _failed(request: Received, every: list[Received]) -> bool:
    """Whether the receiver failed this request: every delivery ends delivered, so each
    request but the last of its delivery was a failure."""
    same = [r for r in every if r.webhook_id == request.webhook_id]
    return request is not same[-1]


async def _has(changes: Any, kind: str) -> bool:
    return kind in await changes


async def _all_delivered() -> bool:
    return not await Delivery.objects.exclude(state=DeliveryState.SUCCEEDED).aexists()


@pytest.fixture
def notify_email(settings: Any) -> list[str]:
    addresses = ["ops@example.com"]
    settings.HOOKWAY = dataclasses.replace(conf.get(), notify_email=addresses)
    return addresses


async def test_a_destination_failing_past_disable_after_is_disabled_and_notified_once(
    client, receiver, mailoutbox, notify_email
):
    switch = Switch()
    target = receiver(switch)
    alerts = receiver()
    await routes_to(
        {
            "name": "flaky",
            "url": target.url(),
            "concurrency": 2,
            "circuit_failures": 2,
            "circuit_cooldown_seconds": 0.2,
            "disable_after_seconds": 1.5,
        },
    )
    await Destination.objects.acreate(name="ops", url=alerts.url("/alerts"), notifications=True)
    for i in range(3):
        await post(client, seq=i)
    running = dispatcher(
        until_empty=False, retry_schedule=(0, 0.05), notify_email=tuple(notify_email)
    )
    task = asyncio.create_task(running.run())
    try:
        await wait_until(_disabled, 30, "the destination to be disabled")
        sent_while_enabled = len(target.received())
        # It stays disabled and quiet; notifications are not repeated.
        await wait_until(_emails(mailoutbox, 2), 30, "two emails")
        await asyncio.sleep(1.0)
        assert len(target.received()) == sent_while_enabled

        switch.failing.clear()
        change = await gate.aenable_destination("flaky")
        assert change.message == "'flaky' enabled; 3 pending deliveries are sent, oldest first"
        await wait_until(_all_of("flaky", DeliveryState.SUCCEEDED), 30, "every delivery")
        await wait_until(_emails(mailoutbox, 3), 30, "the third email")
        await wait_until(lambda: _alerts(alerts, 3), 30, "the third alert")
        await asyncio.sleep(0.5)  # nothing more comes
    finally:
        running.stop()
        await asyncio.wait_for(task, 30)

    flaky = await Destination.objects.aget(name="flaky")
    assert flaky.enabled is True
    assert flaky.circuit_state == "closed"
    history = await kinds("flaky")
    assert history[0] == "circuit_opened"
    assert history[-2:] == ["disabled", "enabled"]
    assert history.count("disabled") == 1
    assert set(history[1:-2]) <= {"circuit_half_open", "circuit_reopened"}
    disabled = (await changes_of("flaky"))[-2]
    assert disabled.reason.startswith("every attempt failed for 1.5s (disable_after), since ")
    # The notification destination got one event per notified change, in order, once.
    bodies = [json.loads(r.body) for r in alerts.received("/alerts")]
    assert [b["type"] for b in bodies] == [
        "destination.circuit_opened",
        "destination.disabled",
        "destination.enabled",
    ]
    assert {b["data"]["destination"] for b in bodies} == {"flaky"}
    assert bodies[1]["data"]["reason"] == disabled.reason
    assert len({r.webhook_id for r in alerts.received()}) == 3
    # And one email each, to HOOKWAY_NOTIFY_EMAIL.
    subjects = [m.subject for m in mailoutbox]
    assert subjects == [
        "[Hookway] flaky: circuit opened",
        "[Hookway] flaky: disabled",
        "[Hookway] flaky: enabled",
    ]
    assert all(m.to == notify_email for m in mailoutbox)
    assert disabled.reason in mailoutbox[1].body
    assert not await DestinationChange.objects.filter(email="pending").aexists()
    # Nothing went dead: the deliveries waited while it was disabled.
    assert not await Delivery.objects.filter(state=DeliveryState.DEAD).aexists()


async def _disabled() -> bool:
    return not (await Destination.objects.aget(name="flaky")).enabled


def _emails(outbox: list[Any], count: int) -> Callable[[], Any]:
    async def enough() -> bool:
        return len(outbox) >= count

    return enough


async def _alerts(alerts: Any, count: int) -> bool:
    return len(alerts.received("/alerts")) >= count


def _all_of(name: str, state: DeliveryState) -> Callable[[], Any]:
    async def check() -> bool:
        return not await (
            Delivery.objects.filter(destination__name=name).exclude(state=state).aexists()
        )

    return check


async def test_the_disabled_reason_is_kept_across_a_config_sync(tmp_path):
    from hookway.config.file import parse

    config = parse(
        """
[[destinations]]
name = "flaky"
url = "https://flaky.example.com/"
disable_after = "2d"
"""
    )
    await gate.async_sync_config(config)
    reason = f"{DISABLED_FAILING} 2d since 2026-11-20 10:00:00 UTC"
    await Destination.objects.filter(name="flaky").aupdate(enabled=False, disabled_reason=reason)

    await gate.async_sync_config(config)

    flaky = await Destination.objects.aget(name="flaky")
    assert (flaky.enabled, flaky.disabled_reason) == (False, reason)
    assert flaky.disable_after_seconds == 2 * 86400


async def test_a_rate_limit_spreads_a_burst_evenly(client, receiver):
    target = receiver()
    await routes_to({"name": "slow-api", "url": target.url(), "rate_limit": "20/s"})
    for i in range(60):
        await post(client, seq=i)

    running = dispatcher(until_empty=True)
    await asyncio.wait_for(running.run(), 60)

    arrivals = sorted(r.at for r in target.received())
    assert len(arrivals) == 60
    # Held within 10 %: no two seconds hold more than 44 arrivals (the slots are exact;
    # each arrival varies by the milliseconds a request takes to go out, on a busy
    # machine), and the whole burst took as long as the limit says.
    for i, start in enumerate(arrivals):
        assert sum(1 for t in arrivals[i:] if t < start + 2.0) <= 44
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    assert 18 <= rate <= 22, rate
    # Waiting for its turn is not an attempt: each delivery made one.
    assert {d.attempts async for d in Delivery.objects.all()} == {1}
