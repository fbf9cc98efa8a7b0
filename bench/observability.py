"""Observability's cost on ingest: what counting every webhook for Prometheus (and,
with OpenTelemetry installed, opening a span for it) adds to the ingest hot path.

Same code, three ways, in one uvicorn process each (SQLite, the embedded dispatcher off,
the ingest benchmark's signed 1 KB webhook, wrk with 64 connections), interleaved in
rounds so the shared machine's noise spreads over all three; medians over rounds. Besides
requests per second it reports the server's CPU time per webhook (user + system, from
/proc), which other processes competing for the cores disturb far less than throughput:
the comparison is judged on it, round by round against "before" in the same round.

- ``no counting``: ``hookway.metrics.registry.webhook_received`` replaced by a function
  that does nothing, and OTEL_SDK_DISABLED=true: ingest as it was before metrics;
- ``metrics``: as shipped, OpenTelemetry off (OTEL_SDK_DISABLED=true, or not installed);
- ``metrics + otel API``: as shipped with the otel extra installed and no tracer
  provider set up (no span is opened; the sender's traceparent is passed on).

It also times, in a process of its own, the counting call alone (``webhook_received``)
and one ingest span as recorded by the SDK (a batch processor, an exporter that drops
what it gets: the cost on ingest's thread, not the collector's).
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


@dataclass
class Measured:
    wrk: common.WrkResult
    cpu_us: float  # the server's CPU time per answered webhook


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def _measure(v: Variant, work: Path, warmup: float, duration: float) -> Measured:
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
        cpu_before = _cpu_seconds(s.pid)
        result = common.run_wrk(
            url + "/hooks/bench",
            duration=duration,
            connections=CONNECTIONS,
            body=BODY,
            headers=HEADERS,
            logdir=work,
        )
        cpu = _cpu_seconds(s.pid) - cpu_before
    conn = sqlite3.connect(db)
    try:
        stored = conn.execute("SELECT COUNT(*) FROM hookway_event").fetchone()[0]
    finally:
        conn.close()
    cpu_us = cpu / max(1, result.requests) * 1e6
    print(
        f"   {v.label:22} {result.rps:8,.0f} req/s  p50 {result.p50_ms:5.1f} ms  "
        f"p99 {result.p99_ms:5.1f} ms  CPU {cpu_us:6.0f} µs/webhook  stored {stored}",
        flush=True,
    )
    if result.non_2xx or stored < result.requests - result.non_2xx - result.socket_errors:
        raise RuntimeError(f"{v.label}: {result.non_2xx} non-2xx, {stored} stored")
    return Measured(result, cpu_us)


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


SPAN_COST = """
import timeit
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult


class Drop(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(Drop()))
trace.set_tracer_provider(provider)
from hookway import tracing

tracing.refresh()
assert tracing.recording()
scope = {"path": "/hooks/bench", "headers": [(b"content-type", b"application/json")]}


def one():
    with tracing.ingest_span(scope, "/hooks/{slug}") as span:
        tracing.stored_context()
        tracing.ingest_done(span, "bench", 202, "evt_x")


