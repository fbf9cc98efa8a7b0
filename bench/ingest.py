"""Ingest: Hookway's durable, signature-verified ack against what a Django developer
would otherwise write, and against the bare-ASGI limit.

Every contender gets the same request (a 1 KB JSON body signed with HMAC-SHA256 in
``X-Signature-256``), the same number of server processes and the same load: wrk, 64
connections, 2 threads, a short warm-up, then a fixed duration, repeated in rounds
(contenders interleaved, every other round in reverse order, so background noise spreads
over all of them); the table shows medians over rounds. The whole comparison runs at 1
and at 2 server processes per contender (``BENCH_INGEST_PROCESSES=1`` runs one count).

Contenders (all SQLite ones use WAL + ``synchronous=FULL``, so a 2xx means fsync'd):

- hookway: ``POST /hooks/bench`` (verify = "hmac-sha256", one route, embedded dispatcher
  off) under uvicorn (``--workers N``). It stores the Event and its Delivery row (the
  outbox), so it writes two rows per webhook where the peers write one.
- django-sync: a plain sync view (verify, parse, ``Model.objects.create``) under gunicorn,
  N workers, persistent database connections (``CONN_MAX_AGE``); the worker class is
  picked per process count by a short pilot (full mode), see the notes.
- django-async: the same as an ``async def`` view, the insert through ``sync_to_async``,
  under uvicorn (``CONN_MAX_AGE = 0``, as Django's docs say for ASGI).
- django-celery: the sync view, but ``task.delay(payload)`` to Redis instead of the insert
  (same gunicorn setup). Redis here persists nothing (no AOF, no RDB): this ack is not
  durable at all; it is the "just use Celery" advice, measured.
- bare-asgi: no framework, HMAC + JSON + one fsync'd insert per request.
- bare-asgi-group: the same with group commit (one fsync per batch): the physical limit
  of a durable ack on this machine.

After each measured run the rows stored are counted and compared with the 2xx answers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import common

SECRET = "bench-secret"
CONNECTIONS = 64
THREADS = 2
PROCESS_COUNTS = (1, 2)
# The gunicorn worker classes the pilot tries for the sync view: (class, threads).
WORKERS = [("sync", 1), ("gthread", 2), ("gthread", 4), ("gthread", 8), ("gthread", 16)]
REDIS_URL = "redis://127.0.0.1:6379/15"


def make_body(size: int = 1024) -> bytes:
    """A JSON document of exactly ``size`` bytes that names its event."""
    doc = {"event_name": "push", "object_kind": "push", "ref": "refs/heads/main", "pad": ""}
    doc["pad"] = "x" * (size - len(json.dumps(doc, separators=(",", ":"))))
    body = json.dumps(doc, separators=(",", ":")).encode()
    assert len(body) == size
    return body


BODY = make_body()
HEADERS = {
    "Content-Type": "application/json",
    "X-Signature-256": "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest(),
}

HOOKWAY_CONFIG = f"""
[[sources]]
slug = "bench"
verify = "hmac-sha256"
secret = "{SECRET}"

# One route, so every webhook also writes its Delivery row (the transactional outbox).
# The dispatcher is off in this benchmark: nothing is sent.
[[destinations]]
name = "sink"
url = "http://127.0.0.1:9/sink"

