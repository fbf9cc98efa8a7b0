"""Soak (issue 13): a destination that flaps every 30 s under a steady load.

One uvicorn process takes the webhooks (its embedded dispatcher off) and two standalone
dispatchers (``manage.py dispatch``) deliver them, on one SQLite file. A producer POSTs
a steady stream to ``/hooks/soak``; every event goes to two destinations on one
in-process receiver: ``steady`` (always answers 200) and ``flappy``, which answers 503
for 30 s, then 200 for 30 s, and so on. ``flappy`` has the circuit breaker (5 failures,
5 s cool-down) and ``[notifications]`` go to a third path of the receiver. Halfway
through, one dispatcher is killed with SIGKILL and started again (a crash). After the
load, the receiver stays up until everything is delivered (bounded).

Then, from the receiver's log and the database:

- **every event delivered**: each acknowledged event reached both destinations (a 2xx);
- **no hammering while open**: requests that reached ``flappy`` while its circuit was
  open (from each opening, plus 0.5 s for sends already under way, to the next probe);
- **retries bounded**: the most attempts any delivery made (``max_attempts`` is 10), and
  none dead;
- **duplicates only from crashes**: deliveries answered 2xx more than once, each
  explained by an attempt the killed dispatcher never finished (``interrupted``) or one
  that failed after the request went out (``timeout``, ``connection_reset``).

``--quick``: 20 s of load, flapping every 5 s.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.common import HOST, PYTHON, Result, Server, Target, free_port, tempdir
from bench.deliverykit import hookway_env, migrate_hookway, uvicorn_cmd

RATE = 20.0  # events per second from the producer
MAX_ATTEMPTS = 10
CIRCUIT_FAILURES = 5
COOLDOWN = 5.0
# Sends claimed before the circuit opened may arrive just after it: not "while open".
IN_FLIGHT_MARGIN = 0.5


@dataclass
class Hit:
    at: float  # time.time()
    path: str
    webhook_id: str
    bench_id: str
    status: int


@dataclass
class Flapper:
    """The receiver: ``/steady`` and ``/alerts`` always 200; ``/flappy`` 503 during the
    down half of each period (from ``started``), 200 during the up half, or 200 once
    ``up_for_good`` is set."""

    period: float
    started: float = field(default_factory=time.time)
    up_for_good: threading.Event = field(default_factory=threading.Event)
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def down(self, at: float) -> bool:
        if self.up_for_good.is_set():
            return False
        return int((at - self.started) // self.period) % 2 == 0

    def serve(self) -> ThreadingHTTPServer:
        flapper = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_POST(self) -> None:
                at = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = 503 if self.path == "/flappy" and flapper.down(at) else 200
                bench_id = ""
                with contextlib.suppress(ValueError, AttributeError):
                    bench_id = str(json.loads(body).get("bench_id", ""))
                with flapper.lock:
                    flapper.hits.append(
                        Hit(at, self.path, self.headers.get("webhook-id", ""), bench_id, status)
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                return  # a killed dispatcher resets its connections

        server = Quiet((HOST, 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


def _config(path: Path, base: str) -> Path:
    path.write_text(
        f"""
[[sources]]
slug = "soak"

[notifications]
destination = "alerts"

[[destinations]]
name = "steady"
url = "{base}/steady"
max_attempts = {MAX_ATTEMPTS}

[[destinations]]
name = "flappy"
url = "{base}/flappy"
max_attempts = {MAX_ATTEMPTS}
circuit_failures = {CIRCUIT_FAILURES}
circuit_cooldown_seconds = {COOLDOWN}

[[destinations]]
name = "alerts"
url = "{base}/alerts"

[[routes]]
source = "soak"
destination = "steady"

[[routes]]
source = "soak"
destination = "flappy"
"""
    )
    return path


def _produce(url: str, seconds: float, acked: dict[str, float], errors: list[str]) -> None:
    """POST RATE events a second for ``seconds`` (open loop); record each 202's time."""
    import httpx

    with httpx.Client(timeout=10) as client:
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < seconds:
            bench_id = f"soak-{n:06d}"
            try:
                response = client.post(url, json={"event_name": "order.paid", "bench_id": bench_id})
                if response.status_code == 202:
                    acked[bench_id] = time.time()
                else:
                    errors.append(f"{response.status_code}: {response.text[:200]}")
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            n += 1
            time.sleep(max(0.0, started + n / RATE - time.monotonic()))


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _pending(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM hookway_delivery WHERE state = 'pending'"
        ).fetchone()
        return int(row[0])


def _dispatcher(name: str, env: dict[str, str], logdir: Path) -> Server:
    cmd = [PYTHON, "manage.py", "dispatch", "--concurrency", "50"]
    server = Server(name, cmd, env=env, logdir=logdir).start()
    server.wait_log("running", timeout=60)
    return server


