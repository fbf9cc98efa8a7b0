"""Celery destinations against the real Redis on this machine and a real ``celery worker``
process: the task runs with the event; a broker that is down fails the attempt, which is
retried."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hookway.models import Delivery, DeliveryState
from tests.integration.test_dispatcher import attempts_of, dispatcher, post, routes_to

pytestmark = pytest.mark.django_db(transaction=True)

TASK = "tests.celery_app.record_event"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def celery_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    queue = f"hookway-tests-{uuid.uuid4().hex[:12]}"
    out = tmp_path / "tasks"
    out.mkdir()
    monkeypatch.setenv("HOOKWAY_TEST_CELERY_QUEUE", queue)
    monkeypatch.setenv("HOOKWAY_TEST_CELERY_OUT", str(out))
    # The app reads its queue at import: a fresh import for this test's queue.
    sys.modules.pop("tests.celery_app", None)
    return {"queue": queue, "out": str(out)}


@pytest.fixture
def worker(celery_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "tests.celery_app:app",
            "worker",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
            "-Q",
            celery_env["queue"],
        ],
        cwd=ROOT,
        env={**os.environ, **{"PYTHONPATH": str(ROOT)}},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def read_files(out: Path) -> list[dict[str, Any]]:
    return [json.loads(f.read_text()) for f in sorted(out.glob("*.json"))]


async def wait_for_files(out: Path, count: int, seconds: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = read_files(out)  # a few small files: not worth a thread
        if len(found) >= count:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"the worker ran {len(read_files(out))} tasks, not {count}")


async def test_the_celery_worker_runs_the_task_with_the_event(client, celery_env, worker):
    await routes_to({"name": "tasks", "celery_task": TASK})
    stored = await post(client, name="project_create", path="group/app")

    stats = await asyncio.wait_for(dispatcher(celery_app="tests.celery_app:app").run(), timeout=60)

    assert stats.succeeded == 1
    delivery = await Delivery.objects.aget()
    [attempt] = await attempts_of(delivery.pk)
    task_id = f"{delivery.pk}-1"
    assert attempt.outcome == "success"
    assert attempt.response_body == f"enqueued Celery task {TASK}, id {task_id}"
    [event] = await wait_for_files(Path(celery_env["out"]), 1)
    assert event["id"] == stored["id"]
    assert event["delivery_id"] == delivery.pk
    assert event["source"] == "src"
    assert event["event_name"] == "project_create"
    assert event["payload"] == {"event_name": "project_create", "path": "group/app"}
    assert json.loads(event["body"]) == event["payload"]
    assert event["attempt"] == 1
    assert worker.poll() is None


async def test_a_broker_that_is_down_fails_the_attempt_and_it_is_retried(client, celery_env):
    await routes_to({"name": "tasks", "celery_task": TASK, "max_attempts": 2})
    await post(client)

    stats = await asyncio.wait_for(dispatcher(celery_app="tests.celery_app:down").run(), timeout=60)

    assert (stats.retried, stats.dead) == (1, 1)
    delivery = await Delivery.objects.aget()
    assert delivery.state == DeliveryState.DEAD
    attempts = await attempts_of(delivery.pk)
    assert [a.outcome for a in attempts] == ["retry", "failed"]
    for attempt in attempts:
        assert attempt.error_kind == "broker"
        assert f"the broker did not accept task {TASK}" in attempt.error
        assert "127.0.0.1:9" in attempt.error
