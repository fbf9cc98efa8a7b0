"""``manage.py sync_config [PATH] [--check]``: validate and apply a hookway.toml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hookway import conf, gate
from hookway.config import file as config_file
from hookway.config import registry


class Command(BaseCommand):
    help = (
        "Validate a hookway.toml and sync its sources, destinations and routes into the database."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", help="Config file (default: $HOOKWAY_CONFIG).")
        parser.add_argument("--check", action="store_true", help="Only validate; change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        raw = options["path"] or conf.get().config_path
        if raw is None:
            raise CommandError("no config file: pass a path or set HOOKWAY_CONFIG")
        path = Path(raw)
        try:
            # Decorated handlers (docs/handlers.md) are synced with the file's entries.
            config = registry.with_registered(config_file.load(path), registry.discover())
        except config_file.ConfigError as exc:
            raise CommandError(str(exc)) from None
        if options["check"]:
            self.stdout.write(
                f"{path}: valid ({len(config.sources)} sources, "
                f"{len(config.destinations)} destinations, {len(config.routes)} routes)"
            )
            return
        report = gate.run_sync(gate.async_sync_config, config)
        self.stdout.write(f"{path}: {report}")
