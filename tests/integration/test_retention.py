"""Retention: ``manage.py prune`` and the dispatcher's pruning task on a real database,
removing old events with their deliveries and attempts, in bounded batches, and keeping
what is recent, pending, or dead and not replayed."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookway.dispatch import retention
from hookway.dispatch.dispatcher import Dispatcher, DispatcherConfig
from hookway.models import (
    Attempt,
    AttemptOutcome,
    Delivery,
    DeliveryState,
    Destination,
    Event,
    Source,
)
from hookway.send.guard import Guard

pytestmark = pytest.mark.usefixtures("transactional_db")

PENDING, SUCCEEDED, DEAD = DeliveryState.PENDING, DeliveryState.SUCCEEDED, DeliveryState.DEAD


def prune(*args: str) -> str:
    out = StringIO()
    call_command("prune", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def destination(name: str = "audit") -> Destination:
    return Destination.objects.get_or_create(name=name, defaults={"url": "https://a.example/in"})[0]


def event(days_old: float, *states: DeliveryState, replayed: bool = False) -> Event:
    """An event received ``days_old`` days ago with one delivery per state (two attempts
    each); with ``replayed``, each dead delivery has a succeeded replay."""
    source, _ = Source.objects.get_or_create(slug="shop")
    at = timezone.now() - timedelta(days=days_old)
    stored = Event.objects.create(source=source, headers={}, body=b"{}", received_at=at)
    for state in states:
        delivery = Delivery.objects.create(
            event=stored,
            destination=destination(),
            state=state,
            attempts=2,
            next_attempt_at=at + (timedelta(days=365) if state == PENDING else timedelta()),
            created_at=at,
        )
        for number in (1, 2):
            Attempt.objects.create(
                delivery=delivery,
                number=number,
                started_at=at,
                outcome=AttemptOutcome.SUCCESS if state == SUCCEEDED else AttemptOutcome.RETRY,
            )
        if state == DEAD and replayed:
            Delivery.objects.create(
                event=stored,
                destination=destination(),
                state=SUCCEEDED,
                next_attempt_at=at,
                created_at=at,
                replay_of=delivery,
            )
    return stored


def left() -> set[str]:
    return set(Event.objects.values_list("pk", flat=True))


def counts() -> tuple[int, int, int]:
    return Event.objects.count(), Delivery.objects.count(), Attempt.objects.count()


def test_prune_deletes_old_events_with_their_deliveries_and_attempts_and_keeps_recent() -> None:
    old = event(40, SUCCEEDED, SUCCEEDED)
    recent = event(10, SUCCEEDED)
    out = prune("--days", "30")
    assert left() == {recent.pk}
    assert counts() == (1, 1, 2)
    assert not Delivery.objects.filter(event_id=old.pk).exists()
    assert "Deleted 1 events, 2 deliveries, 4 attempts (older than 30 days)" in out


def test_prune_keeps_events_with_a_pending_or_retrying_delivery() -> None:
    pending = event(40, SUCCEEDED, PENDING)
    Delivery.objects.filter(event=pending, state=PENDING).update(next_attempt_at=timezone.now())
    retrying = event(40, PENDING)  # due in a year: waiting for its next attempt
    gone = event(40, SUCCEEDED)
    prune("--days", "30")
    assert left() == {pending.pk, retrying.pk}
    assert gone.pk not in left()


def test_dead_deliveries_are_kept_until_replayed_or_past_the_dead_retention() -> None:
    dead = event(40, DEAD)
    replayed = event(40, DEAD, replayed=True)
    expired = event(100, DEAD, SUCCEEDED)
    prune("--days", "30", "--dead-days", "90")
    assert left() == {dead.pk}
    assert replayed.pk not in left()
    assert expired.pk not in left()


def test_dead_retention_zero_keeps_unreplayed_dead_deliveries_forever() -> None:
    ancient = event(3000, DEAD)
    replayed = event(3000, DEAD, replayed=True)
    prune("--days", "30", "--dead-days", "0")
    assert left() == {ancient.pk}
    assert replayed.pk not in left()


def test_dead_retention_shorter_than_retention_keeps_them_for_the_retention() -> None:
    young = event(20, DEAD)
    older = event(40, DEAD)
    prune("--days", "30", "--dead-days", "7")
    assert left() == {young.pk}
    assert older.pk not in left()


def test_dry_run_prints_the_counts_and_changes_nothing() -> None:
    event(40, SUCCEEDED, DEAD)
    event(40, SUCCEEDED)
    event(1, SUCCEEDED)
    before = counts()
    out = prune("--days", "30", "--dead-days", "30", "--dry-run")
    assert counts() == before
    assert "Would delete 2 events, 3 deliveries, 6 attempts (older than 30 days); dry run." in out
    out = prune("--days", "30", "--dead-days", "30")
    assert "Deleted 2 events, 3 deliveries, 6 attempts" in out
    assert counts() == (1, 1, 2)


def test_each_batch_is_one_transaction_deleting_at_most_the_batch_size() -> None:
    for _ in range(7):
        event(40, SUCCEEDED)
    kept = event(40, PENDING)  # in the middle of the range: skipped, not rescanned
    for _ in range(3):
        event(35, SUCCEEDED)
    with CaptureQueriesContext(connection) as queries:
        out = prune("--days", "30", "--batch", "3")
    assert left() == {kept.pk}
    event_deletes = [
        q["sql"] for q in queries if re.match(r'DELETE FROM "?hookway_event"?', q["sql"])
    ]
    # 10 events, each statement naming at most 3 ids (fewer when a batch runs slow:
    # the next test pins the sizes).
    sizes = [sql.count("%s") or sql.count("'evt_") for sql in event_deletes]
    assert sum(sizes) == 10
    assert max(sizes) == 3
    assert f"in {len(sizes)} batches" in out


@pytest.mark.parametrize(
    ("target", "first", "sizes"),
    [
        (60.0, 1, [1, 2, 3, 3, 1]),  # every batch well under the target: grows to --batch
        (0.0, 3, [3, 1, 1, 1, 1, 1, 1, 1]),  # every batch over it: halves, down to 1
    ],
)
def test_batches_are_sized_by_how_long_the_last_one_held_the_lock(
    monkeypatch: pytest.MonkeyPatch, target: float, first: int, sizes: list[int]
) -> None:
    monkeypatch.setattr(retention, "TARGET", target)
    monkeypatch.setattr(retention, "FIRST", first)
    for _ in range(10):
        event(40, SUCCEEDED)
    with CaptureQueriesContext(connection) as queries:
        prune("--days", "30", "--batch", "3")
    event_deletes = [
        q["sql"] for q in queries if re.match(r'DELETE FROM "?hookway_event"?', q["sql"])
    ]
    assert [sql.count("%s") or sql.count("'evt_") for sql in event_deletes] == sizes
    assert counts() == (0, 0, 0)


def test_next_size_aims_at_the_target_within_half_and_double() -> None:
    target = retention.TARGET
    assert retention.next_size(100, target, 500) == 100
    assert retention.next_size(100, target / 1.5, 500) == 150
    assert retention.next_size(100, target / 10, 500) == 200  # at most doubling
    assert retention.next_size(100, target / 10, 120) == 120  # never past --batch
    assert retention.next_size(100, target * 1.25, 500) == 80
    assert retention.next_size(100, target * 10, 500) == 50  # at most halving
    assert retention.next_size(1, target * 10, 500) == 1


@pytest.mark.sqlite_only
def test_sqlite_statistics_saying_replay_of_is_all_null_do_not_turn_a_batch_into_a_scan() -> None:
    """After ANALYZE, SQLite knows replay_of_id has one value (NULL) on every delivery and
    would scan the whole table for each batch's replays; the batch names the index."""
    for _ in range(30):
        event(40, SUCCEEDED, SUCCEEDED)
    event(40, DEAD, replayed=True)
    with connection.cursor() as cursor:
        # The statistics of a database with 2,000,000 deliveries (bench prune's), which
        # the planner reads back after ANALYZE sqlite_schema.
        cursor.execute("ANALYZE")
        cursor.execute(
            "UPDATE sqlite_stat1 SET stat = CASE "
            "WHEN idx LIKE '%replay_of%' THEN '2000000 2000000' "
            "WHEN idx IS NULL OR idx LIKE 'sqlite_autoindex%' THEN '2000000 1' "
            "ELSE '2000000 2 1 1 1' END WHERE tbl = 'hookway_delivery'"
        )
        cursor.execute("ANALYZE sqlite_schema")
    with CaptureQueriesContext(connection) as queries:
        prune("--days", "30")
    updates = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "hookway_delivery"')]
    assert updates  # one per batch
    for update in updates:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN QUERY PLAN " + update)
            plan = [row[-1] for row in cursor.fetchall()]
        assert not [step for step in plan if step.startswith("SCAN")], plan
        assert any("replay_of_id=?" in step for step in plan), plan
    assert counts() == (0, 0, 0)


