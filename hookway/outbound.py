"""Plain data shared by the store, the dispatcher and the sender: what to send (built by
the store at claim time), what happened (built by the sender), and what to write back
(built by the dispatcher). No Django, no I/O: a neutral module all three may import."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

# Sent with every commit that adds deliveries, so standalone dispatchers LISTENing on
# PostgreSQL wake at once (the notification is delivered only if the transaction commits).
NOTIFY_CHANNEL = "hookway_deliveries"

Outcome = Literal["success", "retry", "failed"]


class ErrorKind(StrEnum):
    """Why an attempt failed, one word each, stored with the attempt and logged."""

    NONE = ""
    HTTP_STATUS = "http_status"  # the receiver answered, with a non-2xx status
    TIMEOUT = "timeout"  # no complete response before the attempt's deadline
    CONNECTION_REFUSED = "connection_refused"  # nothing listening (receiver down)
    DNS = "dns"  # the host name did not resolve
    TLS = "tls"  # TLS handshake or certificate failure
    CONNECTION_RESET = "connection_reset"  # the connection broke mid-request
    CONNECTION = "connection"  # any other network failure
    REFUSED_BY_GUARD = "refused_by_guard"  # the SSRF guard refused the address
    INVALID_DESTINATION = "invalid_destination"  # the URL can't be requested at all
    HANDLER_ERROR = "handler_error"  # a handler raised (its traceback is in the response)
    RETRY_REQUESTED = "retry_requested"  # a handler raised hookway.Retry
    REJECTED = "rejected"  # a handler raised hookway.Reject: permanent, no more attempts
    BROKER = "broker"  # the Celery broker did not accept the task
    TRANSFORM = "transform"  # the route's transform failed for this event: permanent
    INTERRUPTED = "interrupted"  # the dispatcher died or stopped mid-attempt
    INTERNAL = "internal"  # a bug in Hookway (logged with its traceback)


class DeliveryState(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    DEAD = "dead"


@dataclass(frozen=True)
class OutboundDelivery:
    """One attempt to make: everything the sender needs, nothing it could write back."""

    delivery_id: str
    attempt: int
    event_id: str
    event_name: str
    source_slug: str
    destination_id: int
    destination_name: str
    url: str
    signing_secret: str | None = field(repr=False)
    timeout: float
    max_attempts: int
    body: bytes = field(repr=False)
    content_type: str
    # The destination's extra headers, read at claim time (docs/delivery.md, "The
    # request"): its static headers with env: values resolved, its auth, and the stored
    # headers of the event it forwards. Secrets stay out of the repr.
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    forwarded_headers: tuple[tuple[str, str], ...] = ()
    # Why this attempt can't be made as the destination is configured (an env: secret
    # unset in this process): the sender fails it without sending.
    problem: str = ""
    # Set instead of ``url`` for the other destination kinds (docs/handlers.md): a
    # Python callable "module:function", or a Celery task name. They get the event
    # itself, so the store adds what the sender gets as HTTP headers and body.
    handler: str = ""
    celery_task: str = ""
    event_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    received_at: datetime | None = None
    # Why the route's transform could not make this attempt's body (docs/delivery.md):
    # the attempt fails permanently without being sent (hookway.send.transport).
    transform_error: str = ""
    # Seconds to hold it before sending: its rate-limit slot (hookway.store.pacing).
    delay: float = 0.0
    # W3C Trace Context (hookway.tracing): stored with the event by ingest, then, for the
    # sender, the attempt's own span; sent as the traceparent and tracestate headers.
    traceparent: str = ""
    tracestate: str = ""

    @property
    def kind(self) -> Literal["http", "handler", "celery"]:
        """Which transport makes the attempt (hookway.send.transport)."""
        if self.handler:
            return "handler"
        if self.celery_task:
            return "celery"
        return "http"


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt did. ``error_kind`` classifies a failure; ``error`` says it in
    words for the operator."""

    delivery_id: str
    attempt: int
    destination_id: int
    started_at: datetime
    duration_ms: float
    outcome: Outcome
    status_code: int | None = None
    error: str = ""
    error_kind: ErrorKind = ErrorKind.NONE
    response_body: str = ""
    retry_after: float | None = None
    disable_destination: bool = False


@dataclass(frozen=True)
class Settlement:
    """What to write for one finished attempt: its result and the delivery's next state.
    ``retry_in`` (seconds) is turned into a due time by the store, on the database's
    clock, so dispatchers on hosts whose clocks disagree still agree on due times."""

    result: AttemptResult
    state: DeliveryState
    retry_in: float | None = None
    note: str = ""
