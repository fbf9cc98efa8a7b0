"""The operator API's lists and event detail over 1,000,000 stored events (SQLite).

One uvicorn process (no dispatcher: nothing to deliver) serves a database holding a
million events and their deliveries and attempts; one client asks, one request at a time
over one keep-alive connection, each list and filter an operator uses, and the detail of
random events. Every request's latency is measured at the client.

The database is filled straight with SQL (executemany in batches, one transaction per
batch), not through ingest: this measures reading. It is kept in
var/bench-api/events-<n>.sqlite3, keyed by the migrations it was made with, so a second
run starts at once.

Targets: filtered lists and the detail answer p95 <= 50 ms and p99 <= 100 ms.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import common

CACHE = common.ROOT / "var" / "bench-api"
SOURCES = ["github", "gitlab", "stripe"]
NAMES = [
    "push",
    "merge_request",
    "merge_request_approved",
    "tag_push",
    "issue",
    "note",
    "pipeline",
    "deployment",
    "release",
    "invoice.paid",
]
DESTINATIONS = ["ci", "archive", "chat"]
START = datetime(2026, 1, 1, tzinfo=UTC)
BODY = json.dumps({"object_kind": "push", "ref": "refs/heads/main", "commits": [1, 2, 3]})


def _migrations() -> str:
    """A digest of the migrations: a cached database made with other ones is remade."""
    digest = hashlib.sha256()
    for path in sorted((common.ROOT / "hookway" / "migrations").glob("0*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _ts(when: datetime) -> str:
    # How Django's SQLite backend stores an aware datetime (UTC, no offset).
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # no "+": it would be a space in a URL


def _id(prefix: str, n: int, when: datetime) -> str:
    # Time-ordered like hookway.ids, deterministic so a cached file is reproducible.
    millis = int(when.timestamp() * 1000)
    return f"{prefix}_{millis:013x}{n:013x}"


def fill(path: Path, events: int) -> None:
    """Migrate a new SQLite file at ``path`` and store ``events`` events with their
    deliveries (1 to 3 each) and attempts."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{path}",
        "HOOKWAY_DEMO": "true",
        "HOOKWAY_CONFIG": "",
    }
    common.run_checked([common.PYTHON, "manage.py", "migrate", "-v0"], env=env, timeout=300)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    now = _ts(START)
    for slug in SOURCES:
        db.execute(
            "INSERT INTO hookway_source (slug, verify, secrets, require_event_name, "
            "max_body_bytes, enabled, managed, created_at, updated_at) "
            "VALUES (?, 'none', '[]', 0, 1048576, 1, 0, ?, ?)",
            [slug, now, now],
        )
    for name in DESTINATIONS:
        db.execute(
            "INSERT INTO hookway_destination (name, url, signing_secret, timeout_seconds, "
            "max_attempts, concurrency, enabled, disabled_reason, paused, paused_reason, "
            "headers, bearer_token, basic_auth, forward_headers, managed, created_at, "
            "updated_at, failures_in_a_row, handler, celery_task, ordered, on_dead, "
            "rate_limit, circuit_failures, circuit_cooldown_seconds, circuit_cooldown, "
            "circuit_state, circuit_probe, disable_after_seconds, notifications) "
            "VALUES (?, 'https://example.com/', '', 15, 10, 20, 1, '', 0, '', "
            "'{}', '', '', '[]', 0, ?, ?, 0, '', '', 0, 'skip', "
            "'', 5, 30, 0, 'closed', '', 432000, 0)",
            [name, now, now],
        )
    source_ids = [r[0] for r in db.execute("SELECT id FROM hookway_source ORDER BY slug")]
    dest_ids = [r[0] for r in db.execute("SELECT id FROM hookway_destination ORDER BY name")]
    db.commit()
    rng = random.Random(42)
    body = BODY.encode()
    headers = json.dumps({"Content-Type": "application/json", "User-Agent": "bench"})
    batch = 20_000
    started = time.monotonic()
    for first in range(0, events, batch):
        event_rows, delivery_rows, attempt_rows = [], [], []
        for n in range(first, min(first + batch, events)):
            # A million events over ~116 days: one every 10 s, with a little jitter.
            when = START + timedelta(seconds=n * 10 + rng.random())
            event_id = _id("evt", n, when)
            event_rows.append(
                (
                    event_id,
                    rng.choice(source_ids),
                    rng.choice(NAMES),
                    f"dlv-{n}" if n % 2 else None,
                    "application/json",
                    headers,
                    body,
                    "",
                    "",
                    _ts(when),
                )
            )
            for k, dest in enumerate(rng.sample(dest_ids, rng.randint(1, 3))):
                roll = rng.random()
                # 93 % delivered, 3 % dead, 2 % failing, 2 % waiting for a first attempt.
                state, attempts = (
                    ("succeeded", 1)
                    if roll < 0.93
                    else ("dead", 3)
                    if roll < 0.96
                    else ("pending", 2)
                    if roll < 0.98
                    else ("pending", 0)
                )
                delivery_id = _id("msg", n * 4 + k, when)
                done = _ts(when + timedelta(seconds=1)) if state != "pending" else None
                delivery_rows.append(
                    (
                        delivery_id,
                        event_id,
                        dest,
                        state,
                        attempts,
                        _ts(when),
                        "",
                        200 if state == "succeeded" else 503 if attempts else None,
                        "" if state == "succeeded" else "HTTP 503",
                        _ts(when),
                        done,
                    )
                )
                for a in range(1, attempts + 1):
                    ok = state == "succeeded"
                    attempt_rows.append(
                        (
                            delivery_id,
                            a,
                            "bench",
                            _ts(when + timedelta(seconds=a)),
                            12.5,
                            "success" if ok else "retry",
                            200 if ok else 503,
                            "" if ok else "http_status",
                            "" if ok else "HTTP 503",
                            '{"ok": true}' if ok else "upstream unavailable",
                        )
                    )
        db.executemany(
            "INSERT INTO hookway_event (id, source_id, event_name, delivery_id, content_type, "
            "headers, body, body_sha256, conflict_with, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            event_rows,
        )
        db.executemany(
            "INSERT INTO hookway_delivery (id, event_id, destination_id, state, attempts, "
            "next_attempt_at, lease_owner, last_status_code, last_error, created_at, "
            "completed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            delivery_rows,
        )
        db.executemany(
            "INSERT INTO hookway_attempt (delivery_id, number, worker, started_at, "
            "duration_ms, outcome, status_code, error_kind, error, response_body) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            attempt_rows,
        )
        db.commit()
        if first and first % 200_000 == 0:
            print(f"   {first:,} events stored ({time.monotonic() - started:.0f} s)", flush=True)
    # The planner's statistics, as a database that has run a while would have them.
    db.execute("ANALYZE")
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def database(events: int) -> tuple[Path, float]:
    """The filled database (from the cache when it is there); and the seconds filling
    took (0 when cached)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"events-{events}-{_migrations()}.sqlite3"
    if path.exists():
        return path, 0.0
    for old in CACHE.glob(f"events-{events}-*.sqlite3*"):
        old.unlink()
    partial = path.with_suffix(".partial")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    started = time.monotonic()
    fill(partial, events)
    partial.rename(path)
    return path, time.monotonic() - started


def measure(client: httpx.Client, paths: list[str]) -> list[float]:
    """Each path's latency in ms, one request at a time on the client's connection."""
    times = []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
        times.append(elapsed)
    return times


def scenarios(client: httpx.Client, events: int, n: int) -> list[tuple[str, list[str]]]:
    rng = random.Random(7)
    # Cursors from the middle of the list: a page deep in the history.
    deep = []
    for _ in range(max(3, n // 50)):
        k = rng.randrange(events // 4, events)
        when = START + timedelta(seconds=k * 10 + 1)
        cursor = client.get(f"/api/v1/events?limit=1&until={_iso(when)}").json()["next"]
        deep.append(cursor)
    sample = client.get("/api/v1/events?limit=200").json()["items"]
    ids = [item["id"] for item in sample]
    for _ in range(20):
        k = rng.randrange(events)
        when = START + timedelta(seconds=k * 10 + 1)
        page = client.get(f"/api/v1/events?limit=10&until={_iso(when)}").json()
        ids += [item["id"] for item in page["items"]]

    def pick(options: list[str]) -> list[str]:
        return [rng.choice(options) for _ in range(n)]

    return [
        ("events, newest 50", ["/api/v1/events?limit=50"] * n),
        (
            "events by source and name",
            pick([f"/api/v1/events?source={s}&event=push" for s in SOURCES]),
        ),
        (
            "events by source, state=dead",
            pick([f"/api/v1/events?source={s}&state=dead" for s in SOURCES]),
        ),
        ("events, state=pending", ["/api/v1/events?state=pending"] * n),
        ("events, name glob merge_*", ["/api/v1/events?event=merge_*"] * n),
        (
            "events, one day (since/until)",
            pick(
                [
                    f"/api/v1/events?since={_iso(START + timedelta(days=d))}"
                    f"&until={_iso(START + timedelta(days=d + 1))}"
                    for d in range(1, 100)
                ]
            ),
        ),
        ("events, a page deep in history", pick([f"/api/v1/events?cursor={c}" for c in deep])),
        (
            "event by provider delivery id",
            [f"/api/v1/events?delivery_id=dlv-{rng.randrange(1, events, 2)}" for _ in range(n)],
        ),
        ("event detail", pick([f"/api/v1/events/{i}" for i in ids])),
        (
            "deliveries by destination, dead",
            pick([f"/api/v1/deliveries?destination={d}&state=dead" for d in DESTINATIONS]),
        ),
    ]


def run(quick: bool) -> common.Result:
    events, n = (20_000, 30) if quick else (1_000_000, 400)
    if quick:
        # A smoke run fills a small throwaway database, never the cached million.
        global CACHE
        CACHE = common.ROOT / "var" / "bench-smoke" / "api"
    path, filled_in = database(events)
    work = common.tempdir("api-lists")
    db = work / "db.sqlite3"
    shutil.copy(path, db)
    port = common.free_port()
    env = {
        "DATABASE_URL": f"sqlite:///{db}",
        "HOOKWAY_DEMO": "true",
        "HOOKWAY_EMBEDDED_DISPATCHER": "false",
        "HOOKWAY_CONFIG": "",
    }
    key = (
        common.run_checked(
            [common.PYTHON, "manage.py", "create_api_key", "bench", "--scope", "read"], env=env
        )
        .strip()
        .splitlines()[-1]
    )
    rows: list[list[Any]] = []
    targets: list[common.Target] = []
    cmd = common.hookway_uvicorn(port, "--log-level", "warning")
    try:
        with common.Server("hookway-api", cmd, env=env, logdir=work) as server:
            server.wait_http(f"http://{common.HOST}:{port}/healthz")
            with httpx.Client(
                base_url=f"http://{common.HOST}:{port}",
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            ) as client:
                for label, paths in scenarios(client, events, n):
                    measure(client, paths[: max(5, n // 20)])  # warm the page cache
                    times = measure(client, paths)
                    p50, p95, p99 = (common.percentile(times, p) for p in (50, 95, 99))
                    rows.append([label, len(times), p50, p95, p99, max(times)])
                    print(f"   {label}: p50 {p50:.1f} p95 {p95:.1f} p99 {p99:.1f} ms", flush=True)
                    if label != "events, newest 50":
                        ok = p95 <= 50 and p99 <= 100
                        targets.append(
                            common.Target(
                                f"{label}: p95 ≤ 50 ms, p99 ≤ 100 ms",
                                f"p95 {p95:.1f} ms, p99 {p99:.1f} ms",
                                ok,
                            )
                        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    with sqlite3.connect(path) as check:
        counts = {
            table: check.execute(f"SELECT count(*) FROM hookway_{table}").fetchone()[0]
            for table in ("event", "delivery", "attempt")
        }
    notes = [
        f"{counts['event']:,} events, {counts['delivery']:,} deliveries, "
        f"{counts['attempt']:,} attempts in one SQLite file "
        f"({path.stat().st_size / 2**30:.2f} GiB), "
        + (f"filled in {filled_in:.0f} s" if filled_in else "from the cache under var/bench-api/")
        + ". Deliveries: 93 % delivered, 3 % dead, 2 % failing, 2 % waiting.",
        "One uvicorn process (embedded dispatcher off), one client on one keep-alive "
        f"connection, {n} requests per row one after another (after a warm-up of "
        f"{max(5, n // 20)}), each list page 50 items with their deliveries; latency "
        "measured at the client.",
        "Lists page by keyset (hookway.store.browse): a page deep in the history costs "
        "what the first does.",
    ]
    return common.Result(
        title=f"Operator API over {counts['event']:,} events (SQLite, one process)",
        columns=["request", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"],
        rows=rows,
        notes=notes,
        targets=targets,
        charts=[
            common.Chart(
                title="Latency per request",
                ylabel="ms",
                labels=[r[0] for r in rows],
                series={
                    "p50": [r[2] for r in rows],
                    "p95": [r[3] for r in rows],
                    "p99": [r[4] for r in rows],
                },
            )
        ],
    )
