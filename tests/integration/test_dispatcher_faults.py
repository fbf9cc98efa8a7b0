"""The dispatcher under faults: database errors at every call site, a task that crashes,
a terminated PostgreSQL connection, a receiver that trickles its answer, a resolver that
hangs, a lease that runs out while the result waits to be written, cancellation, and a
host clock that disagrees with the database's."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from django.db import OperationalError, connection

from hookway import gate
from hookway.dispatch import dispatcher as dispatcher_module
from hookway.models import Attempt, Delivery, DeliveryState, Destination
from hookway.send.guard import Guard
from tests.integration.test_dispatcher import attempts_of, dispatcher, post, routes_to
from tests.receivers import Reply

pytestmark = pytest.mark.django_db(transaction=True)


def failing(
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    times: int,
    error: BaseException | None = None,
) -> list[int]:
    """Make ``gate.<name>`` raise ``error`` (a transient database error by default) on
    its first ``times`` calls, then behave; return a one-item list counting failures."""
    real: Callable[..., Awaitable[Any]] = getattr(gate, name)
    failures = [0]

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures[0] < times:
            failures[0] += 1
            raise error or OperationalError(f"injected failure of {name}")
        return await real(*args, **kwargs)

    monkeypatch.setattr(gate, name, flaky)
    return failures


async def until(condition: Callable[[], bool], seconds: float = 10) -> None:
    """Wait until ``condition()`` holds; fail after ``seconds``."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not true within {seconds}s")


@pytest.mark.parametrize(
    "call",
    [
        "aclaim_due",
        "aseconds_until_due",
        "apending_count",
        "arecord_attempts",
        "arenew_leases",
    ],
)
async def test_database_errors_at_any_call_site_only_delay_deliveries(
    client, receiver, monkeypatch, caplog, call
):
    # A first failure schedules a retry, so the dispatcher goes through every call
    # site: claim, record, count what is pending, find the next due time, renew.
    target = receiver(lambda request, n: Reply(status=500 if n == 1 else 200))
    await routes_to({"name": "t", "url": target.url()})
    await post(client)
    failures = failing(monkeypatch, call, times=3)
    caplog.set_level(logging.WARNING, "hookway.dispatch")

    stats = await asyncio.wait_for(dispatcher(retry_schedule=(0, 1.0)).run(), timeout=30)

    assert failures[0] == 3, f"{call} was not called three times"
    assert stats.succeeded == 1
    assert len(target.received()) == 2
    assert (await Delivery.objects.aget()).state == DeliveryState.SUCCEEDED
    retried = [r for r in caplog.records if "injected failure" in r.getMessage()]
    assert len(retried) == 3, "each failure is logged as a warning with a retry"


async def test_releasing_at_shutdown_survives_a_database_error(client, receiver, monkeypatch):
    stuck = receiver(lambda request, n: Reply(delay=3))
    await routes_to({"name": "stuck", "url": stuck.url(), "timeout_seconds": 30})
    await post(client)
    failures = failing(monkeypatch, "arelease", times=2)
    d = dispatcher(until_empty=False, shutdown_grace=0.2)
    task = asyncio.create_task(d.run())
    await until(lambda: stuck._in_flight > 0)

    d.stop()
    stats = await asyncio.wait_for(task, timeout=15)

    assert failures[0] == 2
    assert stats.released == 1
    delivery = await Delivery.objects.aget()
    assert delivery.lease_owner == ""


@pytest.mark.sqlite_only  # data_version is how SQLite dispatchers notice other processes
async def test_watching_sqlite_survives_a_database_error(client, receiver, monkeypatch):
    await routes_to({"name": "t", "url": receiver().url()})
    failures = failing(monkeypatch, "adata_version", times=2)
    failing_version = gate.adata_version
    calls = [0]

    async def counted() -> int:
        calls[0] += 1
        return int(await failing_version())

    monkeypatch.setattr(gate, "adata_version", counted)
    d = dispatcher(until_empty=False)
    task = asyncio.create_task(d.run())
    try:
        for _ in range(200):
            if calls[0] >= 6:
                break
            await asyncio.sleep(0.02)
    finally:
        d.stop()
        await asyncio.wait_for(task, timeout=10)
    assert failures[0] == 2
    assert calls[0] >= 6, "the watch kept going after its failures"
    assert d.tasks["watch"].failures == 0  # handled in the loop, not by a restart


