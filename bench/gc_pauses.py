"""GC pauses: what Python's cyclic garbage collector costs a dispatcher's event loop, at
Python's default threshold and at those HOOKWAY_GC_GEN0_THRESHOLD can set.

A dispatcher draining a backlog holds hundreds of deliveries in flight, each with its
task, its connection's and its request's objects: the young generations fill with
objects that are still alive, and every collection walks them while the loop waits.
Hookway raises the youngest generation's threshold at startup
(hookway.runtime.prepare_collector); this measures that choice against the others.

Per round, for each threshold (in turn, the order reversed every other round): a fresh
copy of the migrated database, the same backlog of events, and one ``manage.py dispatch
--concurrency 1000 --until-empty`` (run by bench/peers/dispatch_gc.py, which times each
collection with ``gc.callbacks``) delivering to the benchmark receiver answering after
100 ms. Reported per threshold, median over rounds: deliveries/s, the loop's lag
(Hookway's own monitor, a 10 ms timer), the collections of each generation and the
longest, the collector's time per 1,000 deliveries, peak RSS and CPU per delivery.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bench import common
from bench.delivery import DELAY_MS, HookwaySetup, Run, _throughput
from bench.deliverykit import Receiver, produce_hookway, read_lag
from hookway.conf import HookwaySettings

# 0: Hookway leaves the collector as Python set it (700 on CPython 3.11 to 3.13).
THRESHOLDS = (0, 2000, 7000, 20000)
DEFAULT = HookwaySettings.gc_gen0_threshold
CONCURRENCY = 1000


@dataclass
class Round:
    run: Run
    lag: dict[str, float] = field(default_factory=dict)
    # None: the dispatcher wrote no GC file (it did not exit cleanly): not counted.
    pauses: list[tuple[int, float]] | None = None
    threshold: int | None = None  # the young threshold the process ended with

    @property
    def ok(self) -> bool:
        return self.pauses is not None and not self.run.error

    def by_generation(self, generation: int) -> list[float]:
        return [ms for gen, ms in self.pauses or [] if gen == generation]

    @property
    def gc_ms_per_1000(self) -> float:
        if self.pauses is None or not self.run.delivered:
            return float("nan")
        return sum(ms for _, ms in self.pauses) / self.run.delivered * 1000


def _one(setup: HookwaySetup, threshold: int, events: int, deadline: float) -> Round:
    env, folder = setup.fresh(DELAY_MS, CONCURRENCY, HOOKWAY_GC_GEN0_THRESHOLD=str(threshold))
    lag_file, gc_file = folder / "lag.json", folder / "gc.json"
    env.update(HOOKWAY_LOOP_LAG_FILE=str(lag_file), BENCH_GC_FILE=str(gc_file))
    produce_hookway(env, events)
    worker = common.Server(
        f"dispatch-gc-{threshold}",
        [
            common.PYTHON,
            "-m",
            "bench.peers.dispatch_gc",
            "--concurrency",
            str(CONCURRENCY),
            "--until-empty",
        ],
        env=env,
        logdir=folder,
    )
    run = _throughput(
        setup.rx, Run(f"threshold {threshold}", "1 process"), worker, events, deadline
    )
    try:
        doc: dict[str, Any] = json.loads(gc_file.read_text())
    except (OSError, ValueError):
        run.error = run.error or "no GC file: the dispatcher did not exit cleanly"
        return Round(run, read_lag(lag_file))
    return Round(
        run,
        read_lag(lag_file),
        [(int(g), float(ms)) for g, ms in doc["pauses"]],
        int(doc["threshold"][0]),
    )


def _median(values: list[float]) -> float:
    return common.median(v for v in values if v == v)  # a missing figure (NaN) left out


def _gen_text(rounds: list[Round], generation: int) -> str:
    """Collections per round (median) / the longest of any round."""
    if not rounds:
        return "n/a"
    counts = [len(r.by_generation(generation)) for r in rounds]
    longest = max((ms for r in rounds for ms in r.by_generation(generation)), default=0.0)
    return f"{_median(counts):.0f} / {longest:.1f}"


def run(quick: bool) -> common.Result:
    rounds_n, events, deadline = (1, 300, 20.0) if quick else (5, 5000, 40.0)
    thresholds = (0, DEFAULT) if quick else THRESHOLDS
    tmp = common.tempdir("gc_pauses")
    results: dict[int, list[Round]] = {t: [] for t in thresholds}
    with Receiver(tmp, delay_ms=DELAY_MS) as rx:
        setup = HookwaySetup(tmp, rx)
        for r in range(rounds_n):
            order = thresholds if r % 2 == 0 else tuple(reversed(thresholds))
            for threshold in order:
                one = _one(setup, threshold, events, deadline)
                results[threshold].append(one)
                print(
                    f"   round {r + 1}: gen0 threshold {one.threshold or threshold:>6}: "
                    f"{one.run.rate:8.1f} deliveries/s, lag p99 "
                    f"{one.lag.get('p99_ms', float('nan')):5.1f} ms, "
                    f"{len(one.pauses or [])} collections, "
                    f"{one.gc_ms_per_1000:5.1f} ms of GC per 1,000 {one.run.error}",
                    flush=True,
                )

    def label(t: int) -> str:
        seen = {r.threshold for r in results[t] if r.threshold is not None}
        actual = "/".join(str(s) for s in sorted(seen)) or f"{t or 'default'} (no GC file)"
        if t == 0:
            return f"{actual} (Python's, HOOKWAY_GC_GEN0_THRESHOLD=0)"
        return f"{actual} (Hookway's default)" if t == DEFAULT else actual

    ok = {t: [r for r in results[t] if r.ok] for t in thresholds}
    rows = []
    for t in thresholds:
        rs = ok[t]
        rows.append(
            [
                label(t),
                f"{sum(r.run.delivered for r in results[t]):,}/{len(results[t]) * events:,}",
                common.fmt(_median([r.run.rate for r in rs])),
                " / ".join(common.fmt(r.run.rate, 0) for r in rs),
                common.fmt(_median([r.lag.get("p50_ms", float("nan")) for r in rs])),
                common.fmt(_median([r.lag.get("p99_ms", float("nan")) for r in rs])),
                " / ".join(common.fmt(r.lag.get("p99_ms", float("nan"))) for r in rs),
                common.fmt(_median([r.lag.get("max_ms", float("nan")) for r in rs])),
                _gen_text(rs, 0),
                _gen_text(rs, 1),
                _gen_text(rs, 2),
                " / ".join(str(len(r.by_generation(2))) for r in rs) or "n/a",
                common.fmt(_median([r.gc_ms_per_1000 for r in rs])),
                common.fmt(_median([r.run.peak_rss_mb for r in rs])),
                common.fmt(_median([r.run.cpu_ms_per_delivery for r in rs]), 2),
            ]
        )
    base, ours = ok[thresholds[0]], ok[DEFAULT]
    base_rate, our_rate = (_median([r.run.rate for r in x]) for x in (base, ours))
    base_lag, our_lag = (
        _median([r.lag.get("p99_ms", float("nan")) for r in x]) for x in (base, ours)
    )
    errors = [
        f"{r.run.system}: {r.run.error}" for rs in results.values() for r in rs if r.run.error
    ]
    return common.Result(
        title=(
            f"GC pauses: a dispatcher draining {events:,} deliveries (receiver answering "
            f"after {DELAY_MS} ms), by the collector's youngest-generation threshold"
        ),
        columns=[
            "gen0 threshold",
            "delivered",
            "deliveries/s (median)",
            "deliveries/s per round",
            "lag p50 ms",
            "lag p99 ms",
            "lag p99 per round",
            "lag max ms",
            "gen0 collections / longest ms",
            "gen1 collections / longest ms",
            "full collections / longest ms",
            "full collections per round",
            "GC ms per 1,000 deliveries",
            "peak RSS MB",
            "CPU ms/delivery",
        ],
        rows=rows,
        targets=[
            common.Target(
                "(no goal) Hookway's default threshold against Python's: deliveries/s and "
                "the dispatcher's loop lag p99",
                f"{our_rate / base_rate:.2f}x deliveries/s; lag p99 {our_lag:.1f} ms "
                f"against {base_lag:.1f} ms",
                None,
            )
        ],
        charts=[
            common.Chart(
                "Deliveries per second, by round",
                "deliveries/s",
                [label(t) for t in thresholds],
                {
                    f"round {i + 1}": [results[t][i].run.rate for t in thresholds]
                    for i in range(rounds_n)
                },
            ),
            common.Chart(
                "The collector's time per 1,000 deliveries, by round",
                "ms",
                [label(t) for t in thresholds],
                {
                    f"round {i + 1}": [results[t][i].gc_ms_per_1000 for t in thresholds]
                    for i in range(rounds_n)
                },
            ),
        ],
        notes=[
            f"One `manage.py dispatch --concurrency {CONCURRENCY} --until-empty` process "
            f"per run, SQLite (WAL, synchronous=FULL), aiohttp transport (the default), "
            f"{events:,} events queued before it starts, one destination: the benchmark "
            f"receiver answering after {DELAY_MS} ms. Runs in turn within a round, the "
            "order reversed every other round; a fresh database copy per run.",
            "Collections are timed with `gc.callbacks` (bench/peers/dispatch_gc.py) from "
            "the end of startup on (startup's own collection, before `gc.freeze()`, is "
            "left out). 'gen1' collects the two younger generations, 'full' all three "
            "(the heap left after startup's freeze). Each cell: collections per run (the "
            "median over rounds) / the longest of any round; a run whose dispatcher "
            "wrote no GC file is left out of every figure but 'delivered'.",
            "Lag: Hookway's own monitor (a 10 ms timer; how late it fires), over the "
            "process's whole life; deliveries/s from the receiver's arrival times.",
            "The threshold counts container allocations minus deallocations since the "
            "last young collection; the older generations keep Python's thresholds (a "
            "collection of generation 1 after 10 young ones, a full one after 10 of "
            "those, when the survivors grew the heap by a quarter).",
            *(["Errors: " + "; ".join(errors)] if errors else []),
        ],
        quick=quick,
    )
