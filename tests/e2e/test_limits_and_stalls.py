"""A real server under abuse and a stalled database: oversized headers and bodies are
refused before they are read, a PostgreSQL connection that stops answering doesn't hang
ingest, and readiness reports the embedded dispatcher."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from django.db import connection

from hookway.models import Event
from tests import conftest
from tests.conftest import ServerProcess
from tests.tcpproxy import StallingProxy

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WEBHOOK = b'{"type": "push"}'


def raw_request(server: ServerProcess, head: bytes, body: bytes = b"") -> tuple[bytes, float]:
    """Send ``head`` (and ``body``) on a plain socket; return the status line and how long
    the answer took. The body, if any, is never completed."""
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(head + body)
        reply = sock.recv(65536)
        return reply.split(b"\r\n", 1)[0], time.monotonic() - started


@pytest.fixture
def server(start_server: Callable[..., ServerProcess], make_source: Callable[..., Any]) -> Any:
    make_source(slug="demo")
    return start_server({"HOOKWAY_EMBEDDED_DISPATCHER": "false"})


def test_a_megabyte_header_is_431_and_stores_nothing(server: ServerProcess) -> None:
    head = (
        b"POST /hooks/demo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"X-Big: " + b"v" * (1024 * 1024) + b"\r\nContent-Length: 16\r\n\r\n"
    )
    status, _ = raw_request(server, head, WEBHOOK)
    assert status == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        (b"PUT /hooks/demo", b"405"),
        (b"POST /healthz", b"413"),
        (b"POST /echo", b"413"),
        (b"POST /admin/login/", b"413"),
    ],
)
def test_a_declared_200_mib_body_is_refused_before_it_is_sent(
    server: ServerProcess, request_line: bytes, status: bytes
) -> None:
    head = request_line + (
        b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 209715200\r\n\r\n"
    )
    line, elapsed = raw_request(server, head, b"x" * 1024)
    assert line.split(b" ")[1] == status, line
    assert elapsed < 2, "answered without waiting for the body"


def test_readyz_reports_the_embedded_dispatcher(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server()
    for _ in range(50):
        response = httpx.get(server.url + "/readyz", timeout=5)
        if response.status_code == 200:
            break
        time.sleep(0.1)
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "dispatcher": "ok"}


@pytest.mark.postgres_only
def test_a_stalled_postgresql_connection_does_not_hang_ingest(
    start_server: Callable[..., ServerProcess], make_source: Callable[..., Any]
) -> None:
    make_source(slug="demo")
    settings = connection.settings_dict
    proxy = StallingProxy(settings["HOST"] or "127.0.0.1", int(settings["PORT"] or 5432))
    server: ServerProcess | None = None
    try:
        url = urlsplit(conftest.test_database_url())
        proxied = url._replace(netloc=f"{url.username}@127.0.0.1:{proxy.port}").geturl()
        server = start_server(
            {
                "DATABASE_URL": proxied,
                "HOOKWAY_DB_TIMEOUT": "1",
                "HOOKWAY_EMBEDDED_DISPATCHER": "false",
            }
        )

        def post(key: str) -> httpx.Response:
            return httpx.post(
                server.url + "/hooks/demo",
                content=WEBHOOK,
                headers={"Content-Type": "application/json", "Idempotency-Key": key},
                timeout=30,
            )

        assert post("before").status_code == 202
        proxy.stall()
        answers = [post(f"stalled-{i}") for i in range(3)]
        for response in answers:
            assert response.status_code == 503, response.text
            assert "Retry-After" in response.headers
            # Deadline 1 s, plus 1 s for a commit already under way when it passed.
            assert response.elapsed.total_seconds() < 3
        proxy.resume()
        # The senders retry with the same ids: each is stored once, whether its first
        # try's commit landed after its 503 (then this is a duplicate) or not.
        for i in range(3):
            retry = None
            for _ in range(20):
                retry = post(f"stalled-{i}")
                if retry.status_code in (200, 202):
                    break
                time.sleep(0.5)
            assert retry is not None
            assert retry.status_code in (200, 202), retry.text
            assert Event.objects.filter(delivery_id=f"stalled-{i}").count() == 1
    finally:
        if server is not None:
            server.stop()  # its connections go before the test database is dropped
        proxy.close()
