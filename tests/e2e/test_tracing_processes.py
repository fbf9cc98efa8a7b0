"""Tracing across real processes: a web server and a standalone dispatcher export their
spans over OTLP/HTTP to a local collector stand-in, and they form one trace; with the
API but no tracer provider the sender's traceparent is passed on unchanged; without
OpenTelemetry at all, Hookway runs as before."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from hookway.models import Destination, Route, Source
from tests.conftest import free_port, uvicorn_args

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SENDER_TRACE = "0af7651916cd43dd8448eb211c80319c"
SENDER_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{SENDER_TRACE}-{SENDER_SPAN}-01"
ENV = {"HOOKWAY_ALLOW_PRIVATE_DESTINATIONS": "true", "HOOKWAY_POLL_INTERVAL": "0.1"}


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_until_up(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not up in 30 s:\n{log.read_text()}")


def routed(url: str) -> None:
    source = Source.objects.create(slug="traced", verify="none")
    destination = Destination.objects.create(name="receiver", url=url)
    Route.objects.create(source=source, destination=destination)


def exported_spans(collector: Any) -> list[tuple[str, Span]]:
    """Every span the collector stand-in received, with its service's name."""
    found = []
    for request in collector.received("/v1/traces"):
        export = ExportTraceServiceRequest()
        export.ParseFromString(request.body)
        for resource_spans in export.resource_spans:
            service = next(
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            )
            for scope_spans in resource_spans.scope_spans:
                found.extend((service, span) for span in scope_spans.spans)
    return found


def test_web_and_dispatcher_processes_export_one_trace(
    tmp_path: Path, receiver: Any, processes: Any
) -> None:
    collector = receiver()
    target = receiver()
    routed(target.url("/in"))
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web_log = tmp_path / "web.log"
    web = processes(
        [sys.executable, *uvicorn_args(port)],
        {**ENV, **otel, "HOOKWAY_EMBEDDED_DISPATCHER": "false", "OTEL_SERVICE_NAME": "hookway-web"},
        web_log,
    )
    wait_until_up(base, web, web_log)
    answer = httpx.post(
        base + "/hooks/traced",
        json={"type": "push"},
        headers={"traceparent": TRACEPARENT, "tracestate": "congo=t61rcWkgMzE"},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text

    dispatch_log = tmp_path / "dispatch.log"
    dispatcher = processes(
        [sys.executable, "manage.py", "dispatch", "--until-empty"],
        {**ENV, **otel, "OTEL_SERVICE_NAME": "hookway-dispatcher"},
        dispatch_log,
    )
    assert dispatcher.wait(timeout=60) == 0, dispatch_log.read_text()
    web.send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal once it has shut down gracefully.
    assert web.wait(timeout=30) in (0, -signal.SIGTERM)

    spans = exported_spans(collector)
    (ingest,) = [
        s for service, s in spans if service == "hookway-web" and s.kind == s.SPAN_KIND_SERVER
    ]
    (attempt,) = [
        s
        for service, s in spans
        if service == "hookway-dispatcher" and s.kind == s.SPAN_KIND_CLIENT
    ]
    assert ingest.trace_id.hex() == attempt.trace_id.hex() == SENDER_TRACE
    assert ingest.parent_span_id.hex() == SENDER_SPAN
    assert attempt.parent_span_id == ingest.span_id
    (got,) = target.received()
    assert got.headers["traceparent"] == f"00-{SENDER_TRACE}-{attempt.span_id.hex()}-01"
    assert got.headers["tracestate"] == "congo=t61rcWkgMzE"
    for log in (web_log, dispatch_log):
        assert "Traceback" not in log.read_text(), log.read_text()


def test_with_no_tracer_provider_the_senders_traceparent_is_passed_on(
    tmp_path: Path, receiver: Any, processes: Any
) -> None:
    target = receiver()
    routed(target.url("/in"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "web.log"
    web = processes([sys.executable, *uvicorn_args(port)], ENV, log)
    wait_until_up(base, web, log)
    json_type = {"Content-Type": "application/json"}
    headers = {**json_type, "traceparent": TRACEPARENT, "tracestate": "congo=t61rcWkgMzE"}
    answer = httpx.post(base + "/hooks/traced", content=b'{"a":1}', headers=headers, timeout=10)
    assert answer.status_code == 202
    # A malformed one (an all-zero trace id) is not passed on.
    bad = {**json_type, "traceparent": f"00-{'0' * 32}-{SENDER_SPAN}-01"}
    answer = httpx.post(base + "/hooks/traced", content=b'{"b":2}', headers=bad, timeout=10)
    assert answer.status_code == 202
    wait_for(lambda: len(target.received()) == 2, 30, "two deliveries")

    by_body = {r.body: r.headers for r in target.received()}
    assert by_body[b'{"a":1}']["traceparent"] == TRACEPARENT
    assert by_body[b'{"a":1}']["tracestate"] == "congo=t61rcWkgMzE"
    assert "traceparent" not in by_body[b'{"b":2}']


def test_without_opentelemetry_installed_hookway_serves_and_delivers(
    tmp_path: Path, receiver: Any, processes: Any
) -> None:
    target = receiver()
    routed(target.url("/in"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "web.log"
    # As if the otel extra were not installed: every opentelemetry import fails.
    no_otel = (
        "import sys; sys.modules['opentelemetry'] = None; "
        "import hookway.tracing; assert not hookway.tracing.ENABLED; "
        "import uvicorn; sys.argv[0] = 'uvicorn'; uvicorn.main()"
    )
    web = processes([sys.executable, "-c", no_otel, *uvicorn_args(port)[2:]], ENV, log)
    wait_until_up(base, web, log)
    answer = httpx.post(
        base + "/hooks/traced",
        json={"a": 1},
        headers={"traceparent": TRACEPARENT},
        timeout=10,
    )
    assert answer.status_code == 202
    wait_for(lambda: len(target.received()) == 1, 30, "the delivery")
    assert "traceparent" not in target.received()[0].headers
    assert httpx.get(base + "/metrics", timeout=5).status_code == 200
    web.send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal once it has shut down gracefully.
    assert web.wait(timeout=30) in (0, -signal.SIGTERM)
    assert "Traceback" not in log.read_text(), log.read_text()
