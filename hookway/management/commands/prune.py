"""``manage.py prune``: delete events older than the retention period, with their
deliveries and attempts, in short batches (the dispatcher does the same periodically).

manage.py prune [--dry-run] [--days N] [--dead-days N] [--batch N]

Events with a pending delivery are kept; so are events with a dead delivery nobody
replayed, until HOOKWAY_DEAD_RETENTION_DAYS (docs/delivery.md, "Retention").
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hookway import conf, gate
from hookway.dispatch import retention
from hookway.gate import RetentionPolicy


class Command(BaseCommand):
    help = (
        "Delete events older than HOOKWAY_RETENTION_DAYS with their deliveries and "
        "attempts, in short batches; events still pending, or with an unreplayed dead "
        "delivery younger than HOOKWAY_DEAD_RETENTION_DAYS, are kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Print what would be deleted; delete nothing."
        )
        parser.add_argument(
            "--days", type=int, help="Keep this many days (default HOOKWAY_RETENTION_DAYS)."
        )
        parser.add_argument(
            "--dead-days",
            type=int,
            help="Keep events with an unreplayed dead delivery this many days; 0 until "
            "replayed (default HOOKWAY_DEAD_RETENTION_DAYS).",
        )
        parser.add_argument(
            "--batch", type=int, help="Events per transaction (default HOOKWAY_PRUNE_BATCH)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        s = conf.get()
        days = s.retention_days if options["days"] is None else options["days"]
        dead_days = s.dead_retention_days if options["dead_days"] is None else options["dead_days"]
        batch = s.prune_batch if options["batch"] is None else options["batch"]
        if days < 0 or dead_days < 0:
            raise CommandError("--days and --dead-days: expected a whole number >= 0")
        if not 1 <= batch <= conf.MAX_PRUNE_BATCH:
            raise CommandError(f"--batch {batch}: expected 1 to {conf.MAX_PRUNE_BATCH}")
        if days == 0:
            self.stdout.write("Retention is off (HOOKWAY_RETENTION_DAYS=0): nothing pruned.")
            return
        policy = RetentionPolicy(days, dead_days)
        kept = f"older than {days} days"
        if options["dry_run"]:
            would = gate.run_sync(gate.acount_prunable, policy)
            self.stdout.write(f"Would delete {retention.describe(would)} ({kept}); dry run.")
            return
        pruned = gate.run_sync(retention.prune, policy, batch)
        self.stdout.write(
            f"Deleted {retention.describe(pruned)} ({kept}) in {pruned.batches} batches."
        )