[[routes]]
source = "bench"
destination = "sink"
"""


def _sqlite_count(path: Path, table: str) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        db.close()


@dataclass
class Contender:
    key: str
    label: str
    server: str  # how it is served, for the table
    cmd: Callable[[int], list[str]]
    path: str
    env: dict[str, str] = field(default_factory=dict)
    count: Callable[[], int] = lambda: 0
    setup: Callable[[], None] = lambda: None
    cleanup: Callable[[], None] = lambda: None
    lag_prefix: Path | None = None


def _uvicorn(app: str, processes: int, lifespan: str = "on") -> Callable[[int], list[str]]:
    def cmd(port: int) -> list[str]:
        return [
            common.PYTHON,
            "-m",
            "uvicorn",
            app,
            "--host",
            common.HOST,
            "--port",
            str(port),
            "--workers",
            str(processes),
            "--lifespan",
            lifespan,  # Django's own ASGI handler refuses lifespan
            "--no-access-log",
            "--log-level",
            "warning",
        ]

    return cmd


def _gunicorn(app: str, worker: tuple[str, int], processes: int) -> Callable[[int], list[str]]:
    kind, threads = worker

    def cmd(port: int) -> list[str]:
        args = [
            common.PYTHON,
            "-m",
            "gunicorn",
            app,
            "--bind",
            f"{common.HOST}:{port}",
            "--workers",
            str(processes),
            "--worker-class",
            kind,
            "--log-level",
            "warning",
        ]
        if kind == "gthread":
            args += ["--threads", str(threads)]
        return args

    return cmd


def _worker_label(worker: tuple[str, int]) -> str:
    kind, threads = worker
    return f"{kind} x{threads} threads" if kind == "gthread" else kind


def build_contenders(
    work: Path, gunicorn_worker: tuple[str, int], processes: int
) -> list[Contender]:
    config = work / "hookway.toml"
    config.write_text(HOOKWAY_CONFIG)
    hookway_db = work / "hookway.sqlite3"
    hookway_env = {
        "DJANGO_SETTINGS_MODULE": "hookway.standalone.settings",
        "DATABASE_URL": f"sqlite:///{hookway_db}",
        "HOOKWAY_CONFIG": str(config),
        "HOOKWAY_EMBEDDED_DISPATCHER": "false",
        "HOOKWAY_LOG_LEVEL": "WARNING",
        "BENCH_LOOP_LAG_PREFIX": str(work / "hookway-lag"),
    }
    peer_db = {k: work / f"{k}.sqlite3" for k in ("sync", "async")}
    peer_env = {"DJANGO_SETTINGS_MODULE": "bench.peers.ingest_site.settings"}
    queue = f"bench-ingest-{int(time.time())}"

    def migrate_hookway() -> None:
        common.run_checked(
            [common.PYTHON, "manage.py", "migrate", "--no-input", "-v0"], env=hookway_env
        )

    def migrate_peer(db: Path) -> Callable[[], None]:
        def run() -> None:
            common.run_checked(
                [
                    common.PYTHON,
                    "-m",
                    "bench.peers.ingest_site.manage",
                    "migrate",
                    "--run-syncdb",
                    "-v0",
                ],
                env={**peer_env, "INGEST_DB": str(db)},
            )

        return run

    def redis_client():  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis.from_url(REDIS_URL)

    def celery_count() -> int:
        return int(redis_client().llen(queue))

    def celery_cleanup() -> None:
        redis_client().delete(queue)

    sync_app = "bench.peers.ingest_site.wsgi:application"
    gunicorn_label = f"gunicorn -w {processes}, {_worker_label(gunicorn_worker)}"
    uvicorn_label = f"uvicorn --workers {processes}"
    contenders = [
        Contender(
            "hookway",
            "Hookway",
            uvicorn_label,
            _uvicorn("bench.peers.hookway_app:application", processes),
            "/hooks/bench",
            hookway_env,
            count=lambda: _sqlite_count(hookway_db, "hookway_event"),
            setup=migrate_hookway,
            lag_prefix=work / "hookway-lag",
        ),
        Contender(
            "django-sync",
            "plain Django, sync view",
            gunicorn_label,
            _gunicorn(sync_app, gunicorn_worker, processes),
            "/hooks/sync",
            {**peer_env, "INGEST_DB": str(peer_db["sync"])},
            count=lambda: _sqlite_count(peer_db["sync"], "ingest_site_event"),
            setup=migrate_peer(peer_db["sync"]),
        ),
        Contender(
            "django-async",
            "Django async view + sync_to_async",
            uvicorn_label,
            _uvicorn("bench.peers.ingest_site.asgi:application", processes, "off"),
            "/hooks/async",
            {**peer_env, "INGEST_DB": str(peer_db["async"]), "INGEST_CONN_MAX_AGE": "0"},
            count=lambda: _sqlite_count(peer_db["async"], "ingest_site_event"),
            setup=migrate_peer(peer_db["async"]),
        ),
        Contender(
            "django-celery",
            "Django view + Celery .delay() (Redis)",
            gunicorn_label,
            _gunicorn(sync_app, gunicorn_worker, processes),
            "/hooks/celery",
            {**peer_env, "INGEST_CELERY_BROKER": REDIS_URL, "INGEST_CELERY_QUEUE": queue},
            count=celery_count,
            setup=celery_cleanup,
            cleanup=celery_cleanup,
        ),
    ]
    for key, mode, label in (
        ("bare-asgi", "commit", "bare ASGI, fsync per request"),
        ("bare-asgi-group", "group", "bare ASGI, group commit (limit)"),
    ):
        db = work / f"{key}.sqlite3"
        contenders.append(
            Contender(
                key,
                label,
                uvicorn_label,
                _uvicorn("bench.peers.ingest_asgi:app", processes),
                "/hooks/bare",
                {"BARE_DB": str(db), "BARE_MODE": mode},
                count=lambda db=db: _sqlite_count(db, "events"),  # type: ignore[misc]
            )
        )
    return contenders


def _settle(count: Callable[[], int], quiet: float = 0.5, limit: float = 15.0) -> int:
    """The row count once it stops changing (requests wrk abandoned still finish on the
    server); waits ``quiet`` seconds without change, at most ``limit`` seconds."""
    deadline = time.monotonic() + limit
    last = count()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = count()
        if now == last:
            return now
        last = now
    return last


@dataclass
class Run:
    wrk: common.WrkResult
    stored: int  # rows stored during the measured run
    lag: list[dict[str, float]]  # one summary per Hookway worker
    cpu: common.CpuUsage  # the server's, during the measured run

    @property
    def extra_rows(self) -> int:
        """Rows stored minus 2xx answers: >= 0 unless an ack was lost; up to the
        connections in flight when wrk stopped counting (their answers went unread)."""
        return self.stored - self.wrk.ok


def measure(c: Contender, work: Path, warmup: float, duration: float, round_no: int) -> Run:
    """Start the contender, warm it up, measure once, stop it; return the numbers."""
    port = common.free_port()
    url = f"http://{common.HOST}:{port}{c.path}"
    if c.lag_prefix is not None:
        for old in c.lag_prefix.parent.glob(c.lag_prefix.name + ".*.json"):
            old.unlink()
    server = common.Server(f"{c.key}-{round_no}", c.cmd(port), env=c.env, logdir=work)
    with server:
        server.wait_http(f"http://{common.HOST}:{port}{c.path}", timeout=60)
        common.run_wrk(
            url,
            duration=warmup,
            connections=CONNECTIONS,
            threads=THREADS,
            body=BODY,
            headers=HEADERS,
            logdir=work,
        )
        before = _settle(c.count)  # requests abandoned by the warm-up's wrk finish
        cpu_before = common.cpu_snapshot(server.pid)
        started = time.monotonic()
        result = common.run_wrk(
            url,
            duration=duration,
            connections=CONNECTIONS,
            threads=THREADS,
            body=BODY,
            headers=HEADERS,
            logdir=work,
        )
        cpu = common.cpu_usage(
            cpu_before, common.cpu_snapshot(server.pid), time.monotonic() - started, result.requests
        )
        stored = _settle(c.count) - before
        code = server.stop()
    lag = []
    if c.lag_prefix is not None:
        for path in sorted(c.lag_prefix.parent.glob(c.lag_prefix.name + ".*.json")):
            lag.append(json.loads(path.read_text()))
        if not lag:
            print(f"   ! {c.key}: no loop-lag file (exit code {code})", flush=True)
    print(
        f"   {c.key:16} round {round_no}: {result.rps:8.0f} req/s  p50 {result.p50_ms:6.1f} ms"
        f"  p99 {result.p99_ms:6.1f} ms  non-2xx {result.non_2xx}  sock {result.socket_errors}"
        f"  stored-2xx {stored - result.ok:+d}  CPU {cpu.us_per_request:.0f} us/req"
        f" ({cpu.cores:.2f} cores, machine {100 * cpu.machine_idle:.0f} % idle)",
        flush=True,
    )
    return Run(result, stored, lag, cpu)


def pick_gunicorn_worker(
    work: Path, duration: float, processes: int
) -> tuple[tuple[str, int], list[list[object]]]:
    """Measure the sync view under gunicorn's worker classes; return the best."""
    rows: list[list[object]] = []
    best: tuple[float, tuple[str, int]] = (-1.0, WORKERS[0])
    for worker in WORKERS:
        trial = work / f"pilot-{processes}-{worker[0]}-{worker[1]}"
        trial.mkdir()
        contender = next(
            c for c in build_contenders(trial, worker, processes) if c.key == "django-sync"
        )
        contender.setup()
        run = measure(contender, trial, 1, duration, 0)
        rows.append(
            [
                processes,
                _worker_label(worker),
                run.wrk.rps,
                run.wrk.p50_ms,
                run.wrk.p99_ms,
                run.wrk.non_2xx + run.wrk.socket_errors,
            ]
        )
        if run.wrk.rps > best[0]:
            best = (run.wrk.rps, worker)
    return best[1], rows