async def test_a_crashing_task_is_logged_with_its_traceback_and_restarted(
    client, receiver, monkeypatch, caplog
):
    target = receiver()
    await routes_to({"name": "t", "url": target.url()})
    await post(client)
    # Not a database error: a bug. The supervisor, not the retry helper, handles it.
    failures = failing(monkeypatch, "aclaim_due", times=1, error=RuntimeError("a bug"))
    caplog.set_level(logging.ERROR, "hookway.dispatch")
    d = dispatcher()

    stats = await asyncio.wait_for(d.run(), timeout=30)

    assert failures[0] == 1
    assert stats.succeeded == 1
    (record,) = [r for r in caplog.records if "dispatcher task claim failed" in r.getMessage()]
    assert record.exc_info is not None
    assert "a bug" in str(record.exc_info[1])
    assert d.tasks["claim"].failures == 1
    assert "RuntimeError" in d.tasks["claim"].last_error


async def test_a_crashing_task_makes_the_dispatcher_unhealthy_until_it_restarts(
    client, receiver, monkeypatch
):
    await routes_to({"name": "t", "url": receiver().url()})
    monkeypatch.setattr(dispatcher_module, "BACKOFF_FIRST", 1.0)
    failing(monkeypatch, "aclaim_due", times=1, error=RuntimeError("a bug"))
    d = dispatcher(until_empty=False)
    task = asyncio.create_task(d.run())
    try:
        for _ in range(100):
            if d.tasks.get("claim") and d.tasks["claim"].state == "restarting":
                break
            await asyncio.sleep(0.01)
        assert d.tasks["claim"].state == "restarting"
        assert not d.healthy
        for _ in range(300):
            if d.healthy:
                break
            await asyncio.sleep(0.01)
        assert d.healthy
    finally:
        d.stop()
        await asyncio.wait_for(task, timeout=10)


@pytest.fixture
def harness_backend(transactional_db: None) -> int:
    """The backend pid of the test harness's own connection (fixtures, teardown), which
    a test terminating Hookway's connections must spare."""
    assert connection.vendor == "postgresql"
    connection.ensure_connection()
    return int(connection.connection.info.backend_pid)


@pytest.mark.postgres_only
async def test_a_terminated_postgresql_connection_only_delays_deliveries(
    client, receiver, caplog, harness_backend
):
    target = receiver()
    await routes_to({"name": "t", "url": target.url()})
    caplog.set_level(logging.WARNING, "hookway")
    d = dispatcher(until_empty=False, listen_postgres=True, poll_interval=0.2)
    task = asyncio.create_task(d.run())
    try:
        await post(client)
        for _ in range(200):
            if target.received():
                break
            await asyncio.sleep(0.05)
        assert len(target.received()) == 1

        settings = connection.settings_dict

        def terminate() -> int:
            # From a connection of its own: every connection of this database but the
            # harness's, i.e. the dispatcher's (shared with this test's async ORM
            # calls), its LISTEN connection, and ingest's writer and reader.
            import psycopg

            with psycopg.connect(
                host=settings["HOST"] or "127.0.0.1",
                port=settings["PORT"] or 5432,
                user=settings["USER"] or "postgres",
                dbname=settings["NAME"],
                autocommit=True,
            ) as killer:
                row = killer.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid NOT IN (%s, pg_backend_pid())",
                    [harness_backend],
                ).fetchone()
                assert row is not None
                return int(row[0])

        killed = await asyncio.to_thread(terminate)
        assert killed >= 4, "the dispatcher's, LISTEN's and ingest's were terminated"
        # Ingest's own connections were terminated too: they are replaced on the spot.
        response = await client.post("/hooks/src", json={"event_name": "push"})
        assert response.status_code == 202, response.text
        for _ in range(300):
            if len(target.received()) == 2:
                break
            await asyncio.sleep(0.05)
        assert len(target.received()) == 2, "deliveries resumed without a restart"
        assert d.healthy
    finally:
        d.stop()
        await asyncio.wait_for(task, timeout=20)


