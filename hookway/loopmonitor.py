"""Event-loop lag: how late a periodic timer fires. A blocking call on the loop shows up
here as lag. Enabled by HOOKWAY_LOOP_LAG_FILE: the process samples every 10 ms and writes
a JSON summary (p50, p99, max in ms) to that file when it stops."""

from __future__ import annotations

import asyncio
import json
import statistics
from collections import deque
from pathlib import Path
from typing import Any

INTERVAL = 0.01


class LoopLagMonitor:
    def __init__(self, interval: float = INTERVAL, keep: int = 1_000_000):
        self.interval = interval
        self.samples: deque[float] = deque(maxlen=keep)

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            await asyncio.sleep(self.interval)
            self.samples.append(max(0.0, loop.time() - started - self.interval))

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
