"""/api/v1/routes: which source's events go to which destination (glob patterns on the
event name; none: every event). Routes the config file manages are read-only here."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from hookway import gate
from hookway.api.auth import WRITE
from hookway.api.common import READ_ERRORS, WRITE_ERRORS, ErrorOut, entry_error
from hookway.api.errors import ApiError, not_found
from hookway.models import Route

router = Router(tags=["routes"])

MAX_PATTERNS = 100


class RouteOut(Schema):
    id: int
    source: str
    destination: str
    events: list[str] = Field(description="Glob patterns on the event name; empty: all.")
    enabled: bool
    managed: bool = Field(description="Managed by the config file: read-only here.")


class RouteIn(Schema):
    source: str = Field(max_length=64)
    destination: str = Field(max_length=64)
    events: list[str] = Field(default_factory=list, max_length=MAX_PATTERNS)
    enabled: bool = True


class RoutePatch(Schema):
    events: list[str] = Field(max_length=MAX_PATTERNS)


def route_out(row: Route) -> dict[str, Any]:
    return {
        "id": row.pk,
        "source": row.source.slug,
        "destination": row.destination.name,
        "events": [str(p) for p in row.events] if isinstance(row.events, list) else [],
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
    try:
        pk = await gate.acreate_route(
            body.source, body.destination, _patterns(body.events), body.enabled
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
    summary="Change the event names a route takes",
)
async def update_route(request: HttpRequest, route_id: int, body: RoutePatch) -> dict[str, Any]:
    try:
        await gate.aupdate_route(_id(route_id), _patterns(body.events))
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
