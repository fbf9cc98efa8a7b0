"""Hookway under gunicorn with its worker class, as docs/operations.md deploys it:
several workers apply the config file once, serve, and shut down without noise."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, spawn

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_gunicorn_workers_apply_the_config_once_and_stop_quietly(tmp_path: Path) -> None:
    config = tmp_path / "hookway.toml"
    config.write_text('[[sources]]\nslug = "inbox"\n')
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    process = spawn(
        [
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
        ],
        {"HOOKWAY_CONFIG": str(config), "HOOKWAY_EMBEDDED_DISPATCHER": "false"},
        log_path,
    )
    try:
        url = f"http://127.0.0.1:{port}/hooks/inbox"
        for _ in range(100):
            try:
                response = httpx.post(url, json={"type": "push"}, timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert response.status_code == 202, response.text
        time.sleep(1)  # both workers have started by now
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    log = log_path.read_text()
    assert log.count("Booting worker") == 2, log
    assert log.count("applied:") == 1, log
    assert "Error while closing socket" not in log, log
    assert "Traceback" not in log, log
