"""/api/v1/routes: which source's events go to which destination (glob patterns on the
event name; none: every event), which of them (a CEL ``filter``, a ``$``-operator
``match``) and with what body (a CEL ``transform``): docs/delivery.md. Routes the config
file manages are read-only here. ``POST /routes/test-filter`` tries rules on a stored
event or a sample without saving anything."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from hookway import gate
from hookway.api.auth import WRITE
from hookway.api.common import READ_ERRORS, WRITE_ERRORS, ErrorOut, entry_error
from hookway.api.errors import ApiError, not_found
from hookway.models import Event, Route
from hookway.routing import rules

router = Router(tags=["routes"])

MAX_PATTERNS = 100


FILTER_HELP = (
    "A CEL expression over payload, headers (lower-case names), event_name and source; "
    "the route takes an event only when it is true. Empty: no filter."
)
MATCH_HELP = (
    'A $-operator filter (Convoy\'s form), e.g. {"payload.data.amount": {"$gte": 100}}; '
    "must hold too. Empty: none."
)
TRANSFORM_HELP = (
    "A CEL expression (same variables) whose value is sent as the JSON body instead of "
    "the event's. Empty: the body as received."
)


class RouteOut(Schema):
    id: int
    source: str
    destination: str
    events: list[str] = Field(description="Glob patterns on the event name; empty: all.")
    filter: str = Field(description=FILTER_HELP)
    match: dict[str, Any] = Field(description=MATCH_HELP)
    transform: str = Field(description=TRANSFORM_HELP)
    enabled: bool
    managed: bool = Field(description="Managed by the config file: read-only here.")


class RouteIn(Schema):
    source: str = Field(max_length=64)
    destination: str = Field(max_length=64)
    events: list[str] = Field(default_factory=list, max_length=MAX_PATTERNS)
    filter: str = Field("", description=FILTER_HELP)
    match: dict[str, Any] = Field(default_factory=dict, description=MATCH_HELP)
    transform: str = Field("", description=TRANSFORM_HELP)
    enabled: bool = True


class RoutePatch(Schema):
    """The fields to change; those left out keep their values."""

    events: list[str] | None = Field(None, max_length=MAX_PATTERNS)
    filter: str | None = Field(None, description=FILTER_HELP)
    match: dict[str, Any] | None = Field(None, description=MATCH_HELP)
    transform: str | None = Field(None, description=TRANSFORM_HELP)


class RuleTestIn(Schema):
    """Rules to try (or a saved route's), and an event to try them on: a stored one
    (``event_id``) or a sample (``payload`` with ``headers``, ``event_name``, ``source``)."""

    route_id: int | None = Field(None, description="Try this route's saved rules.")
    filter: str | None = Field(None, description=FILTER_HELP)
    match: dict[str, Any] | None = Field(None, description=MATCH_HELP)
    transform: str | None = Field(None, description=TRANSFORM_HELP)
    event_id: str | None = Field(None, max_length=32, description="A stored event.")
    payload: Any = Field(None, description="A sample payload (any JSON value).")
    headers: dict[str, str] = Field(default_factory=dict, description="The sample's headers.")
    event_name: str = Field("", max_length=255)
    source: str = Field("", max_length=64)


class FilterResult(Schema):
    result: bool | None = Field(description="The filter's value; null when it had none.")
    problem: str | None = Field(description="Why it had no value for this event.")


class MatchResult(Schema):
    result: bool
    failed: str | None = Field(description="The first condition that does not hold.")


class TransformResult(Schema):
    body: Any = Field(None, description="The JSON body the transform makes.")
    problem: str | None = Field(
        description="Why it failed for this event (the delivery would fail)."
    )


class RuleTestOut(Schema):
    matched: bool = Field(description="Whether the route would take the event (event names aside).")
    reason: str | None = Field(description="Why not, as the event would record it.")
    filter: FilterResult | None
    match: MatchResult | None
    transform: TransformResult | None
    event_id: str | None


def route_out(row: Route) -> dict[str, Any]:
    return {
        "id": row.pk,
        "source": row.source.slug,
        "destination": row.destination.name,
        "events": [str(p) for p in row.events] if isinstance(row.events, list) else [],
        "filter": row.filter,
        "match": row.match if isinstance(row.match, dict) else {},
        "transform": row.transform,
        "enabled": row.enabled,
        "managed": row.managed,
    }


def _patterns(events: list[str]) -> list[str]:
    # Any string is a glob fnmatch takes (the config file's rule); an empty one matches
    # only events without a name, which is never what was meant.
    for i, pattern in enumerate(events):
        if not pattern or len(pattern) > 255:
            raise ApiError(422, "invalid_request", f"events[{i}]: a pattern is 1 to 255 characters")
    return events


def _rules(filter: str, match: dict[str, Any], transform: str) -> None:
    """422 naming the key, for rules the config file would refuse too."""
    try:
        rules.check(filter, match or None, transform)
    except rules.RuleError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None


def _rows() -> Any:
    return Route.objects.select_related("source", "destination").order_by(
        "source__slug", "destination__name"
    )


def _id(pk: int) -> int:
    if not 1 <= pk < 2**63:  # beyond what the databases' integers hold
        raise not_found("route", pk)
    return pk


async def _get(pk: int) -> Route:
    row = await _rows().filter(pk=_id(pk)).afirst()
    if row is None:
        raise not_found("route", pk)
    assert isinstance(row, Route)
    return row


@router.get("", response={200: list[RouteOut], **READ_ERRORS}, summary="List routes")
async def list_routes(request: HttpRequest) -> list[dict[str, Any]]:
    return [route_out(row) async for row in _rows()]


@router.post(
    "/test-filter",
    response={200: RuleTestOut, 404: ErrorOut, **READ_ERRORS},
    summary="Try a filter, match and transform on a stored event or a sample (saves nothing)",
)
async def test_filter(request: HttpRequest, body: RuleTestIn) -> dict[str, Any]:
    given = [k for k in ("filter", "match", "transform") if getattr(body, k) is not None]
    if body.route_id is not None:
        if given:
            raise ApiError(
                422, "invalid_request", f"{given[0]}: give route_id or the rules, not both"
            )
        row = await _get(body.route_id)
        filter_text, match_doc, transform = row.filter, row.match, row.transform
    elif not given:
        raise ApiError(
            422, "invalid_request", "give a filter, a match or a transform (or a route_id)"
        )
    else:
        filter_text, match_doc, transform = body.filter or "", body.match, body.transform or ""
    try:
        compiled = rules.check(filter_text, match_doc or None, transform)
    except rules.RuleError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    if body.event_id is not None:
        if body.payload is not None or body.headers or body.event_name or body.source:
            raise ApiError(
                422, "invalid_request", "event_id: give a stored event or a sample, not both"
            )
        row_event = (
            await Event.objects.filter(pk=body.event_id)
            .values_list("body", "headers", "event_name", "source__slug")
            .afirst()
        )
        if row_event is None:
            raise not_found("event", body.event_id)
        raw, headers, event_name, source = row_event
        event = rules.EventVariables(
            bytes(raw), headers if isinstance(headers, dict) else {}, event_name, source
        )
    else:
        event = rules.EventVariables.sample(
            body.payload, body.headers, body.event_name, body.source
        )
    answer = await gate.atry_rules(compiled, event)
    return {**answer, "event_id": body.event_id}


@router.get("/{route_id}", response={200: RouteOut, 404: ErrorOut, **READ_ERRORS})
async def get_route(request: HttpRequest, route_id: int) -> dict[str, Any]:
    return route_out(await _get(route_id))


@router.post(
    "",
    auth=WRITE,
    response={201: RouteOut, 409: ErrorOut, **WRITE_ERRORS},
    summary="Add a route from a source to a destination",
)
async def create_route(request: HttpRequest, body: RouteIn) -> Status[dict[str, Any]]:
    _rules(body.filter, body.match, body.transform)
    try:
        pk = await gate.acreate_route(
            body.source,
            body.destination,
            _patterns(body.events),
            body.enabled,
            filter=body.filter,
            match=body.match,
            transform=body.transform,
        )
    except gate.NoSuchEntry as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    except gate.EntryError as exc:
        raise entry_error(exc) from None
    return Status(201, route_out(await _get(pk)))


@router.patch(
    "/{route_id}",
    auth=WRITE,
    response={200: RouteOut, 409: ErrorOut, **WRITE_ERRORS},
    summary="Change the event names a route takes, its filter, match or transform",
)
async def update_route(request: HttpRequest, route_id: int, body: RoutePatch) -> dict[str, Any]:
    _rules(body.filter or "", body.match or {}, body.transform or "")
    try:
        await gate.aupdate_route(
            _id(route_id),
            events=None if body.events is None else _patterns(body.events),
            filter=body.filter,
            match=body.match,
            transform=body.transform,
        )
    except gate.EntryError as exc:
        raise entry_error(exc) from None
    return route_out(await _get(route_id))


@router.delete("/{route_id}", auth=WRITE, response={204: None, 409: ErrorOut, **WRITE_ERRORS})
async def delete_route(request: HttpRequest, route_id: int) -> Status[None]:
    try:
        await gate.adelete_route(_id(route_id))
    except gate.EntryError as exc:
        raise entry_error(exc) from None
    return Status(204, None)


async def _set_enabled(route_id: int, enabled: bool) -> dict[str, Any]:
    try:
        await gate.aset_route_enabled(_id(route_id), enabled)
    except gate.EntryError as exc:
        raise entry_error(exc) from None
    return route_out(await _get(route_id))


@router.post(
    "/{route_id}/enable", auth=WRITE, response={200: RouteOut, 409: ErrorOut, **WRITE_ERRORS}
)
async def enable_route(request: HttpRequest, route_id: int) -> dict[str, Any]:
    return await _set_enabled(route_id, True)


@router.post(
    "/{route_id}/disable", auth=WRITE, response={200: RouteOut, 409: ErrorOut, **WRITE_ERRORS}
)
async def disable_route(request: HttpRequest, route_id: int) -> dict[str, Any]:
    return await _set_enabled(route_id, False)
