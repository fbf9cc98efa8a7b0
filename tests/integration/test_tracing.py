"""OpenTelemetry: one trace from a webhook's arrival to each of its delivery attempts,
recorded with the SDK's in-memory exporter, and the receiver gets the attempt's
``traceparent``."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from hookway import tracing
from hookway.dispatch.dispatcher import Dispatcher, DispatcherConfig
from hookway.models import Destination, Event, Route, Source
from hookway.send.guard import Guard
from tests.receivers import Received, Reply

pytestmark = pytest.mark.django_db(transaction=True)

SENDER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SENDER_SPAN = "00f067aa0ba902b7"

_exporter = InMemorySpanExporter()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """The spans recorded during the test. A tracer provider is set once per process
    (OpenTelemetry refuses a second), so this module's stays for the rest of the run."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        trace.set_tracer_provider(provider)
    tracing.refresh()  # noticed at once, not within a second
    _exporter.clear()
    return _exporter


async def deliver() -> None:
    config = DispatcherConfig(
        concurrency=10,
        lease_seconds=5,
        poll_interval=0.05,
        shutdown_grace=2,
        retry_schedule=(0, 0),
        until_empty=True,
        listen_postgres=False,
    )
    await asyncio.wait_for(Dispatcher(config, guard=Guard(allow_private=True)).run(), timeout=60)


async def routed(url: str) -> None:
    source = await Source.objects.acreate(slug="traced", verify="none")
    destination = await Destination.objects.acreate(name="receiver", url=url)
    await Route.objects.acreate(source=source, destination=destination)


def hexes(span: ReadableSpan) -> tuple[str, str]:
    ctx = span.get_span_context()
    assert ctx is not None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def traceparent(span: ReadableSpan) -> str:
    ctx = span.get_span_context()
    assert ctx is not None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"


def parent_of(span: ReadableSpan) -> str:
    assert span.parent is not None
    return f"{span.parent.span_id:016x}"


def test_tracing_is_on_with_the_otel_extra_installed():
    assert tracing.ENABLED


async def test_one_trace_from_the_senders_traceparent_to_the_receiver(
    client: httpx.AsyncClient, receiver: Any, spans: InMemorySpanExporter
) -> None:
    target = receiver()
    await routed(target.url("/in"))
    response = await client.post(
        "/hooks/traced",
        json={"type": "push"},
        headers={
            "traceparent": f"00-{SENDER_TRACE}-{SENDER_SPAN}-01",
            "tracestate": "vendor=abc",
        },
    )
    assert response.status_code == 202
    await deliver()

    (ingest,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    (attempt,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CLIENT]
    ingest_trace, ingest_span = hexes(ingest)
    attempt_trace, attempt_span = hexes(attempt)
    # Ingest continues the sender's trace, the attempt continues ingest's.
    assert ingest_trace == attempt_trace == SENDER_TRACE
    assert parent_of(ingest) == SENDER_SPAN
    assert parent_of(attempt) == ingest_span
    assert ingest.name == "POST /hooks/{slug}"
    assert ingest.attributes is not None
    assert attempt.attributes is not None
    assert ingest.attributes["hookway.source"] == "traced"
    assert ingest.attributes["http.response.status_code"] == 202
    assert ingest.attributes["hookway.event_id"] == response.json()["id"]
    assert attempt.attributes["hookway.destination"] == "receiver"
    assert attempt.attributes["http.response.status_code"] == 200

    (got,) = target.received()
    assert got.headers["traceparent"] == f"00-{SENDER_TRACE}-{attempt_span}-01"
    assert got.headers["tracestate"] == "vendor=abc"
    # Stored with the event, for whichever dispatcher process claims its deliveries.
    event = await Event.objects.aget(pk=response.json()["id"])
    assert event.traceparent == f"00-{SENDER_TRACE}-{ingest_span}-01"
    assert event.tracestate == "vendor=abc"


async def test_without_a_traceparent_ingest_starts_the_trace_every_attempt_joins(
    client: httpx.AsyncClient, receiver: Any, spans: InMemorySpanExporter
) -> None:
    def fail_first(request: Received, n: int) -> Reply:
        return Reply(status=503) if n == 1 else Reply()

    target = receiver(fail_first)
    await routed(target.url("/in"))
    assert (await client.post("/hooks/traced", json={"type": "push"})).status_code == 202
    await deliver()

    (ingest,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    attempts = sorted(
        (s for s in spans.get_finished_spans() if s.kind == SpanKind.CLIENT),
        key=lambda s: s.attributes["hookway.attempt"] if s.attributes else 0,
    )
    trace_id, ingest_span = hexes(ingest)
    assert ingest.parent is None  # a new trace
    assert len(attempts) == 2
    for attempt in attempts:
        assert hexes(attempt)[0] == trace_id
        assert parent_of(attempt) == ingest_span
    assert attempts[0].status.status_code == StatusCode.ERROR
    assert attempts[1].status.status_code == StatusCode.UNSET
    sent = [r.headers["traceparent"] for r in target.received()]
    assert sent == [traceparent(a) for a in attempts]


async def test_a_refused_webhook_is_traced_and_stores_nothing(
    client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    response = await client.post(
        "/hooks/nobody", json={}, headers={"traceparent": f"00-{SENDER_TRACE}-{SENDER_SPAN}-01"}
    )
    assert response.status_code == 404
    (ingest,) = spans.get_finished_spans()
    assert hexes(ingest)[0] == SENDER_TRACE
    assert ingest.attributes is not None
    assert ingest.attributes["http.response.status_code"] == 404
    assert "hookway.source" not in ingest.attributes


async def test_a_malformed_traceparent_is_ignored(
    client: httpx.AsyncClient, receiver: Any, spans: InMemorySpanExporter
) -> None:
    target = receiver()
    await routed(target.url("/in"))
    response = await client.post(
        "/hooks/traced", json={"type": "x"}, headers={"traceparent": "00-zz-not-a-trace"}
    )
    assert response.status_code == 202
    await deliver()
    (ingest,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert ingest.parent is None
    assert target.received()[0].headers["traceparent"].split("-")[1] == hexes(ingest)[0]
