"""Ingest under faults and abuse: a per-request deadline while the database is locked, a
webhook the database refuses failing alone, bounded headers, bodies refused before they
are read, Django's host check and request signals on the lean path, a sender that
disconnects, non-JSON numbers, credential headers, and readiness that proves a write."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.db import connection
from django.utils import timezone

from hookway import gate
from hookway.asgi import application
from hookway.asgi_handler import header_problem
from hookway.models import Delivery, Event, Source
from hookway.store import events
from hookway.store.errors import SourceGone, StoreUnavailable, Unstorable
from hookway.store.events import IncomingEvent, StoredEvent
from tests.dblock import database_write_lock
from tests.integration.conftest import SECRETS
from tests.integration.test_ingest_contract import assert_error, counts, post
from tests.loopcount import counting, per_iteration

pytestmark = pytest.mark.django_db(transaction=True)

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def db_timeout(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    def set_timeout(seconds: float) -> None:
        monkeypatch.setattr(
            settings, "HOOKWAY", dataclasses.replace(settings.HOOKWAY, db_timeout=seconds)
        )

    return set_timeout


# --- 4: every request is answered within its own deadline ----------------------------------


async def test_every_request_gets_its_answer_within_the_deadline_of_its_arrival(
    client, source, db_timeout
):
    db_timeout(1.0)
    await source("demo")
    await post(client, "demo", b'{"type": "warm-up"}')  # the source is cached now

    async def timed(i: int) -> tuple[int, float]:
        await asyncio.sleep(i * 0.35)
        started = time.monotonic()
        response = await post(client, "demo", b'{"type": "push"}', {"Idempotency-Key": f"k{i}"})
        return response.status_code, time.monotonic() - started

    before = await counts()
    with database_write_lock():
        # Held for about 3 s: several deadlines pass while it is.
        answers = await asyncio.gather(*(timed(i) for i in range(6)))

    for status, elapsed in answers:
        assert status == 503
        # Within the 1 s deadline (plus this machine's scheduling noise), never queued
        # behind an earlier request's wait.
        assert elapsed < 1.4, answers
    assert await counts() == before, "a 503 stored nothing"
    response = await post(client, "demo", b'{"type": "push"}', {"Idempotency-Key": "k0"})
    assert response.status_code == 202, response.text


async def test_a_source_lookup_does_not_wait_behind_a_stalled_write(client, source, db_timeout):
    db_timeout(2.0)
    await source("demo")
    await source("other")
    with database_write_lock():
        stalled = asyncio.create_task(post(client, "demo", b'{"type": "push"}'))
        await asyncio.sleep(0.2)
        # "other" is not cached: its lookup reads while "demo"'s write waits for the lock.
        gate.clear_source_cache()
        started = time.monotonic()
        source_spec = await gate.aget_source("other")
        assert source_spec is not None
        assert time.monotonic() - started < 0.5
        assert (await stalled).status_code == 503


async def test_a_commit_the_writer_took_but_never_confirms_is_503_after_the_grace(
    client, source, db_timeout, monkeypatch, caplog
):
    # Past its deadline a webhook the writer has not taken is given up at once; one it
    # took may still commit, so it gets gate.COMMIT_GRACE more before the 503.
    db_timeout(0.5)
    await source("demo")
    release = threading.Event()

    def stalled(claims: list[Any]) -> list[Any]:
        for claim in claims:
            assert claim.take()  # the writer has it: it can't be given up any more
        release.wait(10)
        return [StoreUnavailable("released by the test")] * len(claims)

    monkeypatch.setattr(events, "store_claims", stalled)
    started = time.monotonic()
    try:
        response = await post(client, "demo", b'{"type": "push"}')
    finally:
        release.set()
    waited = time.monotonic() - started
    assert_error(response, 503, "unavailable")
    assert waited >= 0.5 + gate.COMMIT_GRACE - 0.05, "answered before the grace ran out"
    assert waited < 0.5 + gate.COMMIT_GRACE + 3
    assert any("outlived its deadline" in r.getMessage() for r in caplog.records)


async def test_a_sender_that_disconnects_before_its_commit_stores_nothing(source, db_timeout):
    db_timeout(5.0)
    await source("demo")
    body = b'{"type": "push"}'
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(0.3)  # the sender gives up while the webhook waits
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = asgi_scope("POST", "/hooks/demo", [(b"content-type", b"application/json")], body)
    with database_write_lock():
        await asyncio.wait_for(application(scope, receive, send), timeout=10)
    await asyncio.sleep(0.2)
    assert sent == [], "nobody was left to answer"
    assert await counts() == (0, 0)


# --- 5: one webhook the database refuses fails alone ---------------------------------------


def incoming(source_id: int, name: str = "push", body: bytes = b"{}") -> IncomingEvent:
    return IncomingEvent(
        source_id=source_id,
        event_name=name,
        delivery_id=None,
        content_type="application/json",
        headers={},
        body=body,
        received_at=timezone.now(),
    )


async def test_a_webhook_whose_source_is_gone_fails_alone_in_its_group(source):
    kept = await source("kept")
    doomed = await source("doomed")
    await sync_to_async(Source.objects.filter(pk=doomed.pk).delete)()

    # Queued together: one group, one transaction.
    results = await asyncio.gather(
        gate.astore_event(incoming(kept.pk, body=b'{"n": 1}')),
        gate.astore_event(incoming(doomed.pk)),
        gate.astore_event(incoming(kept.pk, body=b'{"n": 2}')),
        return_exceptions=True,
    )

    assert isinstance(results[0], StoredEvent)
    assert isinstance(results[1], SourceGone)
    assert isinstance(results[2], StoredEvent)
    assert await Event.objects.acount() == 2
    assert await Delivery.objects.acount() == 2


async def test_a_committed_group_is_answered_a_few_per_loop_iteration(source, monkeypatch):
    # A group can hold dozens of webhooks when the database is slow; answering all of
    # them in one loop iteration held the loop (timers, deliveries, other requests) for
    # 10-15 ms (bench/results/loop_lag.md). Count the loop's iterations with a callback
    # that reschedules itself, and see in which iteration each store returned.
    kept = await source("kept")
    answered: list[int] = []
    groups: list[int] = []
    real = events.store_claims

    def store_claims(claims: list[Any]) -> list[events.Outcome]:
        groups.append(len(claims))
        return real(claims)

    monkeypatch.setattr(events, "store_claims", store_claims)
    with counting() as iterations:

        async def one(n: int) -> None:
            await gate.astore_event(incoming(kept.pk, body=b'{"n": %d}' % n))
            answered.append(iterations.now)

        await asyncio.gather(*(one(n) for n in range(20)))  # queued together: one group

    assert groups == [20]
    spread = per_iteration(answered)
    assert max(spread) <= gate.SETTLE_CHUNK, spread
    assert len(spread) >= 3, spread
    assert await Event.objects.acount() == 20


async def test_a_source_deleted_while_cached_is_404_not_500(client, source):
    doomed = await source("doomed")
    assert (await post(client, "doomed", b'{"type": "push"}')).status_code == 202

    def delete_behind_the_cache() -> None:
        # As another process would: no signal reaches this process's cache.
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM hookway_delivery")
            cursor.execute("DELETE FROM hookway_event")
            cursor.execute("DELETE FROM hookway_route WHERE source_id = %s", [doomed.pk])
            cursor.execute("DELETE FROM hookway_source WHERE id = %s", [doomed.pk])

    await sync_to_async(delete_behind_the_cache)()
    response = await post(client, "doomed", b'{"type": "push"}')
    assert_error(response, 404, "unknown_source")
    assert await counts() == (0, 0)


@pytest.mark.postgres_only  # SQLite doesn't enforce VARCHAR lengths
async def test_data_the_database_refuses_fails_only_that_webhook(source):
    kept = await source("kept")
    results = await asyncio.gather(
        gate.astore_event(incoming(kept.pk, body=b'{"n": 1}')),
        gate.astore_event(incoming(kept.pk, name="x" * 300)),
        return_exceptions=True,
    )
    assert isinstance(results[0], StoredEvent)
    assert isinstance(results[1], Unstorable)
    assert await Event.objects.acount() == 1


# --- 6: headers are bounded ----------------------------------------------------------------


def asgi_scope(
    method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }


def test_header_limits_count_every_header_and_every_byte():
    limit = settings.HOOKWAY.max_headers
    exactly = asgi_scope("POST", "/hooks/x", [(b"x-h%d" % i, b"v") for i in range(limit - 2)])
    assert len(exactly["headers"]) == limit
    assert header_problem(exactly) is None
    one_more = asgi_scope("POST", "/hooks/x", [(b"x-h%d" % i, b"v") for i in range(limit - 1)])
    assert "at most 100" in (header_problem(one_more) or "")
    big = asgi_scope("POST", "/hooks/x", [(b"x-big", b"v" * settings.HOOKWAY.max_header_bytes)])
    assert "bytes" in (header_problem(big) or "")


@pytest.mark.parametrize("path", ["/hooks/demo", "/healthz", "/admin/login/"])
@pytest.mark.parametrize(
    "headers",
    [
        {f"X-Many-{i}": "v" for i in range(120)},
        {"X-Huge": "v" * (70 * 1024)},
    ],
    ids=["too many", "too large"],
)
async def test_too_many_or_too_large_headers_are_431_and_store_nothing(
    client, source, path, headers
):
    await source("demo")
    response = await client.post(path, content=b'{"type": "push"}', headers={**JSON, **headers})
    assert_error(response, 431, "headers_too_large")
    assert response.headers["Connection"] == "close"
    assert await counts() == (0, 0)


# --- 7: Django's guarantees on the lean ingest path ----------------------------------------


async def test_a_host_not_in_allowed_hosts_is_400_on_ingest_too(client, source, caplog):
    await source("demo")
    response = await client.post(
        "/hooks/demo", content=b'{"type": "push"}', headers={**JSON, "Host": "evil.example"}
    )
    assert_error(response, 400, "bad_request")
    assert await counts() == (0, 0)
    assert any(r.name == "django.security.DisallowedHost" for r in caplog.records)
    # The same Host on Django's own path is refused the same way.
    assert (await client.get("/healthz", headers={"Host": "evil.example"})).status_code == 400


@pytest.fixture
def signal_log() -> Iterator[list[tuple[str, str]]]:
    got: list[tuple[str, str]] = []

    def on_started(sender: type, **kwargs: Any) -> None:
        got.append(("started", kwargs["scope"]["path"]))

    async def on_started_async(sender: type, **kwargs: Any) -> None:
        got.append(("started-async", kwargs["scope"]["path"]))

    def on_finished(sender: type, **kwargs: Any) -> None:
        got.append(("finished", sender.__name__))

    signals.request_started.connect(on_started)
    signals.request_started.connect(on_started_async)
    signals.request_finished.connect(on_finished)
    yield got
    signals.request_started.disconnect(on_started)
    signals.request_started.disconnect(on_started_async)
    signals.request_finished.disconnect(on_finished)


async def test_request_signals_fire_for_ingest_requests(client, source, signal_log):
    await source("demo")
    response = await post(client, "demo", b'{"type": "push"}')
    assert response.status_code == 202
    assert ("started", "/hooks/demo") in signal_log
    assert ("started-async", "/hooks/demo") in signal_log
    assert ("finished", "IngestASGIHandler") in signal_log


async def test_request_finished_fires_when_the_sender_leaves_before_the_answer(
    source, db_timeout, signal_log
):
    # The view is cancelled (nothing stored, nobody answered); the request still ends
    # with request_finished, as Django's own handler sends it for a cancelled view.
    db_timeout(5.0)
    await source("demo")
    body = b'{"type": "push"}'
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(0.3)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = asgi_scope("POST", "/hooks/demo", [(b"content-type", b"application/json")], body)
    with database_write_lock():
        await asyncio.wait_for(application(scope, receive, send), timeout=10)
    assert sent == []
    assert signal_log.count(("finished", "IngestASGIHandler")) == 1


async def test_a_cancelled_ingest_request_stays_cancelled(source, db_timeout):
    # A server stopping cancels the request's task: the lean path must not swallow that
    # cancellation as if it were the client's disconnect.
    db_timeout(5.0)
    await source("demo")
    body = b'{"type": "push"}'
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # the client never leaves
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError(f"nothing should be sent: {message}")

    scope = asgi_scope("POST", "/hooks/demo", [(b"content-type", b"application/json")], body)
    with database_write_lock():
        task = asyncio.create_task(application(scope, receive, send))
        await asyncio.sleep(0.3)  # the webhook waits for the lock
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await counts() == (0, 0)


def test_the_ingest_path_calls_the_view_the_urlconf_names() -> None:
    # The lean path skips walking the URLconf for each webhook; what it hands Django must
    # be what resolving the path would have given.
    from django.core.handlers.asgi import ASGIRequest
    from django.urls import resolve

    from hookway.asgi_handler import SLUG_KEY, IngestASGIHandler

    handler = IngestASGIHandler()
    for path, slug in (("/hooks/demo", "demo"), ("/hooks/demo/", "demo"), ("/hooks/a.b", "a.b")):
        scope = asgi_scope("POST", path, [], b"")
        scope[SLUG_KEY] = handler.hook_path.match(path).group(1)
        request = ASGIRequest(scope, io.BytesIO())
        ours = handler.resolve_request(request)
        djangos = resolve(path)
        assert (ours.func, ours.args, ours.kwargs, ours.url_name) == (
            djangos.func,
            djangos.args,
            {"slug": slug},
            djangos.url_name,
        )
        assert djangos.kwargs == {"slug": slug}
        assert request.resolver_match is ours


# --- 8: bodies are refused before they are read --------------------------------------------


async def call_raw(scope: dict[str, Any], chunk: bytes = b"x" * 65536) -> tuple[int, int]:
    """Run the app on ``scope`` with a sender that streams ``chunk`` forever; return the
    status and how many chunks the app read."""
    reads = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(application(scope, receive, send), timeout=10)
    return int(sent[0]["status"]), reads


@pytest.mark.parametrize("method", ["PUT", "GET", "PATCH", "DELETE"])
async def test_another_method_on_ingest_is_405_before_a_byte_of_its_body_is_read(source, method):
    await source("demo")
    scope = asgi_scope(method, "/hooks/demo", [])
    scope["headers"] = [(b"host", b"testserver"), (b"content-length", b"209715200")]
    status, reads = await call_raw(scope)
    assert status == 405
    assert reads == 0


@pytest.mark.parametrize("path", ["/healthz", "/echo", "/admin/login/"])
async def test_a_declared_oversized_body_elsewhere_is_413_before_it_is_read(path):
    scope = asgi_scope("POST", path, [])
    scope["headers"] = [(b"host", b"testserver"), (b"content-length", b"209715200")]
    status, reads = await call_raw(scope)
    assert status == 413
    assert reads == 0


async def test_a_streamed_oversized_body_elsewhere_is_cut_off_at_the_limit():
    scope = asgi_scope("POST", "/echo", [])
    scope["headers"] = [(b"host", b"testserver"), (b"transfer-encoding", b"chunked")]
    status, reads = await call_raw(scope)
    assert status == 413
    assert reads * 65536 <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 65536


async def test_a_small_body_elsewhere_still_reaches_django(client):
    response = await client.post("/echo", content=b'{"hello": "world"}', headers=JSON)
    assert response.status_code == 200
    assert response.json()["bytes"] == 18


# --- 10: credentials are not stored --------------------------------------------------------


async def test_credential_and_signature_headers_and_secret_values_are_not_stored(client, source):
    await source("demo", "token")
    secret = SECRETS["token"]
    response = await post(
        client,
        "demo",
        b'{"type": "push"}',
        {
            "X-Webhook-Token": secret,
            "X-Auth-Token": "auth-token-value",
            "X-API-Key": "api-key-value",
            "X-Client-Secret": "client-secret-value",
            "Cookie": "session=cookie-value",
            "X-Hub-Signature-256": "sha256=signature-value",
            "X-Relay": f"forwarded {secret} here",
            "X-Trace": "trace-42",
        },
    )
    assert response.status_code == 202, response.text
    event = await Event.objects.aget(pk=response.json()["id"])
    stored = {name.lower(): value for name, value in event.headers.items()}
    assert stored["x-trace"] == "trace-42"
    dumped = json.dumps(event.headers)
    for value in (
        secret,
        "auth-token-value",
        "api-key-value",
        "client-secret-value",
        "cookie-value",
        "signature-value",
    ):
        assert value not in dumped


# --- 11: strict JSON -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"type": "push", "n": NaN}',
        b'{"type": "push", "n": Infinity}',
        b'{"type": "push", "n": -Infinity}',
        b'{"type": "push", "n": 1e999999}',
        b'{"type": "push", "n": -1e400}',
    ],
)
async def test_numbers_json_does_not_have_are_400(client, source, body):
    await source("demo")
    response = await post(client, "demo", body)
    payload = assert_error(response, 400, "malformed_json")
    assert "JSON" in payload["detail"]
    assert await counts() == (0, 0)


async def test_a_key_given_twice_routes_on_its_last_value(client, source):
    await source("demo", require_event_name=True)
    response = await post(client, "demo", b'{"type": "first", "type": "last"}')
    assert response.status_code == 202, response.text
    event = await Event.objects.aget(pk=response.json()["id"])
    assert event.event_name == "last"


# --- 16: readiness proves a write commits ------------------------------------------------


REFUSE_WRITES = {
    "sqlite": [
        "CREATE TRIGGER refuse_writes BEFORE UPDATE ON hookway_worker "
        "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
        "CREATE TRIGGER refuse_inserts BEFORE INSERT ON hookway_worker "
        "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_writes() RETURNS trigger AS $$ BEGIN "
        "RAISE EXCEPTION 'could not extend file: No space left on device'; END $$ "
        "LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_writes BEFORE INSERT OR UPDATE ON hookway_worker "
        "FOR EACH ROW EXECUTE FUNCTION refuse_writes()",
    ],
}
ALLOW_WRITES = {
    "sqlite": ["DROP TRIGGER refuse_writes", "DROP TRIGGER refuse_inserts"],
    "postgresql": ["DROP TRIGGER refuse_writes ON hookway_worker", "DROP FUNCTION refuse_writes"],
}


async def test_readyz_is_503_when_the_database_refuses_writes(client):
    def run(statements: dict[str, list[str]]) -> None:
        with connection.cursor() as cursor:
            for sql in statements[connection.vendor]:
                cursor.execute(sql)

    # Reads still work; every write to the table readiness writes fails, as on a full disk.
    await sync_to_async(run)(REFUSE_WRITES)
    try:
        response = await client.get("/readyz")
    finally:
        await sync_to_async(run)(ALLOW_WRITES)
    assert response.status_code == 503
    detail = response.json()["checks"]["database"]
    assert "write failed" in detail
    assert "full" in detail or "No space" in detail
    assert (await client.get("/readyz")).status_code == 200


async def test_readyz_is_503_while_the_embedded_dispatcher_is_not_running(
    client, monkeypatch, caplog
):
    from hookway import runtime
    from hookway.dispatch.dispatcher import Dispatcher

    async def broken_run(self: Dispatcher) -> Any:
        raise RuntimeError("the dispatcher broke")

    monkeypatch.setattr(Dispatcher, "run", broken_run)
    embedded = runtime.EmbeddedDispatcher()
    monkeypatch.setattr(runtime, "_embedded", embedded)
    embedded.start()
    try:
        for _ in range(100):
            if embedded.restarts:
                break
            await asyncio.sleep(0.01)
        response = await client.get("/readyz")
    finally:
        await embedded.stop()
    assert response.status_code == 503
    assert "the dispatcher broke" in response.json()["checks"]["dispatcher"]
    (failure,) = [r for r in caplog.records if "embedded dispatcher failed" in r.getMessage()]
    assert failure.exc_info is not None


async def test_readyz_reports_a_running_embedded_dispatcher(client, monkeypatch):
    from hookway import runtime

    embedded = runtime.EmbeddedDispatcher()
    monkeypatch.setattr(runtime, "_embedded", embedded)
    embedded.start()
    try:
        for _ in range(200):
            if embedded.dispatcher is not None and embedded.dispatcher.healthy:
                break
            await asyncio.sleep(0.01)
        response = await client.get("/readyz")
    finally:
        await embedded.stop()
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "dispatcher": "ok"}
