"""The drill's knobs, and the environment and hookway.toml Hookway runs with under it.

Hookway's timings are compressed so a few minutes hold every fault and its recovery:
retries after 0, 0.5, 1 and 2 s; 5 s leases; a 0.2 s poll; a 2 s database deadline.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/hookway_drill"
SOURCE = "drill"
TOKEN = "drill-token"
EVENT_NAME = "drill.tick"
DESTINATIONS = ("steady", "trickle", "flap")
FAULTS = ("kill-dispatcher", "kill-web", "lock", "trickle", "terminate", "flap", "terminate-idle")


@dataclass(frozen=True)
class DrillConfig:
    db: str = "postgres"  # or "sqlite"
    database_url: str = DEFAULT_PG_URL  # PostgreSQL only; SQLite uses a temporary file
    duration: float = 90.0  # seconds of load
    rate: float = 40.0  # new webhooks per second
    drain: float = 90.0  # at most this long for the queue to empty after the load
    stall: float = 30.0  # stop waiting for the drain after this long without progress
    out: Path = ROOT / "var" / "drill"
    skip: frozenset[str] = field(default_factory=frozenset)  # faults not to inject

    # Hookway's settings under the drill.
    db_timeout: float = 2.0
    lease_seconds: float = 5.0
    poll_interval: float = 0.2
    retry_schedule: str = "0,0.5,1,2"
    shutdown_grace: float = 5.0
    max_attempts: int = 100
    destination_timeout: float = 5.0  # steady and flap
    trickle_timeout: float = 3.0

    # The sender, the faults and the receivers.
    sender_timeout: float = 10.0  # GitHub's and GitLab's
    restart_after: float = 3.0  # a killed process comes back this long after the kill
    flap_phase: float = 3.0  # flap changes state this often
    trickle_window: float = 15.0  # requests arriving in it trickle
    # A failover: Hookway's connections are terminated, then again as it reconnects.
    terminations: int = 10
    terminate_every: float = 1.0
    # Receivers accept a webhook, work on it this long, then answer 200: a dispatcher
    # killed meanwhile leaves deliveries the receiver processed but Hookway never recorded.
    receiver_work: float = 0.02
    # After the drain, with Hookway idle: terminate its database connections every
    # storm_every seconds for idle_storm seconds (as a database restart would), wait,
    # then send canaries that must be delivered too. A single termination under load
    # rarely hits a dispatcher between two of its queries; a storm does, so a database
    # error on any path of the dispatcher's loop shows up.
    idle_storm: float = 5.0
    storm_every: float = 0.02
    idle_wait: float = 2.0
    canaries: int = 20
    trickle_byte_every: float = 2.0

    @property
    def lock_hold(self) -> float:
        """How long the drill holds the write lock: well past ingest's deadline."""
        return 3 * self.db_timeout

    @property
    def trickle_seconds(self) -> float:
        """How long one trickled answer lasts: longer than the lease plus the timeout, so
        an attempt that the timeout does not end outlives its lease."""
        return self.lease_seconds + self.trickle_timeout + self.trickle_byte_every

    @property
    def trickle_for(self) -> float:
        """The trickle window, shortened on short runs so it ends before the next fault."""
        return min(self.trickle_window, 0.17 * self.duration)

    @property
    def slow_answer(self) -> float:
        """Ingest answers later than this missed their deadline: HOOKWAY_DB_TIMEOUT, plus
        the 1 s a commit already under way gets (hookway.gate.COMMIT_GRACE), plus 0.25 s
        for the sender's own scheduling on this machine."""
        return self.db_timeout + 1.0 + 0.25

    def schedule(self) -> list[tuple[float, str]]:
        """When each one-shot fault starts (seconds into the load), in order. Spread over
        the load so each fault's effects can be told apart; the database connections are
        terminated last because on a dispatcher that doesn't survive it nothing after
        would be delivered."""
        d = self.duration
        plan = [
            (0.08 * d, "kill-dispatcher"),
            (0.18 * d, "kill-web"),
            (0.30 * d, "lock"),
            (0.42 * d, "trickle"),
            (0.76 * d, "terminate"),
        ]
        return [(at, name) for at, name in plan if name not in self.skip]


def hookway_env(config: DrillConfig, database_url: str, config_file: Path) -> dict[str, str]:
    """The environment of every Hookway process (and of migrate): this machine's, less any
    Hookway setting that would change the drill, plus the drill's."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HOOKWAY_") and k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        {
            # A key of the drill's own (admin sessions are the only use; none are made).
            "SECRET_KEY": env.get("SECRET_KEY") or secrets.token_urlsafe(50),
            "DATABASE_URL": database_url,
            "HOOKWAY_CONFIG": str(config_file),
            "HOOKWAY_ALLOW_PRIVATE_DESTINATIONS": "true",
            "HOOKWAY_RETRY_SCHEDULE": config.retry_schedule,
            "HOOKWAY_LEASE_SECONDS": f"{config.lease_seconds:g}",
            "HOOKWAY_POLL_INTERVAL": f"{config.poll_interval:g}",
            "HOOKWAY_DB_TIMEOUT": f"{config.db_timeout:g}",
            "HOOKWAY_SHUTDOWN_GRACE": f"{config.shutdown_grace:g}",
            "HOOKWAY_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def hookway_toml(config: DrillConfig, urls: dict[str, str]) -> str:
    """One token source routed to the three receivers."""
    parts = [
        f'[[sources]]\nslug = "{SOURCE}"\nverify = "token"\nsecret = "{TOKEN}"\n',
    ]
    for name in DESTINATIONS:
        timeout = config.trickle_timeout if name == "trickle" else config.destination_timeout
        parts.append(
            f'[[destinations]]\nname = "{name}"\nurl = "{urls[name]}"\n'
            f"timeout_seconds = {timeout:g}\nmax_attempts = {config.max_attempts}\n"
        )
        parts.append(f'[[routes]]\nsource = "{SOURCE}"\ndestination = "{name}"\n')
    return "\n".join(parts)
