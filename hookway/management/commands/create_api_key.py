"""``manage.py create_api_key NAME [--scope read|write]``: make an operator API key.

The key is printed once, alone on the last line, so a script can capture it::

    KEY=$(./manage.py create_api_key ci --scope write | tail -n 1)

Only its SHA-256 is stored: a lost key can't be shown again; revoke it in the admin and
make another."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hookway.models import ApiKeyScope
from hookway.store import apikeys


class Command(BaseCommand):
    help = "Make an API key for /api/v1/ and print it (once, on the last line)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="What uses the key (shown in the admin).")
        parser.add_argument(
            "--scope",
            choices=ApiKeyScope.values,
            default=ApiKeyScope.READ.value,
            help="read: GET only (default); write: everything.",
        )

    def handle(self, *args: Any, name: str, scope: str, **options: Any) -> None:
        try:
            row, key = apikeys.create(name, scope)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"API key {row.name!r} ({row.scope}) created. It is shown once; store it now:"
        )
        self.stdout.write(key)
