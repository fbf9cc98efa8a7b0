"""Every response says how long it took (``Server-Timing``) and which request it was
(``X-Request-ID``), and every request leaves one JSON log line; the probes answer."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import httpx
import pytest
from django.db import OperationalError

from hookway import gate

pytestmark = pytest.mark.django_db(transaction=True)

TOTAL = re.compile(r"(?:^|, )total;dur=\d+\.\d{2}(?:,|$)")
DB = re.compile(r"(?:^|, )db;dur=\d+\.\d{2}(?:,|$)")
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")
JSON = {"Content-Type": "application/json"}

# (method, path, body, headers, expected status, touches the database through the gate)
REQUESTS = {
    "ingest 202": ("POST", "/hooks/demo", b'{"type": "push"}', JSON, 202, True),
    "ingest 401": ("POST", "/hooks/locked", b'{"type": "push"}', JSON, 401, True),
    "ingest 404": ("POST", "/hooks/nope", b'{"type": "push"}', JSON, 404, True),
    "ingest 405": ("GET", "/hooks/demo", b"", {}, 405, False),
    "healthz": ("GET", "/healthz", b"", {}, 200, False),
    "readyz": ("GET", "/readyz", b"", {}, 200, True),
    "admin login": ("GET", "/admin/login/", b"", {}, 200, None),
}


@pytest.fixture
def sources(make_source: Any) -> None:
    make_source(slug="demo")
    make_source(slug="locked", verify="token", secrets=["right-token"])


def _request_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "hookway.request"]


@pytest.mark.parametrize("case", ["ingest 202", "ingest 401", "ingest 404", "ingest 405"])
async def test_ingest_responses_keep_nosniff_and_a_content_length(
    sources: None, client: httpx.AsyncClient, case: str
) -> None:
    method, path, body, headers, status, _ = REQUESTS[case]
    response = await client.request(method, path, content=body, headers=headers)
    assert response.status_code == status
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Length"] == str(len(response.content))


@pytest.mark.parametrize("case", list(REQUESTS))
async def test_every_response_carries_server_timing_request_id_and_one_log_line(
    sources: None,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    method, path, body, headers, status, touches_db = REQUESTS[case]
    with caplog.at_level(logging.INFO, logger="hookway.request"):
        response = await client.request(method, path, content=body, headers=headers)

    assert response.status_code == status, response.text[:300]
    timing = response.headers["Server-Timing"]
    assert TOTAL.search(timing), timing
    # Every response says how long it spent in the database, zero included.
    assert DB.search(timing), timing
    if touches_db is False:
        assert "db;dur=0.00" in timing, timing
    request_id = response.headers["X-Request-ID"]
    assert GENERATED_ID.match(request_id), request_id

    lines = _request_lines(caplog)
    assert len(lines) == 1, lines
    line = lines[0]
    assert line["method"] == method
    assert line["path"] == path
    assert line["status"] == status
    assert line["request_id"] == request_id
    assert isinstance(line["duration_ms"], float | int)
    assert line["duration_ms"] >= 0


@pytest.mark.parametrize(
    "incoming", ["req-123", "3f2a9c0e-1b7d-4e55-9a0b-2c1d3e4f5a6b", "a.b:c_d", "x" * 128]
)
async def test_a_sane_incoming_request_id_is_echoed(
    sources: None, client: httpx.AsyncClient, incoming: str
) -> None:
    for method, path, body, headers in [
        ("GET", "/healthz", b"", {}),
        ("POST", "/hooks/demo", b'{"type": "push"}', JSON),
    ]:
        response = await client.request(
            method, path, content=body, headers={**headers, "X-Request-ID": incoming}
        )
        assert response.status_code in (200, 202)
        assert response.headers["X-Request-ID"] == incoming


@pytest.mark.parametrize(
    "incoming",
    ["x" * 129, "has space", "<script>", "semi;colon", "new\tline", "caf\xe9", ""],
)
async def test_an_insane_incoming_request_id_is_replaced(
    sources: None, client: httpx.AsyncClient, incoming: str
) -> None:
    response = await client.get("/healthz", headers={b"X-Request-ID": incoming.encode("latin-1")})
    assert response.status_code == 200
    replaced = response.headers["X-Request-ID"]
    assert replaced != incoming
    assert GENERATED_ID.match(replaced), replaced


async def test_every_request_gets_its_own_generated_id(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/healthz")).headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5


async def test_healthz_is_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_ready_when_a_write_commits(client: httpx.AsyncClient) -> None:
    from hookway import runtime
    from hookway.models import Worker

    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok"}}
    # The check is a real committed write: this process's heartbeat row.
    worker = await Worker.objects.aget(id=runtime.WORKER_ID)
    assert worker.kind == "web"


async def test_readyz_is_503_with_the_reason_when_the_database_fails(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(*args: Any) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(gate, "abeat", unreachable)
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    payload = response.json()
    assert payload["status"] == "unavailable"
    assert "connection refused" in payload["checks"]["database"]


async def test_an_admin_page_reports_its_database_time(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    from asgiref.sync import sync_to_async
    from django.contrib.auth.models import User
    from django.test import Client

    user = await sync_to_async(User.objects.create_superuser)("root", "r@example.com", "pw")
    django_client = Client()
    await sync_to_async(django_client.force_login)(user)
    cookie = django_client.cookies["sessionid"].value
    with caplog.at_level(logging.INFO, logger="hookway.request"):
        response = await client.get(
            "/admin/hookway/event/", headers={"Cookie": f"sessionid={cookie}"}
        )
    assert response.status_code == 200
    (line,) = _request_lines(caplog)
    # The admin's own ORM queries (session, user, the list), not only the gate's.
    assert line["db_ms"] > 0
    db = float(response.headers["Server-Timing"].split("db;dur=")[1].split(",")[0])
    assert db > 0
