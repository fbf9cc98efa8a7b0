"""Guarantee 1's other half: when the database can't commit in time, ingest answers the
documented 503 with Retry-After (never a 2xx, never a bare 500), stores nothing, and
works again as soon as the database does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hookway.models import Delivery, Event
from tests.dblock import database_write_lock

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DB_TIMEOUT = 0.3
WEBHOOK = b'{"type": "push", "ref": "refs/heads/main"}'


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
