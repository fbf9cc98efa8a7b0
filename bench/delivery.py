"""Delivery throughput (issue 4, benchmark 2): 5,000 webhooks to one destination that
answers after 100 ms.

Hookway's standalone dispatcher (one ``manage.py dispatch`` process, SQLite) vs
django-tasks-db's ``db_worker`` (one process, SQLite) vs Celery on Redis with the prefork
pool (2 processes) and the threads pool (100 threads). Every system makes the same POST
(1 KB JSON, ``webhook-id`` header) to the same receiver (bench.peers.receiver, its own
process), which records when each webhook arrived.

Three measurements per system:

- **Throughput**: the queue is filled first, then the worker starts; deliveries/s is
  counted from the first arrival to the last, so worker start-up is left out (the wall
  time including it is reported too). Peers too slow for the time budget get a bounded
  number of events (the notes say how many); their rate is measured the same way.
- **Ack-to-delivered**: with the worker idle and running, events are acked (committed /
  enqueued) at a steady rate it can sustain (at most half its measured throughput), and
  each event's latency is the time from its ack to its arrival at the receiver. Hookway is
  measured twice: the embedded dispatcher behind ``POST /hooks/<slug>`` (ack = the 202
  reaching the sender; woken in-process), and the standalone dispatcher (woken by its poll
  or a finished delivery: SQLite has no cross-process notification).
- **Memory and loop health**: peak RSS of each worker's process tree (psutil, every
  100 ms); Hookway's RSS with 1,000 deliveries in flight (receiver answering after 3 s);
  the dispatcher's event-loop lag (HOOKWAY_LOOP_LAG_FILE) during its throughput run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    HOST,
    PYTHON,
    Chart,
    Result,
    Server,
    Target,
    fmt,
    free_port,
    run_checked,
    tempdir,
)
from bench.deliverykit import (
    Dest,
    Phases,
    ProcSampler,
    Receiver,
    copy_db,
    delivery_rate,
    dispatch_cmd,
    hookway_env,
    latencies_ms,
    migrate_hookway,
    p50_p99,
    produce_hookway,
    read_lag,
    uvicorn_cmd,
    write_config,
)
from bench.peers.hookway_produce import body_for

DELAY_MS = 100
TASKS_SETTINGS = "bench.peers.delivery_tasks_site.settings"


@dataclass
class Sizes:
    events: int  # Hookway and Celery threads
    hookway_concurrency: int
    hookway_deadline: float
    other_transport_deadline: float
    tasks_events: int
    prefork_events: int
    peer_deadline: float
    inflight: int
    inflight_delay_ms: int
    paced_rate: float
    paced_seconds: float

    @classmethod
    def for_mode(cls, quick: bool) -> Sizes:
        if quick:
            return cls(200, 200, 20, 0, 10, 0, 10, 100, 300, 20, 1.0)
        return cls(5000, 1000, 40, 20, 200, 400, 30, 1000, 3000, 100, 5.0)


@dataclass
class Run:
    system: str
    workers: str
    planned: int = 0
    delivered: int = 0
    rate: float = float("nan")
    wall_s: float = float("nan")
    peak_rss_mb: float = float("nan")
    cpu_s: float = float("nan")
    complete: bool = False
    duplicates: int = 0
    lag: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    paced_rate: float = float("nan")
    paced_planned: int = 0
    error: str = ""

    @property
    def cpu_ms_per_delivery(self) -> float:
        return self.cpu_s / self.delivered * 1000 if self.delivered else float("nan")


def _default_transport() -> str:
    from hookway.conf import load

    return load({"HOOKWAY_DEMO": "true"}).http_transport


def _redis_up() -> bool:
    try:
        with socket.create_connection((HOST, 6379), timeout=1):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- generic runs


def _throughput(
    rx: Receiver,
    run: Run,
    worker: Server,
    n: int,
    deadline: float,
    then: Callable[[], None] | None = None,
) -> Run:
    """Start ``worker`` on a queue already holding n events; measure until all n arrived
    (or the deadline). ``then`` runs afterwards with the worker still up (the latency
    phase), so a slow-starting worker is started once."""
    rx.reset()
    run.planned = n
    started = time.monotonic()
    with worker, ProcSampler(worker.pid) as sampler:
        stats = rx.wait_for(n, deadline)
        stopped_at = time.time()
        run.wall_s = time.monotonic() - started
        run.peak_rss_mb = sampler.peak_rss_mb
        run.cpu_s = sampler.cpu_seconds
        arrivals = rx.arrivals()
        run.delivered = len({a[0] for a in arrivals if a[0]})
        run.duplicates = int(stats["duplicates"])
        run.complete = run.delivered >= n
        times = [a[1] for a in arrivals]
        if run.complete:
            run.rate = delivery_rate(times, DELAY_MS / 1000)
        elif times:  # stopped at the deadline: what it delivered in the time it had
            run.rate = run.delivered / (stopped_at - min(times))
        if then is not None:
            then()
        worker.stop(timeout=30)
    if not run.complete and run.delivered == 0:
        run.error = f"nothing delivered; log tail: {worker.log_tail(5)}"
    return run


def _paced_on(
    rx: Receiver,
    run: Run,
    produce: Callable[[int, float], dict[str, float]],
    rate: float,
    seconds: float,
) -> Run:
    """With a worker running and idle, ack events at ``rate`` for ``seconds``; record
    each one's ack-to-delivered time."""
    n = max(5, round(rate * seconds))
    run.paced_rate, run.paced_planned = rate, n
    rx.reset()
    acks = produce(n, rate)
    rx.wait_for(n, timeout=15, stall=5)
    run.latencies = latencies_ms(acks, rx.arrivals())
    return run


