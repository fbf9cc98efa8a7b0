"""Scale-out on PostgreSQL: 2 web processes and 1, 2 or 3 standalone dispatchers.

The deployment docs/operations.md describes ("Several web workers and standalone
dispatchers"): the web tier (``uvicorn --workers 2``, embedded dispatcher off) takes
webhooks, separate ``manage.py dispatch`` processes deliver them, all on one PostgreSQL
database, every webhook routed to the benchmark receiver answering after 100 ms.

For each dispatcher count, on a fresh database:

1. ingest while delivering: wrk (64 connections, closed loop) on ``POST /hooks/bench``
   for a fixed time with the dispatchers running: the ingest rate, and the deliveries/s
   the receiver saw meanwhile;
2. drain: the dispatchers stop, wrk fills a backlog with none running, then N fresh
   dispatchers deliver it; deliveries/s from the first arrival to the last one's answer
   (the dispatchers alone, the web tier idle).

Scaling per added process is each rate over the rate with one dispatcher fewer. All of
it shares this machine's cores (the web tier, the dispatchers, PostgreSQL, wrk and the
receiver), so a dispatcher added beyond the cores competes for CPU rather than adding
it: read the figures as what one machine does, not as a cluster's.

``BENCH_PG_DB`` names the database (dropped and created for every count; default
``hookway_bench_scaleout``) on the server at 127.0.0.1:5432 (user postgres).
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from bench import common, deliverykit, ingest

PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
WEB_PROCESSES = 2
DISPATCHER_COUNTS = (1, 2, 3)
RECEIVER_DELAY_MS = 100
# Per dispatcher process: the dispatcher's own cap and the destination's are the same, so
# each process may have this many deliveries in flight (2,000/s at 100 ms, far above what
# a process's CPU gives: the CPU is what is measured).
CONCURRENCY = 200
CONNECTIONS = 64


def _db_name() -> str:
    return os.environ.get("BENCH_PG_DB", "hookway_bench_scaleout")


def fresh_database() -> str:
    """Drop and create the bench database; its URL. Raises if PostgreSQL is unreachable."""
    import psycopg

    name = _db_name()
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        raise RuntimeError(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL}: the scale-out benchmark needs it"
        ) from exc
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def drop_database() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{_db_name()}" WITH (FORCE)')


def config(receiver_url: str) -> str:
    return f"""
[[sources]]
slug = "bench"
verify = "hmac-sha256"
secret = "{ingest.SECRET}"

[[destinations]]
name = "receiver"
url = "{receiver_url}"
concurrency = {CONCURRENCY}

[[routes]]
source = "bench"
destination = "receiver"
"""


class ConnectionSampler:
    """Peak PostgreSQL connections held by each process, sampled every 0.2 s in a thread:
    pg_stat_activity's client ports, matched to the local processes owning them."""

    def __init__(self, db: str) -> None:
        self.db = db
        self.pids: dict[int, str] = {}  # process id -> "web" or "dispatcher"
        self.peak: dict[int, int] = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-connections", daemon=True)

    def watch(self, root_pid: int, role: str) -> None:
        import psutil

        with contextlib.suppress(psutil.Error):
            root = psutil.Process(root_pid)
            for proc in [root, *root.children(recursive=True)]:
                # multiprocessing's helper beside uvicorn's workers serves no requests.
                if not any("resource_tracker" in part for part in proc.cmdline()):
                    self.pids[proc.pid] = role

    def _sample(self, admin: object) -> None:
        import psutil

        rows = admin.execute(  # type: ignore[attr-defined]
            "SELECT client_port FROM pg_stat_activity WHERE datname = %s AND client_port > 0",
            [self.db],
        ).fetchall()
        ports = {row[0] for row in rows}
        held: dict[int, int] = collections.Counter()
        for conn in psutil.net_connections(kind="tcp"):
            ours = conn.pid in self.pids and conn.laddr and conn.laddr.port in ports
            if ours and conn.raddr and conn.raddr.port == 5432:
                held[conn.pid] += 1
        for pid, count in held.items():
            self.peak[pid] = max(self.peak[pid], count)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            while not self._stop.wait(0.2):
                with contextlib.suppress(Exception):  # a sample lost is not the benchmark's end
                    self._sample(admin)

    def by_role(self, role: str) -> list[int]:
        """Peak connections of each process in that role (0 for one never seen holding any)."""
        return [self.peak.get(pid, 0) for pid, r in self.pids.items() if r == role]

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class Step:
    dispatchers: int
    wrk: common.WrkResult
    delivered_during: int  # receiver arrivals while wrk ran
    drained: int  # arrivals after wrk stopped
    drain_seconds: float
    complete: bool  # every acked webhook arrived
    duplicates: int
    load: str
    web_connections: list[int] = field(default_factory=list)  # peak, per web worker
    dispatcher_connections: list[int] = field(default_factory=list)  # peak, per dispatcher

    @property
    def ingest_rps(self) -> float:
        return self.wrk.rps

    @property
    def during_per_s(self) -> float:
        return self.delivered_during / self.wrk.duration_s

    @property
    def drain_per_s(self) -> float:
        return self.drained / self.drain_seconds if self.drain_seconds > 0 else float("nan")


