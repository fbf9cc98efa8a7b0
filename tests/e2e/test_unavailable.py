"""Guarantee 1's other half: when the database can't commit in time, ingest answers the
documented 503 with Retry-After (never a 2xx, never a bare 500), stores nothing, and
works again as soon as the database does."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from django.db import connection

from hookway.models import Delivery, Event

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DB_TIMEOUT = 0.3
WEBHOOK = b'{"type": "push", "ref": "refs/heads/main"}'


@contextmanager
def database_write_lock() -> Iterator[None]:
    """Hold the test database's write lock from a connection of our own."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        # isolation_level=None: sqlite3 sends our BEGIN as written, no implicit ones.
        holder = sqlite3.connect(settings["NAME"], isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            yield
        finally:
            holder.rollback()
            holder.close()
    else:
        import psycopg

        holder_pg = psycopg.connect(
            host=settings["HOST"] or "127.0.0.1",
            port=settings["PORT"] or 5432,
            user=settings["USER"] or "postgres",
            password=settings["PASSWORD"] or None,
            dbname=settings["NAME"],
        )
        try:
            holder_pg.execute("LOCK TABLE hookway_event IN ACCESS EXCLUSIVE MODE")
            yield
        finally:
            holder_pg.rollback()
            holder_pg.close()


def post(url: str, key: str) -> httpx.Response:
    return httpx.post(
        url + "/hooks/demo",
        content=WEBHOOK,
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
        timeout=10,
    )


@pytest.fixture
def server(start_server: Callable[..., Any], make_source: Callable[..., Any]) -> Any:
    make_source(slug="demo")
    return start_server(
        {"HOOKWAY_DB_TIMEOUT": str(DB_TIMEOUT), "HOOKWAY_EMBEDDED_DISPATCHER": "false"}
    )


def test_locked_database_gets_503_with_retry_after_and_stores_nothing(server: Any) -> None:
    with database_write_lock():
        response = post(server.url, "first-try")
        assert response.status_code == 503, response.text
        retry_after = response.headers["Retry-After"]
        assert retry_after.isdigit()
        assert int(retry_after) >= 1
        payload = response.json()
        assert payload["error"]
        assert payload["detail"]

    assert Event.objects.count() == 0
    assert Delivery.objects.count() == 0

    # The sender retries (same delivery id) once the database is back: stored, not a
    # duplicate of anything, because the 503 stored nothing.
    response = post(server.url, "first-try")
    assert response.status_code == 202, response.text
    assert Event.objects.filter(pk=response.json()["id"], delivery_id="first-try").exists()
    assert Event.objects.count() == 1


def test_503_comes_back_soon_after_the_database_timeout(server: Any) -> None:
    with database_write_lock():
        response = post(server.url, "timed")
    assert response.status_code == 503, response.text
    # The deadline is 0.3 s; a generous bound still proves it doesn't hang on the lock
    # (a sender's timeout is typically 10 s or less).
    assert response.elapsed.total_seconds() < 5