def _paced(
    rx: Receiver,
    run: Run,
    worker: Server,
    ready: Callable[[Server], None],
    produce: Callable[[int, float], dict[str, float]],
    rate: float,
    seconds: float,
) -> Run:
    """``_paced_on`` with a worker of its own."""
    with worker:
        ready(worker)
        _paced_on(rx, run, produce, rate, seconds)
        worker.stop()
    return run


# --------------------------------------------------------------------------- hookway


class HookwaySetup:
    def __init__(self, tmp: Path, rx: Receiver) -> None:
        self.tmp = tmp / "hookway"
        self.tmp.mkdir()
        self.rx = rx
        self.template = self.tmp / "template.sqlite3"
        self.config = write_config(self.tmp / "hookway.toml", [Dest("receiver", rx.url(DELAY_MS))])
        migrate_hookway(hookway_env(self.template, self.config))
        self.count = 0

    def fresh(self, delay_ms: float, concurrency: int, **extra: str) -> tuple[dict[str, str], Path]:
        """A copy of the migrated database and a config for this run; (env, run dir)."""
        self.count += 1
        folder = self.tmp / f"run{self.count}"
        folder.mkdir()
        db = copy_db(self.template, folder / "hookway.sqlite3")
        config = write_config(
            folder / "hookway.toml",
            [Dest("receiver", self.rx.url(delay_ms), concurrency=concurrency)],
        )
        return hookway_env(db, config, **extra), folder


def hookway_throughput(
    setup: HookwaySetup, transport: str, default: bool, sizes: Sizes, deadline: float
) -> Run:
    label = f"Hookway dispatcher ({transport}{', default' if default else ''})"
    run = Run(label, f"1 process, --concurrency {sizes.hookway_concurrency}")
    env, folder = setup.fresh(
        DELAY_MS,
        sizes.hookway_concurrency,
        HOOKWAY_HTTP_TRANSPORT=transport,
        HOOKWAY_LOOP_LAG_FILE=str(setup.tmp / f"lag-{transport}.json"),
    )
    produce_hookway(env, sizes.events)
    worker = Server(
        f"dispatch-{transport}",
        dispatch_cmd(sizes.hookway_concurrency),
        env=env,
        logdir=folder,
    )
    _throughput(setup.rx, run, worker, sizes.events, deadline)
    run.lag = read_lag(setup.tmp / f"lag-{transport}.json")
    return run


