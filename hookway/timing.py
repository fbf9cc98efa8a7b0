"""Per-request timing shared by the middleware (which reports it) and the gate (which
measures database time). A ContextVar, so concurrent requests never mix their numbers."""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class RequestTimer:
    started: float = field(default_factory=time.perf_counter)
    db_seconds: float = 0.0
    db_calls: int = 0
    labels: dict[str, str] = field(default_factory=dict)


current: ContextVar[RequestTimer | None] = ContextVar("hookway_request_timer", default=None)


def add_db_time(seconds: float) -> None:
    timer = current.get()
    if timer is not None:
        timer.db_seconds += seconds
        timer.db_calls += 1


def label(key: str, value: str) -> None:
    """Attach a field (source, event id, …) to this request's log line."""
    timer = current.get()
    if timer is not None:
        timer.labels[key] = value
