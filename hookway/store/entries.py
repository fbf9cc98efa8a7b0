"""Sources, destinations and routes made, changed and removed by an operator (the API),
as opposed to by the config file (hookway.config.sync).

Values arrive validated by the config file's own rules (hookway.config.file.check_source
and check_destination), so an entry made here is one the file could have made. Entries
the file manages are refused (``Managed``): the next sync would undo the change. A
destination's pause, resume and enable are hookway.store.destinations'. Sync code,
reached from async code only through hookway.gate, which also clears the caches ingest
keeps of sources and routes.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import IntegrityError, transaction
from django.db.models import Model

from hookway.config.file import DestinationConfig, SourceConfig
from hookway.models import Change, Destination, Event, Route, Source
from hookway.store import changelog

# A destination an operator disabled: `enable` (hookway.store.destinations) turns it on.
DISABLED_BY_OPERATOR = "disabled by an operator"


M = TypeVar("M", bound=Model)


class EntryError(Exception):
    """A change that can't be made; the message says why."""


class NoSuchEntry(EntryError):
    pass


class Managed(EntryError):
    """The config file manages this entry. The message names the entry."""


class Conflict(EntryError):
    """It exists already, or something still needs it."""


def source_fields(config: SourceConfig) -> dict[str, object]:
    """A source's settings as its row's fields (here and in hookway.config.sync): all but
    its slug and whether it is enabled, which each caller decides."""
    return {
        "verify": config.verify.value,
        "secrets": list(config.secrets),
        "require_event_name": config.require_event_name,
        "max_body_bytes": config.max_body_bytes,
    }


def destination_fields(config: DestinationConfig) -> dict[str, object]:
    """A destination's settings as its row's fields (here and in hookway.config.sync): all
    but its name and its state (enabled, paused), which each caller decides."""
    return {
        "url": config.url,
        "handler": config.handler,
        "celery_task": config.celery_task,
        "signing_secret": config.signing_secret,
        "timeout_seconds": config.timeout_seconds,
        "max_attempts": config.max_attempts,
        "concurrency": config.concurrency,
        "headers": dict(config.headers),
        "bearer_token": config.bearer_token,
        "basic_auth": config.basic_auth,
        "forward_headers": list(config.forward_headers),
        "rate_limit": config.rate_limit,
        "circuit_failures": config.circuit_failures,
        "circuit_cooldown_seconds": config.circuit_cooldown_seconds,
        "disable_after_seconds": config.disable_after_seconds,
        "ordered": config.ordered,
        "on_dead": config.on_dead,
        "order_key": config.order_key,
    }


def _editable(model: type[M], what: str, **key: object) -> M:
    row = model._default_manager.select_for_update().filter(**key).first()
    if row is None:
        raise NoSuchEntry(f"no {what}")
    if getattr(row, "managed", False):
        raise Managed(what)
    return row


def create_source(config: SourceConfig) -> None:
    """Add a source; raises Conflict if its slug is taken."""
    try:
        with transaction.atomic():
            Source.objects.create(slug=config.slug, enabled=config.enabled, **source_fields(config))
    except IntegrityError:
        raise Conflict(f"a source '{config.slug}' exists already") from None


def update_source(slug: str, config: SourceConfig) -> None:
    """Replace the source's settings (not its slug, not whether it is enabled)."""
    with transaction.atomic():
        row = _editable(Source, f"source '{slug}'", slug=slug)
        Source.objects.filter(pk=row.pk).update(**source_fields(config))


def delete_source(slug: str) -> None:
    """Remove the source and its routes; raises Conflict while events of it are stored
    (they keep their history: disable it instead)."""
    with transaction.atomic():
        row = _editable(Source, f"source '{slug}'", slug=slug)
        stored = Event.objects.filter(source_id=row.pk).count()
        if stored:
            raise Conflict(
                f"source '{slug}' has {stored} stored events; disable it instead (events "
                "keep their source)"
            )
        row.delete()