@dataclass
class Inflight:
    target: int
    max_inflight: int = 0
    peak_rss_mb: float = float("nan")
    lag: dict[str, float] = field(default_factory=dict)
    delivered: int = 0


def hookway_inflight(setup: HookwaySetup, sizes: Sizes) -> Inflight:
    """RSS of one dispatcher holding ``sizes.inflight`` deliveries in flight at once."""
    out = Inflight(sizes.inflight)
    lag_file = setup.tmp / "lag-inflight.json"
    env, folder = setup.fresh(
        sizes.inflight_delay_ms, sizes.inflight, HOOKWAY_LOOP_LAG_FILE=str(lag_file)
    )
    produce_hookway(env, sizes.inflight)
    setup.rx.reset()
    worker = Server("dispatch-inflight", dispatch_cmd(sizes.inflight), env=env, logdir=folder)
    with worker, ProcSampler(worker.pid, interval=0.05) as sampler:
        setup.rx.wait_for(sizes.inflight, timeout=60, stall=15)
        # Every delivery is now in flight (the receiver holds them for inflight_delay_ms);
        # wait for the answers so the peak includes reading them and recording attempts.
        time.sleep(sizes.inflight_delay_ms / 1000 + 1.0)
        worker.stop(timeout=30)
    stats = setup.rx.stats()
    out.max_inflight = int(stats["max_inflight"])
    out.delivered = int(stats["count"])
    out.peak_rss_mb = sampler.peak_rss_mb
    out.lag = read_lag(lag_file)
    return out


async def _post_paced(url: str, n: int, rate: float, prefix: str) -> dict[str, float]:
    """POST n webhooks to Hookway at ``rate``/s (open loop); bench_id -> time of the 2xx."""
    import httpx

    acks: dict[str, float] = {}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=10, trust_env=False) as client:

        async def one(i: int) -> None:
            bench_id = f"{prefix}-{i}"
            response = await client.post(
                url, content=body_for(bench_id), headers={"Content-Type": "application/json"}
            )
            if response.status_code == 202:
                acks[bench_id] = time.time()

        began = time.monotonic()
        tasks = []
        for i in range(n):
            delay = began + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks, return_exceptions=True)
    return acks


def hookway_paced_embedded(setup: HookwaySetup, sizes: Sizes) -> tuple[Run, dict[str, float]]:
    run = Run("Hookway embedded (POST /hooks → delivery)", "1 uvicorn process")
    lag_file = setup.tmp / "lag-embedded.json"
    env, folder = setup.fresh(
        DELAY_MS, sizes.hookway_concurrency, HOOKWAY_LOOP_LAG_FILE=str(lag_file)
    )
    port = free_port()
    base = f"http://{HOST}:{port}"
    worker = Server("hookway-embedded", uvicorn_cmd(port), env=env, logdir=folder)

    def produce(n: int, rate: float) -> dict[str, float]:
        # Warm up the ingest path and the dispatcher's connection (not counted).
        asyncio.run(_post_paced(base + "/hooks/bench", 1, 1.0, "warmup"))
        time.sleep(0.5)
        setup.rx.reset()
        return asyncio.run(_post_paced(base + "/hooks/bench", n, rate, "emb"))

    _paced(
        setup.rx,
        run,
        worker,
        lambda w: w.wait_http(base + "/healthz"),
        produce,
        sizes.paced_rate,
        sizes.paced_seconds,
    )
    return run, read_lag(lag_file)


def hookway_paced_standalone(setup: HookwaySetup, run: Run, sizes: Sizes) -> Run:
    # INFO: the worker is ready once it logs "running" (a delivered attempt logs nothing).
    env, folder = setup.fresh(DELAY_MS, sizes.hookway_concurrency, HOOKWAY_LOG_LEVEL="INFO")
    worker = Server(
        "dispatch-paced",
        dispatch_cmd(sizes.hookway_concurrency, until_empty=False),
        env=env,
        logdir=folder,
    )

    def produce(n: int, rate: float) -> dict[str, float]:
        return produce_hookway(env, n, prefix="paced", rate=rate, out=folder / "acks.json")

    return _paced(
        setup.rx,
        run,
        worker,
        lambda w: w.wait_log("running (concurrency"),
        produce,
        sizes.paced_rate,
        sizes.paced_seconds,
    )


