"""Apply a parsed hookway.toml to the database, in one transaction.

Entries in the file are created or updated and marked ``managed``; managed entries that
left the file are disabled (sources, destinations: their events and deliveries stay) or
removed (routes). Entries created in the admin (``managed=False``) are never touched, nor
is a destination's pause (operational state, hookway.store.destinations).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from hookway.config.file import ConfigError, HookwayConfig
from hookway.models import (
    DISABLED_FAILING,
    DISABLED_GONE,
    DISABLED_IN_FILE,
    REMOVED_FROM_FILE,
    AppliedConfig,
    Change,
    Destination,
    Route,
    Source,
)
from hookway.store import changelog, circuit
from hookway.store.entries import destination_fields, source_fields


@dataclass(frozen=True)
class SyncReport:
    sources: int
    destinations: int
    routes: int
    disabled: int

    def __str__(self) -> str:
        return (
            f"{self.sources} sources, {self.destinations} destinations, {self.routes} routes "
            f"synced; {self.disabled} entries no longer in the file disabled or removed"
        )


def _reason(enabled: bool) -> str:
    # Said outright, so `manage.py destination enable` knows the file decides this one.
    return "" if enabled else DISABLED_IN_FILE


def sync(config: HookwayConfig) -> SyncReport:
    """Make the database match the config file; return what was done."""
    with transaction.atomic():
        sources: dict[str, Source] = {}
        for s in config.sources:
            sources[s.slug], _ = Source.objects.update_or_create(
                slug=s.slug,
                defaults={**source_fields(s), "enabled": s.enabled, "managed": True},
            )
        destinations: dict[str, Destination] = {}
        for d in config.destinations:
            current = Destination.objects.filter(name=d.name).first()
            # A destination that answered 410 stays disabled across restarts (a restart
            # must not undo the receiver's "gone") until the file changes it (a new URL,
            # or `enabled = false` then true again) or an operator enables it again
            # (`manage.py destination enable`, the admin), which clears the 410 reason:
            # from then on this sync keeps it enabled.
            # The same goes for one Hookway disabled for failing (disable_after).
            keep_disabled = (
                current is not None
                and current.disabled_reason.startswith((DISABLED_GONE, DISABLED_FAILING))
                and (current.url, current.handler, current.celery_task)
                == (d.url, d.handler, d.celery_task)
                and d.enabled
            )
            enabled = d.enabled and not keep_disabled
            turned_on = current is not None and enabled and not current.enabled
            destinations[d.name], _ = Destination.objects.update_or_create(
                name=d.name,
                defaults={
                    **destination_fields(d),
                    "enabled": enabled,
                    "managed": True,
                    "notifications": d.name == config.notification_destination,
                    **({} if keep_disabled else {"disabled_reason": _reason(d.enabled)}),
                    # Enabled again by the file: a fresh start, as by an operator.
                    **(circuit.reset_values() if turned_on else {}),
                },
            )
            if current is not None and current.enabled != enabled:
                changelog.record(
                    current.pk,
                    d.name,
                    Change.ENABLED if enabled else Change.DISABLED,
                    "enabled" if current.enabled else "disabled",
                    "enabled" if enabled else "disabled",
                    "enabled in the config file" if enabled else DISABLED_IN_FILE,
                )
        keep_routes: set[int] = set()
        for r in config.routes:
            if r.source not in sources:
                # A decorated handler's route may name a source made in the admin.
                found = Source.objects.filter(slug=r.source).first()
                if found is None:
                    raise ConfigError(
                        f"route {r.source} -> {r.destination}: no source {r.source!r} in the "
                        "config file or the database"
                    )
                sources[r.source] = found
            route, _ = Route.objects.update_or_create(
                source=sources[r.source],
                destination=destinations[r.destination],
                defaults={
                    "events": list(r.events),
                    "filter": r.filter,
                    "match": dict(r.match),
                    "transform": r.transform,
                    "enabled": True,
                    "managed": True,
                },
            )
            keep_routes.add(route.pk)

        disabled = (
            Source.objects.filter(managed=True, enabled=True)
            .exclude(slug__in=list(sources))
            .update(enabled=False)
        )
        removed_destinations = list(
            Destination.objects.filter(managed=True, enabled=True)
            .exclude(name__in=list(destinations))
            .values_list("pk", "name")
        )
        for pk, name in removed_destinations:
            Destination.objects.filter(pk=pk).update(
                enabled=False, disabled_reason=REMOVED_FROM_FILE
            )
            changelog.record(pk, name, Change.DISABLED, "enabled", "disabled", REMOVED_FROM_FILE)
        disabled += len(removed_destinations)
        if config.notification_destination:
            # The file names the one notification destination: no other receives them.
            Destination.objects.filter(notifications=True).exclude(
                name=config.notification_destination
            ).update(notifications=False)
        removed, _ = Route.objects.filter(managed=True).exclude(pk__in=keep_routes).delete()
        return SyncReport(
            sources=len([s for s in sources.values() if s.managed]),
            destinations=len(destinations),
            routes=len(keep_routes),
            disabled=disabled + removed,
        )


def fingerprint(config: HookwayConfig) -> str:
    """The SHA-256 of the parsed configuration (whitespace and comments don't count)."""
    return hashlib.sha256(repr(config).encode()).hexdigest()


def sync_if_changed(config: HookwayConfig, path: str) -> SyncReport | None:
    """Sync unless this database already has exactly this configuration applied; return
    the report, or None when there was nothing to do. Processes starting together
    serialise on the one AppliedConfig row, so only the first applies a change."""
    digest = fingerprint(config)
    with transaction.atomic():
        AppliedConfig.objects.bulk_create(
            [AppliedConfig(sha256="", path="", applied_at=timezone.now())],
            ignore_conflicts=True,
        )
        rows = AppliedConfig.objects.filter(pk=1)
        if connection.vendor == "postgresql":
            rows = rows.select_for_update()
        applied = rows.get()
        if applied.sha256 == digest:
            return None
        report = sync(config)
        applied.sha256, applied.path, applied.applied_at = digest, path, timezone.now()
        applied.save()
        return report