def set_source_enabled(slug: str, enabled: bool) -> bool:
    """Enable or disable the source; False when it already was so."""
    with transaction.atomic():
        row = _editable(Source, f"source '{slug}'", slug=slug)
        return bool(
            Source.objects.filter(pk=row.pk).exclude(enabled=enabled).update(enabled=enabled)
        )


def create_destination(config: DestinationConfig) -> None:
    """Add a destination; raises Conflict if its name is taken."""
    try:
        with transaction.atomic():
            Destination.objects.create(
                name=config.name, enabled=config.enabled, **destination_fields(config)
            )
    except IntegrityError:
        raise Conflict(f"a destination '{config.name}' exists already") from None


def update_destination(name: str, config: DestinationConfig) -> None:
    """Replace the destination's settings (not its name, nor its state)."""
    with transaction.atomic():
        row = _editable(Destination, f"destination '{name}'", name=name)
        Destination.objects.filter(pk=row.pk).update(**destination_fields(config))


def delete_destination(name: str) -> None:
    """Remove the destination, its routes and its deliveries (as the admin does)."""
    with transaction.atomic():
        _editable(Destination, f"destination '{name}'", name=name).delete()


def disable_destination(name: str) -> bool:
    """Disable the destination: its deliveries wait until it is enabled again (nothing
    is lost). False when it already was disabled."""
    with transaction.atomic():
        row = _editable(Destination, f"destination '{name}'", name=name)
        changed = bool(
            Destination.objects.filter(pk=row.pk, enabled=True).update(
                enabled=False, disabled_reason=DISABLED_BY_OPERATOR
            )
        )
        if changed:
            changelog.record(
                row.pk, name, Change.DISABLED, "enabled", "disabled", DISABLED_BY_OPERATOR
            )
        return changed


def create_route(
    source: str,
    destination: str,
    events: list[str],
    enabled: bool,
    *,
    filter: str = "",
    match: dict[str, Any] | None = None,
    transform: str = "",
) -> int:
    """Add a route (its rules checked by hookway.routing.rules.check already); return
    its id. Raises NoSuchEntry for an unknown source or destination, Conflict if one
    joins them already."""
    with transaction.atomic():
        source_id = Source.objects.filter(slug=source).values_list("pk", flat=True).first()
        if source_id is None:
            raise NoSuchEntry(f"no source '{source}'")
        destination_id = (
            Destination.objects.filter(name=destination).values_list("pk", flat=True).first()
        )
        if destination_id is None:
            raise NoSuchEntry(f"no destination '{destination}'")
        try:
            with transaction.atomic():
                route = Route.objects.create(
                    source_id=source_id,
                    destination_id=destination_id,
                    events=events,
                    filter=filter,
                    match=match or {},
                    transform=transform,
                    enabled=enabled,
                )
        except IntegrityError:
            raise Conflict(f"a route from '{source}' to '{destination}' exists already") from None
        return route.pk


def update_route(
    pk: int,
    *,
    events: list[str] | None = None,
    filter: str | None = None,
    match: dict[str, Any] | None = None,
    transform: str | None = None,
) -> None:
    """Replace what is given of the route: the event name patterns it takes (empty:
    every event), its filter, match and transform (empty: none); None keeps a value."""
    given = {"events": events, "filter": filter, "match": match, "transform": transform}
    with transaction.atomic():
        row = _editable(Route, f"route {pk}", pk=pk)
        changes = {key: value for key, value in given.items() if value is not None}
        if changes:
            Route.objects.filter(pk=row.pk).update(**changes)


def delete_route(pk: int) -> None:
    with transaction.atomic():
        _editable(Route, f"route {pk}", pk=pk).delete()


def set_route_enabled(pk: int, enabled: bool) -> bool:
    """Enable or disable the route; False when it already was so."""
    with transaction.atomic():
        row = _editable(Route, f"route {pk}", pk=pk)
        return bool(
            Route.objects.filter(pk=row.pk).exclude(enabled=enabled).update(enabled=enabled)
        )
