"""Ingest's writer waits for another connection's write lock (within HOOKWAY_DB_TIMEOUT)
instead of failing: a busy database delays an ack, it doesn't lose it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from hookway.models import Event
from hookway.store.events import IncomingEvent, store_events

pytestmark = pytest.mark.django_db(transaction=True)


def hold_write_lock() -> Any:
    """Take the database's write lock from another connection; return that connection."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        import sqlite3

        other: Any = sqlite3.connect(s["NAME"], isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
    else:
        import psycopg

        other = psycopg.connect(
            dbname=s["NAME"],
            user=s["USER"] or "postgres",
            host=s["HOST"] or "127.0.0.1",
            port=s["PORT"] or 5432,
        )
        other.execute("LOCK TABLE hookway_event IN ACCESS EXCLUSIVE MODE")
    return other


def test_a_briefly_held_write_lock_delays_the_store_but_does_not_fail_it(make_source):
    source = make_source("locked")
    other = hold_write_lock()
    release = threading.Timer(0.3, other.rollback)
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
        other.close()
    assert time.monotonic() - started >= 0.25
    assert stored.duplicate is False
    assert Event.objects.filter(pk=stored.id).exists()
