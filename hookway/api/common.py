"""What the API's resource modules share: the error schema (for the OpenAPI document),
time filters made aware, write-only secrets shown as fingerprints, and the 409 for
entries the config file manages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.db.models import QuerySet
from ninja import Schema
from pydantic import Field

from hookway import conf, gate
from hookway.api.errors import ApiError
from hookway.models import Delivery, Event
from hookway.secrets import fingerprint, resolve_secret
from hookway.store import browse

Row = TypeVar("Row", Event, Delivery)


class ErrorOut(Schema):
    """Every error: a stable code and a message for people (some add fields)."""

    error: str
    detail: str


# The error answers every operation may give, for the OpenAPI document.
AUTH_ERRORS: dict[int, type[Schema]] = {401: ErrorOut, 403: ErrorOut}
READ_ERRORS: dict[int, type[Schema]] = {401: ErrorOut, 400: ErrorOut, 422: ErrorOut}
WRITE_ERRORS: dict[int, type[Schema]] = {**READ_ERRORS, 403: ErrorOut, 404: ErrorOut}


class PageParams(Schema):
    """Keyset pages: ``cursor`` from the previous page's ``next``; at most ``limit`` rows."""

    cursor: str | None = Field(None, max_length=200, description="The previous page's `next`.")
    limit: int = Field(browse.DEFAULT_LIMIT, ge=1, le=browse.MAX_LIMIT)


async def keyset_page(
    rows: QuerySet[Row], paging: PageParams, item: Callable[[Row], dict[str, Any]]
) -> dict[str, Any]:
    """One page of ``rows`` (newest first, hookway.store.browse) after ``paging.cursor``:
    ``{"items": [...], "next": cursor or None}`` (hookway.store.browse.apage); 400 for a
    cursor of another list."""
    try:
        page = await browse.apage(rows, paging.cursor, paging.limit)
    except browse.BadCursor as exc:
        raise ApiError(400, "bad_cursor", f"cursor: {exc}") from None
    return {"items": [item(row) for row in page.rows], "next": page.next}


def aware(when: datetime | None) -> datetime | None:
    """``when`` with a time zone: one given without is taken as UTC."""
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when


def secret_fingerprint(ref: str) -> str | None:
    """The fingerprint of the secret a reference names (hookway.secrets, as the admin
    shows it), or None when it is empty or an unset ``env:`` variable."""
    value = resolve_secret(ref) if ref else None
    return fingerprint(value) if value else None


def config_file_name() -> str:
    """The config file's path (HOOKWAY_CONFIG), or words for it when none is set now."""
    path = conf.get().config_path
    return str(path) if path is not None else "the HOOKWAY_CONFIG file"


def managed_conflict(what: str) -> ApiError:
    """409 for a change to an entry the config file manages, naming the file."""
    path = conf.get().config_path
    where = config_file_name()
    return ApiError(
        409,
        "managed_by_config_file",
        f"{what} is managed by {where}: change it there (the API can't edit it)",
        extra={"config_file": str(path) if path is not None else None},
    )


def invalid(exc: Exception) -> ApiError:
    """422 for a value the config file's rules refuse (the message names the key)."""
    return ApiError(422, "invalid_request", str(exc))


def entry_error(exc: Exception) -> ApiError:
    """The answer for a hookway.store.entries error: 404, 409 (managed), 409 (conflict)."""
    if isinstance(exc, gate.NoSuchEntry):
        return ApiError(404, "not_found", str(exc))
    if isinstance(exc, gate.Managed):
        return managed_conflict(str(exc))
    return ApiError(409, "conflict", str(exc))
