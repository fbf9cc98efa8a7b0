"""``manage.py destination``: see and change a destination's operational state.

manage.py destination list
manage.py destination pause NAME [--reason TEXT]
manage.py destination resume NAME
manage.py destination enable NAME      (after a 410, or an operator disabled it)

While a destination is paused or disabled its new deliveries wait; resuming (and
enabling) sends them, oldest first. Each works on destinations the config file manages
too, and takes effect at every dispatcher's next claim, with no restart.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hookway import gate
from hookway.gate import Change, DestinationError


class Command(BaseCommand):
    help = "List destinations with their state, or pause, resume or enable one."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        actions.add_parser("list", help="Every destination: pending deliveries and state.")
        pause = actions.add_parser(
            "pause", help="Stop sending to it; its new deliveries wait until it is resumed."
        )
        pause.add_argument("name", metavar="NAME")
        pause.add_argument("--reason", default="", help="Why, shown with its state.")
        resume = actions.add_parser("resume", help="Send its waiting deliveries, oldest first.")
        resume.add_argument("name", metavar="NAME")
        enable = actions.add_parser(
            "enable", help="Enable it again after a 410 (also when the config file manages it)."
        )
        enable.add_argument("name", metavar="NAME")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "list":
            self._list()
            return
        change_of = {
            "pause": lambda name: gate.run_sync(
                gate.apause_destination, name, options.get("reason") or ""
            ),
            "resume": lambda name: gate.run_sync(gate.aresume_destination, name),
            "enable": lambda name: gate.run_sync(gate.aenable_destination, name),
        }
        try:
            change: Change = change_of[action](options["name"])
        except DestinationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(change.message)

    def _list(self) -> None:
        states = gate.run_sync(gate.adestination_states)
        if not states:
            self.stdout.write("no destinations")
            return
        width = max(len("NAME"), *(len(s.name) for s in states))
        self.stdout.write(f"{'NAME':<{width}}  {'PENDING':>7}  STATE")
        for s in states:
            managed = "  [config file]" if s.managed else ""
            self.stdout.write(f"{s.name:<{width}}  {s.pending:>7}  {s.describe()}{managed}")
