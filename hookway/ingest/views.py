"""``POST /hooks/<slug>``: verify, parse, dedupe, store, answer. No delivery work here.

The checks run in the order of the ingest contract's cost and meaning: method, source,
size, content type, signature, body, event name; then one transaction. Any failure
raises an IngestError which ``ingest`` maps to the documented status.

``ingest`` is the one implementation, and it knows nothing of Django's request and
response: it takes an ``IngestRequest`` (method, headers, content type, a body reader,
the ASGI scope) and returns an ``Answer`` (status, JSON payload, headers). Two callers
build those: ``receive_hook``, the Django view (from an ``HttpRequest``, answering with a
``JsonResponse``), and the ASGI handler's direct path (hookway.ingest_direct), which
builds them from the ASGI scope without a Django request at all.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from hookway import conf, gate, proxy, timing, tracing, wakeup
from hookway.headers import is_credential_header
from hookway.inbound import VerifyScheme
from hookway.ingest import extract, verify
from hookway.ingest.errors import (
    BodyTooLarge,
    IngestError,
    MalformedBody,
    MethodNotAllowed,
    MissingEventName,
    StoreUnavailable,
    UnknownSource,
    UnstorableBody,
    UnsupportedContentType,
)
from hookway.secrets import resolve_secret
from hookway.store import errors as store_errors
from hookway.store.events import IncomingEvent, SourceSpec

logger = logging.getLogger("hookway.ingest")

SLUG_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
BODY_TOO_LARGE = "hookway.body_too_large"
SOURCE_KEY = "hookway.source"
SOURCE_LOOKUP_ERROR = "hookway.source_lookup_error"
# When the request arrived plus HOOKWAY_DB_TIMEOUT (time.monotonic()), set by the ASGI
# handler: the answer comes by then, 503 if the webhook isn't committed.
DEADLINE_KEY = "hookway.deadline"
_UNSET = object()


@dataclass(frozen=True, slots=True)
class IngestRequest:
    """What ingest reads from a webhook, whichever path received it. ``headers`` is
    Django's ``HttpHeaders`` (case-insensitive, names as ``request.headers`` spells
    them); ``content_type`` the media type lower-cased, without parameters
    (``request.content_type``); ``content_length`` the header as sent, if any;
    ``read(n)`` returns at most ``n`` bytes of the body; ``scope`` is the ASGI scope
    ({} under WSGI)."""

    method: str
    headers: Mapping[str, str]
    content_type: str
    content_length: str | None
    read: Callable[[int], bytes]
    scope: Mapping[str, Any]

    @classmethod
    def from_django(cls, request: HttpRequest) -> IngestRequest:
        return cls(
            method=request.method or "",
            headers=request.headers,
            content_type=request.content_type or "",
            content_length=request.META.get("CONTENT_LENGTH"),
            read=request.read,
            scope=getattr(request, "scope", {}),
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """Ingest's answer: a status, the JSON payload, and headers beyond Content-Type."""

    status: int
    payload: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def error(cls, exc: IngestError) -> Answer:
        return cls(exc.status, {"error": exc.code, "detail": exc.detail}, exc.headers)

    def json_response(self) -> JsonResponse:
        return JsonResponse(self.payload, status=self.status, headers=self.headers)


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


def _kept_headers(request: IngestRequest, secrets: list[str]) -> dict[str, str]:
    # Not kept (docs/ingest.md, "What is stored"): any header whose name says it carries
    # a credential or a signature (hookway.headers), and any whose value holds one of the
    # source's secrets.
    kept = {}
    for name, value in request.headers.items():
        if is_credential_header(name) or any(secret in value for secret in secrets):
            continue
        # PostgreSQL's jsonb can't hold U+0000; nothing legitimate sends it in a header.
        kept[name] = value.replace("\x00", "\ufffd")
    return kept


