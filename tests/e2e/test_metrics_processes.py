"""/metrics from real processes: two gunicorn workers (a scrape reaches either) report
the sum of both, with the directory Hookway's worker class makes for them or with one
the operator sets and a standalone dispatcher shares; a dispatcher's own endpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.metricstext import Samples, names, parse, value

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ENV = {
    "HOOKWAY_ALLOW_PRIVATE_DESTINATIONS": "true",
    "HOOKWAY_POLL_INTERVAL": "0.1",
}


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "hookway.toml"
    path.write_text(
        '[[sources]]\nslug = "inbox"\n\n'
        f'[[destinations]]\nname = "sink"\nurl = "{url}"\n\n'
        '[[routes]]\nsource = "inbox"\ndestination = "sink"\n'
    )
    return path


def gunicorn(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "hookway.asgi:application",
        "-k",
        "hookway.server.UvicornWorker",
        "-w",
        "2",
        "-b",
        f"127.0.0.1:{port}",
    ]


def scrape(url: str, **headers: str) -> Samples:
    response = httpx.get(url, headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    return parse(response.text)


def wait_until_up(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not up in 30 s:\n{log.read_text()}")


def post_until_both_workers_counted(base: str, directory: Path, batch: int = 20) -> int:
    """POST webhooks (each on a new connection, several at once) until both workers have
    counted some, so the scrapes below must add two processes' counts; return how many."""

    def one(_: int) -> int:
        return httpx.post(base + "/hooks/inbox", json={"type": "push"}, timeout=10).status_code

    sent = 0
    with ThreadPoolExecutor(8) as pool:
        for _ in range(10):
            assert set(pool.map(one, range(batch))) == {202}
            sent += batch
            if len(list(directory.glob("counter_*.db"))) >= 2:
                return sent
    raise AssertionError(f"one gunicorn worker took every request: {os.listdir(directory)}")


def test_two_gunicorn_workers_report_the_sum_in_every_scrape(
    tmp_path: Path, receiver: Any, processes: Any
) -> None:
    sink = receiver()
    temp = tmp_path / "tmp"
    temp.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "gunicorn.log"
    env = {**ENV, "HOOKWAY_CONFIG": str(config(tmp_path, sink.url("/sink"))), "TMPDIR": str(temp)}
    server = processes(gunicorn(port), env, log)
    wait_until_up(base, server, log)
    (directory,) = temp.glob("hookway-metrics-*")

    sent = post_until_both_workers_counted(base, directory)
    wait_for(lambda: len(sink.received()) == sent, 30, f"{sent} deliveries")

    seen_workers = {p.name.split("_")[1] for p in directory.glob("counter_*.db")}
    assert len(seen_workers) == 2

    # Each worker reports its ingest counts at least every second (hookway.metrics.registry).
    def counted() -> bool:
        samples = scrape(base + "/metrics")
        return value(samples, "hookway_webhooks_received_total", source="inbox", status="202") == (
            sent
        )

    wait_for(counted, 10, "both workers' counts")
    # Whichever worker answers a scrape, it reports both workers' counts.
    for _ in range(8):
        samples = scrape(base + "/metrics")
        assert value(samples, "hookway_webhooks_received_total", source="inbox", status="202") == (
            sent
        )
        assert value(samples, "hookway_ingest_duration_seconds_count") == sent
        assert value(
            samples, "hookway_deliveries_total", destination="sink", outcome="succeeded"
        ) == (sent)
        assert value(samples, "hookway_deliveries_pending", destination="sink") == 0
        assert value(samples, "hookway_event_loop_lag_seconds_count") > 0

    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0
    assert not directory.exists(), "the master removes the directory it made"
    assert "Traceback" not in log.read_text()


def test_a_standalone_dispatcher_counts_into_the_web_servers_metrics_and_its_own(
    tmp_path: Path, receiver: Any, processes: Any
) -> None:
    sink = receiver()
    shared = tmp_path / "metrics"  # missing: Hookway creates it
    env = {
        **ENV,
        "HOOKWAY_CONFIG": str(config(tmp_path, sink.url("/sink"))),
        "HOOKWAY_EMBEDDED_DISPATCHER": "false",
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web_log = tmp_path / "gunicorn.log"
    web = processes(gunicorn(port), env, web_log)
    wait_until_up(base, web, web_log)
    sent = post_until_both_workers_counted(base, shared)

    dispatcher_port = free_port()
    dispatcher_log = tmp_path / "dispatch.log"
    token = "dispatcher-metrics-token-0123456789"
    dispatcher = processes(
        [
            sys.executable,
            "manage.py",
            "dispatch",
            "--metrics-address",
            f"127.0.0.1:{dispatcher_port}",
        ],
        {**env, "HOOKWAY_METRICS_TOKEN": token, "HOOKWAY_METRICS_ALLOWLIST": ""},
        dispatcher_log,
    )
    wait_for(lambda: len(sink.received()) == sent, 30, f"{sent} deliveries")

    def delivered() -> bool:
        samples = scrape(base + "/metrics")
        return (
            value(samples, "hookway_deliveries_total", destination="sink", outcome="succeeded")
            == sent
        )

    wait_for(delivered, 10, "the web server's /metrics to count the deliveries")
    for _ in range(4):
        samples = scrape(base + "/metrics")
        assert value(samples, "hookway_webhooks_received_total", source="inbox", status="202") == (
            sent
        )
        assert value(samples, "hookway_deliveries_pending", destination="sink") == 0

    own = f"http://127.0.0.1:{dispatcher_port}/metrics"
    # Only the token opens it: its allowlist is empty.
    refused = httpx.get(own, timeout=5)
    assert refused.status_code == 403
    mine = scrape(own, Authorization=f"Bearer {token}")
    assert value(mine, "hookway_deliveries_total", destination="sink", outcome="succeeded") == sent
    assert "hookway_database_up" not in names(mine)

    dispatcher.send_signal(signal.SIGTERM)
    assert dispatcher.wait(timeout=30) == 0
    web.send_signal(signal.SIGTERM)
    assert web.wait(timeout=30) == 0
    assert shared.is_dir(), "an operator's directory is theirs: Hookway never removes it"
    for log in (web_log, dispatcher_log):
        assert "Traceback" not in log.read_text(), log.read_text()
