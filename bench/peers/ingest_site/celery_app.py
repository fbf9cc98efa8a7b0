"""The Celery app of the ``celery`` peer: the view only publishes (``.delay()``) to Redis;
no worker runs, as none is needed for the ack."""

import os

from celery import Celery

app = Celery(
    "ingest_peer",
    broker=os.environ.get("INGEST_CELERY_BROKER", "redis://127.0.0.1:6379/15"),
)
app.conf.task_default_queue = os.environ.get("INGEST_CELERY_QUEUE", "bench-ingest")
app.conf.broker_connection_retry_on_startup = True


@app.task(name="bench.process_webhook")
def process_webhook(event_name: str, payload: object, headers: dict[str, str]) -> None:
    """What the worker would run; never runs in the ingest benchmark."""
