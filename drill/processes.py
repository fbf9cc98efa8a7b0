"""Hookway's processes under the drill: the web process (uvicorn with the embedded
dispatcher) and a standalone ``manage.py dispatch``.

Each runs in its own process group (so a kill takes anything it forked) with its output
appended to var/drill/<role>.log, a marker line before each start. Every start is a
``Life`` (pid, when it started and ended, and how), which the report lists and the
duplicate check uses to tell a killed dispatcher from a living one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from drill.config import ROOT
from drill.database import DrillSetupError
from drill.timeline import Timeline

KILLED = "kill -9 by the drill"


@dataclass
class Life:
    """One OS process's life; times are time.monotonic() readings
    (Timeline.at_monotonic places them on the drill's timeline)."""

    role: str
    pid: int
    started: float
    ready: float | None = None
    ended: float | None = None
    how: str = ""  # how it ended
    unexpected: bool = False  # it exited without the drill stopping it

    @property
    def killed(self) -> bool:
        return self.how == KILLED


class HookwayProcess:
    def __init__(
        self,
        role: str,
        argv: list[str],
        env: dict[str, str],
        log_path: Path,
        timeline: Timeline,
        health_url: str | None = None,
    ) -> None:
        self.role = role
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.timeline = timeline
        self.health_url = health_url  # None: ready once the log says it is running
        self.proc: subprocess.Popen[bytes] | None = None
        self.lives: list[Life] = []
        self._log_offset = 0
        self._stopping = False  # the drill is stopping it: its exit is no surprise

    @classmethod
    def web(
        cls, port: int, env: dict[str, str], log_path: Path, timeline: Timeline
    ) -> HookwayProcess:
        argv = [
            sys.executable,
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
            "--timeout-graceful-shutdown",
            "15",
        ]
        env = {**env, "HOOKWAY_EMBEDDED_DISPATCHER": "true"}
        return cls("web", argv, env, log_path, timeline, f"http://127.0.0.1:{port}/healthz")

    @classmethod
    def dispatcher(cls, env: dict[str, str], log_path: Path, timeline: Timeline) -> HookwayProcess:
        argv = [sys.executable, "manage.py", "dispatch"]
        return cls("dispatch", argv, env, log_path, timeline)

    @property
    def life(self) -> Life | None:
        return self.lives[-1] if self.lives else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self._stopping = False
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            log.write(
                f"----- drill: starting {self.role} at t={self.timeline.now():.1f}s\n".encode()
            )
            log.flush()
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.lives.append(Life(self.role, self.proc.pid, time.monotonic()))

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until it serves (web: /healthz answers 200; dispatcher: it logged that it
        runs); raise DrillSetupError with its log if it dies or takes too long."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise DrillSetupError(f"{self.role} exited while starting:\n{self.log_tail()}")
            if self._ready():
                assert self.life is not None
                self.life.ready = time.monotonic()
                return
            time.sleep(0.1)
        raise DrillSetupError(f"{self.role} not ready within {timeout:g}s:\n{self.log_tail()}")

    def _ready(self) -> bool:
        if self.health_url is not None:
            try:
                with urllib.request.urlopen(self.health_url, timeout=1) as response:
                    return bool(response.status == 200)
            except (OSError, urllib.error.URLError):
                return False
        text = self._log_since_start()
        return " running" in text or " started" in text

    def _log_since_start(self) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """kill -9 the process group, as a crash or power loss would."""
        if self.proc is None:
            return
        self._stopping = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._ended(KILLED)

    def terminate(self, timeout: float = 20.0) -> None:
        """SIGTERM (a graceful stop), then kill -9 the group if it takes longer than timeout."""
        if self.proc is None or not self.alive():
            self.check_exit()
            return
        self._stopping = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
            how = f"SIGTERM at the end: {_exit(code)}"
        except subprocess.TimeoutExpired:
            how = f"SIGTERM at the end: still running after {timeout:g}s, killed"
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._ended(how)

    def check_exit(self) -> Life | None:
        """If it exited without the drill stopping it, record that and return its Life."""
        life = self.life
        if self.proc is None or life is None or life.ended is not None or self._stopping:
            return None
        code = self.proc.poll()
        if code is None:
            return None
        self._ended(f"exited on its own ({_exit(code)})")
        life.unexpected = True
        return life

    def _ended(self, how: str) -> None:
        life = self.life
        if life is not None and life.ended is None:
            life.ended = time.monotonic()
            life.how = how

    def cleanup(self) -> None:
        """Whatever happened, leave nothing running (the process group included)."""
        if self.proc is not None:
            self._stopping = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
            self._ended("killed at cleanup")

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _exit(code: int) -> str:
    # uvicorn re-raises SIGTERM once its graceful shutdown is complete.
    return f"exit {code}" if code >= 0 else f"ended by {signal.Signals(-code).name}"
