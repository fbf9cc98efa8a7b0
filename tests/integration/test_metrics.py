"""/metrics against real webhooks, real deliveries to local receivers and the real
database: the counters move by what happened, the gauges say what the database holds,
and only allowed clients read any of it."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hookway import conf, gate
from hookway.dispatch.dispatcher import Dispatcher, DispatcherConfig
from hookway.loopmonitor import ProcessMetricsTask
from hookway.metrics import server as metrics_server
from hookway.models import Destination, Route, Source
from hookway.policy import CircuitState
from hookway.send.guard import Guard
from tests.metricstext import Samples, names, parse, total, value
from tests.receivers import Received, Reply

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "metrics-token-for-tests-0123456789"


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def run_dispatcher() -> None:
    config = DispatcherConfig(
        concurrency=20,
        lease_seconds=5,
        poll_interval=0.05,
        shutdown_grace=2,
        retry_schedule=(0, 0),
        until_empty=True,
        listen_postgres=False,
    )
    await asyncio.wait_for(Dispatcher(config, guard=Guard(allow_private=True)).run(), timeout=60)


async def route(source: Source, name: str, url: str, **fields: Any) -> Destination:
    events = fields.pop("events", [])
    destination = await Destination.objects.acreate(name=name, url=url, **fields)
    await Route.objects.acreate(source=source, destination=destination, events=events)
    return destination


@pytest.fixture
async def remote_client() -> AsyncIterator[Any]:
    """Clients on Hookway's ASGI app from elsewhere (a documentation address by default)."""
    from hookway.asgi import application

    clients: list[httpx.AsyncClient] = []

    def make(address: str = "203.0.113.9") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=application, client=(address, 40000))
        c = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.aclose()


@pytest.fixture
def metrics_settings(settings: Any) -> Any:
    def apply(**fields: Any) -> None:
        settings.HOOKWAY = dataclasses.replace(conf.get(), **fields)

    return apply


