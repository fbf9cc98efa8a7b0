"""Handler destinations: call a Python function with the event (docs/handlers.md).

``async def`` handlers run on the dispatcher's event loop, under ``asyncio.timeout``: a
handler past its destination's ``timeout_seconds`` is cancelled. They share the loop
with every other delivery, so one that blocks (``time.sleep``, sync I/O) stalls them
all; the dispatcher's loop-lag watch logs a warning naming the lag and the handlers
running (hookway.loopmonitor). Plain ``def`` handlers run on a worker thread (they may
use the sync ORM); a thread can't be stopped, so past the timeout the attempt is recorded
as timed out and the thread's eventual result is ignored (hookway.send.transport).

Outcomes: a return is a success; ``hookway.Retry(after=s)`` retries no sooner than
``s`` seconds; ``hookway.Reject(reason)`` is a permanent failure (dead now); any other
exception is recorded (type, message, traceback) and retried on the schedule.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable
from typing import Any, cast

from django.db import close_old_connections
from django.utils.datastructures import CaseInsensitiveMapping

from hookway.handlers import (
    HandlerEvent,
    HandlerNotFound,
    Reject,
    Retry,
    is_async,
    parse_payload,
    resolve,
)
from hookway.outbound import AttemptResult, ErrorKind, OutboundDelivery
from hookway.send.sender import RESPONSE_BODY_LIMIT
from hookway.send.transport import Clock, Threads, ThreadTimedOut, timed_out

# The traceback's last lines are kept (the handler's own frames are at the end).
TRACEBACK_LIMIT = 8 * 1024


def event_of(delivery: OutboundDelivery) -> HandlerEvent:
    """The stored event a handler or a Celery task gets for this attempt."""
    return HandlerEvent(
        id=delivery.event_id,
        delivery_id=delivery.delivery_id,
        source=delivery.source_slug,
        event_name=delivery.event_name,
        payload=parse_payload(delivery.body),
        body=delivery.body,
        headers=CaseInsensitiveMapping(dict(delivery.event_headers)),
        content_type=delivery.content_type,
        attempt=delivery.attempt,
        received_at=delivery.received_at,
    )


def describe(exc: BaseException) -> str:
    """``Type: message``, as recorded in the attempt's error."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def traceback_excerpt(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(exc)).replace("\x00", "\ufffd")
    if len(text) > TRACEBACK_LIMIT:
        text = "…" + text[-TRACEBACK_LIMIT:]
    return text


def _returned(value: object) -> str:
    if value is None:
        return ""
    return f"returned {value!r}"[:RESPONSE_BODY_LIMIT]


def _with_connections(func: Any, event: HandlerEvent) -> Any:
    # Like a request: stale or broken database connections are dropped before and after,
    # since the handler thread lives for the process's lifetime.
    def call() -> Any:
        close_old_connections()
        try:
            return func(event)
        finally:
            close_old_connections()

    return call


class HandlerTransport:
    def __init__(self, threads: Threads):
        self.threads = threads

    async def send(self, delivery: OutboundDelivery) -> AttemptResult:
        clock = Clock(delivery)
        try:
            func = resolve(delivery.handler)
        except HandlerNotFound as exc:
            # Retried: a deploy may bring the module back.
            return clock.result("retry", error=str(exc), error_kind=ErrorKind.HANDLER_ERROR)
        event = event_of(delivery)
        try:
            if is_async(func):
                value = await self._run_async(func, event, delivery.timeout)
            else:
                value = await self.threads.call(
                    delivery.destination_id, _with_connections(func, event), delivery.timeout
                )
        except _AsyncTimedOut:
            return clock.result(
                "retry",
                error=f"timed out after {delivery.timeout:g} s: the handler was cancelled",
                error_kind=ErrorKind.TIMEOUT,
            )
        except ThreadTimedOut as exc:
            return timed_out(clock, delivery.timeout, exc, "the handler is")
        except Retry as exc:
            return clock.result(
                "retry",
                error=f"Retry: {exc}",
                error_kind=ErrorKind.RETRY_REQUESTED,
                retry_after=exc.after,
            )
        except Reject as exc:
            return clock.result(
                "failed",
                error=f"Reject: {exc}",
                error_kind=ErrorKind.REJECTED,
            )
        except Exception as exc:  # noqa: BLE001 - the user's code: recorded and retried
            return clock.result(
                "retry",
                error=describe(exc),
                error_kind=ErrorKind.HANDLER_ERROR,
                response_body=traceback_excerpt(exc),
            )
        return clock.result("success", response_body=_returned(value))

    async def _run_async(self, func: Any, event: HandlerEvent, seconds: float) -> object:
        try:
            async with asyncio.timeout(seconds) as deadline:
                return await cast(Awaitable[object], func(event))
        except TimeoutError:
            if deadline.expired():
                raise _AsyncTimedOut from None
            raise  # the handler's own TimeoutError: an ordinary failure


class _AsyncTimedOut(Exception):
    pass