def run(quick: bool = False) -> Result:
    load_seconds = 20.0 if quick else 150.0
    period = 5.0 if quick else 30.0
    work = tempdir("flap-soak")
    db = work / "soak.sqlite3"
    flapper = Flapper(period)
    receiver = flapper.serve()
    base = f"http://{HOST}:{receiver.server_address[1]}"
    config = _config(work / "hookway.toml", base)
    env = hookway_env(
        db,
        config,
        HOOKWAY_EMBEDDED_DISPATCHER="false",
        HOOKWAY_POLL_INTERVAL="0.2",
        HOOKWAY_LEASE_SECONDS="5",
        HOOKWAY_RETRY_SCHEDULE="0,1,2,4,8",
        HOOKWAY_LOG_LEVEL="INFO",
    )
    migrate_hookway(env)
    port = free_port()
    acked: dict[str, float] = {}
    errors: list[str] = []
    crash: dict[str, float] = {}
    drained = False
    drain_seconds = 0.0
    web = Server("web", uvicorn_cmd(port), env=env, logdir=work).start()
    workers: list[Server] = []
    try:
        web.wait_http(f"http://{HOST}:{port}/healthz", timeout=60)
        workers = [_dispatcher(f"dispatch-{i}", env, work) for i in range(2)]
        flapper.started = time.time()
        producer = threading.Thread(
            target=_produce,
            args=(f"http://{HOST}:{port}/hooks/soak", load_seconds, acked, errors),
            daemon=True,
        )
        producer.start()
        time.sleep(load_seconds / 2)
        # A crash: SIGKILL one dispatcher mid-run, and start it again a few seconds later.
        assert workers[0].proc is not None
        workers[0].proc.send_signal(signal.SIGKILL)
        workers[0].proc.wait()
        crash["killed"] = time.time()
        time.sleep(3.0)
        workers[0] = _dispatcher("dispatch-0-again", env, work)
        producer.join(load_seconds + 60)
        load_ended = time.time()
        # Drain: the receiver recovers for good; everything still pending is delivered
        # once its circuit closes and its retries come due (bounded).
        flapper.up_for_good.set()
        deadline = time.monotonic() + (60 if quick else 180)
        while time.monotonic() < deadline:
            if _pending(db) == 0:
                drained = True
                break
            time.sleep(0.5)
        drain_seconds = time.time() - load_ended
        time.sleep(1.0)  # a duplicate would arrive now
    finally:
        for worker in workers:
            worker.stop()
        web.stop()
        receiver.shutdown()
    return _report(db, flapper, acked, errors, crash, drained, drain_seconds, load_seconds, period)


