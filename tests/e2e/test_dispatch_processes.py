"""Real dispatcher processes (`manage.py dispatch`, and the embedded one in a uvicorn
server) against real local HTTP receivers: crash recovery after kill -9, several
dispatchers sharing one queue, graceful SIGTERM, and wake-up across processes."""

from __future__ import annotations

import collections
import itertools
import json
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django.utils import timezone

from hookway.models import Attempt, Delivery, DeliveryState, Destination, Route, Source
from hookway.store.deliveries import LEASE_EXPIRED
from hookway.store.events import IncomingEvent, store_event
from tests.conftest import ServerProcess
from tests.e2e.conftest import FAST_ENV, log_of
from tests.receivers import Receiver, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def make_events(receiver: Receiver, count: int, **destination: Any) -> list[str]:
    source = Source.objects.create(slug="load", verify="none")
    target = Destination.objects.create(name="target", url=receiver.url(), **destination)
    Route.objects.create(source=source, destination=target)
    for i in range(count):
        store_event(
            IncomingEvent(
                source_id=source.id,
                event_name="push",
                delivery_id=None,
                content_type="application/json",
                headers={},
                body=b'{"n": %d}' % i,
                received_at=timezone.now(),
            )
        )
    return list(Delivery.objects.values_list("pk", flat=True))


def delivered_ok(receiver: Receiver) -> collections.Counter[str]:
    return collections.Counter(r.webhook_id for r in receiver.received())


def test_kill_9_mid_run_loses_nothing_and_duplicates_only_what_was_in_flight(receiver, dispatchers):
    slow = receiver(lambda request, n: Reply(delay=0.1))
    ids = make_events(slow, 300, timeout_seconds=2, concurrency=100)

    first = dispatchers("--concurrency", "40", env={"HOOKWAY_LEASE_SECONDS": "1"})
    wait_for(lambda: len(slow.received()) >= 60, 60, "the first dispatcher to be mid-run")
    first.send_signal(signal.SIGKILL)
    first.wait()
    in_flight = set(Delivery.objects.exclude(lease_owner="").values_list("pk", flat=True))
    assert in_flight, "the kill should catch some deliveries in flight"
    assert Delivery.objects.filter(state=DeliveryState.SUCCEEDED).count() < 300

    second = dispatchers("--until-empty", env={"HOOKWAY_LEASE_SECONDS": "1"})
    assert second.wait(timeout=120) == 0, log_of(second)

    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.SUCCEEDED}
    received = delivered_ok(slow)
    assert set(received) == set(ids), "every delivery reached the receiver"
    duplicated = {webhook_id for webhook_id, n in received.items() if n > 1}
    # Besides the kill, the only cause of a second send is an attempt that failed on
    # Hookway's side after the receiver got it (a timeout on a loaded machine, a
    # connection reset): recorded as such.
    failed_after_sending = set(
        Attempt.objects.filter(
            delivery_id__in=duplicated - in_flight,
            outcome="retry",
            error_kind__in=["timeout", "connection_reset", "connection"],
        ).values_list("delivery_id", flat=True)
    )
    unexplained = duplicated - in_flight - failed_after_sending
    assert not unexplained, list(
        Attempt.objects.filter(delivery_id__in=unexplained).values_list(
            "delivery_id", "number", "outcome", "error_kind", "error", "worker"
        )
    )
    for webhook_id in duplicated:
        copies = [r for r in slow.received() if r.webhook_id == webhook_id]
        assert len({r.body for r in copies}) == 1
        numbers = sorted(int(r.headers["x-hookway-attempt"]) for r in copies)
        # Each copy is a different attempt, never one attempt sent twice. (Not
        # necessarily in order: on a loaded machine an attempt can wait in the
        # receiver's accept queue past its timeout and be read after its retry.)
        assert len(numbers) == len(set(numbers)), numbers
        # Every attempt before the one that succeeded is recorded as failed: those the
        # receiver got, and any that failed before reaching it (a connect timeout on a
        # loaded machine makes the receiver's first copy attempt 2).
        attempts = dict(
            Attempt.objects.filter(delivery_id=webhook_id).values_list("number", "outcome")
        )
        assert attempts[numbers[-1]] == "success"
        assert all(attempts[n] == "retry" for n in range(1, numbers[-1])), attempts
    # The attempts the dead dispatcher never finished are on record as such.
    assert Attempt.objects.filter(error=LEASE_EXPIRED).count() == len(in_flight)
    assert not Attempt.objects.filter(outcome="in_flight").exists()


