"""Celery destinations: enqueue a task with the event (docs/handlers.md).

The attempt succeeds once the broker accepted the message (the attempt records the task
id); what the task then does is Celery's business (its own retries, its result backend).
Publishing is blocking I/O, so it runs on a worker thread with the destination's timeout.
The task gets one argument, the event as a JSON-serialisable dict
(``HandlerEvent.as_json``), and is sent by name: the dispatcher needs the Celery app's
broker settings, not the task's code.

Which Celery app: HOOKWAY_CELERY_APP ("proj.celery:app") when set, else Celery's current
app (the one a Django project's ``proj/__init__.py`` imports, as Celery's Django guide
sets up).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from hookway.handlers import HandlerNotFound, import_object
from hookway.outbound import AttemptResult, ErrorKind, OutboundDelivery
from hookway.send.handler import describe, event_of
from hookway.send.transport import Clock, Threads, ThreadTimedOut, timed_out

NOT_INSTALLED = "Celery is not installed in this environment: pip install 'hookway[celery]'"


def load_app(name: str | None) -> Any:
    """The Celery app named ``"module:attribute"``, or Celery's current app."""
    if name:
        return import_object(name, "HOOKWAY_CELERY_APP")
    from celery import current_app

    return current_app._get_current_object()


class CeleryTransport:
    def __init__(self, threads: Threads, app_name: str | None = None):
        self.threads = threads
        self.app_name = app_name
        self._app: Any = None

    def _get_app(self) -> Any:
        if self._app is None:
            self._app = load_app(self.app_name)
        return self._app

    async def send(self, delivery: OutboundDelivery) -> AttemptResult:
        clock = Clock(delivery)
        if importlib.util.find_spec("celery") is None:
            return clock.result("failed", error=NOT_INSTALLED, error_kind=ErrorKind.BROKER)
        try:
            app = self._get_app()
        except HandlerNotFound as exc:
            return clock.result("retry", error=str(exc), error_kind=ErrorKind.BROKER)
        data = event_of(delivery).as_json()
        # One task id per attempt: traceable from the attempt to the worker's log.
        task_id = f"{delivery.delivery_id}-{delivery.attempt}"
        name = delivery.celery_task

        def publish() -> str:
            # retry=False: Hookway's schedule retries; Celery's own publish retries
            # would hold the thread past the attempt's deadline.
            result = app.send_task(name, args=[data], task_id=task_id, retry=False)
            return str(result.id)

        try:
            sent = await self.threads.call(delivery.destination_id, publish, delivery.timeout)
        except ThreadTimedOut as exc:
            return timed_out(clock, delivery.timeout, exc, "the publish is")
        except Exception as exc:  # noqa: BLE001 - kombu's errors vary by broker; all are recorded
            return clock.result(
                "retry",
                error=f"the broker did not accept task {name}: {describe(exc)}",
                error_kind=ErrorKind.BROKER,
            )
        return clock.result("success", response_body=f"enqueued Celery task {name}, id {sent}")
