"""Handlers the handler tests route events to: module-level, so the dispatcher imports
them by name ("tests.handler_funcs:on_push"), and recording what they got in ``calls``."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import hookway
from hookway.models import Event, Source


@dataclass
class Call:
    event: hookway.HandlerEvent
    thread: str
    at: float
    ended: float | None = None


@dataclass
class Book:
    calls: list[Call] = field(default_factory=list)
    failures_left: int = 0
    retry_after: float | None = None
    reject: bool = True
    cancelled: int = 0
    orm_seen: list[str] = field(default_factory=list)

    def record(self, event: hookway.HandlerEvent) -> Call:
        call = Call(event, threading.current_thread().name, time.monotonic())
        self.calls.append(call)
        return call


book = Book()


def reset() -> None:
    global book
    book.__init__()  # type: ignore[misc]


async def on_push(event: hookway.HandlerEvent) -> str:
    book.record(event)
    return f"handled {event.event_name}"


def on_push_sync(event: hookway.HandlerEvent) -> None:
    book.record(event)


async def flaky(event: hookway.HandlerEvent) -> None:
    book.record(event)
    if book.failures_left > 0:
        book.failures_left -= 1
        raise ValueError(f"the backend is down (attempt {event.attempt})")


def asks_to_retry(event: hookway.HandlerEvent) -> None:
    book.record(event)
    if event.attempt == 1:
        raise hookway.Retry(after=book.retry_after)


async def rejects(event: hookway.HandlerEvent) -> None:
    book.record(event)
    if book.reject:
        raise hookway.Reject("project is archived")


async def too_slow(event: hookway.HandlerEvent) -> None:
    book.record(event)
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        book.cancelled += 1
        raise


def too_slow_sync(event: hookway.HandlerEvent) -> None:
    call = book.record(event)
    time.sleep(0.8)
    call.ended = time.monotonic()


def uses_the_orm(event: hookway.HandlerEvent) -> None:
    book.record(event)
    stored = Event.objects.select_related("source").get(pk=event.id)
    book.orm_seen.append(f"{stored.source.slug}/{stored.event_name}")
    Source.objects.create(slug=f"seen-{event.id.lower()[-8:]}")


async def blocks_the_loop(event: hookway.HandlerEvent) -> None:
    book.record(event)
    time.sleep(0.5)  # noqa: ASYNC251 - the mistake the loop-lag watch must report


# Decorated in its test (the registry is process-wide; other tests sync configs too).
async def on_project_event(event: hookway.HandlerEvent) -> None:
    book.record(event)


not_callable: Any = 42