n = 20000
print(min(timeit.repeat(one, number=n, repeat=5)) / n * 1e6)
provider.shutdown()
"""


def _span_cost() -> float:
    """Microseconds per recorded ingest span (SDK, batch processor, dropping exporter)."""
    out = subprocess.run(
        [sys.executable, "-c", SPAN_COST], capture_output=True, text=True, check=True, timeout=300
    )
    return float(out.stdout.strip().splitlines()[-1])


def run(quick: bool) -> common.Result:
    rounds, warmup, duration = (1, 1, 2) if quick else (7, 2, 8)
    work = common.tempdir("observability")
    try:
        (work / "hookway.toml").write_text(HOOKWAY_CONFIG)
        runs: dict[str, list[Measured]] = {v.key: [] for v in VARIANTS}
        for round_no in range(1, rounds + 1):
            print(f"   round {round_no}/{rounds}", flush=True)
            # Rotate the order each round, so none always runs first (or last).
            order = VARIANTS[round_no % 3 :] + VARIANTS[: round_no % 3]
            for v in order:
                runs[v.key].append(_measure(v, work, warmup, duration))
        single = _call_cost()
        multi = _call_cost_multiprocess(work)
        span = _span_cost()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _result(runs, single, multi, span, rounds, duration, quick)


def _result(
    runs: dict[str, list[Measured]],
    single_us: float,
    multi_us: float,
    span_us: float,
    rounds: int,
    duration: float,
    quick: bool,
) -> common.Result:
    med = common.median
    before = runs["none"]
    rows = []
    for v in VARIANTS:
        rs = runs[v.key]
        # Each round against "before" in the same round: the machine's load changes
        # between rounds far more than between the variants of one round.
        cpu_ratio = med(r.cpu_us / b.cpu_us for r, b in zip(rs, before, strict=True))
        rps_ratio = med(r.wrk.rps / b.wrk.rps for r, b in zip(rs, before, strict=True))
        rows.append(
            [
                v.label,
                med(r.wrk.rps for r in rs),
                " / ".join(f"{r.wrk.rps:,.0f}" for r in rs),
                med(r.wrk.p99_ms for r in rs),
                med(r.cpu_us for r in rs),
                " / ".join(f"{r.cpu_us:,.0f}" for r in rs),
                f"{100 * (cpu_ratio - 1):+.1f} %",
                f"{100 * (rps_ratio - 1):+.1f} %",
            ]
        )
    cpu_cost = med(r.cpu_us / b.cpu_us for r, b in zip(runs["metrics"], before, strict=True)) - 1
    per_request_us = med(r.cpu_us for r in runs["metrics"])
    return common.Result(
        title="Observability's cost on ingest (Prometheus counting, OpenTelemetry spans)",
        columns=[
            "variant",
            "req/s (median)",
            "req/s per round",
            "p99 ms",
            "CPU µs/webhook (median)",
            "CPU µs per round",
            "CPU vs before (paired)",
            "req/s vs before (paired)",
        ],
        rows=rows,
        notes=[
            f"{rounds} rounds of {duration:g} s each, variants interleaved (the order rotates "
            "each round); one uvicorn process each, SQLite, the embedded dispatcher off, "
            f"wrk -c{CONNECTIONS}. This machine is shared with other work: throughput swings "
            "between rounds (see the per-round figures), so the comparison is the server's "
            "CPU time per webhook, each round against 'before' in the same round, median "
            "over rounds.",
            f"The counting call alone (`webhook_received`: a counter and a histogram): "
            f"{single_us:.2f} µs in one process, {multi_us:.2f} µs with "
            f"PROMETHEUS_MULTIPROC_DIR (it adds to plain integers either way; the flush "
            f"into prometheus-client runs once a second); one webhook takes "
            f"{per_request_us:.0f} µs of the server's CPU, so the call is "
            f"{100 * single_us / per_request_us:.2f} % of it.",
            f"One ingest span recorded by the OpenTelemetry SDK (batch processor, exporter "
            f"dropping the spans): {span_us:.1f} µs on ingest's thread, "
            f"{100 * span_us / per_request_us:.1f} % of a webhook's CPU; a real exporter's "
            "work happens on the SDK's background thread. Not in the table: no variant "
            "records spans.",
        ],
        charts=[
            common.Chart(
                "Server CPU per webhook, by round",
                "µs",
                [f"round {i + 1}" for i in range(rounds)],
                {v.label: [r.cpu_us for r in runs[v.key]] for v in VARIANTS},
            ),
            common.Chart(
                "Requests per second, by round",
                "req/s",
                [f"round {i + 1}" for i in range(rounds)],
                {v.label: [r.wrk.rps for r in runs[v.key]] for v in VARIANTS},
            ),
        ],
        targets=[
            common.Target(
                "counting every webhook costs ingest < 2 % (CPU per webhook, paired rounds)",
                f"{100 * cpu_cost:+.1f} %",
                cpu_cost < 0.02,
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
