"""The drill's clock and its log of what happened when (printed as it happens, and kept
for the report). Time 0 is the start of the load; setup steps have negative times."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Mark:
    at: float  # seconds since the load started
    what: str
    fault: bool = False  # a fault injected by the drill (shown in the report's timeline)


class Timeline:
    def __init__(self) -> None:
        self._t0 = time.monotonic()
        self._loading = False
        self.wall0 = time.time()  # wall-clock time at t = 0, to place database timestamps
        self.marks: list[Mark] = []
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Make now t = 0 (called as the load starts); earlier marks move to negative times."""
        now = time.monotonic()
        shift = now - self._t0
        with self._lock:
            self.marks = [Mark(m.at - shift, m.what, m.fault) for m in self.marks]
            self._t0 = now
            self._loading = True
            self.wall0 = time.time()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def at_monotonic(self, t: float) -> float:
        """Timeline seconds of a time.monotonic() reading."""
        return t - self._t0

    def at_wall(self, epoch: float) -> float:
        """Timeline seconds of a wall-clock (epoch) time."""
        return epoch - self.wall0

    def mark(self, what: str, *, fault: bool = False, quiet: bool = False) -> None:
        """Record (and unless ``quiet``, print) what just happened."""
        mark = Mark(self.now(), what, fault)
        with self._lock:
            self.marks.append(mark)
        if not quiet:
            self.say(what, mark.at)

    def say(self, what: str, at: float | None = None) -> None:
        """Print with the time, without keeping it (progress lines)."""
        at = self.now() if at is None else at
        when = f"{at:7.1f}s" if self._loading else f"setup {at:4.1f}s"
        print(f"[{when}] {what}", flush=True)
