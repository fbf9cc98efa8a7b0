"""Decorated handlers (``@hookway.handler``) as config entries: each is a destination and
a route, merged into the config file's entries and synced with them (managed, so a
handler whose decorator is gone is disabled at the next start, like a file entry)."""

from __future__ import annotations

from dataclasses import replace

from django.utils.module_loading import autodiscover_modules

from hookway import handlers
from hookway.config.file import SLUG_RE, ConfigError, DestinationConfig, HookwayConfig, RouteConfig

# Each installed app's module of this name is imported at start, so its decorators run.
HOOKS_MODULE = "hooks"


def discover() -> tuple[handlers.Registered, ...]:
    """Import every installed app's ``hooks`` module; return every registered handler."""
    autodiscover_modules(HOOKS_MODULE)
    return handlers.registered()


def with_registered(
    config: HookwayConfig, entries: tuple[handlers.Registered, ...]
) -> HookwayConfig:
    """``config`` plus a destination and a route for each registered handler; raise
    ConfigError if one's name is taken by a file destination or its target is broken."""
    if not entries:
        return config
    taken = {d.name for d in config.destinations}
    destinations = list(config.destinations)
    routes = list(config.routes)
    for entry in entries:
        where = f"@hookway.handler {entry.target}"
        if not SLUG_RE.match(entry.name):
            raise ConfigError(
                f"{where}: destination name {entry.name!r} must be 1-63 lowercase letters, "
                "digits, '-' or '_'; pass name= to the decorator"
            )
        if entry.name in taken:
            raise ConfigError(
                f"{where}: the config file has a destination named {entry.name!r} too; "
                "pass name= to the decorator"
            )
        try:
            handlers.resolve(entry.target)
        except handlers.HandlerNotFound as exc:
            raise ConfigError(f"{where}: {exc}") from None
        destinations.append(
            DestinationConfig(
                name=entry.name,
                handler=entry.target,
                timeout_seconds=entry.timeout_seconds,
                max_attempts=entry.max_attempts,
                concurrency=entry.concurrency,
            )
        )
        routes.append(RouteConfig(source=entry.source, destination=entry.name, events=entry.events))
    return replace(config, destinations=tuple(destinations), routes=tuple(routes))