def step(
    work: Path,
    rx: deliverykit.Receiver,
    dispatchers: int,
    warmup: float,
    duration: float,
    fill: float,
    drain_limit: float,
) -> Step:
    url = fresh_database()
    folder = work / f"d{dispatchers}"
    folder.mkdir()
    cfg = folder / "hookway.toml"
    cfg.write_text(config(rx.url(RECEIVER_DELAY_MS)))
    env = {
        "DJANGO_SETTINGS_MODULE": "hookway.standalone.settings",
        "DATABASE_URL": url,
        "HOOKWAY_CONFIG": str(cfg),
        "HOOKWAY_EMBEDDED_DISPATCHER": "false",
        "HOOKWAY_ALLOW_PRIVATE_DESTINATIONS": "true",
        "HOOKWAY_DISPATCHER_CONCURRENCY": str(CONCURRENCY),
        # INFO: a dispatcher is ready once it logs "running" (a delivery logs nothing).
        "HOOKWAY_LOG_LEVEL": "INFO",
    }
    common.run_checked([common.PYTHON, "manage.py", "migrate", "--no-input", "-v0"], env=env)
    port = common.free_port()
    hooks = f"http://{common.HOST}:{port}/hooks/bench"
    web = common.Server(
        "web",
        common.hookway_uvicorn(port, "--workers", str(WEB_PROCESSES), "--log-level", "warning"),
        env={**env, "HOOKWAY_LOG_LEVEL": "WARNING"},
        logdir=folder,
    )

    def dispatcher_processes(phase: str) -> list[common.Server]:
        return [
            common.Server(
                f"dispatch-{phase}-{i}",
                [common.PYTHON, "manage.py", "dispatch"],
                env=env,
                logdir=folder,
            )
            for i in range(1, dispatchers + 1)
        ]

    def start(servers: list[common.Server]) -> None:
        for w in servers:
            w.start()
        for w in servers:
            w.wait_log("running (concurrency", timeout=60)

    def wrk(seconds: float) -> common.WrkResult:
        return common.run_wrk(
            hooks,
            duration=seconds,
            connections=CONNECTIONS,
            body=ingest.BODY,
            headers=ingest.HEADERS,
            logdir=folder,
        )

    workers = dispatcher_processes("ingest")
    drainers: list[common.Server] = []
    sampler = ConnectionSampler(_db_name())
    try:
        web.start()
        web.wait_http(f"http://{common.HOST}:{port}/healthz", timeout=60)
        start(workers)
        # The uvicorn supervisor holds none; its workers do.
        sampler.watch(web.pid, "web")
        sampler.pids.pop(web.pid, None)
        for w in workers:
            sampler.watch(w.pid, "dispatcher")
        sampler.__enter__()

        # 1. Ingest while the dispatchers deliver.
        wrk(warmup)
        rx.wait_for(10**9, drain_limit, stall=3.0)  # the warm-up's backlog, delivered
        rx.reset()
        result = wrk(duration)
        during = rx.stats()["count"]
        # Every 2xx is stored; in-flight requests wrk abandoned may add a few more.
        stats = rx.wait_for(result.ok, drain_limit, stall=10.0)
        complete = stats["count"] >= result.ok
        duplicates = stats["duplicates"]
        for w in workers:
            w.stop(timeout=30)

        # 2. A backlog ingested with no dispatcher running, then drained by N of them.
        rx.reset()
        backlog = wrk(fill).ok
        drainers = dispatcher_processes("drain")
        start(drainers)
        for w in drainers:
            sampler.watch(w.pid, "dispatcher")
        drained_stats = rx.wait_for(backlog, drain_limit, stall=10.0)
        complete = complete and drained_stats["count"] >= backlog
        duplicates += drained_stats["duplicates"]
        times = [at for _, at, _ in rx.arrivals()]
        drained = len(times)
        # From the first arrival to the last one's answer (deliverykit.delivery_rate).
        drain_seconds = (max(times) - min(times) + RECEIVER_DELAY_MS / 1000) if times else 0.0
    finally:
        sampler.__exit__()
        for w in [*workers, *drainers]:
            w.stop(timeout=30)
        web.stop()
    print(
        f"   {dispatchers} dispatcher(s): ingest {result.rps:7.0f} req/s (p99 {result.p99_ms:.1f}"
        f" ms), delivered {during / result.duration_s:6.0f}/s meanwhile, drain "
        f"{drained / drain_seconds if drain_seconds else float('nan'):6.0f}/s "
        f"({drained} in {drain_seconds:.1f} s), load {common.load_average()}",
        flush=True,
    )
    return Step(
        dispatchers,
        result,
        during,
        drained,
        drain_seconds,
        complete,
        duplicates,
        common.load_average(),
        sampler.by_role("web"),
        sampler.by_role("dispatcher"),
    )


