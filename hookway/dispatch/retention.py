"""Pruning old events, a batch at a time: the dispatcher's periodic task and
``manage.py prune`` run this same loop (the store deletes, hookway.store.retention)."""

from __future__ import annotations

import asyncio
import logging

from hookway import conf, gate
from hookway.gate import Pruned, RetentionPolicy

logger = logging.getLogger("hookway.dispatch")

# Between batches: a writer waiting for SQLite's lock polls for it (busy timeout), so a
# pruner starting its next batch at once could keep winning the lock; pausing hands it
# over. On PostgreSQL it bounds the load pruning puts on the database.
PAUSE = 0.05


def policy_from_settings() -> RetentionPolicy:
    s = conf.get()
    return RetentionPolicy(s.retention_days, s.dead_retention_days)


async def prune(
    policy: RetentionPolicy,
    batch: int,
    *,
    pause: float = PAUSE,
    stop: asyncio.Event | None = None,
) -> Pruned:
    """Prune everything ``policy`` lets go, ``batch`` events per transaction, until none
    is left or ``stop`` is set; returns what was deleted."""
    total = Pruned()
    after = None
    while stop is None or not stop.is_set():
        done = await gate.aprune_batch(policy, batch, after)
        total.add(done.pruned)
        if done.cursor is None:
            break
        after = done.cursor
        await asyncio.sleep(pause)
    return total


def describe(pruned: Pruned) -> str:
    return f"{pruned.events} events, {pruned.deliveries} deliveries, {pruned.attempts} attempts"
