"""Ingest's writer waits for another connection's write lock (within HOOKWAY_DB_TIMEOUT)
instead of failing: a busy database delays an ack, it doesn't lose it."""

from __future__ import annotations

import threading
import time

import pytest
from django.utils import timezone

from hookway.models import Event
from hookway.store.events import IncomingEvent, store_events
from tests.dblock import database_write_lock

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_briefly_held_write_lock_delays_the_store_but_does_not_fail_it(make_source):
    source = make_source("locked")
    with database_write_lock() as holder:
        release = threading.Timer(0.3, holder.rollback)
        started = time.monotonic()
        release.start()
        try:
            (stored,) = store_events(
                [
                    IncomingEvent(
                        source_id=source.id,
                        event_name="push",
                        delivery_id=None,
                        content_type="application/json",
                        headers={},
                        body=b"{}",
                        received_at=timezone.now(),
                    )
                ]
            )
        finally:
            release.join()
    assert time.monotonic() - started >= 0.25
    assert stored.duplicate is False
    assert Event.objects.filter(pk=stored.id).exists()
