"""Event-loop lag: how late a periodic timer fires. A blocking call on the loop shows up
here as lag.

Three uses: HOOKWAY_LOOP_LAG_FILE makes the process sample every 10 ms and write a JSON
summary (p50, p99, max in ms) to that file when it stops (the benchmarks read it);
every dispatcher watches its own loop, logging a warning when it was blocked longer than
HOOKWAY_LOOP_LAG_WARN_MS, naming the lag and what was running (an ``async def`` handler
calling blocking code is the usual cause: docs/handlers.md); and every Hookway process
(web server, ``manage.py dispatch``) reports its lag to Prometheus
(``hookway_event_loop_lag_seconds``, ``ProcessMetricsTask``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hookway.metrics import registry as metrics

logger = logging.getLogger("hookway.loop")

INTERVAL = 0.01
# The dispatcher's watch samples less often: it only looks for long stalls.
WATCH_INTERVAL = 0.05


class LoopLagMonitor:
    """Samples the loop's lag. With ``warn_after`` (seconds), a sample that long logs a
    warning with the lag and ``blame()`` (what was running meanwhile)."""

    def __init__(
        self,
        interval: float = INTERVAL,
        keep: int = 1_000_000,
        *,
        warn_after: float | None = None,
        blame: Callable[[], str] | None = None,
        on_sample: Callable[[float], None] | None = None,
    ):
        self.interval = interval
        self.samples: deque[float] = deque(maxlen=keep)
        self.warn_after = warn_after
        self.blame = blame
        self.on_sample = on_sample
        self.warnings = 0

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            await asyncio.sleep(self.interval)
            lag = max(0.0, loop.time() - started - self.interval)
            self.samples.append(lag)
            if self.on_sample is not None:
                self.on_sample(lag)
            culprits = self.blame() if self.blame is not None else ""
            if self.warn_after is not None and lag >= self.warn_after:
                self.warnings += 1
                logger.warning(
                    "event loop blocked for %.0f ms (warning at %.0f ms): every delivery "
                    "and request of this process waited. Running meanwhile: %s. An async "
                    "handler must not call blocking code (time.sleep, sync I/O, the sync "
                    "ORM): use a plain def handler, which runs in a thread.",
                    lag * 1000,
                    self.warn_after * 1000,
                    culprits or "nothing Hookway knows of",
                )

    def summary(self) -> dict[str, Any]:
        values = sorted(self.samples)
        if not values:
            return {"samples": 0}

        def pct(p: float) -> float:
            return values[min(len(values) - 1, int(p * len(values)))] * 1000

        return {
            "samples": len(values),
            "interval_ms": self.interval * 1000,
            "mean_ms": statistics.fmean(values) * 1000,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": values[-1] * 1000,
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.summary(), indent=2))


class MonitorTask:
    """Owns a running monitor: ``start()`` in startup, ``await stop()`` in shutdown."""

    def __init__(self, path: Path):
        self.path = path
        self.monitor = LoopLagMonitor()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.monitor.run(self._stop), name="hookway-loop-lag")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        self.monitor.write(self.path)


# How often ingest's counts reach prometheus-client (and other processes' scrapes).
FLUSH_INTERVAL = 1.0
# Restart delays of the metrics task after a failure: doubling, capped.
RESTART_FIRST = 1.0
RESTART_MAX = 30.0


class ProcessMetricsTask:
    """Owns this process's metrics upkeep: samples ``hookway_event_loop_lag_seconds``
    every WATCH_INTERVAL and, every FLUSH_INTERVAL, moves ingest's counts into
    prometheus-client (hookway.metrics.registry.flush) so other processes' scrapes see
    them. ``start()`` at startup, ``await stop()`` at shutdown (which flushes once more).
    A failure is logged with its traceback and the task restarted after a backoff."""

    def __init__(self) -> None:
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flushed = 0.0

    def _sampled(self, lag: float) -> None:
        metrics.loop_lagged(lag)
        now = asyncio.get_running_loop().time()
        if now - self._flushed >= FLUSH_INTERVAL:
            self._flushed = now
            metrics.flush()

    def start(self) -> None:
        self._task = asyncio.create_task(self._own(), name="hookway-metrics")

    async def _own(self) -> None:
        failures = 0
        while not self._stop.is_set():
            monitor = LoopLagMonitor(WATCH_INTERVAL, keep=1, on_sample=self._sampled)
            try:
                await monitor.run(self._stop)
            except Exception:  # the owner logs any failure and restarts the sampler
                failures += 1
                delay = min(RESTART_MAX, RESTART_FIRST * 2 ** (failures - 1))
                logger.exception("the metrics task failed; restarting in %.0f s", delay)
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
                except TimeoutError:
                    continue

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        metrics.flush()