def _report(
    db: Path,
    flapper: Flapper,
    acked: dict[str, float],
    errors: list[str],
    crash: dict[str, float],
    drained: bool,
    drain_seconds: float,
    load_seconds: float,
    period: float,
) -> Result:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        names = dict(conn.execute("SELECT id, name FROM hookway_destination").fetchall())
        changes = [
            (names[d], change, _epoch(at), reason)
            for d, change, at, reason in conn.execute(
                "SELECT destination_id, change, at, reason FROM hookway_destinationchange "
                "ORDER BY id"
            )
        ]
        deliveries = conn.execute(
            "SELECT d.id, t.name, d.state, d.attempts FROM hookway_delivery d "
            "JOIN hookway_destination t ON t.id = d.destination_id"
        ).fetchall()
        attempts = conn.execute(
            "SELECT delivery_id, number, outcome, error_kind FROM hookway_attempt"
        ).fetchall()
    hits = list(flapper.hits)
    rows: list[list[Any]] = []
    targets: list[Target] = []
    notes: list[str] = []

    # Every event delivered, to both destinations.
    delivered: dict[str, set[str]] = defaultdict(set)
    for h in hits:
        if h.status == 200 and h.bench_id:
            delivered[h.path].add(h.bench_id)
    missing = {path: len(set(acked) - delivered[path]) for path in ("/steady", "/flappy")}
    states = Counter((name, state) for _, name, state, _ in deliveries)
    for name in ("steady", "flappy"):
        rows.append(
            [
                name,
                len(acked),
                len(delivered[f"/{name}"] & set(acked)),
                sum(1 for h in hits if h.path == f"/{name}"),
                sum(1 for h in hits if h.path == f"/{name}" and h.status != 200),
                states[(name, "dead")],
                max((a for _, n, _, a in deliveries if n == name), default=0),
            ]
        )
    everything = sum(missing.values()) == 0 and drained
    targets.append(
        Target(
            "every acknowledged event delivered to both destinations",
            f"{len(acked)} events; missing: steady {missing['/steady']}, flappy "
            f"{missing['/flappy']}; drained in {drain_seconds:.0f} s after the load",
            everything,
        )
    )

    # No hammering while open: requests to flappy inside an open interval.
    opened_at: float | None = None
    open_spans: list[tuple[float, float]] = []
    for name, change, at, _ in changes:
        if name != "flappy":
            continue
        if change in ("circuit_opened", "circuit_reopened"):
            opened_at = at
        elif change == "circuit_half_open" and opened_at is not None:
            open_spans.append((opened_at, at))
            opened_at = None
    if opened_at is not None:
        open_spans.append((opened_at, time.time()))
    flappy_hits = [h for h in hits if h.path == "/flappy"]
    inside = [h for h in flappy_hits if any(s + IN_FLIGHT_MARGIN < h.at < e for s, e in open_spans)]
    stragglers = [
        h for h in flappy_hits if any(s <= h.at <= s + IN_FLIGHT_MARGIN for s, e in open_spans)
    ]
    open_seconds = sum(e - s for s, e in open_spans)
    targets.append(
        Target(
            "no request to a destination while its circuit is open",
            f"{len(inside)} requests in {open_seconds:.0f} s open ({len(open_spans)} open spells); "
            f"{len(stragglers)} sent just before an opening arrived within {IN_FLIGHT_MARGIN} s",
            len(inside) == 0,
        )
    )
    failed_per_down = _failed_per_down(flappy_hits, flapper, period)
    notes.append(
        f"Failed requests to flappy per {period:g} s down period (the circuit opening "
        f"after {CIRCUIT_FAILURES}, then one probe per cool-down): "
        + ", ".join(str(n) for n in failed_per_down)
    )

    # Retries bounded.
    most = max((a for *_, a in deliveries), default=0)
    dead = sum(1 for _, _, state, _ in deliveries if state == "dead")
    targets.append(
        Target(
            f"retries bounded (max_attempts {MAX_ATTEMPTS}), nothing dead for waiting",
            f"most attempts by one delivery: {most}; dead: {dead}; attempts per delivery: "
            f"{len(attempts) / max(1, len(deliveries)):.2f}",
            most <= MAX_ATTEMPTS and dead == 0,
        )
    )

    # Duplicates only from crashes (or a failure after the request went out).
    ok_count = Counter(h.webhook_id for h in hits if h.status == 200)
    duplicated = {w for w, n in ok_count.items() if n > 1}
    explained_kinds = {"interrupted", "timeout", "connection_reset", "connection"}
    explained = {
        d for d, _, outcome, kind in attempts if d in duplicated and kind in explained_kinds
    }
    unexplained = duplicated - explained
    targets.append(
        Target(
            "duplicates only from the crash",
            f"{len(duplicated)} deliveries answered 200 twice, {len(unexplained)} unexplained "
            f"(dispatcher killed at +{crash.get('killed', 0) - flapper.started:.0f} s)",
            not unexplained,
        )
    )

    # Notifications: once per notified change.
    notified = Counter(h.webhook_id for h in hits if h.path == "/alerts" and h.status == 200)
    notify_changes = [c for _, c, _, _ in changes if c in ("circuit_opened", "circuit_closed")]
    alerts = sum(1 for h in hits if h.path == "/alerts" and h.status == 200)
    notes.append(
        f"Notifications: {len(notify_changes)} circuit openings and closings recorded, "
        f"{alerts} notification events received ({len(notified)} distinct webhook-ids)."
    )
    kinds = Counter(c for n, c, _, _ in changes if n == "flappy")
    notes.append(
        "Recorded state changes of flappy: "
        + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
    )
    notes.append(
        f"Load: {RATE:g} events/s for {load_seconds:.0f} s to two destinations; two "
        "dispatchers (one killed with SIGKILL halfway and restarted after 3 s), SQLite, "
        "HOOKWAY_RETRY_SCHEDULE=0,1,2,4,8, lease 5 s."
    )
    if errors:
        notes.append(f"Producer errors: {len(errors)} (first: {errors[0]})")
    start = flapper.started

    def plot(fig: Any) -> None:
        ax = fig.subplots()
        for label, status, color in (
            ("flappy 200", 200, "tab:green"),
            ("flappy 503", 503, "tab:red"),
        ):
            seconds = [int(h.at - start) for h in flappy_hits if h.status == status]
            if seconds:
                ax.hist(
                    seconds, bins=range(0, max(seconds) + 2), color=color, alpha=0.8, label=label
                )
        for i, (s_, e_) in enumerate(open_spans):
            ax.axvspan(
                s_ - start, e_ - start, color="0.85", label="circuit open" if i == 0 else None
            )
        ax.set_xlabel("seconds since the load started")
        ax.set_ylabel("requests to flappy per second")
        ax.legend(loc="upper right")

    return Result(
        title=f"Soak: a destination flapping every {period:g} s under steady load",
        plot=plot,
        figsize=(11, 4.5),
        columns=[
            "destination",
            "events acked",
            "delivered (2xx)",
            "requests",
            "failed requests",
            "dead",
            "most attempts",
        ],
        rows=rows,
        targets=targets,
        notes=notes,
    )


def _failed_per_down(hits: list[Hit], flapper: Flapper, period: float) -> list[int]:
    counts: dict[int, int] = defaultdict(int)
    for h in hits:
        if h.status != 200:
            counts[int((h.at - flapper.started) // period)] += 1
    return [counts[k] for k in sorted(counts)]
