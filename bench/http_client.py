"""HTTP client (issue 4, benchmark 5): the dispatcher's throughput with httpx's own
transport (httpcore) vs aiohttp's client (the default), at 200 deliveries in flight,
side by side in the same run.

The same database (a copy of one template holding N pending deliveries) is drained by one
``manage.py dispatch --until-empty --concurrency 200`` process per run, with
HOOKWAY_HTTP_TRANSPORT set to each transport in turn; the receiver (bench.peers.receiver,
its own process) answers after 30 ms, so the transport, not the receiver, sets the pace.
The transports alternate over the rounds (A B, B A) to cancel drift. A run that can't
finish in its time slot is stopped and its steady rate counted (the notes say so).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from bench.common import Chart, Result, Server, Target, fmt, median, tempdir
from bench.deliverykit import (
    Dest,
    Phases,
    ProcSampler,
    Receiver,
    copy_db,
    delivery_rate,
    dispatch_cmd,
    hookway_env,
    migrate_hookway,
    produce_hookway,
    read_lag,
    write_config,
)

DELAY_MS = 30
CONCURRENCY = 200
TRANSPORTS = ("httpx", "aiohttp")


def _one(
    rx: Receiver, template: Path, folder: Path, config: Path, transport: str, n: int, slot: float
) -> dict[str, Any]:
    """Drain a copy of the template with one dispatcher on ``transport``; its numbers."""
    db = copy_db(template, folder / f"{transport}.sqlite3")
    lag_file = folder / f"lag-{transport}-{time.monotonic_ns()}.json"
    env = hookway_env(
        db, config, HOOKWAY_HTTP_TRANSPORT=transport, HOOKWAY_LOOP_LAG_FILE=str(lag_file)
    )
    rx.reset()
    worker = Server(f"dispatch-{transport}", dispatch_cmd(CONCURRENCY), env=env, logdir=folder)
    with worker, ProcSampler(worker.pid) as sampler:
        stats = rx.wait_for(n, slot, alive=worker)
        stopped_at = time.time()
        cpu = sampler.cpu_seconds
        worker.stop(timeout=30)
    arrivals = rx.arrivals()
    delivered = len({a[0] for a in arrivals if a[0]})
    times = [a[1] for a in arrivals]
    if delivered >= n:
        rate = delivery_rate(times, DELAY_MS / 1000)
    else:  # stopped at the end of its slot: what it delivered in the time it had
        rate = delivered / (stopped_at - min(times)) if times else float("nan")
    return {
        "transport": transport,
        "delivered": delivered,
        "complete": delivered >= n,
        "rate": rate,
        "cpu_ms": cpu / delivered * 1000 if delivered else float("nan"),
        "rss": sampler.peak_rss_mb,
        "max_inflight": int(stats["max_inflight"]),
        "lag": read_lag(lag_file),
    }


def run(quick: bool) -> Result:
    n = 150 if quick else 4000
    rounds = 1 if quick else 2
    slot = 6.0 if quick else 15.0
    tmp = tempdir("http-client")
    phase = Phases("http_client")
    runs: list[dict[str, Any]] = []
    try:
        with Receiver(tmp, delay_ms=DELAY_MS) as rx:
            config = write_config(
                tmp / "hookway.toml", [Dest("receiver", rx.url(DELAY_MS), concurrency=CONCURRENCY)]
            )
            template = tmp / "template.sqlite3"
            with phase(f"migrate and store {n} events"):
                env = hookway_env(template, config)
                migrate_hookway(env)
                produce_hookway(env, n)
            for r in range(rounds):
                order = TRANSPORTS if r % 2 == 0 else TRANSPORTS[::-1]
                for transport in order:
                    with phase(f"round {r + 1}, {transport}"):
                        runs.append(_one(rx, template, tmp, config, transport, n, slot))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    by = {t: [x for x in runs if x["transport"] == t] for t in TRANSPORTS}
    rate = {t: median(x["rate"] for x in by[t]) for t in TRANSPORTS}
    faster = max(TRANSPORTS, key=lambda t: rate[t] if rate[t] == rate[t] else -1)
    slower = TRANSPORTS[1] if faster == TRANSPORTS[0] else TRANSPORTS[0]
    speedup = rate[faster] / rate[slower] if rate[slower] else float("nan")

    rows = []
    for t in TRANSPORTS:
        lags = [x["lag"] for x in by[t] if x["lag"].get("samples")]
        rows.append(
            [
                t,
                rate[t],
                ", ".join(fmt(x["rate"]) for x in by[t]),
                ", ".join(
                    f"{x['delivered']:,}/{n:,}" + ("" if x["complete"] else " (stopped)")
                    for x in by[t]
                ),
                median(x["cpu_ms"] for x in by[t]),
                max(x["rss"] for x in by[t]),
                max(x["max_inflight"] for x in by[t]),
                median(lg["p99_ms"] for lg in lags) if lags else float("nan"),
                max(lg["max_ms"] for lg in lags) if lags else float("nan"),
                "1.00x" if t == slower else f"{speedup:.2f}x",
            ]
        )
    notes = [
        f"Faster: **{faster}**, {fmt(speedup, 2)}x the deliveries/s of {slower} at "
        f"{CONCURRENCY} in flight (median of {rounds} run(s) each). Hookway's default "
        "transport should be the faster one (HOOKWAY_HTTP_TRANSPORT).",
        f"deliveries/s = deliveries / (last arrival - first arrival + {DELAY_MS} ms), counted "
        "at the receiver; CPU ms/delivery is the dispatcher's user+system time per delivery "
        "(psutil), start-up and SQLite work included.",
        f"{n:,} events per run; each run gets at most {slot:g} s, then it is stopped and its "
        "rate is what it delivered in that time.",
        "httpx's pool (httpcore) walks every pooled connection, checking idle/expiry with a "
        "socket call each, for every request it assigns (encode/httpx#3215): its cost per "
        "request grows with the number of connections, so it collapses at high concurrency.",
    ]
    targets = [
        Target(
            f"keep the faster transport as the default ({CONCURRENCY} in flight)",
            f"{faster} is {fmt(speedup, 2)}x {slower}",
            None,
        )
    ]
    chart = Chart(
        f"Dispatcher deliveries/s at {CONCURRENCY} in flight (receiver answers in {DELAY_MS} ms)",
        "deliveries/s",
        list(TRANSPORTS),
        {"deliveries/s": [rate[t] for t in TRANSPORTS]},
    )
    cpu_chart = Chart(
        "Dispatcher CPU per delivery",
        "ms",
        list(TRANSPORTS),
        {"CPU ms/delivery": [rows[i][4] for i in range(len(TRANSPORTS))]},
    )
    return Result(
        title=f"HTTP client: httpx vs aiohttp transport, {CONCURRENCY} deliveries in flight",
        columns=[
            "transport",
            "deliveries/s (median)",
            "each run",
            "delivered",
            "CPU ms/delivery",
            "peak RSS MB",
            "max in flight",
            "loop lag p99 ms",
            "loop lag max ms",
            "vs slower",
        ],
        rows=rows,
        notes=notes,
        targets=targets,
        charts=[chart, cpu_chart],
    )
