"""Apply a parsed hookway.toml to the database, in one transaction.

Entries in the file are created or updated and marked ``managed``; managed entries that
left the file are disabled (sources, destinations: their events and deliveries stay) or
removed (routes). Entries created in the admin (``managed=False``) are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from hookway.config.file import HookwayConfig
from hookway.models import Destination, Route, Source


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


def sync(config: HookwayConfig) -> SyncReport:
    """Make the database match the config file; return what was done."""
    with transaction.atomic():
        sources: dict[str, Source] = {}
        for s in config.sources:
            sources[s.slug], _ = Source.objects.update_or_create(
                slug=s.slug,
                defaults={
                    "verify": s.verify.value,
                    "secrets": list(s.secrets),
                    "require_event_name": s.require_event_name,
                    "max_body_bytes": s.max_body_bytes,
                    "enabled": s.enabled,
                    "managed": True,
                },
            )
        destinations: dict[str, Destination] = {}
        for d in config.destinations:
            current = Destination.objects.filter(name=d.name).first()
            # A destination that answered 410 stays disabled across restarts (a restart
            # must not undo the receiver's "gone") until the file changes it: a new URL,
            # or `enabled = false` then true again (managed rows are read-only in the admin,
            # so the file is the only way back).
            keep_disabled = (
                current is not None
                and current.disabled_reason.startswith("410")
                and current.url == d.url
                and d.enabled
            )
            destinations[d.name], _ = Destination.objects.update_or_create(
                name=d.name,
                defaults={
                    "url": d.url,
                    "signing_secret": d.signing_secret,
                    "timeout_seconds": d.timeout_seconds,
                    "max_attempts": d.max_attempts,
                    "concurrency": d.concurrency,
                    "headers": dict(d.headers),
                    "bearer_token": d.bearer_token,
                    "basic_auth": d.basic_auth,
                    "forward_headers": list(d.forward_headers),
                    "enabled": d.enabled and not keep_disabled,
                    "managed": True,
                    **({} if keep_disabled else {"disabled_reason": ""}),
                },
            )
        keep_routes: set[int] = set()
        for r in config.routes:
            route, _ = Route.objects.update_or_create(
                source=sources[r.source],
                destination=destinations[r.destination],
                defaults={"events": list(r.events), "enabled": True, "managed": True},
            )
            keep_routes.add(route.pk)

        disabled = (
            Source.objects.filter(managed=True, enabled=True)
            .exclude(slug__in=list(sources))
            .update(enabled=False)
        )
        disabled += (
            Destination.objects.filter(managed=True, enabled=True)
            .exclude(name__in=list(destinations))
            .update(enabled=False, disabled_reason="removed from the config file")
        )
        removed, _ = Route.objects.filter(managed=True).exclude(pk__in=keep_routes).delete()
        return SyncReport(
            sources=len(sources),
            destinations=len(destinations),
            routes=len(keep_routes),
            disabled=disabled + removed,
        )