def test_prune_with_retention_off_deletes_nothing() -> None:
    event(4000, SUCCEEDED)
    assert "Retention is off" in prune("--days", "0")
    assert counts() == (1, 1, 2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--days", "-1"), "--days"),
        (("--batch", "0"), "--batch"),
        (("--batch", "20000"), "--batch"),
    ],
)
def test_bad_arguments_are_refused_and_change_nothing(args: tuple[str, ...], message: str) -> None:
    event(40, SUCCEEDED)
    with pytest.raises(CommandError, match=message):
        prune(*args)
    assert counts() == (1, 1, 2)


KINDS = st.sampled_from(["succeeded", "pending", "dead", "dead-replayed"])


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(st.sampled_from([1, 20, 40, 95]), st.lists(KINDS, max_size=3)), max_size=8),
    st.sampled_from([0, 60]),
    st.integers(min_value=1, max_value=4),
)
def test_prune_keeps_exactly_what_the_policy_says(
    specs: list[tuple[int, list[str]]], dead_days: int, batch: int
) -> None:
    Event.objects.all().delete()
    expected = set()
    for age, kinds in specs:
        states = [
            PENDING if k == "pending" else SUCCEEDED if k == "succeeded" else DEAD for k in kinds
        ]
        # event() replays all of an event's dead deliveries or none.
        replayed = "dead-replayed" in kinds
        if replayed:
            kinds = ["dead-replayed" if k == "dead" else k for k in kinds]
        stored = event(age, *states, replayed=replayed)
        keeps = (
            age <= 30
            or "pending" in kinds
            or ("dead" in kinds and (dead_days == 0 or age <= dead_days))
        )
        if keeps:
            expected.add(stored.pk)
    prune("--days", "30", "--dead-days", str(dead_days), "--batch", str(batch))
    assert left() == expected
    assert not Delivery.objects.exclude(event_id__in=expected).exists()
    assert not Attempt.objects.exclude(delivery__event_id__in=expected).exists()


