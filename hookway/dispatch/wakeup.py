"""In-process wake-up: ingest calls ``notify()`` after committing new deliveries, and an
embedded dispatcher in the same process starts on them at once instead of at its next
poll. (Across processes, PostgreSQL LISTEN/NOTIFY does the same job.)"""

from __future__ import annotations

import asyncio

_listeners: set[asyncio.Event] = set()


def subscribe() -> asyncio.Event:
    """Return an Event set on every notify(); pass it to unsubscribe() when done."""
    event = asyncio.Event()
    _listeners.add(event)
    return event


def unsubscribe(event: asyncio.Event) -> None:
    _listeners.discard(event)


def notify() -> None:
    for event in _listeners:
        event.set()
