"""The drill's own database: create and migrate it, break it (terminate Hookway's
connections, hold the write lock past ingest's deadline) and read what Hookway stored.

PostgreSQL (the default) gets a dedicated database, dropped and recreated at every run
and kept afterwards for inspection; SQLite a file in a temporary folder. Reads use the
database driver directly, not Django, so the drill judges what is on disk.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drill.config import ROOT

# The drill's own PostgreSQL connections carry this name, so terminating "Hookway's
# connections" leaves them alone.
APPLICATION_NAME = "hookway-drill"


class DrillSetupError(RuntimeError):
    """The drill could not set up or keep running its stage; nothing was judged."""


@dataclass(frozen=True)
class EventRow:
    id: str
    key: str | None  # the sender's Idempotency-Key


@dataclass(frozen=True)
class DeliveryRow:
    id: str  # sent as webhook-id
    event_id: str
    destination: str
    state: str
    attempts: int
    last_error: str


@dataclass(frozen=True)
class AttemptRow:
    delivery_id: str
    number: int
    outcome: str
    error_kind: str  # hookway.outbound.ErrorKind
    error: str
    worker: str
    started_at: float  # epoch seconds
    duration_ms: float | None
    status_code: int | None


@dataclass(frozen=True)
class Stored:
    events: list[EventRow]
    deliveries: list[DeliveryRow]
    attempts: list[AttemptRow]
    timeouts: dict[str, float]  # destination name -> timeout_seconds


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp() if value.tzinfo else value.replace(tzinfo=UTC).timestamp()
    # SQLite: Django stores aware datetimes as naive UTC text.
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC).timestamp()


class DrillDatabase:
    kind = ""
    url = ""  # DATABASE_URL for Hookway

    def create(self) -> None:
        """Start from an empty database (migrations are applied by ``migrate``)."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def terminate_connections(self) -> int | None:
        """Terminate Hookway's connections; how many, or None where unsupported."""
        return None

    def terminate_storm(self, seconds: float, every: float) -> int | None:
        """Terminate Hookway's connections every ``every`` seconds for ``seconds``; how
        many in all, or None where unsupported. Blocking."""
        return None

    def hold_write_lock(self, seconds: float, on_taken: Callable[[], None]) -> float:
        """Take the lock every ingest commit needs, hold it ``seconds``, release it.
        Calls ``on_taken`` once held; returns how long it was held. Blocking."""
        raise NotImplementedError

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def delivery_states(self) -> dict[str, int]:
        return {
            str(state): int(n)
            for state, n in self.rows("SELECT state, COUNT(*) FROM hookway_delivery GROUP BY state")
        }

    def stored(self) -> Stored:
        """Everything the report needs from Hookway's tables."""
        events = [
            EventRow(str(i), k) for i, k in self.rows("SELECT id, delivery_id FROM hookway_event")
        ]
        deliveries = [
            DeliveryRow(str(i), str(e), str(n), str(s), int(a), str(err or ""))
            for i, e, n, s, a, err in self.rows(
                "SELECT d.id, d.event_id, t.name, d.state, d.attempts, d.last_error "
                "FROM hookway_delivery d JOIN hookway_destination t ON t.id = d.destination_id"
            )
        ]
        attempts = [
            AttemptRow(
                str(d),
                int(n),
                str(o),
                str(kind or ""),
                str(err or ""),
                str(w or ""),
                _epoch(at),
                ms,
                code,
            )
            for d, n, o, kind, err, w, at, ms, code in self.rows(
                "SELECT delivery_id, number, outcome, error_kind, error, worker, started_at, "
                "duration_ms, status_code FROM hookway_attempt"
            )
        ]
        timeouts = {
            str(n): float(t)
            for n, t in self.rows("SELECT name, timeout_seconds FROM hookway_destination")
        }
        return Stored(events, deliveries, attempts, timeouts)


class PostgresDatabase(DrillDatabase):
    kind = "postgres"

    def __init__(self, url: str) -> None:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        self.url = url
        params = conninfo_to_dict(url)
        self.name = str(params.get("dbname") or "")
        self.where = f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"
        # The drill drops and recreates this database: never one that isn't the drill's.
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name) or "drill" not in self.name:
            raise DrillSetupError(
                f"refusing to use database {self.name!r}: the drill drops and recreates it, so "
                "its name must be a plain identifier containing 'drill' (e.g. hookway_drill)"
            )
        self._admin = make_conninfo(url, dbname="postgres")

    def describe(self) -> str:
        return f"PostgreSQL {self.where}/{self.name}"

    def _connect(self, **params: Any) -> Any:
        import psycopg

        return psycopg.connect(
            self.url, application_name=APPLICATION_NAME, connect_timeout=5, **params
        )

    def create(self) -> None:
        import psycopg
        from psycopg import sql

        try:
            admin = psycopg.connect(
                self._admin, application_name=APPLICATION_NAME, connect_timeout=5, autocommit=True
            )
        except psycopg.Error as exc:
            raise DrillSetupError(
                f"PostgreSQL is not reachable at {self.where} ({exc}). Start it, or pass "
                "--database-url, or run the drill on SQLite with --db sqlite."
            ) from None
        with admin:
            name = sql.Identifier(self.name)
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            admin.execute(sql.SQL("CREATE DATABASE {}").format(name))

    _TERMINATE = (
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid() AND application_name <> %s "
        "AND backend_type = 'client backend'"
    )

    def terminate_connections(self) -> int:
        with self._connect(autocommit=True) as conn:
            row = conn.execute(self._TERMINATE, [self.name, APPLICATION_NAME]).fetchone()
        return int(row[0]) if row else 0

    def terminate_storm(self, seconds: float, every: float) -> int:
        total = 0
        end = time.monotonic() + seconds
        with self._connect(autocommit=True) as conn:
            while time.monotonic() < end:
                row = conn.execute(self._TERMINATE, [self.name, APPLICATION_NAME]).fetchone()
                total += int(row[0]) if row else 0
                time.sleep(every)
        return total

    def hold_write_lock(self, seconds: float, on_taken: Callable[[], None]) -> float:
        with self._connect() as conn:
            # Taking it waits for transactions already holding the table; bound that.
            conn.execute("SET lock_timeout = '10s'")
            conn.execute("LOCK TABLE hookway_event IN ACCESS EXCLUSIVE MODE")
            taken = time.monotonic()
            on_taken()
            time.sleep(seconds)
            conn.rollback()
            return time.monotonic() - taken

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self._connect(autocommit=True) as conn:
            return [tuple(r) for r in conn.execute(sql).fetchall()]


class SqliteDatabase(DrillDatabase):
    kind = "sqlite"

    def __init__(self, folder: Path) -> None:
        self.path = folder / "drill.sqlite3"
        self.url = f"sqlite:///{self.path}"

    def describe(self) -> str:
        return f"SQLite {self.path}"

    def create(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def hold_write_lock(self, seconds: float, on_taken: Callable[[], None]) -> float:
        # isolation_level=None: sqlite3 sends our BEGIN as written (tests/dblock.py).
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            taken = time.monotonic()
            on_taken()
            time.sleep(seconds)
            conn.execute("ROLLBACK")
            return time.monotonic() - taken
        finally:
            conn.close()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.path, timeout=10)
        try:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
        finally:
            conn.close()


def migrate(env: dict[str, str]) -> None:
    """Apply Hookway's migrations to the drill's database."""
    out = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if out.returncode != 0:
        raise DrillSetupError(
            f"manage.py migrate failed ({out.returncode}):\n{out.stdout}{out.stderr}"
        )