@pytest.mark.django_db(transaction=True)
async def test_the_dispatcher_prunes_old_events_while_it_runs() -> None:
    def setup() -> tuple[str, str]:
        return event(40, SUCCEEDED).pk, event(1, SUCCEEDED).pk

    from asgiref.sync import sync_to_async

    old, recent = await sync_to_async(setup)()
    config = DispatcherConfig(
        poll_interval=0.05, listen_postgres=False, retention_days=30, prune_batch=1
    )
    dispatcher = Dispatcher(config, guard=Guard(allow_private=True))
    running = asyncio.create_task(dispatcher.run())
    try:
        for _ in range(200):
            if not await Event.objects.filter(pk=old).aexists():
                break
            await asyncio.sleep(0.05)
        assert not await Event.objects.filter(pk=old).aexists()
        assert await Event.objects.filter(pk=recent).aexists()
        assert dispatcher.tasks["prune"].state == "running"
    finally:
        dispatcher.stop()
        await asyncio.wait_for(running, timeout=30)


@pytest.mark.django_db(transaction=True)
async def test_a_dispatcher_with_retention_off_prunes_nothing() -> None:
    from asgiref.sync import sync_to_async

    old = (await sync_to_async(event)(4000, SUCCEEDED)).pk
    dispatcher = Dispatcher(
        DispatcherConfig(poll_interval=0.05, listen_postgres=False),
        guard=Guard(allow_private=True),
    )
    running = asyncio.create_task(dispatcher.run())
    try:
        for _ in range(100):  # every task has started once the claim loop runs
            if "claim" in dispatcher.tasks:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        assert "prune" not in dispatcher.tasks
        assert await Event.objects.filter(pk=old).aexists()
    finally:
        dispatcher.stop()
        await asyncio.wait_for(running, timeout=30)
