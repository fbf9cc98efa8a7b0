"""Delivery policies held across real dispatcher processes (`manage.py dispatch`) sharing
one database, against real local receivers: a rate limit three dispatchers keep
together, and a destination disabled for failing that two dispatchers notify once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.utils import timezone

from hookway.models import (
    Attempt,
    Delivery,
    DeliveryState,
    Destination,
    DestinationChange,
    Route,
    Source,
)
from hookway.store.events import IncomingEvent, store_events
from tests import conftest
from tests.e2e.conftest import log_of
from tests.e2e.test_dispatch_processes import wait_for
from tests.receivers import Received, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def manage(*args: str) -> str:
    """``manage.py`` in another process on the test database; its standard output."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=conftest.ROOT,
        env={**os.environ, "DATABASE_URL": conftest.test_database_url()},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    return done.stdout.decode()


def events_to(destination: Destination, count: int) -> None:
    source = Source.objects.create(slug="load", verify="none")
    Route.objects.create(source=source, destination=destination)
    # One transaction: the whole burst is there at once.
    store_events(
        [
            IncomingEvent(
                source_id=source.id,
                event_name="order.paid",
                delivery_id=None,
                content_type="application/json",
                headers={},
                body=b'{"n": %d}' % i,
                received_at=timezone.now(),
            )
            for i in range(count)
        ]
    )


def test_three_dispatchers_hold_one_rate_limit_within_ten_percent(
    receiver, dispatchers: Callable[..., subprocess.Popen[bytes]]
):
    target = receiver()
    limited = Destination.objects.create(
        name="partner-api", url=target.url(), rate_limit="50/s", concurrency=50
    )
    # All three running before the burst arrives (a process starting up takes the CPU
    # its peers send with, on two cores).
    workers = [dispatchers("--concurrency", "50") for _ in range(3)]
    for worker in workers:
        wait_for(lambda w=worker: "running" in log_of(w), 60, "the dispatchers to start")
    time.sleep(1.0)  # their LISTEN connections come up right after
    events_to(limited, 500)
    wait_for(lambda: len(target.received()) >= 500, 120, "every delivery")
    time.sleep(0.5)  # a duplicate would come now
    for worker in workers:
        worker.terminate()
        assert worker.wait(timeout=30) == 0, log_of(worker)

    got = target.received()
    arrivals = sorted(r.at for r in got)
    assert len(arrivals) == 500
    assert len({r.webhook_id for r in got}) == 500, "no delivery was sent twice"
    # Together, never faster than the limit: no three seconds hold more than 165 (50/s
    # and 10 %; the slots are exact, arrivals vary by the milliseconds each request
    # takes to go out from three processes on two cores), and the whole run went at
    # the limit within 10 %.
    busiest = max(
        sum(1 for t in arrivals[i:] if t < start + 3.0) for i, start in enumerate(arrivals)
    )
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    print(f"3 dispatchers, rate_limit 50/s: {rate:.1f}/s overall, busiest 3 s: {busiest}")
    assert busiest <= 165
    assert 45 <= rate <= 55, rate
    assert Attempt.objects.values("worker").distinct().count() == 3, "each took its share"
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}


def test_two_dispatchers_disable_a_failing_destination_and_notify_it_once(
    receiver, dispatchers: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
):
    failing = True

    def behaviour(request: Received, n: int) -> Reply:
        return Reply(status=503) if failing else Reply()

    target = receiver(behaviour)
    alerts = receiver()
    flaky = Destination.objects.create(
        name="flaky",
        url=target.url(),
        circuit_failures=3,
        circuit_cooldown_seconds=0.3,
        disable_after_seconds=2,
    )
    Destination.objects.create(name="ops", url=alerts.url("/alerts"), notifications=True)
    events_to(flaky, 20)
    mail = tmp_path / "mail"
    env = {
        "HOOKWAY_NOTIFY_EMAIL": "oncall@example.com",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail),
        "HOOKWAY_RETRY_SCHEDULE": "0,0.05",
    }
    workers = [dispatchers("--concurrency", "10", env=env) for _ in range(2)]

    def disabled() -> bool:
        return not Destination.objects.get(name="flaky").enabled

    def mailed(count: int) -> Callable[[], bool]:
        return lambda: len(_messages(mail)) >= count

    def alerted(count: int) -> Callable[[], bool]:
        return lambda: len(alerts.received("/alerts")) >= count

    wait_for(disabled, 60, "the destination to be disabled")
    wait_for(mailed(2), 30, "the emails of the opening and the disabling")
    wait_for(alerted(2), 30, "the notifications of the opening and the disabling")
    sent = len(target.received())
    time.sleep(1.5)  # both dispatchers keep running: nothing more to flaky, no repeats
    assert len(target.received()) == sent
    assert len(alerts.received("/alerts")) == 2
    assert len(_messages(mail)) == 2

    failing = False
    out = manage("destination", "enable", "flaky")
    assert out.strip() == "'flaky' enabled; 20 pending deliveries are sent, oldest first"
    wait_for(
        lambda: (
            not Delivery.objects.filter(destination__name="flaky")
            .exclude(state=DeliveryState.SUCCEEDED)
            .exists()
        ),
        60,
        "every delivery to flaky",
    )
    wait_for(mailed(3), 30, "the email of the enabling")
    wait_for(alerted(3), 30, "the notification of the enabling")
    time.sleep(1.0)
    for worker in workers:
        worker.terminate()
        assert worker.wait(timeout=30) == 0, log_of(worker)

    types = [json.loads(r.body)["type"] for r in alerts.received("/alerts")]
    assert types == ["destination.circuit_opened", "destination.disabled", "destination.enabled"]
    subjects = sorted(_subjects(mail))
    assert subjects == sorted(
        ["[Hookway] flaky: circuit opened", "[Hookway] flaky: disabled", "[Hookway] flaky: enabled"]
    )
    changes = list(DestinationChange.objects.values_list("change", flat=True).order_by("id"))
    assert changes.count("disabled") == 1
    assert changes.count("circuit_opened") == 1
    # Each dispatcher logged only the changes it made: together, each once.
    logs = "".join(log_of(w) for w in workers)
    assert logs.count('"change": "disabled"') == 1
    assert not Delivery.objects.filter(state=DeliveryState.DEAD).exists()


def _messages(folder: Path) -> list[str]:
    """Each email the file backend wrote (one file per connection, messages separated
    by a line of dashes)."""
    if not folder.exists():
        return []
    found = []
    for path in folder.iterdir():
        for chunk in path.read_text().split("-" * 79):
            if "Subject:" in chunk:
                found.append(chunk)
    return found


def _subjects(folder: Path) -> list[str]:
    return [
        line.removeprefix("Subject: ")
        for message in _messages(folder)
        for line in message.splitlines()
        if line.startswith("Subject: ")
    ]