def test_several_dispatchers_share_the_queue_without_sending_twice(receiver, dispatchers):
    # 1.5 s of work for one dispatcher: long enough that a process starting a second
    # late on a loaded machine still finds work left to share.
    target = receiver(lambda request, n: Reply(delay=0.1))
    ids = make_events(target, 300, concurrency=100)

    workers = [dispatchers("--until-empty", "--concurrency", "20") for _ in range(3)]
    for worker in workers:
        assert worker.wait(timeout=120) == 0, log_of(worker)

    received = delivered_ok(target)
    assert set(received) == set(ids)
    assert max(received.values()) == 1, "no delivery was sent twice"
    assert Attempt.objects.values("worker").distinct().count() >= 2, "the work was shared"
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.SUCCEEDED}


def test_sigterm_finishes_in_flight_deliveries_and_leaves_nothing_claimed(receiver, dispatchers):
    slow = receiver(lambda request, n: Reply(delay=1.0))
    ids = make_events(slow, 10, concurrency=5)

    worker = dispatchers("--concurrency", "5", "--grace", "10")
    wait_for(lambda: slow._in_flight == 5, 30, "five deliveries in flight")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, log_of(worker)

    assert not Delivery.objects.exclude(lease_owner="").exists()
    assert not Attempt.objects.filter(outcome="in_flight").exists()
    assert Delivery.objects.filter(state=DeliveryState.SUCCEEDED).count() == 5
    assert Delivery.objects.filter(state=DeliveryState.PENDING).count() == 5

    rest = dispatchers("--until-empty")
    assert rest.wait(timeout=60) == 0, log_of(rest)
    received = delivered_ok(slow)
    assert set(received) == set(ids)
    assert max(received.values()) == 1


def test_sigterm_past_the_grace_period_releases_the_deliveries(receiver, dispatchers):
    stuck = receiver(lambda request, n: Reply(delay=4))
    make_events(stuck, 2, timeout_seconds=30)

    worker = dispatchers("--grace", "0.3")
    wait_for(lambda: stuck._in_flight == 2, 30, "two deliveries in flight")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0, log_of(worker)

    assert "2 released" in log_of(worker)
    assert not Delivery.objects.exclude(lease_owner="").exists()
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.PENDING}


def test_embedded_dispatcher_delivers_what_the_server_acknowledged(
    receiver, start_server, tmp_path
):
    target = receiver()
    config = tmp_path / "hookway.toml"
    config.write_text(
        f"""
[[sources]]
slug = "gitlab"
verify = "gitlab"
secret = "s3cret"

[[destinations]]
name = "ci"
url = "{target.url()}"
signing_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[[routes]]
source = "gitlab"
destination = "ci"
events = ["push", "merge_request*"]
"""
    )
    server: ServerProcess = start_server({**FAST_ENV, "HOOKWAY_CONFIG": str(config)})
    sent = time.monotonic()
    response = httpx.post(
        server.url + "/hooks/gitlab",
        content=b'{"object_kind": "push", "ref": "main"}',
        headers={"Content-Type": "application/json", "X-Gitlab-Token": "s3cret"},
    )
    assert response.status_code == 202
    assert response.json()["deliveries"] == 1
    wait_for(lambda: len(target.received()) == 1, 10, "the delivery")
    (got,) = target.received()
    assert got.body == b'{"object_kind": "push", "ref": "main"}'
    assert got.headers["x-hookway-event"] == "push"
    assert got.headers["x-hookway-source"] == "gitlab"
    assert got.headers["webhook-id"] == Delivery.objects.get().pk
    print(f"ack-to-first-attempt: {(got.at - sent) * 1000:.1f} ms")
    wait_for(
        lambda: Delivery.objects.get().state == DeliveryState.SUCCEEDED, 10, "the attempt record"
    )

    # uvicorn re-raises SIGTERM once its graceful shutdown is complete.
    assert server.stop() in (0, -signal.SIGTERM)
    log = server.log()
    assert "dispatcher" in log
    assert "stopped: 1 delivered" in log
    assert "Application shutdown complete" in log