async def test_webhooks_are_counted_by_source_and_status(client: httpx.AsyncClient) -> None:
    await Source.objects.acreate(slug="inbox", verify="none")
    await Source.objects.acreate(slug="locked", verify="token", secrets=["s3cret-token"])
    before = await scrape(client)

    for _ in range(3):
        assert (await client.post("/hooks/inbox", json={"type": "push"})).status_code == 202
    dedupe = {"Idempotency-Key": "same-one"}
    assert (await client.post("/hooks/inbox", json={"a": 1}, headers=dedupe)).status_code == 202
    assert (await client.post("/hooks/inbox", json={"a": 1}, headers=dedupe)).status_code == 200
    bad = await client.post(
        "/hooks/inbox", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 400
    assert (await client.post("/hooks/locked", json={"type": "x"})).status_code == 401
    assert (await client.post("/hooks/no-such-source", json={})).status_code == 404
    assert (await client.get("/hooks/inbox")).status_code == 405

    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    received = "hookway_webhooks_received_total"
    assert moved(received, source="inbox", status="202") == 4
    assert moved(received, source="inbox", status="200") == 1
    assert moved(received, source="inbox", status="400") == 1
    assert moved(received, source="locked", status="401") == 1
    # Unknown slugs never become labels; nor does a GET, refused before any lookup.
    assert moved(received, source="", status="404") == 1
    assert moved(received, source="", status="405") == 1
    assert not any(("no-such-source" in dict(labels).values()) for _, labels in after)
    assert moved("hookway_ingest_duration_seconds_count") == 9
    assert moved("hookway_ingest_duration_seconds_bucket", le="+Inf") == 9
    assert moved("hookway_ingest_duration_seconds_sum") > 0


async def test_deliveries_retries_and_dead_letters_are_counted(
    client: httpx.AsyncClient, receiver: Any
) -> None:
    def behaviour(request: Received, n: int) -> Reply:
        if request.path == "/gone":
            return Reply(status=410)
        if request.path == "/flaky" and request.headers["x-hookway-attempt"] == "1":
            return Reply(status=500)
        return Reply()

    target = receiver(behaviour)
    source = await Source.objects.acreate(slug="shop", verify="none")
    await route(source, "ok", target.url("/ok"), events=["order.*"])
    await route(source, "flaky", target.url("/flaky"), events=["order.*"])
    await route(source, "gone", target.url("/gone"), events=["refund"], max_attempts=3)
    before = await scrape(client)

    for name in ("order.created", "order.paid", "refund"):
        assert (await client.post("/hooks/shop", json={"type": name})).status_code == 202
    waiting = await scrape(client)
    assert value(waiting, "hookway_deliveries_pending", destination="ok") == 2
    assert value(waiting, "hookway_deliveries_pending", destination="gone") == 1
    assert value(waiting, "hookway_oldest_pending_delivery_age_seconds", destination="ok") >= 0
    assert ("hookway_oldest_pending_delivery_age_seconds", frozenset({("destination", "ok")})) in (
        waiting
    )

    await run_dispatcher()
    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert len(target.received("/ok")) == 2
    assert len(target.received("/flaky")) == 4
    assert moved("hookway_deliveries_total", destination="ok", outcome="succeeded") == 2
    assert moved("hookway_deliveries_total", destination="flaky", outcome="succeeded") == 2
    assert moved("hookway_retries_scheduled_total", destination="flaky") == 2
    assert moved("hookway_retries_scheduled_total", destination="ok") == 0
    # 410 Gone: dead at once, and the destination is disabled.
    assert moved("hookway_deliveries_total", destination="gone", outcome="dead") == 1
    assert moved("hookway_delivery_attempt_duration_seconds_count", destination="ok") == 2
    assert moved("hookway_delivery_attempt_duration_seconds_count", destination="flaky") == 4
    assert moved("hookway_delivery_attempt_duration_seconds_count", destination="gone") == 1

    # The gauges, read from the database at this scrape.
    assert value(after, "hookway_database_up") == 1
    for name in ("ok", "flaky", "gone"):
        assert value(after, "hookway_deliveries_pending", destination=name) == 0
        oldest = ("hookway_oldest_pending_delivery_age_seconds", frozenset({("destination", name)}))
        assert oldest not in after  # nothing pending: no age
    assert value(after, "hookway_deliveries_dead", destination="gone") == 1
    assert value(after, "hookway_deliveries_dead", destination="ok") == 0
    assert value(after, "hookway_destination_enabled", destination="gone") == 0
    assert value(after, "hookway_destination_enabled", destination="ok") == 1
    assert value(after, "hookway_destination_failures_in_a_row", destination="gone") == 1
    assert value(after, "hookway_destination_failures_in_a_row", destination="flaky") == 0
    # One failure in a row is below the breaker's threshold: every circuit is closed.
    for name in ("ok", "flaky", "gone"):
        assert (
            value(after, "hookway_destination_circuit_state", destination=name, state="closed") == 1
        )
        assert (
            value(after, "hookway_destination_circuit_state", destination=name, state="open") == 0
        )


async def test_an_open_circuit_shows_in_its_gauge(client: httpx.AsyncClient, receiver: Any) -> None:
    source = await Source.objects.acreate(slug="feed", verify="none")
    await route(source, "down", receiver().url("/down"))
    await Destination.objects.filter(name="down").aupdate(circuit_state=CircuitState.OPEN)

    samples = await scrape(client)

    assert (
        value(samples, "hookway_destination_circuit_state", destination="down", state="open") == 1
    )
    for state in ("closed", "half_open"):
        assert (
            value(samples, "hookway_destination_circuit_state", destination="down", state=state)
            == 0
        )


async def test_a_paused_destinations_backlog_shows_in_the_gauges(
    client: httpx.AsyncClient, receiver: Any
) -> None:
    target = receiver()
    source = await Source.objects.acreate(slug="feed", verify="none")
    await route(source, "later", target.url("/later"), paused=True)
    await route(source, "now", target.url("/now"))
    for _ in range(3):
        assert (await client.post("/hooks/feed", json={"type": "tick"})).status_code == 202

    await run_dispatcher()  # delivers "now"; "later" waits while it is paused
    samples = await scrape(client)

    assert len(target.received("/now")) == 3
    assert target.received("/later") == []
    assert value(samples, "hookway_destination_paused", destination="later") == 1
    assert value(samples, "hookway_destination_paused", destination="now") == 0
    assert value(samples, "hookway_deliveries_pending", destination="later") == 3
    assert value(samples, "hookway_deliveries_pending", destination="now") == 0
    assert value(samples, "hookway_oldest_pending_delivery_age_seconds", destination="later") >= 0
    assert total(samples, "hookway_deliveries_pending") == 3


async def test_remote_clients_get_403_and_no_data(remote_client: Any) -> None:
    response = await remote_client().get("/metrics")
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert "HOOKWAY_METRICS_TOKEN" in response.json()["detail"]
    assert "hookway_" not in response.text.replace("HOOKWAY_", "")
    # Any method, any token: nothing is said before the client is let in.
    assert (await remote_client().post("/metrics")).status_code == 403


async def test_the_token_opens_metrics_to_any_address(
    remote_client: Any, client: httpx.AsyncClient, metrics_settings: Any
) -> None:
    metrics_settings(metrics_token=TOKEN)
    remote = remote_client()
    samples = await scrape(remote, Authorization=f"Bearer {TOKEN}")
    assert "hookway_database_up" in names(samples)

    wrong = await remote.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 403
    # A wrong token is refused from this machine too: it is a mistake worth seeing.
    local_wrong = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})
    assert local_wrong.status_code == 403
    assert local_wrong.json()["detail"] == "the bearer token is not HOOKWAY_METRICS_TOKEN"
    assert (await remote.get("/metrics")).status_code == 403