def process_counts() -> tuple[int, ...]:
    """PROCESS_COUNTS, or the counts named in BENCH_INGEST_PROCESSES (e.g. "1")."""
    named = os.environ.get("BENCH_INGEST_PROCESSES", "")
    return tuple(int(n) for n in named.replace(",", " ").split()) or PROCESS_COUNTS


@dataclass
class Comparison:
    """Every contender at one process count."""

    processes: int
    worker: tuple[str, int]
    contenders: list[Contender]
    runs: dict[str, list[Run]]


def compare(
    work: Path, processes: int, worker: tuple[str, int], rounds: int, warmup: float, duration: float
) -> Comparison:
    folder = work / f"p{processes}"
    folder.mkdir()
    contenders = build_contenders(folder, worker, processes)
    runs: dict[str, list[Run]] = {c.key: [] for c in contenders}
    try:
        for c in contenders:
            c.setup()
        for round_no in range(1, rounds + 1):
            # ABBA: every other round in reverse, so a drift in the machine's load
            # weighs on every contender alike.
            order = contenders if round_no % 2 else contenders[::-1]
            for c in order:
                runs[c.key].append(measure(c, folder, warmup, duration, round_no))
    finally:
        for c in contenders:
            c.cleanup()
    return Comparison(processes, worker, contenders, runs)