# --------------------------------------------------------------------------- peers


def _paced_rate(run: Run, sizes: Sizes) -> float:
    if run.rate != run.rate:
        return 1.0
    return max(1.0, min(sizes.paced_rate, run.rate / 2))


def tasks_db(tmp: Path, rx: Receiver, sizes: Sizes) -> Run:
    folder = tmp / "tasks"
    folder.mkdir()
    template = folder / "template.sqlite3"
    base_env = {"DJANGO_SETTINGS_MODULE": TASKS_SETTINGS}
    run_checked(
        [PYTHON, "-m", "django", "migrate", "-v0"], env={**base_env, "DATABASE_PATH": str(template)}
    )
    url = rx.url(DELAY_MS)

    def env_for(name: str) -> dict[str, str]:
        db = copy_db(template, folder / f"{name}.sqlite3")
        return {**base_env, "DATABASE_PATH": str(db)}

    def produce(env: dict[str, str], n: int, rate: float, prefix: str) -> dict[str, float]:
        out = folder / f"acks-{prefix}.json"
        cmd = [PYTHON, "-m", "bench.peers.delivery_tasks_site.produce", "--url", url]
        cmd += ["--n", str(n), "--rate", str(rate), "--prefix", prefix, "--out", str(out)]
        run_checked(cmd, env=env, timeout=120)
        return dict(json.loads(out.read_text()))

    worker_cmd = [PYTHON, "-m", "django", "db_worker", "--no-startup-delay"]
    run = Run("django-tasks-db db_worker", "1 process")
    env = env_for("throughput")
    produce(env, sizes.tasks_events, 0, "ev")

    def paced() -> None:
        _paced_on(
            rx,
            run,
            lambda n, rate: produce(env, n, rate, "paced"),
            _paced_rate(run, sizes),
            sizes.paced_seconds,
        )

    worker = Server("db_worker", worker_cmd, env=env, logdir=folder)
    return _throughput(rx, run, worker, sizes.tasks_events, sizes.peer_deadline, then=paced)


def celery(
    tmp: Path, rx: Receiver, pool: str, concurrency: int, n: int, deadline: float, sizes: Sizes
) -> Run:
    folder = tmp / f"celery-{pool}"
    folder.mkdir()
    queue = f"hookway-bench-delivery-{os.getpid()}-{pool}"
    env = {"BENCH_CELERY_QUEUE": queue}
    url = rx.url(DELAY_MS)
    label = f"Celery {pool} pool"
    workers = f"{concurrency} {'processes' if pool == 'prefork' else 'threads'}"
    run = Run(label, workers)
    producer = [PYTHON, "-m", "bench.peers.delivery_celery", "--url", url]

    def produce(count: int, rate: float, prefix: str) -> dict[str, float]:
        out = folder / f"acks-{prefix}.json"
        cmd = [
            *producer,
            "--n",
            str(count),
            "--rate",
            str(rate),
            "--prefix",
            prefix,
            "--out",
            str(out),
        ]
        run_checked(cmd, env=env, timeout=120)
        return dict(json.loads(out.read_text()))

    def worker(name: str) -> Server:
        cmd = [PYTHON, "-m", "celery", "-A", "bench.peers.delivery_celery", "worker"]
        cmd += ["--pool", pool, "--concurrency", str(concurrency), "--loglevel", "INFO"]
        # Start-up only: skip the cluster chatter a single worker has no use for.
        cmd += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", queue]
        return Server(name, cmd, env=env, logdir=folder)

    def paced() -> None:
        _paced_on(
            rx,
            run,
            lambda count, rate: produce(count, rate, "paced"),
            _paced_rate(run, sizes),
            sizes.paced_seconds,
        )

    purge = [*producer, "--n", "0", "--purge"]
    try:
        run_checked(purge, env=env)
        produce(n, 0, "ev")
        _throughput(rx, run, worker(f"celery-{pool}"), n, deadline, then=paced)
    finally:
        with contextlib.suppress(Exception):
            run_checked(purge, env=env)
    return run


