"""Fixtures of the end-to-end suites: real dispatcher processes, and any other process
a test starts."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import spawn

FAST_ENV = {
    "HOOKWAY_ALLOW_PRIVATE_DESTINATIONS": "true",
    "HOOKWAY_POLL_INTERVAL": "0.1",
    "HOOKWAY_RETRY_SCHEDULE": "0,0.2",
}


@pytest.fixture
def dispatchers(
    tmp_path: Path, processes: Callable[..., subprocess.Popen[bytes]]
) -> Callable[..., subprocess.Popen[bytes]]:
    """Start a ``manage.py dispatch`` with FAST_ENV; killed at the end of the test."""
    count = 0

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        nonlocal count
        log = tmp_path / f"dispatch-{count}.log"
        count += 1
        process = processes(
            [sys.executable, "manage.py", "dispatch", *args], {**FAST_ENV, **(env or {})}, log
        )
        process.log_path = log  # type: ignore[attr-defined]
        return process

    return start


def log_of(process: subprocess.Popen[bytes]) -> str:
    return Path(process.log_path).read_text(errors="replace")  # type: ignore[attr-defined]


@pytest.fixture
def processes() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start a process (argv, environment, log file); killed at the end of the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        process = spawn(argv, env, log)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