def test_a_standalone_dispatcher_wakes_at_once_on_work_from_another_process(
    receiver, start_server, dispatchers, tmp_path
):
    # PostgreSQL: LISTEN/NOTIFY. SQLite: the dispatcher watches PRAGMA data_version.
    # Either way, far sooner than the 30 s poll this dispatcher is given.
    target = receiver()
    Source.objects.create(slug="src", verify="none")
    destination = Destination.objects.create(name="t", url=target.url())
    Route.objects.create(source=Source.objects.get(), destination=destination)
    server = start_server({**FAST_ENV, "HOOKWAY_EMBEDDED_DISPATCHER": "false"})
    worker = dispatchers(env={"HOOKWAY_POLL_INTERVAL": "30"})
    wait_for(lambda: "running" in log_of(worker), 30, "the dispatcher to start")
    time.sleep(1.0)  # its LISTEN connection comes up right after

    sent = time.monotonic()
    response = httpx.post(server.url + "/hooks/src", json={"event_name": "push"})
    assert response.status_code == 202
    wait_for(lambda: len(target.received()) == 1, 10, "the delivery")
    latency = target.received()[0].at - sent
    assert latency < 5, f"took {latency:.2f}s: the 30 s poll, not NOTIFY, picked it up"


def first_arrivals(receiver: Receiver) -> list[int]:
    """Each event's number in the order it first reached the receiver (a send repeated
    after a kill -9 is the same delivery again, not a later one)."""
    seen: list[int] = []
    for request in receiver.received():
        n = int(request.body.decode().split(":")[1].strip(" }"))
        if n not in seen:
            seen.append(n)
    return seen


def test_ordered_delivery_keeps_received_order_across_a_kill_9(receiver, dispatchers):
    slow = receiver(lambda request, n: Reply(delay=0.2))
    make_events(slow, 12, ordered=True, timeout_seconds=2, concurrency=50)

    first = dispatchers(env={"HOOKWAY_LEASE_SECONDS": "1"})
    wait_for(lambda: len(slow.received()) >= 4, 60, "the first dispatcher to be mid-lane")
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert Delivery.objects.filter(state=DeliveryState.PENDING).count() > 0

    second = dispatchers("--until-empty", env={"HOOKWAY_LEASE_SECONDS": "1"})
    assert second.wait(timeout=120) == 0, log_of(second)

    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.SUCCEEDED}
    assert first_arrivals(slow) == list(range(12))
    # One at a time, across both dispatchers: the killed one's delivery in flight was
    # sent again only after its lease expired, and nothing overtook it meanwhile.
    assert slow.max_in_flight == 1
    repeated = [
        n
        for n, count in collections.Counter(
            int(r.body.decode().split(":")[1].strip(" }")) for r in slow.received()
        ).items()
        if count > 1
    ]
    assert len(repeated) <= 1


def test_keyed_lanes_keep_received_order_within_each_key_across_a_kill_9(receiver, dispatchers):
    # Three customers' events interleaved; order_key gives each its lane. A dispatcher
    # killed mid-run leaves one delivery per lane leased at most; the next dispatcher
    # sends each again once its lease expires, and nothing overtakes it in its lane.
    slow = receiver(lambda request, n: Reply(delay=0.2))
    source = Source.objects.create(slug="load", verify="none")
    target = Destination.objects.create(
        name="target",
        url=slow.url(),
        ordered=True,
        order_key="payload.customer",
        timeout_seconds=2,
        concurrency=50,
    )
    Route.objects.create(source=source, destination=target)
    customers = ("a", "b", "c")
    for n in range(6):
        for customer in customers:
            store_event(
                IncomingEvent(
                    source_id=source.id,
                    event_name="push",
                    delivery_id=None,
                    content_type="application/json",
                    headers={},
                    body=json.dumps({"customer": customer, "n": n}).encode(),
                    received_at=timezone.now(),
                )
            )

    first = dispatchers(env={"HOOKWAY_LEASE_SECONDS": "1"})
    wait_for(lambda: len(slow.received()) >= 6, 60, "the first dispatcher to be mid-lanes")
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert Delivery.objects.filter(state=DeliveryState.PENDING).count() > 0

    second = dispatchers("--until-empty", env={"HOOKWAY_LEASE_SECONDS": "1"})
    assert second.wait(timeout=120) == 0, log_of(second)

    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.SUCCEEDED}
    requests = sorted(slow.received(), key=lambda r: r.at)
    for customer in customers:
        mine = [r for r in requests if json.loads(r.body)["customer"] == customer]
        firsts: list[int] = []
        for r in mine:
            n = json.loads(r.body)["n"]
            if n not in firsts:
                firsts.append(n)
        assert firsts == list(range(6)), (customer, firsts)
        # One at a time within the key, across both dispatchers.
        spans = [(r.at, r.answered_at) for r in mine]
        assert all(b[0] >= a[1] for a, b in itertools.pairwise(spans)), (customer, spans)
    # The keys went in parallel: some two requests of different keys overlapped.
    assert slow.max_in_flight > 1