# --------------------------------------------------------------------------- report


def _lat(run: Run) -> tuple[float, float]:
    return p50_p99(run.latencies) if run.latencies else (float("nan"), float("nan"))


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if a == a and b == b and b else "n/a"


def _row(run: Run, hookway_rate: float, alt_rate: float) -> list[Any]:
    p50, p99 = _lat(run)
    delivered = f"{run.delivered:,}/{run.planned:,}" + ("" if run.complete else " (bounded)")
    paced = (
        f"{run.paced_rate:.1f}/s ({len(run.latencies)}/{run.paced_planned})"
        if run.paced_planned
        else "n/a"
    )
    return [
        run.system,
        run.workers,
        delivered,
        run.rate,
        "" if run.system.startswith("Hookway") else _ratio(hookway_rate, run.rate),
        "" if run.system.startswith("Hookway") else _ratio(alt_rate, run.rate),
        run.wall_s,
        p50,
        p99,
        paced,
        run.peak_rss_mb,
        run.cpu_ms_per_delivery,
    ]


COLUMNS = [
    "system",
    "workers",
    "delivered",
    "deliveries/s",
    "Hookway (default) ÷ this",
    "Hookway (other transport) ÷ this",
    "wall s (incl. start-up)",
    "ack→delivered p50 ms",
    "p99 ms",
    "latency measured at",
    "peak RSS MB",
    "CPU ms/delivery",
]


