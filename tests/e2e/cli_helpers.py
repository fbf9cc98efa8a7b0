"""Running the real ``hookway`` command (the console script the package installs) against
a real server: one-shot commands, and ``hookway listen`` as a process whose JSON lines are
collected as they come."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

HOOKWAY = str(Path(sys.executable).with_name("hookway"))
# A quick stream: keepalives every half second, polls every tenth.
STREAM_ENV = {"HOOKWAY_STREAM_HEARTBEAT": "0.5", "HOOKWAY_STREAM_POLL_INTERVAL": "0.1"}
WAIT = 40.0  # generous: the machine is shared; nothing here measures time


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a developer without any Hookway settings (nor a config file)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKWAY_")}
    env["HOOKWAY_CLI_CONFIG"] = str(tmp_path / "no-such-config.toml")
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **extra}


def hookway(
    tmp_path: Path, *args: str, input: bytes | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOOKWAY, *args],
        input=input.decode() if input is not None else None,
        capture_output=True,
        text=True,
        env=cli_env(tmp_path, **env),
        timeout=120,
    )


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def post(url: str, slug: str, payload: dict[str, Any], **headers: str) -> str:
    response = httpx.post(f"{url}/hooks/{slug}", json=payload, headers=headers, timeout=15)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


class Listening:
    """``hookway listen --json …`` running; ``lines`` are its output objects so far."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [HOOKWAY, "listen", "--json", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(tmp_path),
        )
        self.lines: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self._lock = threading.Lock()
        self._readers = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self.lines.append(json.loads(line))

    def _read_err(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    def of(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [line for line in self.lines if line.get("type") == kind]

    def wait_for(self, kind: str, count: int = 1) -> list[dict[str, Any]]:
        return wait_for(
            lambda: len(self.of(kind)) >= count and self.of(kind),
            f"{count} '{kind}' line(s); got {self.lines}, stderr {self.stderr}",
        )

    def interrupt(self) -> int:
        """Ctrl-C, and the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for reader in self._readers:
            reader.join(10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
