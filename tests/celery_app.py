"""The Celery app of the Celery-destination tests: the real Redis on 127.0.0.1:6379 (or
HOOKWAY_TEST_CELERY_BROKER), a queue of the test's own (HOOKWAY_TEST_CELERY_QUEUE) so
other users of that Redis are not disturbed, and a task that writes the event it got to
a file in HOOKWAY_TEST_CELERY_OUT, which the test reads."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from celery import Celery

BROKER = os.environ.get("HOOKWAY_TEST_CELERY_BROKER", "redis://127.0.0.1:6379/14")


def make_app(broker: str) -> Celery:
    app = Celery("hookway_tests", broker=broker)
    app.conf.task_default_queue = os.environ.get("HOOKWAY_TEST_CELERY_QUEUE", "hookway-tests")
    app.conf.broker_connection_retry_on_startup = True
    # Fail a publish to a down broker after one reconnection, not Celery's ~6 s of them.
    app.conf.broker_transport_options = {"max_retries": 1, "interval_start": 0}
    return app


app = make_app(BROKER)
# The same, pointed at a port where nothing listens ("broker down").
down = make_app(os.environ.get("HOOKWAY_TEST_CELERY_DOWN", "redis://127.0.0.1:9/14"))


@app.task(name="tests.celery_app.record_event")
def record_event(event: dict[str, Any]) -> None:
    out = Path(os.environ["HOOKWAY_TEST_CELERY_OUT"])
    (out / f"{event['delivery_id']}-{event['attempt']}.json").write_text(json.dumps(event))