def run(quick: bool) -> Result:
    sizes = Sizes.for_mode(quick)
    default = _default_transport()
    other = "aiohttp" if default == "httpx" else "httpx"
    tmp = tempdir("delivery")
    runs: list[Run] = []
    notes: list[str] = []
    try:
        phase = Phases("delivery")
        with Receiver(tmp, delay_ms=DELAY_MS) as rx:
            with phase("Hookway setup (migrate)"):
                setup = HookwaySetup(tmp, rx)
            with phase(f"Hookway throughput ({default})"):
                hookway = hookway_throughput(setup, default, True, sizes, sizes.hookway_deadline)
            runs.append(hookway)
            alt: Run | None = None
            if sizes.other_transport_deadline > 0:
                with phase(f"Hookway throughput ({other})"):
                    alt = hookway_throughput(
                        setup, other, False, sizes, sizes.other_transport_deadline
                    )
                runs.append(alt)
            with phase(f"Hookway RSS with {sizes.inflight} in flight"):
                inflight = hookway_inflight(setup, sizes)
            with phase("Hookway embedded latency"):
                embedded, embedded_lag = hookway_paced_embedded(setup, sizes)
            with phase("Hookway standalone latency"):
                hookway_paced_standalone(setup, hookway, sizes)
            with phase("django-tasks-db"):
                tasks = tasks_db(tmp, rx, sizes)
            runs.append(tasks)
            if _redis_up():
                prefork = None
                if sizes.prefork_events:  # quick mode skips it: same code path as threads
                    with phase("Celery prefork"):
                        prefork = celery(
                            tmp, rx, "prefork", 2, sizes.prefork_events, sizes.peer_deadline, sizes
                        )
                    runs.append(prefork)
                with phase("Celery threads"):
                    threads = celery(
                        tmp, rx, "threads", 100, sizes.events, sizes.peer_deadline * 2, sizes
                    )
                runs.append(threads)
            else:
                prefork = threads = None
                notes.append(
                    "Redis is not reachable on 127.0.0.1:6379: the Celery rows were skipped."
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    h = hookway.rate
    ha = alt.rate if alt is not None else float("nan")
    rows = [_row(r, h, ha) for r in runs]
    emb_p50, emb_p99 = _lat(embedded)
    rows.append(
        [
            embedded.system,
            embedded.workers,
            "n/a",
            float("nan"),
            "",
            "",
            float("nan"),
            emb_p50,
            emb_p99,
            f"{embedded.paced_rate:.1f}/s ({len(embedded.latencies)}/{embedded.paced_planned})",
            float("nan"),
            float("nan"),
        ]
    )

    lag = hookway.lag
    extra = [
        (
            "Hookway memory and event-loop lag",
            ["measurement", "value"],
            [
                [
                    f"peak RSS, dispatcher with {inflight.target:,} deliveries in flight "
                    f"(receiver held {inflight.max_inflight:,} at once; {inflight.delivered:,} delivered)",
                    f"{fmt(inflight.peak_rss_mb)} MB",
                ],
                [
                    f"loop lag during the {hookway.system} throughput run: p50 / p99 / max",
                    _lag_text(lag),
                ],
                [
                    f"loop lag with {inflight.target:,} in flight: p50 / p99 / max",
                    _lag_text(inflight.lag),
                ],
                ["loop lag of the embedded server during its latency run", _lag_text(embedded_lag)],
            ]
            + (
                [[f"loop lag, {alt.system} throughput run", _lag_text(alt.lag)]]
                if alt is not None
                else []
            ),
        )
    ]

    tasks_ratio = h / tasks.rate if tasks.rate == tasks.rate and tasks.rate else float("nan")
    threads_ratio = (
        h / threads.rate
        if threads is not None and threads.rate == threads.rate and threads.rate
        else float("nan")
    )
    also = f" ({other}: {{}})" if alt is not None else ""

    def alt_ratio(peer: Run | None) -> str:
        if alt is None or peer is None:
            return ""
        return also.format(_ratio(alt.rate, peer.rate))

    targets = [
        Target(
            f"≥ 50x django-tasks-db deliveries/s ({default} transport)",
            f"{fmt(tasks_ratio)}x" + alt_ratio(tasks),
            _met(tasks_ratio, 50),
        ),
        Target(
            f"≥ 3x Celery threads deliveries/s ({default} transport)",
            f"{fmt(threads_ratio)}x" + alt_ratio(threads),
            _met(threads_ratio, 3),
        ),
        Target(
            "ack-to-delivered p50 ≤ 150 ms",
            f"embedded {fmt(emb_p50)} ms, standalone {fmt(_lat(hookway)[0])} ms",
            None if emb_p50 != emb_p50 else emb_p50 <= 150,
        ),
        Target(
            "RSS ≤ 200 MB with 1,000 deliveries in flight",
            f"{fmt(inflight.peak_rss_mb)} MB with {inflight.max_inflight:,} in flight",
            None if quick else (inflight.peak_rss_mb <= 200 and inflight.max_inflight >= 1000),
        ),
        Target(
            f"dispatcher event-loop lag p99 < 10 ms (delivery load, {default})",
            _lag_text(lag) + (f"; {other}: {_lag_text(alt.lag)}" if alt is not None else ""),
            None if not lag.get("samples") else lag["p99_ms"] < 10,
        ),
    ]

    notes += _notes(sizes, runs, hookway, alt, tasks, prefork, threads, default)
    charts = [
        Chart(
            "Deliveries/s (log scale)",
            "deliveries/s",
            [r.system.replace(" pool", "").replace("Hookway dispatcher", "Hookway") for r in runs],
            {"deliveries/s": [r.rate for r in runs]},
            log=True,
        ),
        Chart(
            "Ack → delivered (paced load)",
            "ms",
            [
                r.system.replace(" pool", "").replace("Hookway dispatcher", "Hookway")
                for r in [*runs, embedded]
                if r.latencies
            ],
            {
                "p50": [_lat(r)[0] for r in [*runs, embedded] if r.latencies],
                "p99": [_lat(r)[1] for r in [*runs, embedded] if r.latencies],
            },
            log=True,
        ),
        Chart(
            "Peak RSS of the worker",
            "MB",
            [r.system.replace(" pool", "").replace("Hookway dispatcher", "Hookway") for r in runs]
            + [f"Hookway, {inflight.target:,} in flight"],
            {"MB": [r.peak_rss_mb for r in runs] + [inflight.peak_rss_mb]},
        ),
    ]
    return Result(
        title=f"Delivery throughput: {sizes.events:,} webhooks to one destination answering after {DELAY_MS} ms",
        columns=COLUMNS,
        rows=rows,
        notes=notes,
        targets=targets,
        charts=charts,
        extra_tables=extra,
    )


def _met(ratio: float, goal: float) -> bool | None:
    return None if ratio != ratio else ratio >= goal


def _lag_text(lag: dict[str, float]) -> str:
    if not lag or not lag.get("samples"):
        return "n/a (no lag file: the process did not stop within 30 s of SIGTERM and was killed)"
    return f"{lag['p50_ms']:.1f} / {lag['p99_ms']:.1f} / {lag['max_ms']:.1f} ms ({lag['samples']} samples)"


def _notes(
    sizes: Sizes,
    runs: list[Run],
    hookway: Run,
    alt: Run | None,
    tasks: Run,
    prefork: Run | None,
    threads: Run | None,
    default: str,
) -> list[str]:
    notes = [
        "deliveries/s is counted at the receiver from the first arrival to the last, after "
        "the queue was filled and then the worker started: n / (last arrival - first arrival "
        "+ 100 ms); start-up is excluded ('wall s' includes it). A run stopped at its deadline "
        "counts delivered / (stop - first arrival). Every worker runs on the same 2 cores as "
        "the receiver.",
        f"Hookway's dispatcher uses HOOKWAY_HTTP_TRANSPORT={default} (the product default) "
        "in the headline row; the ratios are computed from that row."
        + (
            f" The {alt.system} row is the other transport, run for at most "
            f"{sizes.other_transport_deadline:g} s (see http_client.md)."
            if alt is not None
            else ""
        ),
        "Ack-to-delivered: the worker is started and idle, then events are acked at a steady "
        "rate (at most half the worker's measured throughput, so this measures latency, not a "
        "backlog); 'delivered' is when the receiver got the request (before its 100 ms answer). "
        "Acks: Hookway standalone = its ingest transaction committed (fsync), embedded = the 202 "
        "reached the sender, django-tasks-db = `task.enqueue()` returned (commit), Celery = "
        "`.delay()` returned (Redis LPUSH).",
        "The standalone dispatcher on SQLite has no cross-process wake-up (PostgreSQL would use "
        "LISTEN/NOTIFY): it notices new work at its 1 s poll or when one of its deliveries "
        "finishes. db_worker polls every 1 s (its default --interval) when idle.",
    ]
    for run in runs:
        if not run.complete and run.delivered:
            notes.append(
                f"{run.system}: bounded run, {run.delivered:,} of {run.planned:,} events "
                f"delivered in {run.wall_s:.0f} s; deliveries/s is its measured steady rate, "
                f"so 5,000 events would take ≈ {5000 / run.rate:.0f} s at that rate."
                if run.rate == run.rate
                else f"{run.system}: only {run.delivered} delivered."
            )
        elif run.planned < sizes.events:
            notes.append(
                f"{run.system}: run with {run.planned:,} events instead of {sizes.events:,} "
                f"(time budget); deliveries/s is the measured rate, so {sizes.events:,} would "
                f"take ≈ {sizes.events / run.rate:.0f} s."
                if run.rate == run.rate
                else f"{run.system}: run with {run.planned:,} events."
            )
        if run.duplicates:
            notes.append(f"{run.system}: the receiver saw {run.duplicates} duplicate deliveries.")
        if run.error:
            notes.append(f"{run.system}: {run.error}")
    notes.append(
        "Peers make the POST with one keep-alive httpx.Client per process (prefork, "
        "db_worker) or per thread (Celery threads); Celery runs with its defaults (prefetch "
        "4, acks early, no result backend) and --without-gossip/mingle/heartbeat."
    )
    return notes
