"""Per-request timing shared by the middleware (which reports it) and the gate (which
measures database time). A ContextVar, so concurrent requests never mix their numbers."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


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


def time_query(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    """A database execute wrapper (installed on every connection, hookway.apps): adds
    each query's time to the current request's ``db`` entry. Queries outside a request
    (the dispatcher, ingest's writer thread) find no timer and cost nothing more."""
    timer = current.get()
    if timer is None:
        return execute(sql, params, many, context)
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        timer.db_seconds += time.perf_counter() - started
        timer.db_calls += 1
