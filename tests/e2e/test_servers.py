"""Hookway under every ASGI server Django documents, each started as docs/operations.md
runs it (bench.common.ASGI_SERVERS holds the command lines): one server start per server,
which then takes a webhook and delivers it to a real receiver, and answers the ingest
path's limits the same way (431, 413 by length and chunked, ALLOWED_HOSTS, the client's
address behind a trusted proxy).

A server that runs the ASGI lifespan applies HOOKWAY_CONFIG and runs the embedded
dispatcher itself; one that does not (daphne) gets a standalone ``manage.py dispatch``
beside it, as the docs say, and the test checks that it really did not run the lifespan
(if a new version does, the docs and ASGI_SERVERS must say so)."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.common import ASGI_SERVERS
from hookway.models import Event
from tests.conftest import ServerProcess, free_port, spawn

# Once, in the SQLite run: the ASGI servers' layer; ingest and delivery are tested on both databases.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.sqlite_only]

LIMIT = 1024  # the source's max_body_bytes
# Below every server's own limits (granian, through hyper, answers more than 100 headers
# with its own empty 431 before Hookway sees the request).
MAX_HEADERS = 50
HEADER_BYTES = 4096
RUNNING = "running (concurrency"  # the dispatcher's start line


def wait_for(
    check: Callable[[], Any], what: str, log: Callable[[], str], seconds: float = 30
) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what} within {seconds}s:\n{log()}")


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    processes: list[ServerProcess] = []

    def start(name: str, argv: list[str], env: dict[str, str]) -> ServerProcess:
        log_path = tmp_path / f"{name}.log"
        process = ServerProcess("", spawn(argv, env, log_path), log_path)
        processes.append(process)
        return process

    yield start
    for process in reversed(processes):
        process.stop()


@pytest.mark.parametrize("name", list(ASGI_SERVERS))
def test_hookway_serves_and_delivers_the_same_under_every_asgi_server(
    name: str, tmp_path: Path, receiver: Callable[..., Any], started: Callable[..., ServerProcess]
) -> None:
    server = ASGI_SERVERS[name]
    target = receiver()
    config = tmp_path / "hookway.toml"
    config.write_text(
        f'[[sources]]\nslug = "inbox"\nmax_body_bytes = {LIMIT}\n\n'
        f'[[destinations]]\nname = "sink"\nurl = "{target.url("/sink")}"\n\n'
        '[[routes]]\nsource = "inbox"\ndestination = "sink"\n'
    )
    env = {
        "HOOKWAY_CONFIG": str(config),
        "HOOKWAY_ALLOW_PRIVATE_DESTINATIONS": "true",
        "HOOKWAY_MAX_HEADERS": str(MAX_HEADERS),
        "HOOKWAY_MAX_HEADER_BYTES": str(HEADER_BYTES),
        "HOOKWAY_SHUTDOWN_GRACE": "2",
    }
    dispatcher = None
    if not server.lifespan:
        # The standalone dispatcher applies the config file too (the server won't).
        dispatcher = started(
            "dispatcher",
            [sys.executable, "manage.py", "dispatch"],
            {**env, "HOOKWAY_POLL_INTERVAL": "0.2"},
        )
        wait_for(
            lambda: RUNNING in dispatcher.log(), "the dispatcher did not start", dispatcher.log
        )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    web = started(name, server.command(port), env)

    def logs() -> str:
        return web.log() + ("\n--- dispatcher\n" + dispatcher.log() if dispatcher else "")

    def alive_and_up() -> bool:
        assert web.process.poll() is None, f"{name} exited:\n{logs()}"
        return answers(url + "/healthz")

    wait_for(alive_and_up, f"{name} did not serve", logs, seconds=60)

    # Readiness names the embedded dispatcher only where the lifespan started it.
    ready = httpx.get(url + "/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ("dispatcher" in ready.json()["checks"]) is server.lifespan, ready.text

    # A webhook, stored and delivered.
    accepted = httpx.post(url + "/hooks/inbox", json={"type": "ping", "n": 1}, timeout=10)
    assert accepted.status_code == 202, accepted.text
    delivered = wait_for(lambda: target.received("/sink"), "no delivery", logs)
    assert json.loads(delivered[0].body) == {"type": "ping", "n": 1}
    assert delivered[0].headers["x-hookway-source"] == "inbox"

    # The limits, answered by Hookway's edge the same way under every server.
    many = {f"X-Extra-{i}": "1" for i in range(MAX_HEADERS + 1)}
    too_many = httpx.post(url + "/hooks/inbox", json={}, headers=many, timeout=10)
    assert too_many.status_code == 431, too_many.text
    assert too_many.json()["error"] == "headers_too_large"
    big_header = httpx.post(
        url + "/hooks/inbox", json={}, headers={"X-Big": "x" * HEADER_BYTES}, timeout=10
    )
    assert big_header.status_code == 431, big_header.text
    assert big_header.json()["error"] == "headers_too_large"

    body = json.dumps({"type": "big", "pad": "x" * LIMIT}).encode()
    declared = httpx.post(
        url + "/hooks/inbox", content=body, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert declared.status_code == 413, declared.text
    assert declared.json()["error"] == "body_too_large"
    chunked = httpx.post(
        url + "/hooks/inbox",
        content=iter([body[:500], body[500:]]),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert chunked.status_code == 413, chunked.text

    wrong_host = httpx.post(
        url + "/hooks/inbox", json={"type": "x"}, headers={"Host": "evil.example"}, timeout=10
    )
    assert wrong_host.status_code == 400, wrong_host.text

    # The client's address: a proxy on this machine is trusted by default
    # (FORWARDED_ALLOW_IPS), another peer's X-Forwarded-For is not.
    via_proxy = httpx.post(
        url + "/hooks/inbox",
        json={"type": "a"},
        headers={"X-Forwarded-For": "203.0.113.9"},
        timeout=10,
    )
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2")) as elsewhere:
        spoofed = elsewhere.post(
            url + "/hooks/inbox",
            json={"type": "b"},
            headers={"X-Forwarded-For": "203.0.113.9"},
            timeout=10,
        )
    assert Event.objects.get(pk=via_proxy.json()["id"]).client_ip == "203.0.113.9"
    assert Event.objects.get(pk=spoofed.json()["id"]).client_ip == "127.0.0.2"
    assert Event.objects.get(pk=accepted.json()["id"]).client_ip == "127.0.0.1"
    # Only the accepted ones were stored: the refusals changed nothing.
    assert Event.objects.count() == 3

    # uvicorn re-raises the SIGTERM it handled (-15); the others exit 0.
    assert web.stop() in (0, -signal.SIGTERM), logs()
    log = web.log()
    # The lifespan ran (the embedded dispatcher started, and stopped) exactly where
    # ASGI_SERVERS says it does.
    assert (RUNNING in log) is server.lifespan, log
    assert "Traceback" not in logs(), logs()
