"""The fault timeline, run during the load (DrillConfig.schedule says when):

- kill -9 the standalone dispatcher, restart it ``restart_after`` seconds later;
- kill -9 the web process (its embedded dispatcher with it), restart it likewise;
- hold the write lock ingest needs for 3x HOOKWAY_DB_TIMEOUT (PostgreSQL:
  ``LOCK TABLE hookway_event IN ACCESS EXCLUSIVE MODE``; SQLite: ``BEGIN IMMEDIATE``);
- open the trickle receiver's window;
- terminate Hookway's database connections, several times a second apart, as a
  failover would (PostgreSQL only);
- and flap the flap receiver throughout.

(After the drain, drill/__main__.py adds one more: a storm of terminations while
Hookway is idle, then canary webhooks.)

Faults run one after another, each logged with its time. One that can't be carried out
(a process that doesn't come back, a lock that can't be taken) is recorded in
``problems``: the drill then can't vouch for what followed, and fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable

from drill.config import DrillConfig
from drill.database import DrillDatabase, DrillSetupError
from drill.processes import HookwayProcess
from drill.receivers import FlapReceiver, TrickleReceiver
from drill.timeline import Timeline


class Faults:
    def __init__(
        self,
        config: DrillConfig,
        timeline: Timeline,
        db: DrillDatabase,
        web: HookwayProcess,
        dispatcher: HookwayProcess,
        trickle: TrickleReceiver,
        flap: FlapReceiver,
    ) -> None:
        self.config = config
        self.timeline = timeline
        self.db = db
        self.web = web
        self.dispatcher = dispatcher
        self.trickle = trickle
        self.flap = flap
        self.problems: list[str] = []
        self.flap_downs = 0

    async def run(self, load_done: asyncio.Event) -> None:
        """Inject every scheduled fault, flap until the load is done, then stop the faults
        so the queue can drain."""
        flapping = None
        if "flap" not in self.config.skip:
            flapping = asyncio.create_task(self._flap(load_done), name="drill-flap")
        actions: dict[str, Callable[[], Awaitable[None]]] = {
            "kill-dispatcher": lambda: self._kill_and_restart(self.dispatcher),
            "kill-web": lambda: self._kill_and_restart(self.web),
            "lock": self._hold_lock,
            "trickle": self._trickle,
            "terminate": self._terminate,
        }
        for at, name in self.config.schedule():
            delay = at - self.timeline.now()
            if delay > 0:
                await _wait(load_done, delay)
            if load_done.is_set():
                self.problems.append(f"{name}: the load ended before its turn")
                break
            try:
                await actions[name]()
            except Exception as exc:  # noqa: BLE001 - a fault that can't run is a reported problem
                self.problems.append(f"{name}: {type(exc).__name__}: {exc}")
                self.timeline.mark(f"{name} could not be carried out: {exc}")
        await load_done.wait()
        if flapping is not None:
            await flapping

    async def _kill_and_restart(self, process: HookwayProcess) -> None:
        pid = process.proc.pid if process.proc else "?"
        self.timeline.mark(f"kill -9 {process.role} (pid {pid})", fault=True)
        await asyncio.to_thread(process.kill)
        await asyncio.sleep(self.config.restart_after)
        await asyncio.to_thread(process.start)
        started = self.timeline.now()
        try:
            await asyncio.to_thread(process.wait_ready, 30.0)
        except DrillSetupError as exc:
            self.problems.append(f"{process.role} did not come back after kill -9")
            self.timeline.mark(f"{process.role} did not come back: {exc}")
            return
        assert process.proc is not None
        self.timeline.mark(
            f"{process.role} back (pid {process.proc.pid}), ready "
            f"{self.timeline.now() - started:.1f}s after its restart"
        )

    async def _hold_lock(self) -> None:
        seconds = self.config.lock_hold
        how = (
            "LOCK TABLE hookway_event IN ACCESS EXCLUSIVE MODE"
            if self.db.kind == "postgres"
            else "BEGIN IMMEDIATE"
        )

        def taken() -> None:
            self.timeline.mark(f"write lock taken ({how}), held {seconds:g}s", fault=True)

        held = await asyncio.to_thread(self.db.hold_write_lock, seconds, taken)
        self.timeline.mark(f"write lock released after {held:.1f}s")

    async def _trickle(self) -> None:
        window = self.config.trickle_for
        self.trickle.trickling.set()
        self.timeline.mark(
            f"trickle: window open for {window:g}s (status line, then a header byte every "
            f"{self.config.trickle_byte_every:g}s for {self.config.trickle_seconds:g}s)",
            fault=True,
        )
        await asyncio.sleep(window)
        self.trickle.trickling.clear()
        self.timeline.mark("trickle: window closed (answers arriving now are prompt)")

    async def _terminate(self) -> None:
        if self.db.kind != "postgres":
            self.timeline.mark("terminate connections: skipped (PostgreSQL only)")
            return
        c = self.config
        self.timeline.mark(
            f"terminating Hookway's database connections {c.terminations} times, "
            f"{c.terminate_every:g}s apart",
            fault=True,
        )
        counts = []
        for i in range(c.terminations):
            if i:
                await asyncio.sleep(c.terminate_every)
            counts.append(await asyncio.to_thread(self.db.terminate_connections))
        self.timeline.mark(f"terminated {' + '.join(str(n) for n in counts)} connections")

    async def _flap(self, done: asyncio.Event) -> None:
        modes = itertools.cycle(
            [FlapReceiver.UP, FlapReceiver.REFUSED, FlapReceiver.UP, FlapReceiver.UNAVAILABLE]
        )
        self.timeline.mark(
            f"flap: flapping every {self.config.flap_phase:g}s (up, connection refused, up, 503)",
            fault=True,
        )
        while not done.is_set():
            mode = next(modes)
            if mode != FlapReceiver.UP:
                self.flap_downs += 1
            await asyncio.to_thread(self.flap.set_mode, mode)
            await _wait(done, self.config.flap_phase)
        await asyncio.to_thread(self.flap.set_mode, FlapReceiver.UP)
        self.timeline.mark(f"flap: up for good after {self.flap_downs} down phases")


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``event`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
