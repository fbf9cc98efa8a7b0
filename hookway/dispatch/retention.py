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
# Each batch holds the write lock (on SQLite, the whole database's) while it deletes, and a
# webhook arriving meanwhile waits for it: batches are sized to take about this long,
# never more than the configured batch. The cost of an event varies (its fan-out, its
# attempts, the database's size and cache), so the size follows what the last batch took.
TARGET = 0.02
FIRST = 50
# After each batch, rest at least this many times what it held the lock.
REST = 4.0


def next_size(size: int, took: float, limit: int) -> int:
    """The next batch's size after ``size`` events held the lock ``took`` seconds: aimed
    at TARGET, at most doubling or halving per batch (one slow batch, say a checkpoint,
    does not collapse it), between 1 and ``limit``."""
    aimed = size * TARGET / took if took > 0 else size * 2
    return max(1, min(limit, size * 2, max(size // 2, round(aimed))))


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
    """Prune everything ``policy`` lets go, at most ``batch`` events per transaction
    (fewer when a batch would hold the lock longer than TARGET), until none is left or
    ``stop`` is set; returns what was deleted."""
    total = Pruned()
    after = None
    size = min(batch, FIRST)
    while stop is None or not stop.is_set():
        done = await gate.aprune_batch(policy, size, after)
        total.add(done.pruned)
        if done.cursor is None:
            break
        after = done.cursor
        # What the batch held the lock for, not what it waited for it: under ingest's
        # load the wait says nothing about the batch's size.
        size = next_size(size, done.held, batch)
        # What a batch writes must also reach the disk (WAL, checkpoints) beside ingest's
        # fsyncs: pruning holds the lock at most about a fifth of the time.
        await asyncio.sleep(max(pause, REST * done.held))
    return total


def describe(pruned: Pruned) -> str:
    return f"{pruned.events} events, {pruned.deliveries} deliveries, {pruned.attempts} attempts"