async def test_the_allowlist_opens_metrics_to_its_networks(
    remote_client: Any, client: httpx.AsyncClient, metrics_settings: Any
) -> None:
    metrics_settings(metrics_allowlist=["10.0.0.0/8", "2001:db8::/32"])
    assert (await remote_client("10.20.30.40").get("/metrics")).status_code == 200
    assert (await remote_client("2001:db8::7").get("/metrics")).status_code == 200
    assert (await remote_client("11.0.0.1").get("/metrics")).status_code == 403
    # Loopback is in the default list only: replacing the list replaces it.
    assert (await client.get("/metrics")).status_code == 403
    allowed = await remote_client("10.0.0.1").post("/metrics")
    assert allowed.status_code == 405
    assert allowed.headers["Allow"] == "GET, HEAD"


async def test_event_loop_lag_is_sampled_into_its_histogram(client: httpx.AsyncClient) -> None:
    before = value(await scrape(client), "hookway_event_loop_lag_seconds_count")
    task = ProcessMetricsTask()
    task.start()
    await asyncio.sleep(0.5)
    await task.stop()
    after = value(await scrape(client), "hookway_event_loop_lag_seconds_count")
    assert after - before >= 3  # a sample every 50 ms


@pytest.fixture
async def dispatcher_endpoint() -> AsyncIterator[str]:
    server = await metrics_server.start("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


async def test_a_dispatchers_own_endpoint_serves_its_counters_only(
    dispatcher_endpoint: str, metrics_settings: Any
) -> None:
    async with httpx.AsyncClient(base_url=dispatcher_endpoint) as http:
        response = await http.get("/metrics")
        assert response.status_code == 200
        samples = parse(response.text)
        assert "hookway_event_loop_lag_seconds_count" in names(samples)
        # The database's gauges are the web server's to report.
        assert "hookway_database_up" not in names(samples)
        assert (await http.head("/metrics")).status_code == 200
        assert (await http.get("/other")).status_code == 404
        assert (await http.post("/metrics")).status_code == 405

        metrics_settings(metrics_allowlist=[], metrics_token=TOKEN)
        refused = await http.get("/metrics")
        assert refused.status_code == 403
        assert "hookway_" not in refused.text.replace("HOOKWAY_", "")
        let_in = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert let_in.status_code == 200


async def test_a_dispatchers_endpoint_answers_400_to_garbage(dispatcher_endpoint: str) -> None:
    host, port = dispatcher_endpoint.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"\x00" * 20000)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400 Bad Request")


async def test_gauges_are_read_from_the_database_through_the_gate() -> None:
    source = await Source.objects.acreate(slug="g", verify="none")
    await route(source, "a-dest", "http://127.0.0.1:9/x")
    gauges = await gate.ametrics_gauges()
    assert [g.name for g in gauges] == ["a-dest"]
    assert gauges[0].pending == 0
    assert gauges[0].oldest_pending_seconds is None
