"""``manage.py replay``: new deliveries for stored events.

manage.py replay EVENT_ID [EVENT_ID ...] [--destination NAME]
manage.py replay --dead --since 2026-11-20T08:00 [--destination NAME]
manage.py replay --dead --since 6h
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from hookway import gate
from hookway.models import Destination, Event

_RELATIVE = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(raw: str) -> datetime:
    """An ISO date/time (UTC unless it says otherwise) or an age such as 30m, 6h, 2d."""
    match = _RELATIVE.match(raw.strip())
    if match:
        return timezone.now() - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        when = parse_datetime(raw)
        if when is None and (day := parse_date(raw)) is not None:
            when = datetime(day.year, day.month, day.day)
    except ValueError:
        when = None
    if when is None:
        raise CommandError(
            f"--since {raw!r}: expected an ISO date/time (2026-11-20T08:00) or an age (30m, 6h, 2d)"
        )
    return when if timezone.is_aware(when) else timezone.make_aware(when, UTC)


class Command(BaseCommand):
    help = "Create new deliveries for stored events (by id), or for dead deliveries."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("event_ids", nargs="*", metavar="EVENT_ID")
        parser.add_argument("--dead", action="store_true", help="Replay dead deliveries.")
        parser.add_argument("--since", help="With --dead: those that died at or after this time.")
        parser.add_argument("--destination", help="Only deliveries to this destination.")

    def handle(self, *args: Any, **options: Any) -> None:
        ids: list[str] = options["event_ids"]
        destination: str | None = options["destination"]
        if destination is not None and not Destination.objects.filter(name=destination).exists():
            raise CommandError(f"no destination named {destination!r}")
        if options["dead"]:
            if ids:
                raise CommandError("give event ids or --dead, not both")
            if not options["since"]:
                raise CommandError("--dead needs --since (an ISO time or an age such as 6h)")
            created = gate.run_sync(gate.areplay_dead, parse_since(options["since"]), destination)
            self.stdout.write(f"{created} dead deliveries replayed")
            return
        if not ids:
            raise CommandError("give at least one event id, or --dead --since TIME")
        found = set(Event.objects.filter(pk__in=ids).values_list("pk", flat=True))
        missing = [i for i in ids if i not in found]
        if missing:
            raise CommandError(f"no such event: {', '.join(missing)}")
        created = gate.run_sync(gate.areplay_events, ids, destination)
        self.stdout.write(f"{created} deliveries created for {len(ids)} event(s)")
