"""/api/v1/destinations: where Hookway delivers. Secrets (signing secret, bearer token,
basic auth) are write-only: an answer says whether each is set, with its fingerprint.
Destinations the config file manages are read-only here (409), but may be paused,
resumed, enabled again (after a 410) and tested like any other.

``POST /destinations/{name}/test`` sends a signed ``hookway.ping`` now, through the
dispatcher's own sender (hookway.dispatch.ping, which the console's test shares), and
nothing is stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Q
from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from hookway import gate
from hookway.api.auth import WRITE
from hookway.api.common import (
    READ_ERRORS,
    WRITE_ERRORS,
    ErrorOut,
    config_file_name,
    entry_error,
    invalid,
    secret_fingerprint,
)
from hookway.api.errors import ApiError, not_found
from hookway.config.file import ConfigError, check_destination
from hookway.dispatch import ping
from hookway.models import DeliveryState, Destination
from hookway.secrets import describe_ref, redact_url

router = Router(tags=["destinations"])

ORDER_KEY_HELP = (
    "Ordered only: a CEL expression over payload, headers, event_name and source (e.g. "
    "payload.customer_id) giving each delivery its lane: one delivery in flight per key, "
    'in received order within it, keys in parallel. "": one lane (docs/delivery.md).'
)


class DestinationOut(Schema):
    name: str
    kind: str = Field(description='"http", "handler" or "celery" (docs/handlers.md).')
    url: str = Field(description="A password in the URL is shown as ***; empty for the others.")
    handler: str = Field(description='A handler destination\'s "module:function".')
    celery_task: str = Field(description="A Celery destination's task name.")
    timeout_seconds: float
    max_attempts: int
    concurrency: int
    enabled: bool
    disabled_reason: str
    paused: bool
    paused_at: datetime | None
    paused_reason: str
    state: str = Field(description='"active", "paused", "disabled" or "paused, disabled".')
    pending: int = Field(description="Deliveries waiting to be sent.")
    headers: dict[str, str] = Field(
        description="Static header names, each with its value described (a fingerprint, "
        "or the env:NAME it is read from), never the value."
    )
    forward_headers: list[str]
    ordered: bool = Field(description="One delivery at a time, in received order.")
    on_dead: str = Field(description='Ordered only: "skip" or "block" on a dead delivery.')
    order_key: str = Field(description=ORDER_KEY_HELP)
    managed: bool = Field(description="Managed by the config file: read-only here.")
    signing_secret_set: bool
    signing_secret_fingerprint: str | None
    bearer_token_set: bool
    bearer_token_fingerprint: str | None
    basic_auth_set: bool
    basic_auth_fingerprint: str | None = Field(description="Of user:password.")
    rate_limit: str = Field(description='"50/s", "3000/min", "100/h"; "" for no limit.')
    circuit_failures: int = Field(
        description="Failed attempts in a row that open its circuit; 0: no breaker."
    )
    circuit_cooldown_seconds: float = Field(
        description="How long an open circuit waits before its probe (doubled per failed "
        "probe, up to an hour)."
    )
    disable_after_seconds: float = Field(
        description="Disabled once every attempt failed this long; 0: never."
    )
    notifications: bool = Field(description="Receives destination state change events.")
    circuit: str = Field(description='"closed", "open" or "half_open".')
    circuit_changed_at: datetime | None
    circuit_retry_at: datetime | None = Field(description="When an open circuit probes next.")
    failures_in_a_row: int = Field(description="Failed attempts since its last success.")
    failing_since: datetime | None = Field(
        description="When the failures since its last success began."
    )
    last_success_at: datetime | None


class DestinationIn(Schema):
    name: str = Field(max_length=64)
    url: str = Field(max_length=2000)
    signing_secret: str = Field("", description='Write-only: "whsec_…" or env:NAME.')
    timeout_seconds: float = 15.0
    max_attempts: int = 10
    concurrency: int = 20
    enabled: bool = True
    headers: dict[str, str] = Field(default_factory=dict)
    bearer_token: str = Field("", description="Write-only: a literal or env:NAME.")
    basic_auth: str = Field("", description="Write-only: user:password, user:env:NAME or env:NAME.")
    forward_headers: list[str] = Field(default_factory=list)
    rate_limit: str = Field("", max_length=32, description='e.g. "50/s" or "3000/min".')
    circuit_failures: int = 5
    circuit_cooldown_seconds: float = 30.0
    disable_after: float | str = Field(
        432000.0, description='Seconds, or "90m", "12h", "5d"; 0: never.'
    )
    ordered: bool = False
    on_dead: str = Field("skip", description='"skip" or "block" (docs/delivery.md).')
    order_key: str = Field("", description=ORDER_KEY_HELP)


class DestinationPatch(Schema):
    url: str | None = Field(None, max_length=2000)
    signing_secret: str | None = Field(None, description='Replaces it; "" removes it.')
    timeout_seconds: float | None = None
    max_attempts: int | None = None
    concurrency: int | None = None
    headers: dict[str, str] | None = Field(None, description="Replaces every static header.")
    bearer_token: str | None = Field(None, description='Replaces it; "" removes it.')
    basic_auth: str | None = Field(None, description='Replaces it; "" removes it.')
    forward_headers: list[str] | None = None
    rate_limit: str | None = Field(None, max_length=32, description='"" removes it.')
    circuit_failures: int | None = None
    circuit_cooldown_seconds: float | None = None
    disable_after: float | str | None = Field(None, description='Seconds, or "12h", "5d".')
    ordered: bool | None = None
    on_dead: str | None = None
    order_key: str | None = Field(None, description='"" removes it.')


class PauseIn(Schema):
    reason: str = Field("", max_length=500)


class ChangeOut(Schema):
    changed: bool = Field(description="False when it already was so.")
    message: str
    destination: DestinationOut


class TestOut(Schema):
    ok: bool
    status: int
    latency_ms: float
    webhook_id: str
    response_excerpt: str


def _state(row: Destination) -> str:
    states = [s for s, on in (("paused", row.paused), ("disabled", not row.enabled)) if on]
    return ", ".join(states) or "active"


def destination_out(row: Destination) -> dict[str, Any]:
    headers = row.headers if isinstance(row.headers, dict) else {}
    return {
        "name": row.name,
        "kind": "handler" if row.handler else "celery" if row.celery_task else "http",
        "url": redact_url(row.url) if row.url else "",
        "handler": row.handler,
        "celery_task": row.celery_task,
        "timeout_seconds": row.timeout_seconds,
        "max_attempts": row.max_attempts,
        "concurrency": row.concurrency,
        "enabled": row.enabled,
        "disabled_reason": row.disabled_reason,
        "paused": row.paused,
        "paused_at": row.paused_at,
        "paused_reason": row.paused_reason,
        "state": _state(row),
        "pending": getattr(row, "pending_count", 0),
        "headers": {str(name): describe_ref(str(value)) for name, value in headers.items()},
        "forward_headers": [str(p) for p in row.forward_headers]
        if isinstance(row.forward_headers, list)
        else [],
        "ordered": row.ordered,
        "on_dead": row.on_dead,
        "order_key": row.order_key,
        "managed": row.managed,
        "signing_secret_set": bool(row.signing_secret),
        "signing_secret_fingerprint": secret_fingerprint(row.signing_secret),
        "bearer_token_set": bool(row.bearer_token),
        "bearer_token_fingerprint": secret_fingerprint(row.bearer_token),
        "basic_auth_set": bool(row.basic_auth),
        "basic_auth_fingerprint": secret_fingerprint(row.basic_auth),
        "rate_limit": row.rate_limit,
        "circuit_failures": row.circuit_failures,
        "circuit_cooldown_seconds": row.circuit_cooldown_seconds,
        "disable_after_seconds": row.disable_after_seconds,
        "notifications": row.notifications,
        "circuit": row.circuit_state,
        "circuit_changed_at": row.circuit_changed_at,
        "circuit_retry_at": row.circuit_retry_at,
        "failures_in_a_row": row.failures_in_a_row,
        "failing_since": row.failing_since,
        "last_success_at": row.last_success_at,
    }


def _rows() -> Any:
    pending = Count("deliveries", filter=Q(deliveries__state=DeliveryState.PENDING))
    return Destination.objects.annotate(pending_count=pending).order_by("name")


async def _get(name: str) -> Destination:
    row = await _rows().filter(name=name).afirst()
    if row is None:
        raise not_found("destination", repr(name))
    assert isinstance(row, Destination)
    return row


def _table(row: Destination) -> dict[str, Any]:
    """The destination as a ``[[destinations]]`` table (what check_destination reads)."""
    return {
        "name": row.name,
        "url": row.url,
        "signing_secret": row.signing_secret,
        "timeout_seconds": row.timeout_seconds,
        "max_attempts": row.max_attempts,
        "concurrency": row.concurrency,
        "enabled": row.enabled,
        "headers": dict(row.headers) if isinstance(row.headers, dict) else {},
        "bearer_token": row.bearer_token,
        "basic_auth": row.basic_auth,
        "forward_headers": list(row.forward_headers)
        if isinstance(row.forward_headers, list)
        else [],
        "rate_limit": row.rate_limit,
        "circuit_failures": row.circuit_failures,
        "circuit_cooldown_seconds": row.circuit_cooldown_seconds,
        "disable_after": row.disable_after_seconds,
        "ordered": row.ordered,
        "on_dead": row.on_dead,
        "order_key": row.order_key,
    }


def _checked(table: dict[str, Any]) -> Any:
    """check_destination of an API body: ``rate_limit: ""`` and ``order_key: ""`` there
    mean none (the file leaves the key out instead)."""
    for optional in ("rate_limit", "order_key"):
        if not table.get(optional):
            table.pop(optional, None)
    try:
        return check_destination(table)
    except ConfigError as exc:
        raise invalid(exc) from None


@router.get("", response={200: list[DestinationOut], **READ_ERRORS}, summary="List destinations")
async def list_destinations(request: HttpRequest) -> list[dict[str, Any]]:
    return [destination_out(row) async for row in _rows()]


@router.get("/{name}", response={200: DestinationOut, 404: ErrorOut, **READ_ERRORS})
async def get_destination(request: HttpRequest, name: str) -> dict[str, Any]:
    return destination_out(await _get(name))


@router.post(
    "",
    auth=WRITE,
    response={201: DestinationOut, 409: ErrorOut, **WRITE_ERRORS},
    summary="Add a destination",
)
async def create_destination(request: HttpRequest, body: DestinationIn) -> Status[dict[str, Any]]:
    config = _checked(body.dict())
    try:
        await gate.acreate_destination(config)
    except gate.EntryError as exc:
        raise entry_error(exc) from None
    return Status(201, destination_out(await _get(config.name)))


@router.patch(
    "/{name}",
    auth=WRITE,
    response={200: DestinationOut, 409: ErrorOut, **WRITE_ERRORS},
    summary="Change a destination (fields left out stay as they are)",
)
async def update_destination(
    request: HttpRequest, name: str, body: DestinationPatch
) -> dict[str, Any]:
    row = await _get(name)
    if row.managed:
        raise entry_error(gate.Managed(f"destination '{name}'"))
    if row.handler or row.celery_task:
        raise ApiError(
            409,
            "not_http",
            f"'{name}' runs {row.handler or row.celery_task}: a handler or Celery "
            "destination is changed in hookway.toml or the admin, not over the API",
        )
    table = _table(row)
    changes = body.dict(exclude_unset=True)
    table.update({key: value for key, value in changes.items() if value is not None})
    config = _checked(table)
    try:
        await gate.aupdate_destination(name, config)
    except gate.EntryError as exc:
        raise entry_error(exc) from None
    return destination_out(await _get(name))


@router.delete(
    "/{name}",
    auth=WRITE,
    response={204: None, 409: ErrorOut, **WRITE_ERRORS},
    summary="Remove a destination with its routes and deliveries",
)
async def delete_destination(request: HttpRequest, name: str) -> Status[None]:
    try:
        await gate.adelete_destination(name)
    except gate.EntryError as exc:
        raise entry_error(exc) from None
    return Status(204, None)


async def _changed(name: str, change: gate.Change) -> dict[str, Any]:
    return {
        "changed": change.changed,
        "message": change.message,
        "destination": destination_out(await _get(name)),
    }


STATE_ERRORS = {200: ChangeOut, 409: ErrorOut, **WRITE_ERRORS}


@router.post(
    "/{name}/pause",
    auth=WRITE,
    response=STATE_ERRORS,
    summary="Pause: hold its deliveries (new ones too) until it is resumed",
)
async def pause_destination(request: HttpRequest, name: str, body: PauseIn) -> dict[str, Any]:
    try:
        change = await gate.apause_destination(name, body.reason)
    except gate.DestinationError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    return await _changed(name, change)


@router.post(
    "/{name}/resume",
    auth=WRITE,
    response=STATE_ERRORS,
    summary="Resume: send what waits, oldest first",
)
async def resume_destination(request: HttpRequest, name: str) -> dict[str, Any]:
    try:
        change = await gate.aresume_destination(name)
    except gate.DestinationError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    return await _changed(name, change)


@router.post(
    "/{name}/enable",
    auth=WRITE,
    response=STATE_ERRORS,
    summary="Enable it (again, after a 410 or a disable): send what waits",
)
async def enable_destination(request: HttpRequest, name: str) -> dict[str, Any]:
    row = await _get(name)
    try:
        change = await gate.aenable_destination(name)
    except gate.DestinationError as exc:
        if row.managed:  # the config file disabled it: only the file turns it on
            raise ApiError(409, "managed_by_config_file", f"{exc} ({config_file_name()})") from None
        raise ApiError(404, "not_found", str(exc)) from None
    return await _changed(name, change)


@router.post(
    "/{name}/disable",
    auth=WRITE,
    response=STATE_ERRORS,
    summary="Disable it: its deliveries wait (nothing is lost) until it is enabled",
)
async def disable_destination(request: HttpRequest, name: str) -> dict[str, Any]:
    try:
        changed = await gate.adisable_destination(name)
    except gate.EntryError as exc:
        raise entry_error(exc) from None
    after = await _get(name)
    message = f"'{name}' disabled" if changed else f"'{name}' is already disabled"
    if after.pending_count:  # type: ignore[attr-defined]
        message += f"; {after.pending_count} pending deliveries wait until it is enabled"  # type: ignore[attr-defined]
    return {"changed": changed, "message": message, "destination": destination_out(after)}


class StateChangeOut(Schema):
    id: int
    at: datetime
    change: str = Field(
        description="circuit_opened, circuit_half_open, circuit_reopened, circuit_closed, "
        "disabled, enabled, paused or resumed."
    )
    from_state: str
    to_state: str
    reason: str


class ChangesPage(Schema):
    cursor: str | None = Field(None, max_length=20, description="The previous page's `next`.")
    limit: int = Field(50, ge=1, le=200)


class StateChangePage(Schema):
    items: list[StateChangeOut]
    next: str | None = Field(description="Pass as `cursor` for the next (older) page.")


@router.get(
    "/{name}/changes",
    response={200: StateChangePage, 404: ErrorOut, **READ_ERRORS},
    summary="Its state changes (circuit, enabled, paused), newest first, with their reasons",
)
async def destination_changes(
    request: HttpRequest, name: str, paging: Query[ChangesPage]
) -> dict[str, Any]:
    cursor, limit = paging.cursor, paging.limit
    before = None
    if cursor is not None:
        if not (cursor.isascii() and cursor.isdigit()) or not 0 < int(cursor) < 2**63:
            raise ApiError(400, "bad_cursor", f"cursor: {cursor!r} is not a page of this list")
        before = int(cursor)
    page = await gate.adestination_changes(name, limit + 1, before)
    if page is None:
        raise not_found("destination", repr(name))
    more = len(page) > limit
    page = page[:limit]
    return {
        "items": [
            {
                "id": c.id,
                "at": c.at,
                "change": c.change,
                "from_state": c.from_state,
                "to_state": c.to_state,
                "reason": c.reason,
            }
            for c in page
        ],
        "next": str(page[-1].id) if more else None,
    }


@router.post(
    "/{name}/test",
    auth=WRITE,
    response={
        200: TestOut,
        404: ErrorOut,
        409: ErrorOut,
        502: ErrorOut,
        503: ErrorOut,
        504: ErrorOut,
        **WRITE_ERRORS,
    },
    summary="Send a signed hookway.ping now and say what came back",
    description="200: a 2xx came back (status, latency). 502: another status (status, "
    "an excerpt of the body). 503: not reachable (refused, DNS, the SSRF guard; the "
    "reason). 504: no answer within the destination's timeout. 409: a handler or Celery "
    "destination (nothing to ping over HTTP). Nothing is stored.",
)
async def test_destination(request: HttpRequest, name: str) -> dict[str, Any]:
    try:
        result = await ping.aping(name)
    except ping.NoSuchDestination:
        raise not_found("destination", repr(name)) from None
    except ping.NotHttp as exc:
        raise ApiError(
            409,
            "not_http",
            f"{exc}; replay a stored event to it instead (POST /api/v1/events/{{id}}/replay)",
        ) from None
    if result.verdict == ping.Verdict.DELIVERED:
        assert result.status is not None
        return {
            "ok": True,
            "status": result.status,
            "latency_ms": result.latency_ms,
            "webhook_id": result.webhook_id,
            "response_excerpt": result.response_excerpt,
        }
    facts = {"kind": result.error_kind.value, "latency_ms": result.latency_ms}
    if result.verdict == ping.Verdict.DESTINATION_ERROR:
        raise ApiError(
            502,
            "destination_error",
            f"'{name}' answered HTTP {result.status}",
            extra={"status": result.status, "response_excerpt": result.response_excerpt, **facts},
        )
    if result.verdict == ping.Verdict.TIMED_OUT:
        raise ApiError(504, "destination_timeout", result.error, extra=facts)
    raise ApiError(503, "destination_unreachable", result.error, extra=facts)
