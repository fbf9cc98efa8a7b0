"""Fixtures shared by every suite.

- ``make_source`` creates a Source row.
- ``client`` is an httpx client on Hookway's full ASGI application (handler, middleware,
  views) in this process; database writes from it happen in other threads, so tests that
  use it need ``transactional_db`` (the ``pytestmark`` in those modules says so).
- ``start_server`` starts a real Hookway server process (uvicorn) on the test database.
"""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connection

from hookway.models import Source

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (not skip) tests for the other database: ``make test`` runs the suite
    once on SQLite and once on PostgreSQL, so each runs where its fault exists."""
    from django.conf import settings

    vendor = "postgresql" if "postgresql" in settings.DATABASES["default"]["ENGINE"] else "sqlite"
    other = "sqlite_only" if vendor == "postgresql" else "postgres_only"
    keep = [item for item in items if item.get_closest_marker(other) is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


@pytest.fixture(scope="session", autouse=True)
def _close_connections_before_teardown(
    django_db_setup: None, django_db_blocker: Any
) -> Iterator[None]:
    """Async tests reach the database from asgiref's executor thread, whose connection
    outlives the test; close it (and the PostgreSQL pool) so the test database can be
    dropped at the end of the run."""
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import connections

    yield
    with django_db_blocker.unblock():
        from hookway import gate

        gate.close_writer_connections()
        asyncio.run(sync_to_async(connections.close_all)())
        connections.close_all()
        for conn in connections.all():
            if getattr(conn, "pool", None) is not None:
                conn.close_pool()


@pytest.fixture(autouse=True)
def _fresh_source_cache() -> Iterator[None]:
    """Each test's database starts empty: forget sources cached by the previous test."""
    from hookway import gate

    gate.clear_source_cache()
    yield
    gate.clear_source_cache()


@pytest.fixture
def python_gc_thresholds() -> Iterator[None]:
    """Python's default garbage-collector thresholds for the test (Hookway's startup
    raises them); the process's own back afterwards."""
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


@pytest.fixture
def make_source(transactional_db: None) -> Callable[..., Source]:
    def make(
        slug: str = "demo", verify: str = "none", secrets: list[str] | None = None, **kw: Any
    ) -> Source:
        return Source.objects.create(slug=slug, verify=verify, secrets=secrets or [], **kw)

    return make


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    from hookway.asgi import application

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_database_url() -> str:
    """The DATABASE_URL of the database pytest-django set up for this run."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] or "postgres"
    if s.get("PASSWORD"):
        auth += f":{s['PASSWORD']}"
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def spawn(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, "DATABASE_URL": test_database_url(), **env}
    with log_path.open("ab") as log:
        return subprocess.Popen(argv, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)


def uvicorn_args(port: int) -> list[str]:
    """The arguments after the interpreter that serve Hookway under uvicorn on ``port``,
    lifespan on (the embedded dispatcher), as the end-to-end tests start it."""
    return [
        "-m",
        "uvicorn",
        "hookway.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "on",
        "--no-access-log",
    ]


@pytest.fixture
def start_server(transactional_db: None, tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start Hookway under uvicorn (lifespan on); stopped at the end of the test."""
    servers: list[ServerProcess] = []

    def start(
        env: dict[str, str] | None = None, ready_timeout: float = 30, port: int | None = None
    ) -> ServerProcess:
        # ``port``: the port of a server stopped earlier in the test, to restart it there.
        port = port or free_port()
        log_path = tmp_path / f"server-{port}.log"
        env = {"HOOKWAY_ALLOW_PRIVATE_DESTINATIONS": "true", **(env or {})}
        process = spawn([sys.executable, *uvicorn_args(port)], env, log_path)
        server = ServerProcess(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
        servers.append(server)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
            try:
                if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                    return server
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"server not ready in {ready_timeout}s:\n{server.log()}")

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def receiver() -> Iterator[Callable[..., Any]]:
    """Start real HTTP receivers (tests.receivers.Receiver); stopped after the test."""
    from tests.receivers import Receiver

    started: list[Receiver] = []

    def start(behaviour: Any = None, port: int = 0) -> Receiver:
        r = Receiver(behaviour, port)
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()