def run(quick: bool) -> common.Result:
    rounds, warmup, duration = (1, 1, 2) if quick else (4, 2, 10)
    counts = (1,) if quick else process_counts()
    work = common.tempdir("ingest")
    try:
        comparisons: list[Comparison] = []
        pilot: list[list[object]] = []
        for processes in counts:
            if quick:
                worker: tuple[str, int] = ("gthread", 4)
            else:
                print(
                    f"   {processes} process(es): picking gunicorn's worker class for the "
                    "sync view (pilot)",
                    flush=True,
                )
                worker, rows = pick_gunicorn_worker(work, 5, processes)
                pilot += rows
            print(f"   {processes} process(es): every contender, {rounds} rounds", flush=True)
            comparisons.append(compare(work, processes, worker, rounds, warmup, duration))
        return _result(comparisons, pilot, rounds, warmup, duration)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _result(
    comparisons: list[Comparison],
    pilot: list[list[object]],
    rounds: int,
    warmup: float,
    duration: float,
) -> common.Result:
    med = common.median
    rows = []
    targets = []
    lag_rows = []
    cpu_rows: list[list[Any]] = []
    gil_note = ""
    charts = []
    for cmp in comparisons:
        runs = cmp.runs

        def rps(key: str, runs: dict[str, list[Run]] = runs) -> float:
            return med(r.wrk.rps for r in runs[key])

        hookway = rps("hookway")
        for c in cmp.contenders:
            rs = runs[c.key]
            extra = [r.extra_rows for r in rs]
            durable = "LOST " + str(-min(extra)) if min(extra) < 0 else f"ok (+{max(extra)})"
            if c.key == "django-celery":
                durable += ", in Redis memory only"
            rows.append(
                [
                    cmp.processes,
                    c.label,
                    c.server,
                    rps(c.key),
                    " / ".join(f"{r.wrk.rps:,.0f}" for r in rs),
                    med(r.wrk.p50_ms for r in rs),
                    med(r.wrk.p99_ms for r in rs),
                    sum(r.wrk.non_2xx for r in rs),
                    sum(r.wrk.socket_errors for r in rs),
                    durable,
                    "1.00x" if c.key == "hookway" else common.ratio(hookway, rps(c.key)),
                ]
            )
        hw = runs["hookway"]
        # The ratio per round (Hookway's run and the sync view's in the same round, minutes
        # apart): its spread says how much the machine's load moved the median.
        per_round = [
            h.wrk.rps / d.wrk.rps for h, d in zip(hw, runs["django-sync"], strict=True) if d.wrk.rps
        ]
        lag_p99 = [max(s.get("p99_ms", 0.0) for s in r.lag) for r in hw if r.lag]
        lag_max = [max(s.get("max_ms", 0.0) for s in r.lag) for r in hw if r.lag]
        p99 = med(r.wrk.p99_ms for r in hw)
        bad = sum(r.wrk.non_2xx + r.wrk.socket_errors for r in hw)
        lost = min(r.extra_rows for r in hw)
        n = cmp.processes
        each = "one process each" if n == 1 else f"{n} processes each"
        targets += [
            common.Target(
                f"Hookway ≥ 3x the best plain sync Django view ({each})",
                f"{common.ratio(hookway, rps('django-sync'))} (per round: "
                + ", ".join(f"{r:.2f}" for r in per_round)
                + ")",
                hookway >= 3 * rps("django-sync"),
            ),
            common.Target(
                f"Hookway ingest p99 ≤ 50 ms at 64 connections ({each})",
                f"{p99:.1f} ms",
                p99 <= 50,
            ),
            common.Target(
                f"Hookway ≥ 50 % of bare ASGI, group commit: the limit ({each})",
                f"{100 * hookway / rps('bare-asgi-group'):.0f} %",
                hookway >= 0.5 * rps("bare-asgi-group"),
            ),
            common.Target(
                f"Hookway: 0 non-2xx, 0 socket errors, every ack durable ({each})",
                f"{bad} errors, " + ("ok" if lost >= 0 else f"{-lost} acked rows missing"),
                bad == 0 and lost >= 0,
            ),
            common.Target(
                f"Hookway event-loop lag p99 < 10 ms under closed-loop saturation ({each}; "
                "the goal is judged at 80 % load in bench/results/loop_lag.md)",
                f"p99 {max(lag_p99):.1f} ms, max {max(lag_max):.1f} ms"
                if lag_p99
                else "not recorded",
                None,
            ),
        ]

        def nth(usage: common.CpuUsage, i: int) -> float:
            return usage.busiest[i][0] if len(usage.busiest) > i else 0.0

        for c in cmp.contenders:
            usage = [r.cpu for r in runs[c.key]]
            cpu_rows.append(
                [
                    n,
                    c.label,
                    med(u.us_per_request for u in usage),
                    f"{med(u.cores for u in usage):.2f}",
                    f"{med(nth(u, 0) for u in usage):.2f}",
                    f"{med(nth(u, 1) for u in usage):.2f}",
                    f"{100 * med(u.machine_idle for u in usage):.0f} %",
                ]
            )
        if n == 1:
            usage = [r.cpu for r in hw]
            loop = med(nth(u, 0) for u in usage)
            writer = med(nth(u, 1) for u in usage)
            idle = med(u.machine_idle for u in usage)
            loop_is_main = all(u.busiest and u.busiest[0][1] for u in usage)
            gil_note = (
                "Where one Hookway process stops (CPU table below): its busiest thread "
                + ("(the event loop's) " if loop_is_main else "")
                + f"used {loop:.2f} of a core and the next (the ingest writer's) {writer:.2f}, "
                f"while {100 * idle:.0f} % of the machine's {os.cpu_count()} cores sat idle. "
                "The loop is the limit: it runs every webhook's Python, and the rest of its "
                "time it waits for a group's commit with every connection's request in it. "
                "The writer's time is mostly SQLite's own work, outside Python's "
                "interpreter lock (docs/architecture.md, 'Where one process stops'). "
                f"{med(u.us_per_request for u in usage):.0f} µs of CPU per webhook in all. A "
                "second process (the 2-process rows) uses the idle core."
            )
        lag_rows += [
            [n, f"round {i}", f"worker {j}", s.get("p50_ms"), s.get("p99_ms"), s.get("max_ms")]
            for i, r in enumerate(hw, 1)
            for j, s in enumerate(r.lag, 1)
        ]
        labels = [c.key for c in cmp.contenders]
        charts.append(
            common.Chart(
                f"{n} process(es): req/s (median of {rounds})",
                "requests / s",
                labels,
                {"req/s": [rps(k) for k in labels]},
            )
        )
    charts.append(
        common.Chart(
            "p99 latency (median over rounds)",
            "ms (log scale)",
            [c.key for c in comparisons[0].contenders],
            {
                f"{cmp.processes} proc": [
                    med(r.wrk.p99_ms for r in cmp.runs[c.key]) for c in cmp.contenders
                ]
                for cmp in comparisons
            },
            log=True,
        )
    )
    notes = [
        f"Load: wrk, {CONNECTIONS} connections, {THREADS} threads, the same 1,024-byte JSON "
        f"body signed with HMAC-SHA256 on every request; {warmup:.0f} s warm-up, then "
        f"{duration:.0f} s measured, {rounds} round(s) with the contenders interleaved "
        "(every other round in reverse order). wrk is a C load generator: at these rates an "
        "asyncio client would itself be the bottleneck. It shares the 2 cores with the "
        "servers, as every contender's does.",
        "Each comparison gives every contender the same number of server processes (the "
        "first column). SQLite contenders use WAL + synchronous=FULL: a 2xx is sent only "
        "after the fsync of the commit holding the row.",
        "The plain-Django peers are deployed as a Django developer would: DEBUG off, no "
        "middleware, persistent database connections (CONN_MAX_AGE=None) under gunicorn, "
        "and gunicorn's worker class that won the pilot at that process count. The async "
        "peer runs with CONN_MAX_AGE=0, as Django's docs require under ASGI (a thread, so "
        "a connection, per request); SQLite has no Django pool.",
        "Hookway writes 2 rows per webhook (Event + its Delivery, the transactional outbox); "
        "the peers write 1. Its embedded dispatcher is off (HOOKWAY_EMBEDDED_DISPATCHER=false).",
        "'stored vs 2xx': rows stored during the measured run minus the 2xx answers wrk "
        "counted; never negative means no acknowledged row is missing. A positive value is "
        "the requests still in flight when wrk stopped counting (at most the 64 connections "
        "per round, plus wrk timeouts): stored, but their answers were not read.",
        "django-celery's ack is not durable: the Redis used here keeps messages in memory "
        "only (appendonly no, no RDB snapshots); stored = messages in the Redis queue.",
        "Event-loop lag here is under closed-loop saturation (64 connections always "
        "waiting), where the loop is never idle and a timer waits behind queued requests: "
        "it measures queueing, not blocking. The lag goal is judged at a fixed 80 % rate "
        "in bench/results/loop_lag.md.",
    ]
    notes.append(
        "CPU (table below): each server's process tree, read from /proc before and after "
        "the measured run, thread by thread: Hookway's busiest thread is its event loop, "
        "the next its ingest writer; a gunicorn worker's are its request threads. "
        "'machine idle' counts every core of the machine, wrk's included."
    )
    if gil_note:
        notes.append(gil_note)
    if pilot:
        notes.append(
            "gunicorn's sync worker serves one connection at a time and closes it after each "
            "response; gthread keeps connections alive and overlaps the fsync of one request "
            "with the parsing of others. The pilot (5 s per class, table below) picks the "
            "class per process count."
        )
    extra_tables: list[tuple[str, list[str], list[list[Any]]]] = []
    if pilot:
        extra_tables.append(
            (
                "Pilot: the plain sync Django view under gunicorn worker classes",
                ["processes", "worker class", "req/s", "p50 ms", "p99 ms", "errors"],
                pilot,
            )
        )
    extra_tables.append(
        (
            "CPU at saturation (median over rounds)",
            [
                "processes",
                "contender",
                "server CPU µs per request",
                "server cores busy",
                "busiest thread (cores)",
                "next busiest thread (cores)",
                "machine idle",
            ],
            cpu_rows,
        )
    )
    if lag_rows:
        extra_tables.append(
            (
                "Hookway event-loop lag (ms), closed-loop saturation",
                ["processes", "round", "worker", "p50", "p99", "max"],
                lag_rows,
            )
        )
    return common.Result(
        title="Ingest: durable signature-verified ack, 1 KB JSON, 64 connections",
        columns=[
            "processes",
            "contender",
            "server",
            "req/s (median)",
            "req/s per round",
            "p50 ms",
            "p99 ms",
            "non-2xx",
            "socket errors",
            "stored vs 2xx",
            "Hookway / this",
        ],
        rows=rows,
        notes=notes,
        targets=targets,
        charts=charts,
        extra_tables=extra_tables,
    )
