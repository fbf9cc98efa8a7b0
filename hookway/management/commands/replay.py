"""``manage.py replay``: new deliveries for stored events, safe to repeat.

manage.py replay ID [ID ...] [--destination NAME] [--force]   (event evt_… or delivery msg_… ids)
manage.py replay --dead [--since 2026-11-20T08:00 | --since 6h] [--destination NAME] [--force]

Prints how many deliveries were created, then one line for each thing not replayed and
why. Exits 0 when something was replayed or everything asked for was done already; with
an error (CommandError) when nothing could be replayed as asked (an unknown id or
destination, no route to the destination without --force).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from hookway import gate
from hookway.gate import Created, ReplayResult, SkipKind, Skipped
from hookway.models import Delivery, Event

_RELATIVE = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

# What the operator can do about each kind of skip, said after its reason.
HINTS = {
    SkipKind.ALREADY_REPLAYED: "--force to replay again",
    SkipKind.PENDING: "--force to replay anyway",
    SkipKind.NO_ROUTE: "use --force to replay anyway",
    SkipKind.NO_TARGET: "name one with --destination NAME --force",
}


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


def explain(skip: Skipped) -> str:
    """One line: what was not replayed, why, and what would replay it."""
    hint = HINTS.get(skip.kind)
    return f"{skip} ({hint})" if hint else str(skip)


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


class Command(BaseCommand):
    help = (
        "Create new deliveries for stored events or deliveries (by id), or for dead "
        "deliveries. Safe to repeat: what is already replayed or still pending is skipped "
        "(--force makes another copy), and every skip is explained."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "ids",
            nargs="*",
            metavar="ID",
            help="Event ids (evt_…: to the destinations of its routes) or delivery ids "
            "(msg_…: the same event to the same destination).",
        )
        parser.add_argument(
            "--dead", action="store_true", help="Replay every dead delivery not replayed yet."
        )
        parser.add_argument(
            "--since", help="With --dead: only those that died at or after this time."
        )
        parser.add_argument("--destination", help="Only deliveries to this destination.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Replay even what was replayed already, is still pending, or has no route "
            "to the destination.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        ids: list[str] = options["ids"]
        destination: str | None = options["destination"]
        force: bool = options["force"]
        if options["dead"]:
            if ids:
                raise CommandError("give event ids or --dead, not both")
            since = parse_since(options["since"]) if options["since"] else None
            result = gate.run_sync(gate.areplay_dead, since, destination, force=force)
            self._report(result, f"{len(result.created)} dead deliveries replayed", options)
            return
        if options["since"]:
            raise CommandError("--since goes with --dead")
        if not ids:
            raise CommandError("give at least one event id, or --dead")
        event_ids = [i for i in ids if not i.startswith("msg_")]
        delivery_ids = [i for i in ids if i.startswith("msg_")]
        if delivery_ids and destination is not None:
            raise CommandError("--destination goes with event ids: a delivery names its own")
        self._check_exist(event_ids, delivery_ids)
        created: list[Created] = []
        skipped: list[Skipped] = []
        if event_ids:
            by_event = gate.run_sync(gate.areplay_events, event_ids, destination, force=force)
            created += by_event.created
            skipped += by_event.skipped
        if delivery_ids:
            by_delivery = gate.run_sync(gate.areplay_deliveries, delivery_ids, force=force)
            created += by_delivery.created
            skipped += by_delivery.skipped
        asked = [
            f"{len(event_ids)} event(s)" if event_ids else "",
            _plural(len(delivery_ids), "delivery", "deliveries") if delivery_ids else "",
        ]
        summary = f"{len(created)} deliveries created for {' and '.join(a for a in asked if a)}"
        self._report(ReplayResult(tuple(created), tuple(skipped)), summary, options)

    def _check_exist(self, event_ids: list[str], delivery_ids: list[str]) -> None:
        """Refuse the whole request, before replaying anything, if an id is unknown."""
        found = set(Event.objects.filter(pk__in=event_ids).values_list("pk", flat=True))
        missing = [i for i in event_ids if i not in found]
        if missing:
            raise CommandError(f"no such event: {', '.join(missing)}")
        found = set(Delivery.objects.filter(pk__in=delivery_ids).values_list("pk", flat=True))
        missing = [i for i in delivery_ids if i not in found]
        if missing:
            raise CommandError(f"no such delivery: {', '.join(missing)}")

    def _report(self, result: ReplayResult, summary: str, options: dict[str, Any]) -> None:
        lines = [explain(skip) for skip in result.skipped]
        if result.failed:
            raise CommandError("nothing replayed:\n" + "\n".join(lines))
        self.stdout.write(summary)
        if options["verbosity"] >= 2:
            for c in result.created:
                of = f" (replay of {c.replay_of})" if c.replay_of else ""
                self.stdout.write(f"{c.delivery_id}: {c.event_id} → {c.destination}{of}")
        waits: dict[str, int] = {}
        for c in result.created:
            if c.waits:
                waits[c.waits] = waits.get(c.waits, 0) + 1
        for why, count in waits.items():
            self.stdout.write(
                f"{_plural(count, 'new delivery waits', 'new deliveries wait')}: {why}"
            )
        for line in lines:
            self.stdout.write(line)
