"""One protocol for every destination kind, and the choice of transport per delivery.

The dispatcher hands each OutboundDelivery to ``Transports.send`` and gets an
AttemptResult back; whether the destination is a URL (hookway.send.sender), a Python
handler (hookway.send.handler) or a Celery task (hookway.send.celery) is decided here and
nowhere else (healthchecks' one transport per channel kind).

Sync work (a plain ``def`` handler, a Celery publish, which is blocking I/O) runs on
threads started by ``RunInThread``, injected by the dispatcher (hookway.gate owns every
crossing). A thread can't be stopped: when its attempt times out, the attempt is recorded
as timed out and the thread's eventual result is ignored, but it still counts against its
destination's concurrency until it ends (``lingering``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from django.utils import timezone

from hookway import tracing
from hookway.outbound import AttemptResult, ErrorKind, OutboundDelivery, Outcome
from hookway.send import sender
from hookway.send.client import Client
from hookway.send.guard import Guard

logger = logging.getLogger("hookway.dispatch")

R = TypeVar("R")


class RunInThread(Protocol):
    """Start ``func()`` on a worker thread; the future ends with its result. ``func``
    returns at once, doing nothing, if ``abandon`` was set before a thread took it."""

    def __call__(self, func: Callable[[], R], abandon: Callable[[], bool]) -> asyncio.Future[R]: ...


class Transport(Protocol):
    async def send(self, delivery: OutboundDelivery) -> AttemptResult:
        """Make one attempt; return its classified result (never raises for the
        destination's own failures)."""
        ...


class HttpTransport:
    """URL destinations: a POST through the shared client and the SSRF guard."""

    def __init__(self, client: Client, guard: Guard):
        self.client = client
        self.guard = guard

    async def send(self, delivery: OutboundDelivery) -> AttemptResult:
        return await sender.send(self.client, self.guard, delivery)


class Clock:
    """When an attempt started, and a result builder that fills in its duration."""

    def __init__(self, delivery: OutboundDelivery):
        self.delivery = delivery
        self.started_at: datetime = timezone.now()
        self.started = time.perf_counter()

    def result(self, outcome: Outcome, **fields: Any) -> AttemptResult:
        d = self.delivery
        return AttemptResult(
            delivery_id=d.delivery_id,
            attempt=d.attempt,
            destination_id=d.destination_id,
            started_at=self.started_at,
            duration_ms=(time.perf_counter() - self.started) * 1000,
            outcome=outcome,
            **fields,
        )


class ThreadTimedOut(Exception):
    """A threaded call did not finish in time; ``started`` says whether it ever ran."""

    def __init__(self, started: bool):
        self.started = started
        super().__init__("started" if started else "never started")


@dataclass
class _Call:
    state: str = "queued"  # queued -> running, or queued -> abandoned


class Threads:
    """Sync calls on worker threads with a deadline, counting the ones still running
    after their attempt was recorded (per destination) so concurrency accounts for them."""

    def __init__(self, run_in_thread: RunInThread, wake: Callable[[], None]):
        self._run = run_in_thread
        self._wake = wake
        self._lingering: dict[int, int] = {}
        self._left: set[asyncio.Future[Any]] = set()

    def lingering(self) -> Mapping[int, int]:
        return self._lingering

    async def call(self, destination_id: int, func: Callable[[], R], seconds: float) -> R:
        """``func()`` on a thread; raise ThreadTimedOut after ``seconds`` (the
        thread, if it started, is left to finish and its result ignored)."""
        call = _Call()

        def body() -> R:
            call.state = "running"
            return func()

        def abandon() -> bool:
            # Read and written on the loop (here) and once by the thread (before body):
            # the executor's handoff orders them; a race costs one ignored result.
            return call.state == "abandoned"

        future = self._run(body, abandon)
        try:
            async with asyncio.timeout(seconds):
                return await asyncio.shield(future)
        except (TimeoutError, asyncio.CancelledError) as exc:
            if future.done():
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return future.result()
            if call.state == "queued":
                call.state = "abandoned"
                future.add_done_callback(_retrieve)
            else:
                self._linger(destination_id, future)
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise ThreadTimedOut(call.state == "running") from None

    def _linger(self, destination_id: int, future: asyncio.Future[Any]) -> None:
        self._lingering[destination_id] = self._lingering.get(destination_id, 0) + 1
        self._left.add(future)

        def done(f: asyncio.Future[Any]) -> None:
            _retrieve(f)
            self._left.discard(f)
            left = self._lingering.get(destination_id, 1) - 1
            if left > 0:
                self._lingering[destination_id] = left
            else:
                self._lingering.pop(destination_id, None)
            logger.info(
                "a timed-out call to destination %d ended; its result was ignored", destination_id
            )
            self._wake()

        future.add_done_callback(done)


def _retrieve(future: asyncio.Future[Any] | Future[Any]) -> None:
    # A left-behind call's exception is nobody's to raise; reading it keeps asyncio from
    # logging "exception was never retrieved".
    if not future.cancelled():
        future.exception()


class Transports:
    """The transport for each delivery's kind; handler and Celery transports are made on
    first use (Celery is an optional dependency)."""

    def __init__(
        self,
        client: Client,
        guard: Guard,
        run_in_thread: RunInThread,
        wake: Callable[[], None] = lambda: None,
        celery_app: str | None = None,
    ):
        self.http = HttpTransport(client, guard)
        self.threads = Threads(run_in_thread, wake)
        self._celery_app = celery_app
        self._others: dict[str, Transport] = {}

    def lingering(self) -> Mapping[int, int]:
        """Destination id to how many of its calls still run after their attempts were
        recorded as timed out."""
        return self.threads.lingering()

    def for_delivery(self, delivery: OutboundDelivery) -> Transport:
        kind = delivery.kind
        if kind == "http":
            return self.http
        transport = self._others.get(kind)
        if transport is None:
            if kind == "handler":
                from hookway.send.handler import HandlerTransport

                transport = HandlerTransport(self.threads)
            else:
                from hookway.send.celery import CeleryTransport

                transport = CeleryTransport(self.threads, self._celery_app)
            self._others[kind] = transport
        return transport

    async def send(self, delivery: OutboundDelivery) -> AttemptResult:
        """Make one attempt with the delivery's transport; return its result. With
        OpenTelemetry, in a span of the event's trace whose context goes out with it."""
        if delivery.transform_error:
            # The same event gives the same failure: retrying can't help, a fixed
            # transform and a replay can.
            return Clock(delivery).result(
                "failed", error=delivery.transform_error, error_kind=ErrorKind.TRANSFORM
            )
        transport = self.for_delivery(delivery)
        if not (tracing.ENABLED and tracing.recording()):
            # The context stored with the event (if any) goes out as it came.
            return await transport.send(delivery)
        with tracing.attempt_span(delivery) as traced:
            result = await transport.send(traced.delivery)
            traced.done(result)
            return result


def timed_out(clock: Clock, timeout: float, exc: ThreadTimedOut, what: str) -> AttemptResult:
    """The result of a threaded attempt that passed its deadline."""
    if exc.started:
        error = (
            f"timed out after {timeout:g} s: {what} still running in its thread, which "
            "can't be stopped; its eventual result is ignored"
        )
    else:
        error = f"timed out after {timeout:g} s waiting for a free thread (all busy); not run"
    return clock.result("retry", error=error, error_kind=ErrorKind.TIMEOUT)
