"""In-process wake-up, a neutral signal between ingest and the dispatcher (neither
imports the other): ingest calls ``notify()`` after committing new deliveries, and an
embedded dispatcher in the same process starts on them at once instead of at its next
poll. (Across processes, PostgreSQL LISTEN/NOTIFY and SQLite's data_version do the same
job.)"""

from __future__ import annotations

import asyncio

_listeners: set[asyncio.Event] = set()


def subscribe(event: asyncio.Event) -> None:
    """Set ``event`` on every notify() until unsubscribe(event)."""
    _listeners.add(event)


def unsubscribe(event: asyncio.Event) -> None:
    _listeners.discard(event)


def notify() -> None:
    for event in _listeners:
        event.set()