class TricklingServer:
    """Answers every connection with a status line, then one header byte every
    ``interval`` seconds, forever: each read completes well within any read timeout."""

    def __init__(self, interval: float = 0.3):
        self.interval = interval
        self.requests = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/hook"

    def _serve(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            self.requests += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                while not self._stop.is_set():
                    conn.sendall(b"X")
                    time.sleep(self.interval)
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._sock.close()


@pytest.fixture
def trickler() -> Iterator[TricklingServer]:
    server = TricklingServer()
    yield server
    server.close()


@pytest.mark.parametrize("kind", ["aiohttp", "httpx"])
async def test_a_trickling_receiver_is_cut_off_at_the_timeout_and_sent_once(client, trickler, kind):
    from hookway.send.client import make_client

    await routes_to({"name": "slow", "url": trickler.url, "timeout_seconds": 1, "max_attempts": 1})
    await post(client)
    d = dispatcher(lease_seconds=1)
    d._client = make_client(kind=kind)

    started = time.monotonic()
    stats = await asyncio.wait_for(d.run(), timeout=30)
    elapsed = time.monotonic() - started
    await d._client.aclose()

    assert trickler.requests == 1
    assert stats.dead == 1
    delivery = await Delivery.objects.aget()
    assert delivery.state == DeliveryState.DEAD
    assert delivery.attempts == 1
    assert "gave up after 1 attempts (max_attempts 1)" in delivery.last_error
    (attempt,) = await attempts_of(delivery.id)
    assert attempt.error_kind == "timeout"
    assert "timed out after 1 s" in attempt.error
    assert 900 <= attempt.duration_ms < 2500
    assert elapsed < 5


async def test_a_hanging_resolver_is_bounded_by_the_timeout(client):
    async def hangs(host: str, port: int) -> list[str]:
        await asyncio.sleep(60)
        return ["127.0.0.1"]

    await routes_to(
        {
            "name": "dns",
            "url": "http://slow-dns.example/hook",
            "timeout_seconds": 0.5,
            "max_attempts": 1,
        }
    )
    await post(client)
    d = dispatcher(guard=Guard(allow_private=True, resolver=hangs))

    stats = await asyncio.wait_for(d.run(), timeout=10)

    assert stats.dead == 1
    (attempt,) = await attempts_of((await Delivery.objects.aget()).id)
    assert attempt.error_kind == "timeout"
    assert "resolving the host name" in attempt.error
    assert attempt.duration_ms < 2000


async def test_a_held_delivery_is_not_claimed_again_while_its_result_waits_to_be_written(
    client, receiver, monkeypatch
):
    target = receiver()
    await routes_to({"name": "t", "url": target.url(), "timeout_seconds": 0.5})
    await post(client)
    # The result can't be written, nor the lease renewed, for longer than the lease
    # (0.5 s timeout + 0.5 s): the delivery looks claimable in the database meanwhile.
    failing(monkeypatch, "arecord_attempts", times=12)
    failing(monkeypatch, "arenew_leases", times=1000)
    monkeypatch.setattr(dispatcher_module, "BACKOFF_MAX", 0.2)
    d = dispatcher(lease_seconds=0.5, poll_interval=0.05)

    stats = await asyncio.wait_for(d.run(), timeout=30)

    assert len(target.received()) == 1, "a held delivery was sent again"
    assert stats.claimed == 1
    delivery = await Delivery.objects.aget()
    assert delivery.state == DeliveryState.SUCCEEDED
    assert delivery.attempts == 1


async def test_leases_are_renewed_while_a_result_waits_to_be_written(client, receiver, monkeypatch):
    target = receiver()
    await routes_to({"name": "t", "url": target.url(), "timeout_seconds": 0.2})
    await post(client)
    failing(monkeypatch, "arecord_attempts", times=8)
    monkeypatch.setattr(dispatcher_module, "BACKOFF_MAX", 0.25)
    d = dispatcher(lease_seconds=0.6, until_empty=False)
    task = asyncio.create_task(d.run())
    try:
        for _ in range(100):
            if target.received():
                break
            await asyncio.sleep(0.02)
        first = (await Delivery.objects.aget()).lease_expires_at
        await asyncio.sleep(0.6)
        delivery = await Delivery.objects.aget()
        assert delivery.state == DeliveryState.PENDING  # still unwritten
        assert delivery.lease_expires_at is not None
        assert first is not None
        assert delivery.lease_expires_at > first, "the lease was renewed"
    finally:
        d.stop()
        await asyncio.wait_for(task, timeout=15)
    assert (await Delivery.objects.aget()).state == DeliveryState.SUCCEEDED


async def test_cancelling_run_stops_claiming_records_in_flight_results_and_reraises(
    client, receiver
):
    slow = receiver(lambda request, n: Reply(delay=0.5))
    await routes_to({"name": "slow", "url": slow.url()})
    await post(client)
    d = dispatcher(until_empty=False, shutdown_grace=5)
    task = asyncio.create_task(d.run())
    await until(lambda: slow._in_flight > 0)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=10)

    # The in-flight send finished within the grace period and its result was written.
    first = await Delivery.objects.aget()
    assert first.state == DeliveryState.SUCCEEDED
    (attempt,) = await attempts_of(first.id)
    assert attempt.outcome == "success"
    # Nothing claims any more: a new event stays pending, unleased.
    await post(client)
    await asyncio.sleep(0.5)
    assert len(slow.received()) == 1
    second = await Delivery.objects.exclude(pk=first.pk).aget()
    assert second.state == DeliveryState.PENDING
    assert second.lease_owner == ""
    assert await Attempt.objects.filter(delivery=second).acount() == 0


