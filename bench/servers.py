"""Servers: Hookway's ingest under every ASGI server Django documents, at 1 process and
at 2 where the server forks workers (daphne runs one).

The request, the load and the database are the ingest benchmark's (bench/ingest.py): a
1 KB JSON body signed with HMAC-SHA256, wrk with 64 connections, SQLite WAL with
``synchronous=FULL`` (a 2xx means fsync'd), the embedded dispatcher off. Each server
runs the command docs/operations.md prints (bench.common.ASGI_SERVERS), access logs
off. Contenders are interleaved in rounds (every server once per round) so the noise
of a busy machine spreads over all of them; the table shows medians over rounds.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bench import common
from bench.ingest import (
    CONNECTIONS,
    HOOKWAY_CONFIG,
    THREADS,
    Contender,
    Run,
    _sqlite_count,
    measure,
)


def _env(db: Path, config: Path) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "hookway.standalone.settings",
        "DATABASE_URL": f"sqlite:///{db}",
        "HOOKWAY_CONFIG": str(config),
        "HOOKWAY_EMBEDDED_DISPATCHER": "false",
        "HOOKWAY_LOG_LEVEL": "WARNING",
    }


def build_contenders(work: Path, process_counts: tuple[int, ...]) -> list[Contender]:
    config = work / "hookway.toml"
    config.write_text(HOOKWAY_CONFIG)
    # One database migrated and configured, copied for each contender.
    template = work / "template.sqlite3"
    manage = [common.PYTHON, "manage.py"]
    common.run_checked([*manage, "migrate", "--no-input", "-v0"], env=_env(template, config))
    # daphne runs no lifespan, so it would not apply the file itself.
    common.run_checked([*manage, "sync_config"], env=_env(template, config))
    contenders = []
    for processes in process_counts:
        for server in common.ASGI_SERVERS.values():
            if processes > 1 and not server.workers:
                continue
            key = f"{server.name}-{processes}"
            db = work / f"{key}.sqlite3"
            env = _env(db, config)

            def setup(db: Path = db) -> None:
                shutil.copyfile(template, db)

            contenders.append(
                Contender(
                    key=key,
                    label=server.name,
                    server=f"{processes} process{'es' if processes > 1 else ''}",
                    cmd=lambda port, s=server, n=processes: s.command(port, n),
                    path="/hooks/bench",
                    env=env,
                    count=lambda db=db: _sqlite_count(db, "hookway_event"),
                    setup=setup,
                )
            )
    return contenders


def run(quick: bool) -> common.Result:
    rounds, warmup, duration = (1, 1, 2) if quick else (3, 2, 10)
    process_counts = (1,) if quick else (1, 2)
    work = common.tempdir("servers")
    try:
        contenders = build_contenders(work, process_counts)
        for c in contenders:
            c.setup()
        runs: dict[str, list[Run]] = {c.key: [] for c in contenders}
        # Other work on the machine shows here (each benchmark's own load is on top).
        load = [os.getloadavg()[0]]
        for round_no in range(1, rounds + 1):
            for c in contenders:
                runs[c.key].append(measure(c, work, warmup, duration, round_no))
                load.append(os.getloadavg()[0])
        result = _result(contenders, runs, rounds, warmup, duration)
        result.notes.append(
            f"1-minute load average of the machine ({os.cpu_count()} cores) before the runs and "
            f"after each: min {min(load):.1f}, median {common.median(load):.1f}, max "
            f"{max(load):.1f}. The benchmark itself (the server, wrk's 2 threads) adds roughly 3; "
            "beyond that, other processes were competing for the cores."
        )
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _result(
    contenders: list[Contender],
    runs: dict[str, list[Run]],
    rounds: int,
    warmup: float,
    duration: float,
) -> common.Result:
    med = common.median

    def rps(key: str) -> float:
        return med(r.wrk.rps for r in runs[key])

    rows = []
    for c in contenders:
        rs = runs[c.key]
        lost = min(r.extra_rows for r in rs)
        rows.append(
            [
                c.label,
                c.server,
                rps(c.key),
                " / ".join(f"{r.wrk.rps:,.0f}" for r in rs),
                med(r.wrk.p50_ms for r in rs),
                med(r.wrk.p99_ms for r in rs),
                sum(r.wrk.non_2xx for r in rs),
                sum(r.wrk.socket_errors for r in rs),
                "ok" if lost >= 0 else f"LOST {-lost}",
                common.ratio(rps(c.key), rps("uvicorn-1")),
            ]
        )
    one = [c for c in contenders if c.key.endswith("-1")]
    best = max(one, key=lambda c: rps(c.key))
    bad = {c.key: sum(r.wrk.non_2xx + r.wrk.socket_errors for r in runs[c.key]) for c in contenders}
    lost = [c.key for c in contenders if min(r.extra_rows for r in runs[c.key]) < 0]
    targets = [
        common.Target(
            "every server: 0 non-2xx, 0 socket errors",
            ", ".join(f"{k} {v}" for k, v in bad.items() if v) or "0 everywhere",
            not any(bad.values()),
        ),
        common.Target(
            "every server: every ack durable (rows stored ≥ 2xx answers)",
            "ok" if not lost else "acked rows missing: " + ", ".join(lost),
            not lost,
        ),
        common.Target(
            "(no goal) fastest at 1 process",
            f"{best.label}: {rps(best.key):,.0f} req/s, p99 "
            f"{med(r.wrk.p99_ms for r in runs[best.key]):.1f} ms",
            None,
        ),
    ]
    labels = [c.key for c in contenders]
    charts = [
        common.Chart(
            f"Ingest throughput (median of {rounds}), {CONNECTIONS} connections",
            "requests / s",
            labels,
            {"req/s": [rps(k) for k in labels]},
        ),
        common.Chart(
            "Ingest latency (median over rounds)",
            "ms (log scale)",
            labels,
            {
                "p50": [med(r.wrk.p50_ms for r in runs[k]) for k in labels],
                "p99": [med(r.wrk.p99_ms for r in runs[k]) for k in labels],
            },
            log=True,
        ),
    ]
    notes = [
        f"Load: wrk, {CONNECTIONS} connections, {THREADS} threads, the ingest benchmark's "
        f"1,024-byte JSON body signed with HMAC-SHA256; {warmup:.0f} s warm-up, then "
        f"{duration:.0f} s measured, {rounds} round(s), every server once per round in turn. "
        "wrk shares the 2 cores with the server.",
        "Each server runs the command docs/operations.md prints (bench/common.py "
        "ASGI_SERVERS): uvicorn (httptools, uvloop), gunicorn with hookway.server."
        "UvicornWorker, hypercorn with its uvloop worker, daphne (Twisted), granian "
        "(--interface asgi). Access logs off everywhere; Hookway's own request log at WARNING.",
        "Every contender has its own SQLite database (WAL, synchronous=FULL) and stores 2 rows "
        "per webhook (the Event and its Delivery); the embedded dispatcher is off "
        "(HOOKWAY_EMBEDDED_DISPATCHER=false), so nothing is delivered during the run.",
        "'2 processes': the server's own workers (--workers / -w) on one port; daphne runs a "
        "single process (several would need a balancer in front).",
        "'vs uvicorn': this contender's median req/s over uvicorn's at 1 process.",
    ]
    return common.Result(
        title="Servers: Hookway's ingest under each ASGI server, 1 KB JSON, 64 connections",
        columns=[
            "server",
            "processes",
            "req/s (median)",
            "req/s per round",
            "p50 ms",
            "p99 ms",
            "non-2xx",
            "socket errors",
            "stored vs 2xx",
            "vs uvicorn",
        ],
        rows=rows,
        notes=notes,
        targets=targets,
        charts=charts,
    )