def run(quick: bool) -> common.Result:
    counts, warmup, duration, fill, drain_limit = (
        ((1,), 1, 2, 1, 60) if quick else (DISPATCHER_COUNTS, 2, 15, 10, 300)
    )
    work = common.tempdir("pg-scaleout")
    steps: list[Step] = []
    try:
        with deliverykit.Receiver(work, RECEIVER_DELAY_MS) as rx:
            for n in counts:
                steps.append(step(work, rx, n, warmup, duration, fill, drain_limit))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        drop_database()
    return _result(steps, warmup, duration)


def _result(steps: list[Step], warmup: float, duration: float) -> common.Result:
    rows = []
    prev: Step | None = None
    for s in steps:
        rows.append(
            [
                f"{WEB_PROCESSES} web + {s.dispatchers} dispatcher(s)",
                s.ingest_rps,
                s.wrk.p99_ms,
                common.ratio(s.ingest_rps, prev.ingest_rps) if prev else "",
                s.during_per_s,
                common.ratio(s.during_per_s, prev.during_per_s) if prev else "",
                s.drain_per_s,
                common.ratio(s.drain_per_s, prev.drain_per_s) if prev else "",
                "yes" if s.complete else "**no**",
                s.duplicates,
                " / ".join(str(n) for n in s.web_connections),
                " / ".join(str(n) for n in s.dispatcher_connections),
                s.load,
            ]
        )
        prev = s
    first, last = steps[0], steps[-1]
    targets = [
        common.Target(
            "every acked webhook delivered, at every dispatcher count",
            ", ".join(f"{s.dispatchers}: {'yes' if s.complete else 'no'}" for s in steps),
            all(s.complete for s in steps),
        ),
        common.Target(
            f"drain deliveries/s, {last.dispatchers} dispatchers over 1 (reported, no goal)",
            common.ratio(last.drain_per_s, first.drain_per_s),
            None,
        ),
    ]
    notes = [
        f"{WEB_PROCESSES} web processes (uvicorn --workers {WEB_PROCESSES}, embedded "
        "dispatcher off) and N `manage.py dispatch` processes on one PostgreSQL database, "
        "all on this machine with wrk, PostgreSQL and the receiver.",
        f"Every webhook is routed to the benchmark receiver answering after "
        f"{RECEIVER_DELAY_MS} ms; each dispatcher may have {CONCURRENCY} deliveries in "
        f"flight (HOOKWAY_DISPATCHER_CONCURRENCY and the destination's concurrency), "
        f"{CONCURRENCY * 1000 // RECEIVER_DELAY_MS:,}/s per process at 100 ms: the "
        "figures are bounded by CPU, not by the cap.",
        f"Ingest: wrk, {CONNECTIONS} connections, closed loop, {warmup:.0f} s warm-up (its "
        f"backlog delivered first), then {duration:.0f} s measured with the dispatchers "
        "delivering at the same time ('delivered meanwhile').",
        "Drain: a backlog ingested for 10 s (1 s in a quick run) with no dispatcher running, then delivered by "
        "N fresh dispatchers; deliveries/s from its first arrival to the last one's answer "
        "(the web tier idle).",
        "Scaling: each rate over the same rate with one dispatcher fewer.",
        "PG connections: the most each process held at once (pg_stat_activity's client "
        "ports matched to the processes' sockets, sampled every 0.2 s): what the connection "
        "budget in docs/operations.md is checked against. Each process has Django's psycopg "
        "pool (min 2, max 20) and, for a dispatcher, one LISTEN connection outside it.",
    ]
    return common.Result(
        title="PostgreSQL scale-out: 2 web processes + 1, 2, 3 dispatchers, 100 ms receiver",
        columns=[
            "processes",
            "ingest req/s",
            "ingest p99 ms",
            "ingest vs one fewer",
            "delivered/s meanwhile",
            "vs one fewer",
            "drain deliveries/s",
            "drain vs one fewer",
            "all delivered",
            "duplicates",
            "PG connections, peak per web worker",
            "PG connections, peak per dispatcher",
            "load average after",
        ],
        rows=rows,
        targets=targets,
        notes=notes,
        charts=[
            common.Chart(
                "Rates by dispatcher count",
                "per second",
                [f"{s.dispatchers} disp." for s in steps],
                {
                    "ingest req/s": [s.ingest_rps for s in steps],
                    "delivered/s meanwhile": [s.during_per_s for s in steps],
                    "drain deliveries/s": [s.drain_per_s for s in steps],
                },
            )
        ],
    )