async def test_cancelling_run_twice_cuts_the_grace_period_short_and_releases(client, receiver):
    stuck = receiver(lambda request, n: Reply(delay=3))
    await routes_to({"name": "stuck", "url": stuck.url(), "timeout_seconds": 30})
    await post(client)
    d = dispatcher(until_empty=False, shutdown_grace=20)
    task = asyncio.create_task(d.run())
    await until(lambda: stuck._in_flight > 0)

    task.cancel()
    await asyncio.sleep(0.1)
    task.cancel()
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=10)

    assert time.monotonic() - started < 2
    assert d.stats.released == 1
    delivery = await Delivery.objects.aget()
    assert delivery.state == DeliveryState.PENDING
    assert delivery.lease_owner == ""


# SQLite lives on the dispatcher's own host: there, its clock is the database's.
@pytest.mark.postgres_only
async def test_leases_are_judged_by_the_database_clock_not_the_hosts(client, receiver, monkeypatch):
    await routes_to({"name": "t", "url": receiver().url()})
    await post(client)
    delivery = await Delivery.objects.aget()

    def lease_to_another_worker() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE hookway_delivery SET lease_owner = 'other', "
                "lease_expires_at = statement_timestamp() + interval '30 seconds'"
            )

    await gate._db(lease_to_another_worker)()
    # This host's clock runs an hour fast: by it, the other worker's lease has expired.
    from django.utils import timezone

    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + dt.timedelta(hours=1))

    claimed = await gate.aclaim_due("me", 10, 60.0, {}, set())

    assert claimed == []
    delivery = await Delivery.objects.aget(pk=delivery.pk)
    assert delivery.lease_owner == "other"


async def test_a_bug_in_the_sender_is_recorded_and_retried(client, receiver, monkeypatch):
    from hookway.send import sender

    target = receiver()
    await routes_to({"name": "t", "url": target.url()})
    await post(client)
    real = sender.send
    calls = [0]

    async def buggy(*args: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise ValueError("a bug in the sender")
        return await real(*args)

    monkeypatch.setattr(sender, "send", buggy)
    stats = await asyncio.wait_for(dispatcher().run(), timeout=30)

    assert stats.succeeded == 1
    first, second = await attempts_of((await Delivery.objects.aget()).id)
    assert first.error_kind == "internal"
    assert "a bug in the sender" in first.error
    assert second.outcome == "success"


async def test_destination_fields_still_reach_the_sender(client, receiver):
    # The store builds OutboundDelivery from named rows: every field lands where it should.
    target = receiver()
    await routes_to({"name": "named", "url": target.url("/named"), "timeout_seconds": 7})
    await post(client, name="tag_push")
    await asyncio.wait_for(dispatcher().run(), timeout=30)
    (got,) = target.received()
    assert got.path == "/named"
    assert got.headers["x-hookway-event"] == "tag_push"
    assert got.headers["x-hookway-source"] == "src"
    assert got.headers["x-hookway-attempt"] == "1"
    assert (await Destination.objects.aget()).name == "named"


async def test_a_result_written_after_its_lease_was_taken_over_says_so(
    client, receiver, monkeypatch
):
    """A dispatcher that can't reach the database for longer than its lease loses the
    delivery to another dispatcher; the receiver then gets it twice, and the first
    attempt's record says why."""
    from hookway.store.deliveries import LEASE_LOST

    target = receiver()
    await routes_to({"name": "t", "url": target.url(), "timeout_seconds": 0.2})
    await post(client)
    monkeypatch.setattr(dispatcher_module, "BACKOFF_MAX", 0.2)
    cut_off = dispatcher(lease_seconds=0.3, until_empty=False)
    cut_off.worker_id = "cut-off"
    real_record, real_renew = gate.arecord_attempts, gate.arenew_leases
    out_of_reach = [True]

    async def record(worker: str, *args: Any) -> Any:
        if worker == "cut-off" and out_of_reach[0]:
            raise OperationalError("the database is out of reach")
        return await real_record(worker, *args)

    async def renew(worker: str, *args: Any) -> Any:
        if worker == "cut-off" and out_of_reach[0]:
            raise OperationalError("the database is out of reach")
        return await real_renew(worker, *args)

    monkeypatch.setattr(gate, "arecord_attempts", record)
    monkeypatch.setattr(gate, "arenew_leases", renew)
    first = asyncio.create_task(cut_off.run())
    try:
        await until(lambda: len(target.received()) == 1)
        await asyncio.sleep(0.6)  # the lease (0.2 s + 0.3 s) runs out
        other = dispatcher()
        other.worker_id = "other"
        await asyncio.wait_for(other.run(), timeout=20)
        assert len(target.received()) == 2
        out_of_reach[0] = False
    finally:
        cut_off.stop()
        await asyncio.wait_for(first, timeout=20)

    delivery = await Delivery.objects.aget()
    assert delivery.state == DeliveryState.SUCCEEDED
    one, two = await attempts_of(delivery.id)
    assert (one.worker, one.outcome) == ("cut-off", "success")
    assert LEASE_LOST in one.error
    assert (two.worker, two.outcome, two.error) == ("other", "success", "")
