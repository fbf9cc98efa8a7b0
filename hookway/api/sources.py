"""/api/v1/sources: where senders POST (``/hooks/<slug>``). Secrets are write-only: an
answer says whether they are set and their fingerprints, never their values. Sources
the config file manages are read-only here (409)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from hookway import gate
from hookway.api.auth import WRITE
from hookway.api.common import (
    READ_ERRORS,
    WRITE_ERRORS,
    ErrorOut,
    entry_error,
    invalid,
    secret_fingerprint,
)
from hookway.api.errors import not_found
from hookway.config.file import ConfigError, check_source
from hookway.inbound import VerifyScheme
from hookway.models import ONE_MIB, Source

router = Router(tags=["sources"])


class SourceOut(Schema):
    slug: str = Field(description="Receives at POST /hooks/<slug>.")
    verify: VerifyScheme
    require_event_name: bool
    max_body_bytes: int
    enabled: bool
    managed: bool = Field(description="Managed by the config file: read-only here.")
    secret_set: bool
    secret_fingerprints: list[str | None] = Field(
        description="Per secret: the first 8 hex digits of its SHA-256 (null: an env: "
        "variable that is not set)."
    )
    secret_refs: list[str | None] = Field(
        description="Per secret: the env:NAME it is read from, or null for a literal."
    )


class SourceIn(Schema):
    slug: str = Field(max_length=64)
    verify: VerifyScheme = VerifyScheme.NONE
    secrets: list[str] = Field(
        default_factory=list, description="Write-only: literals or env:NAME; any may match."
    )
    require_event_name: bool = False
    max_body_bytes: int = ONE_MIB
    enabled: bool = True


class SourcePatch(Schema):
    verify: VerifyScheme | None = None
    secrets: list[str] | None = Field(None, description="Replaces every secret; [] removes them.")
    require_event_name: bool | None = None
    max_body_bytes: int | None = None


def source_out(row: Source) -> dict[str, Any]:
    refs = [str(r) for r in row.secrets] if isinstance(row.secrets, list) else []
    return {
        "slug": row.slug,
        "verify": row.verify,
        "require_event_name": row.require_event_name,
        "max_body_bytes": row.max_body_bytes,
        "enabled": row.enabled,
        "managed": row.managed,
        "secret_set": bool(refs),
        "secret_fingerprints": [secret_fingerprint(r) for r in refs],
        "secret_refs": [r if r.startswith("env:") else None for r in refs],
    }


def _table(row: Source) -> dict[str, Any]:
    """The source as a ``[[sources]]`` table (what check_source validates)."""
    return {
        "slug": row.slug,
        "verify": row.verify,
        "secret": list(row.secrets) if isinstance(row.secrets, list) else [],
        "require_event_name": row.require_event_name,
        "max_body_bytes": row.max_body_bytes,
        "enabled": row.enabled,
    }


async def _get(slug: str) -> Source:
    row = await Source.objects.filter(slug=slug).afirst()
    if row is None:
        raise not_found("source", repr(slug))
    return row


@router.get("", response={200: list[SourceOut], **READ_ERRORS}, summary="List sources")
async def list_sources(request: HttpRequest) -> list[dict[str, Any]]:
    return [source_out(row) async for row in Source.objects.order_by("slug")]


@router.get("/{slug}", response={200: SourceOut, 404: ErrorOut, **READ_ERRORS})
async def get_source(request: HttpRequest, slug: str) -> dict[str, Any]:
    return source_out(await _get(slug))


@router.post(
    "",
    auth=WRITE,
    response={201: SourceOut, 409: ErrorOut, **WRITE_ERRORS},
    summary="Add a source",
)
async def create_source(request: HttpRequest, body: SourceIn) -> Status[dict[str, Any]]:
    table = body.dict()
    table["verify"] = str(body.verify.value)
    table["secret"] = table.pop("secrets")
    try:
        config = check_source(table)
    except ConfigError as exc:
        raise invalid(exc) from None
    try:
        await gate.acreate_source(config)
    except gate.EntryError as exc:
        raise entry_error(exc) from None
    return Status(201, source_out(await _get(config.slug)))


@router.patch(
    "/{slug}",
    auth=WRITE,
    response={200: SourceOut, 409: ErrorOut, **WRITE_ERRORS},
    summary="Change a source (fields left out stay as they are)",
)
async def update_source(request: HttpRequest, slug: str, body: SourcePatch) -> dict[str, Any]:
    row = await _get(slug)
    if row.managed:
        raise entry_error(gate.Managed(f"source '{slug}'"))
    table = _table(row)
    changes = body.dict(exclude_unset=True)
    if changes.get("verify") is not None:
        changes["verify"] = str(changes["verify"].value)
    if "secrets" in changes:
        changes["secret"] = changes.pop("secrets") or []
    table.update({k: v for k, v in changes.items() if v is not None or k == "secret"})
    try:
        config = check_source(table)
    except ConfigError as exc:
        raise invalid(exc) from None
    try:
        await gate.aupdate_source(slug, config)
    except gate.EntryError as exc:
        raise entry_error(exc) from None
    return source_out(await _get(slug))


@router.delete(
    "/{slug}",
    auth=WRITE,
    response={204: None, 409: ErrorOut, **WRITE_ERRORS},
    summary="Remove a source (refused while events of it are stored: disable it)",
)
async def delete_source(request: HttpRequest, slug: str) -> Status[None]:
    try:
        await gate.adelete_source(slug)
    except gate.EntryError as exc:
        raise entry_error(exc) from None
    return Status(204, None)


async def _set_enabled(slug: str, enabled: bool) -> dict[str, Any]:
    try:
        await gate.aset_source_enabled(slug, enabled)
    except gate.EntryError as exc:
        raise entry_error(exc) from None
    return source_out(await _get(slug))


@router.post("/{slug}/enable", auth=WRITE, response={200: SourceOut, 409: ErrorOut, **WRITE_ERRORS})
async def enable_source(request: HttpRequest, slug: str) -> dict[str, Any]:
    return await _set_enabled(slug, True)


@router.post(
    "/{slug}/disable",
    auth=WRITE,
    response={200: SourceOut, 409: ErrorOut, **WRITE_ERRORS},
    summary="Disable a source: its webhooks are answered 404 until it is enabled",
)
async def disable_source(request: HttpRequest, slug: str) -> dict[str, Any]:
    return await _set_enabled(slug, False)
