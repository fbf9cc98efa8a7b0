"""Observability's cost on ingest: what counting every webhook for Prometheus (and,
with OpenTelemetry installed, opening a span for it) adds to the ingest hot path.

Same code, three ways, in one uvicorn process each (SQLite, the embedded dispatcher off,
the ingest benchmark's signed 1 KB webhook, wrk with 64 connections), interleaved in
rounds so the shared machine's noise spreads over all three; medians over rounds:

- ``no counting``: ``hookway.metrics.registry.webhook_received`` replaced by a function
  that does nothing, and OTEL_SDK_DISABLED=true: ingest as it was before metrics;
- ``metrics``: as shipped, OpenTelemetry off (OTEL_SDK_DISABLED=true, or not installed);
- ``metrics + otel API``: as shipped with the otel extra installed and no exporter set
  up (spans record nothing; the sender's traceparent is still passed on).

It also times the counting call alone (``webhook_received``, in this process), the one
thing the hot path gained. Exporting spans to a collector costs more, and is not measured
here (it depends on the collector).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import common
from bench.ingest import BODY, HEADERS, HOOKWAY_CONFIG

CONNECTIONS = 64
# Starts uvicorn with the counting call replaced (the ingest handler looks it up on the
# module at every request).
NO_COUNTING = (
    "import hookway.metrics.registry as r; r.webhook_received = lambda *a: None; "
    "import sys, uvicorn; sys.argv[0] = 'uvicorn'; uvicorn.main()"
)


@dataclass
class Variant:
    key: str
    label: str
    counting: bool
    otel: bool


VARIANTS = (
    Variant("none", "no counting (before)", counting=False, otel=False),
    Variant("metrics", "metrics", counting=True, otel=False),
    Variant("otel", "metrics + otel API", counting=True, otel=True),
)


def _command(v: Variant, port: int) -> list[str]:
    args = [
        "hookway.asgi:application",
        "--host",
        common.HOST,
        "--port",
        str(port),
        "--lifespan",
        "on",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    if v.counting:
        return [common.PYTHON, "-m", "uvicorn", *args]
    return [common.PYTHON, "-c", NO_COUNTING, *args]


def _measure(v: Variant, work: Path, warmup: float, duration: float) -> common.WrkResult:
    db = work / f"{v.key}.sqlite3"
    for stale in work.glob(f"{v.key}.sqlite3*"):
        stale.unlink()
    env = {
        "DATABASE_URL": f"sqlite:///{db}",
        "HOOKWAY_CONFIG": str(work / "hookway.toml"),
        "HOOKWAY_EMBEDDED_DISPATCHER": "false",
        "HOOKWAY_DEMO": "true",
        "HOOKWAY_LOG_LEVEL": "WARNING",
    }
    if not v.otel:
        env["OTEL_SDK_DISABLED"] = "true"
    common.run_checked([common.PYTHON, "manage.py", "migrate", "-v0"], env=env)
    port = common.free_port()
    url = f"http://{common.HOST}:{port}"
    with common.Server(f"observability-{v.key}", _command(v, port), env=env, logdir=work) as s:
        s.wait_http(url + "/healthz")
        common.run_wrk(
            url + "/hooks/bench", duration=warmup, body=BODY, headers=HEADERS, logdir=work
        )
        result = common.run_wrk(
            url + "/hooks/bench",
            duration=duration,
            connections=CONNECTIONS,
            body=BODY,
            headers=HEADERS,
            logdir=work,
        )
    conn = sqlite3.connect(db)
    try:
        stored = conn.execute("SELECT COUNT(*) FROM hookway_event").fetchone()[0]
    finally:
        conn.close()
    print(
        f"   {v.label:22} {result.rps:8,.0f} req/s  p50 {result.p50_ms:5.1f} ms  "
        f"p99 {result.p99_ms:5.1f} ms  stored {stored}",
        flush=True,
    )
    if result.non_2xx or stored < result.requests - result.non_2xx - result.socket_errors:
        raise RuntimeError(f"{v.label}: {result.non_2xx} non-2xx, {stored} stored")
    return result


def _call_cost() -> float:
    """Microseconds per ``webhook_received`` call, in this process (single-process mode)."""
    code = (
        "import time, timeit\n"
        "from hookway.metrics import registry as r\n"
        "n = 200000\n"
        "t = min(timeit.repeat(lambda: r.webhook_received('bench', 202, 0.001), number=n, repeat=5))\n"
        "print(t / n * 1e6)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return float(out.stdout.strip())


def _call_cost_multiprocess(work: Path) -> float:
    """The same, with PROMETHEUS_MULTIPROC_DIR set (every value a memory-mapped file)."""
    code = (
        "import timeit\n"
        "from hookway.metrics import registry as r\n"
        "n = 200000\n"
        "t = min(timeit.repeat(lambda: r.webhook_received('bench', 202, 0.001), number=n, repeat=5))\n"
        "print(t / n * 1e6)\n"
    )
    directory = work / "multiproc"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)},
    )
    return float(out.stdout.strip())


def run(quick: bool) -> common.Result:
    rounds, warmup, duration = (1, 1, 2) if quick else (5, 2, 10)
    work = common.tempdir("observability")
    try:
        (work / "hookway.toml").write_text(HOOKWAY_CONFIG)
        runs: dict[str, list[common.WrkResult]] = {v.key: [] for v in VARIANTS}
        for round_no in range(1, rounds + 1):
            print(f"   round {round_no}/{rounds}", flush=True)
            # Rotate the order each round, so none always runs first (or last).
            order = VARIANTS[round_no % 3 :] + VARIANTS[: round_no % 3]
            for v in order:
                runs[v.key].append(_measure(v, work, warmup, duration))
        single = _call_cost()
        multi = _call_cost_multiprocess(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _result(runs, single, multi, rounds, duration, quick)


def _result(
    runs: dict[str, list[common.WrkResult]],
    single_us: float,
    multi_us: float,
    rounds: int,
    duration: float,
    quick: bool,
) -> common.Result:
    med = common.median
    base = med(r.rps for r in runs["none"])
    rows = []
    for v in VARIANTS:
        rs = runs[v.key]
        rps = med(r.rps for r in rs)
        rows.append(
            [
                v.label,
                rps,
                " / ".join(f"{r.rps:,.0f}" for r in rs),
                med(r.p50_ms for r in rs),
                med(r.p99_ms for r in rs),
                f"{100 * (rps / base - 1):+.1f} %",
            ]
        )
    metrics_rps = med(r.rps for r in runs["metrics"])
    per_request_us = 1e6 / metrics_rps if metrics_rps else float("nan")
    return common.Result(
        title="Observability's cost on ingest (Prometheus counting, OpenTelemetry spans)",
        columns=["variant", "req/s (median)", "req/s per round", "p50 ms", "p99 ms", "vs before"],
        rows=rows,
        notes=[
            f"{rounds} rounds of {duration:g} s each, variants interleaved (the order rotates "
            "each round); one uvicorn process each, SQLite, the embedded dispatcher off, "
            f"wrk -c{CONNECTIONS}. This machine is shared: differences of a few percent "
            "between rounds are noise, and the per-round figures show how much.",
            f"The counting call alone (`webhook_received`: a counter and a histogram): "
            f"{single_us:.2f} µs in one process, {multi_us:.2f} µs with "
            f"PROMETHEUS_MULTIPROC_DIR (memory-mapped files); one ingest request takes "
            f"{per_request_us:.0f} µs of this process's time at the measured rate, so the "
            f"call is {100 * single_us / per_request_us:.2f} % of it.",
        ],
        targets=[
            common.Target(
                "counting every webhook costs ingest < 2 % (median req/s)",
                f"{100 * (1 - metrics_rps / base):.1f} %",
                metrics_rps >= 0.98 * base,
            )
        ],
        quick=quick,
    )


if __name__ == "__main__":
    started = time.monotonic()
    result = run("--quick" in sys.argv)
    for row in result.rows:
        print(row)
    for note in result.notes:
        print(note)