def _not_json_constant(name: str) -> Any:
    raise MalformedBody(f"invalid JSON: {name} is not a JSON value (RFC 8259)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedBody(f"invalid JSON: the number {text[:40]} is too large for a double")
    return value


# One decoder for every webhook: json.loads with these hooks builds a new one per call
# (half the time of parsing a 1 KB body).
_DECODER = json.JSONDecoder(parse_constant=_not_json_constant, parse_float=_finite_float)


def _parse_json(body: bytes) -> Any:
    if not body.strip():
        raise MalformedBody("the body is empty; expected a JSON document")
    try:
        # JSON on the wire is UTF-8 (RFC 8259). Decoding strictly first also refuses
        # encoded surrogates, which json.loads(bytes) would let through into storage.
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"the body is not valid UTF-8 (byte {exc.start})") from None
    try:
        # Strict RFC 8259: NaN, Infinity and numbers that overflow a double are refused
        # (Python's parser takes them). A key given twice keeps its last value.
        if text.startswith("\ufeff"):  # as json.loads refuses it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise MalformedBody(
            f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise MalformedBody("the JSON document is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python allows
        raise MalformedBody(f"invalid JSON: {exc}") from None


def _deadline(request: IngestRequest) -> float:
    deadline = request.scope.get(DEADLINE_KEY)
    return float(deadline) if deadline is not None else gate.default_deadline()


async def _source(request: IngestRequest, slug: str) -> SourceSpec:
    # The ASGI handler looks the source up before reading the body (to cap it); reuse it.
    scope = request.scope
    failed = scope.get(SOURCE_LOOKUP_ERROR)
    if failed is not None:
        # With no source there was no limit to read the body up to, so the handler read
        # none of it: a second lookup that succeeds could only judge an empty body.
        raise failed
    source = scope.get(SOURCE_KEY, _UNSET)
    if source is _UNSET:
        source = await gate.aget_source(slug, _deadline(request)) if SLUG_RE.match(slug) else None
    if source is None:
        raise UnknownSource(f"no enabled source named {slug!r}")
    assert isinstance(source, SourceSpec)
    return source


def _check_size(request: IngestRequest, source: SourceSpec) -> bytes:
    limit = source.max_body_bytes

    def too_large() -> BodyTooLarge:
        return BodyTooLarge(f"the body is larger than this source's limit of {limit} bytes")

    if request.scope.get(BODY_TOO_LARGE):
        raise too_large()
    try:
        declared = int(request.content_length or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise too_large()
    # Not request.body: Django refuses that past DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), below
    # what a source may allow. This source's limit is the one that counts, and the ASGI
    # handler already stopped reading the upload just past it.
    body = request.read(limit + 1)
    if len(body) > limit:
        raise too_large()
    return body


async def _ingest(request: IngestRequest, slug: str) -> Answer:
    if request.method != "POST":
        raise MethodNotAllowed(f"{request.method} is not allowed here; send webhooks with POST")
    try:
        source = await _source(request, slug)
    except (OperationalError, InterfaceError, store_errors.StoreUnavailable) as exc:
        raise _unavailable(exc) from None
    timing.label("source", source.slug)
    body = _check_size(request, source)
    content_type = request.content_type
    if not _is_json(content_type):
        raise UnsupportedContentType(
            f"content type {content_type or '(none)'!r} is not accepted; send application/json"
        )

    secrets = [s for s in (resolve_secret(ref) for ref in source.secrets) if s is not None]
    scheme = VerifyScheme(source.verify)
    verify.verify(scheme, request.headers, body, secrets)

    payload = _parse_json(body)
    name = extract.event_name(scheme, request.headers, payload)
    if name is None and source.require_event_name:
        raise MissingEventName(_missing_name_detail(scheme))
    # The ingest span's context (hookway.tracing), which the deliveries' spans continue.
    traceparent, tracestate = tracing.stored_context(request.headers)
    incoming = IncomingEvent(
        source_id=source.id,
        event_name=name or "",
        delivery_id=extract.delivery_id(scheme, request.headers, payload),
        content_type=request.headers.get("Content-Type", content_type)[:255],
        headers=_kept_headers(request, secrets),
        body=body,
        received_at=timezone.now(),
        client_ip=proxy.client_ip(request.scope),
        traceparent=traceparent,
        tracestate=tracestate,
    )
    try:
        stored = await gate.astore_event(incoming, _deadline(request))
    except (OperationalError, InterfaceError, store_errors.StoreUnavailable) as exc:
        raise _unavailable(exc) from None
    except store_errors.SourceGone:
        raise UnknownSource(f"no enabled source named {slug!r}") from None
    except store_errors.Unstorable as exc:
        raise UnstorableBody(str(exc)) from None
    timing.label("event_id", stored.id)
    if stored.duplicate:
        return Answer(200, {"id": stored.id, "duplicate": True})
    if stored.deliveries:
        wakeup.notify()
    answer: dict[str, object] = {"id": stored.id, "deliveries": stored.deliveries}
    if stored.conflict_with:
        logger.warning(
            json.dumps(
                {
                    "event": "delivery_id_conflict",
                    "source": source.slug,
                    "delivery_id": incoming.delivery_id,
                    "event_id": stored.id,
                    "conflict_with": stored.conflict_with,
                }
            )
        )
        answer["conflict_with"] = stored.conflict_with
    return Answer(202, answer)


def _missing_name_detail(scheme: VerifyScheme) -> str:
    where = {
        VerifyScheme.GITHUB: "the X-GitHub-Event header",
        VerifyScheme.GITLAB: (
            "body 'event_name' or 'object_kind', or the X-Gitlab-Event header "
            "(not 'System Hook', which every system hook sends)"
        ),
        VerifyScheme.STRIPE: "body 'type'",
        VerifyScheme.STANDARD_WEBHOOKS: "body 'type'",
    }.get(scheme, "body 'event_name', 'type' or 'event', or the X-Event-Name header")
    return f"this source requires an event name; none found in {where}"


def _unavailable(exc: Exception) -> StoreUnavailable:
    logger.error("ingest could not store a webhook in time: %s", str(exc).strip())
    return StoreUnavailable(
        "the event could not be stored in time; nothing was stored, retry later",
        retry_after=conf.get().retry_after_seconds,
    )


async def ingest(request: IngestRequest, slug: str) -> Answer:
    """Answer a webhook per the ingest contract: 202 stored, 200 duplicate, 4xx, or 503.
    Any other exception is a bug, left to the caller's handling of unexpected errors
    (Django's ``response_for_exception``: 500 and a logged traceback)."""
    try:
        return await _ingest(request, slug)
    except IngestError as exc:
        return Answer.error(exc)


@csrf_exempt
async def receive_hook(request: HttpRequest, slug: str) -> JsonResponse:
    """The ingest view: ``ingest`` for a Django request."""
    answer = await ingest(IngestRequest.from_django(request), slug)
    return answer.json_response()
