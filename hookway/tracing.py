"""OpenTelemetry tracing, when it is installed (``pip install hookway[otel]``).

One trace per webhook, from its arrival to every delivery attempt, across processes:

- ingest opens a server span, the child of the sender's ``traceparent`` when it sends one
  (W3C Trace Context), and stores the span's context with the event;
- the dispatcher, in whichever process claims a delivery, opens one span per attempt,
  the child of that stored context, and sends the attempt's own ``traceparent`` (and
  ``tracestate``) to the receiver.

Without the ``opentelemetry`` packages every entry point is behind ``ENABLED``, False,
and nothing here is imported by them: no cost and no import error. Installed but with no
tracer provider set up (no SDK configured: spans would record nothing), Hookway opens no
span (that cost ~15 µs per webhook, measured) and passes the sender's ``traceparent``
and ``tracestate`` on to the receivers unchanged, W3C's pass-through. OTEL_SDK_DISABLED=true
turns all of it off.

Hookway exports spans itself when the SDK is installed, no tracer provider was set up
by the host (a Django project's own setup, ``opentelemetry-instrument``), and the
standard OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) names a
collector: OTLP over HTTP, batched on a background thread (``configure``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from hookway import __version__
from hookway.outbound import AttemptResult, OutboundDelivery

logger = logging.getLogger("hookway.tracing")

# W3C: a tracestate longer than this may be dropped by whoever passes it on.
TRACESTATE_LIMIT = 512

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the otel extra is not installed: tracing is off
    ENABLED = False
else:
    ENABLED = os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"
    # A proxy until a tracer provider is set, then that provider's tracer.
    _tracer = trace.get_tracer("hookway", __version__)
    _propagator = TraceContextTextMapPropagator()

_provider: Any = None  # the tracer provider ``configure`` set up, to flush at shutdown

# version-traceid-parentid-flags, lowercase hex (W3C Trace Context, section 3.2).
_TRACEPARENT = re.compile(
    r"(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}"
)


# Whether a tracer provider is set up, looked up at most every RECHECK seconds until one
# is (it can't be unset): asking OpenTelemetry costs ~2 µs, too much for every webhook.
RECHECK = 1.0
_recording = False
_checked_at = float("-inf")


def recording() -> bool:
    """True when spans are recorded: OpenTelemetry is installed and a tracer provider
    is set up (by ``configure``, the host project, or ``opentelemetry-instrument``).
    A provider set up later is noticed within RECHECK seconds, or at ``refresh()``."""
    global _recording, _checked_at
    if _recording or not ENABLED:
        return _recording
    now = time.monotonic()
    if now - _checked_at >= RECHECK:
        _checked_at = now
        _recording = not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    return _recording


def refresh() -> None:
    """Look for a tracer provider now (after setting one up while serving)."""
    global _checked_at
    _checked_at = float("-inf")


def _carrier(traceparent: str, tracestate: str) -> dict[str, str]:
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    return carrier


def _injected() -> tuple[str, str]:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    tracestate = carrier.get("tracestate", "")
    return carrier.get("traceparent", ""), tracestate if len(tracestate) <= TRACESTATE_LIMIT else ""


# -- ingest -------------------------------------------------------------------------------


def ingest_span(scope: Mapping[str, Any], route: str) -> contextlib.AbstractContextManager[Any]:
    """The current span for one webhook, from its arrival to its answer: the child of
    the request's span when the server is instrumented already, else of the sender's
    ``traceparent`` header, else a new trace."""
    parent = None
    if not trace.get_current_span().get_span_context().is_valid:
        carrier: dict[str, str] = {}
        headers: Sequence[tuple[bytes, bytes]] = scope.get("headers", ())
        for name, value in headers:
            if name in (b"traceparent", b"tracestate"):
                carrier[name.decode("latin-1")] = value.decode("latin-1")
        if carrier:
            parent = _propagator.extract(carrier)
    return _tracer.start_as_current_span(
        f"POST {route}",
        context=parent,
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "POST",
            "http.route": route,
            "url.path": str(scope.get("path", "")),
        },
    )


def ingest_done(span: Any, source: str, status: int | None, event_id: str) -> None:
    """Say how the webhook was answered on its span."""
    if source:
        span.set_attribute("hookway.source", source)
    if event_id:
        span.set_attribute("hookway.event_id", event_id)
    if status is not None:
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))


def stored_context(headers: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The ``traceparent`` and ``tracestate`` to store with an event: the current
    span's (ingest's, when the view calls it) while spans are recorded; else, with
    OpenTelemetry installed, the sender's own from ``headers`` if well-formed (passed
    on as they came); empty strings otherwise."""
    if not ENABLED:
        return "", ""
    if recording():
        return _injected()
    if headers is None:
        return "", ""
    traceparent = headers.get("traceparent", "").strip()
    if not _TRACEPARENT.fullmatch(traceparent):
        return "", ""
    tracestate = headers.get("tracestate", "").strip()
    return traceparent, tracestate if len(tracestate) <= TRACESTATE_LIMIT else ""


# -- delivery attempts --------------------------------------------------------------------


@dataclass
class TracedAttempt:
    """One attempt's span, and its delivery carrying the span's context outbound."""

    span: Any
    delivery: OutboundDelivery

    def done(self, result: AttemptResult) -> None:
        span = self.span
        span.set_attribute("hookway.outcome", result.outcome)
        if result.status_code is not None:
            span.set_attribute("http.response.status_code", result.status_code)
        if result.outcome != "success":
            if result.error_kind:
                span.set_attribute("error.type", result.error_kind.value)
            span.set_status(Status(StatusCode.ERROR, result.error[:200]))


@contextlib.contextmanager
def attempt_span(delivery: OutboundDelivery) -> Iterator[TracedAttempt]:
    """The current span for one attempt, the child of the context stored with the
    event (a new trace without one)."""
    parent = (
        _propagator.extract(_carrier(delivery.traceparent, delivery.tracestate))
        if delivery.traceparent
        else otel_context.Context()
    )
    with _tracer.start_as_current_span(
        f"deliver {delivery.destination_name}",
        context=parent,
        kind=SpanKind.CLIENT,
        attributes={
            "hookway.delivery_id": delivery.delivery_id,
            "hookway.event_id": delivery.event_id,
            "hookway.destination": delivery.destination_name,
            "hookway.destination.kind": delivery.kind,
            "hookway.attempt": delivery.attempt,
        },
    ) as span:
        traceparent, tracestate = _injected()
        yield TracedAttempt(span, replace(delivery, traceparent=traceparent, tracestate=tracestate))


# -- exporting ----------------------------------------------------------------------------


def configure() -> None:
    """Export spans over OTLP/HTTP when the SDK is installed, OTEL_EXPORTER_OTLP_ENDPOINT
    or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, and nobody set a tracer provider up."""
    global _provider
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not ENABLED or not endpoint or _provider is not None:
        return
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return  # the host set one up: its spans go where it says
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK or its OTLP "
            "exporter is not installed: install hookway[otel] to export traces"
        )
        return
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "hookway"}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    refresh()
    logger.info("exporting traces over OTLP/HTTP to %s", endpoint)


def flush() -> None:
    """Export the spans still buffered and stop exporting (blocking: the exporter's
    HTTP calls). Does nothing unless ``configure`` set a provider up."""
    global _provider
    provider, _provider = _provider, None
    if provider is not None:
        provider.shutdown()
