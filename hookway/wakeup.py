"""In-process wake-up, a neutral signal between ingest and the dispatcher (neither
imports the other): ingest calls ``notify()`` after committing new deliveries, and an
embedded dispatcher in the same process starts on them at once instead of at its next
poll. (Across processes, PostgreSQL LISTEN/NOTIFY and SQLite's data_version do the same
job.)

``notify()`` may be called from any thread (``hookway.publish`` runs in the caller's,
and wakes the dispatcher when the caller's transaction commits): an event belonging to
another thread's loop is set through that loop.
"""

from __future__ import annotations

import asyncio
import contextlib

_listeners: dict[asyncio.Event, asyncio.AbstractEventLoop] = {}


def subscribe(event: asyncio.Event) -> None:
    """Set ``event`` on every notify() until unsubscribe(event). Call it on the loop
    that waits for ``event``."""
    _listeners[event] = asyncio.get_running_loop()


def unsubscribe(event: asyncio.Event) -> None:
    _listeners.pop(event, None)


def notify() -> None:
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    for event, loop in list(_listeners.items()):
        if loop is running:
            event.set()
        else:
            # asyncio.Event is not thread-safe; a closed loop has no one left to wake.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)
