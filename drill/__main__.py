"""``python -m drill`` (``make drill``): run the fault drill and report.

1. Set up: a fresh database (PostgreSQL ``hookway_drill`` by default, or a SQLite file),
   migrated; the three receivers; a hookway.toml routing one source to them; the web
   process (embedded dispatcher) and a standalone dispatcher.
2. Load: the sender posts ``--rate`` webhooks a second for ``--duration`` seconds while
   the faults run (drill/faults.py).
3. Drain: faults stop; wait until no delivery is pending (at most ``--drain`` seconds,
   less if nothing moves for 30 s). Then, Hookway idle, a storm of connection
   terminations and 20 canary webhooks, drained in turn; then SIGTERM both processes.
4. Report: the checks (drill/report.py), printed and written to var/drill/report.md.

Exit status: 0 the promise held, 1 it did not (see the FAIL checks), 2 the drill could
not run (e.g. PostgreSQL unreachable). Everything started is stopped on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

from drill import causes
from drill.config import (
    DEFAULT_PG_URL,
    FAULTS,
    ROOT,
    DrillConfig,
    hookway_env,
    hookway_toml,
)
from drill.database import (
    DrillDatabase,
    DrillSetupError,
    PostgresDatabase,
    SqliteDatabase,
    migrate,
)
from drill.faults import Faults
from drill.load import NO_ANSWER, Sender
from drill.processes import HookwayProcess
from drill.receivers import FlapReceiver, HitLog, Receiver, TrickleReceiver, free_port
from drill.report import RunData, analyse
from drill.timeline import Timeline


def parse_args(argv: list[str] | None) -> DrillConfig:
    defaults = DrillConfig()
    parser = argparse.ArgumentParser(
        prog="python -m drill",
        description="Fault drill: steady load on Hookway while processes are killed, the "
        "database breaks and receivers misbehave; then check that every acked webhook was "
        "delivered and every duplicate has a cause. Report: var/drill/report.md.",
    )
    parser.add_argument("--db", choices=["postgres", "sqlite"], default=defaults.db)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DRILL_DATABASE_URL", DEFAULT_PG_URL),
        help="PostgreSQL database the drill DROPS and recreates; its name must contain "
        "'drill' (default: $DRILL_DATABASE_URL or %(default)s)",
    )
    parser.add_argument(
        "--duration", type=float, default=defaults.duration, help="seconds of load (>= 60)"
    )
    parser.add_argument("--rate", type=float, default=defaults.rate, help="webhooks per second")
    parser.add_argument(
        "--drain",
        type=float,
        default=defaults.drain,
        help="at most this long to drain after the load",
    )
    parser.add_argument(
        "--skip", action="append", choices=FAULTS, default=[], help="leave a fault out (repeatable)"
    )
    parser.add_argument(
        "--out", type=Path, default=defaults.out, help="logs and report (default var/drill)"
    )
    args = parser.parse_args(argv)
    if args.duration < 60:
        parser.error("--duration must be at least 60 s: the faults need room to be told apart")
    if not 1 <= args.rate <= 500:
        parser.error("--rate must be between 1 and 500 webhooks per second")
    return replace(
        defaults,
        db=args.db,
        database_url=args.database_url,
        duration=args.duration,
        rate=args.rate,
        drain=max(args.drain, 5.0),
        skip=frozenset(args.skip),
        out=args.out.resolve(),
    )


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + (" (with uncommitted changes)" if dirty else "")


class Drill:
    def __init__(self, config: DrillConfig) -> None:
        self.config = config
        self.timeline = Timeline()
        self.hits = HitLog()
        self.lag_max = 0.0
        self.canaries: list[int] = []

    async def run(self, wall_start: float) -> int:
        c = self.config
        tl = self.timeline
        started_at = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        tmp = Path(tempfile.mkdtemp(prefix="hookway-drill-"))
        steady = Receiver("steady", tl, self.hits, c.receiver_work)
        trickle = TrickleReceiver(
            "trickle", tl, self.hits, c.receiver_work, c.trickle_seconds, c.trickle_byte_every
        )
        flap = FlapReceiver("flap", tl, self.hits, c.receiver_work)
        receivers = [steady, trickle, flap]
        processes: list[HookwayProcess] = []
        try:
            db: DrillDatabase = (
                PostgresDatabase(c.database_url) if c.db == "postgres" else SqliteDatabase(tmp)
            )
            for receiver in receivers:
                receiver.open()
            config_file = tmp / "hookway.toml"
            config_file.write_text(hookway_toml(c, {r.name: r.url for r in receivers}))
            env = hookway_env(c, db.url, config_file)
            texts = causes.hookway_texts(env)
            await asyncio.to_thread(db.create)
            await asyncio.to_thread(migrate, env)
            tl.mark(f"database ready: {db.describe()} (created and migrated)")

            port = free_port()
            web = HookwayProcess.web(port, env, c.out / "web.log", tl)
            dispatcher = HookwayProcess.dispatcher(env, c.out / "dispatch.log", tl)
            processes = [web, dispatcher]
            for process in processes:
                process.start()
            await asyncio.gather(*(asyncio.to_thread(p.wait_ready, 60.0) for p in processes))
            tl.mark(
                f"web (pid {web.life.pid if web.life else '?'}, port {port}) and dispatcher "
                f"(pid {dispatcher.life.pid if dispatcher.life else '?'}) ready"
            )

            tl.reset()
            run_id = f"drill{int(time.time())}"
            sender = Sender(
                f"http://127.0.0.1:{port}/hooks/drill",
                run_id,
                c.rate,
                c.duration,
                c.sender_timeout,
                tl,
            )
            faults = Faults(c, tl, db, web, dispatcher, trickle, flap)
            tl.mark(f"load: {c.rate:g} webhooks/s for {c.duration:g}s (run {run_id})")
            load_done = asyncio.Event()
            watch = asyncio.create_task(
                self._watch(processes, sender, load_done), name="drill-watch"
            )
            lag = asyncio.create_task(self._measure_lag(), name="drill-lag")
            sending = asyncio.create_task(sender.run(), name="drill-sender")
            faulting = asyncio.create_task(faults.run(load_done), name="drill-faults")
            await asyncio.sleep(max(0.0, c.duration - tl.now()))
            load_done.set()
            tl.mark("load over: faults stop, senders finish what they have in flight")
            await faulting
            await sending
            acked = sum(1 for h in sender.webhooks.values() if h.acked)
            tl.mark(f"sender done: {acked:,} of {len(sender.webhooks):,} webhooks acked")

            drained = await self._drain(db, c.stall, c.drain)
            if "terminate-idle" not in c.skip:
                await self._idle_fault(db, sender)
                drained += "; canaries: " + await self._drain(db, 15.0, 30.0)
            tl.mark("stopping Hookway (SIGTERM)")
            await asyncio.gather(*(asyncio.to_thread(p.terminate, 20.0) for p in processes))
            watch.cancel()
            lag.cancel()
            tl.mark("stopped: " + ", ".join(f"{p.role} {p.life.how}" for p in processes if p.life))

            stored = await asyncio.to_thread(db.stored)
            data = RunData(
                config=c,
                database=db.describe(),
                commit=_commit(),
                timeline=tl,
                sender=sender,
                hits=self.hits.all(),
                stored=stored,
                lives=[life for p in processes for life in p.lives],
                texts=texts,
                problems=faults.problems,
                drained=drained,
                loop_lag_max=self.lag_max,
                started_at=started_at,
                wall_seconds=time.monotonic() - wall_start,
                canaries=self.canaries,
            )
            self._dump(data)
            report = analyse(data)
            (c.out / "report.md").write_text(report.markdown(full=True))
            print()
            print(report.markdown(full=False))
            print(
                f"Full report: {c.out / 'report.md'}; logs: {c.out}/web.log, {c.out}/dispatch.log"
            )
            if not report.passed:
                for process in processes:
                    print(f"\n--- last lines of {process.log_path} ---\n{process.log_tail(30)}")
            return 0 if report.passed else 1
        finally:
            for process in processes:
                process.cleanup()
            for receiver in receivers:
                receiver.stop()
            shutil.rmtree(tmp, ignore_errors=True)

    async def _watch(
        self, processes: list[HookwayProcess], sender: Sender, load_done: asyncio.Event
    ) -> None:
        """Notice a Hookway process that exits on its own; print progress every 10 s of
        the load."""
        next_progress = 10.0
        while True:
            for process in processes:
                life = process.check_exit()
                if life is not None:
                    self.timeline.mark(f"{life.role} (pid {life.pid}) {life.how}", fault=True)
            if self.timeline.now() >= next_progress and not load_done.is_set():
                next_progress += 10.0
                self._progress(sender)
            await asyncio.sleep(0.5)

    def _progress(self, sender: Sender) -> None:
        """One line of how the load is going (printed, not kept in the report)."""
        answers = sender.answers
        acked = sum(1 for h in sender.webhooks.values() if h.acked)
        n503 = sum(1 for a in answers if a.status == 503)
        errors = sum(1 for a in answers if a.status is None and a.error != NO_ANSWER)
        late = sum(1 for a in answers if a.error == NO_ANSWER)
        accepted: dict[str, set[int]] = {}
        for hit in self.hits.all():
            if hit.accepted and hit.seq is not None:
                accepted.setdefault(hit.destination, set()).add(hit.seq)
        delivered = " ".join(
            f"{name} {len(accepted.get(name, ())):,}" for name in ("steady", "trickle", "flap")
        )
        self.timeline.say(
            f"sent {len(sender.webhooks):,}, acked {acked:,} | 503 {n503:,}, errors {errors:,}, "
            f"no answer {late:,} | delivered: {delivered}"
        )

    async def _measure_lag(self) -> None:
        """How late the drill's own loop wakes: if it is starved, its timings mean less."""
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.1)
            self.lag_max = max(self.lag_max, loop.time() - before - 0.1)

    async def _idle_fault(self, db: DrillDatabase, sender: Sender) -> None:
        """Break the idle processes' database connections again and again (a database
        restart), then check that new webhooks are still delivered (the canaries join
        the acked webhooks the report checks)."""
        c = self.config
        if db.kind != "postgres":
            self.timeline.mark("idle: terminating connections skipped (PostgreSQL only)")
        else:
            self.timeline.mark(
                f"idle: terminating Hookway's database connections every "
                f"{c.storm_every * 1000:g} ms for {c.idle_storm:g}s",
                fault=True,
            )
            count = await asyncio.to_thread(db.terminate_storm, c.idle_storm, c.storm_every)
            self.timeline.mark(f"idle: storm over, {count} connections terminated")
        await asyncio.sleep(c.idle_wait)
        self.timeline.mark(f"idle: sending {c.canaries} canary webhooks")
        hooks = await sender.send_more(c.canaries, within=c.sender_timeout)
        self.canaries = [h.seq for h in hooks]
        acked = sum(1 for h in hooks if h.acked)
        self.timeline.mark(f"canaries: {acked} of {len(hooks)} acked")

    async def _drain(self, db: DrillDatabase, stall: float, bound: float) -> str:
        """Wait until no delivery is pending; give up after ``bound`` seconds, or after
        ``stall`` seconds in which neither the database nor the receivers saw progress."""
        tl = self.timeline
        start = tl.now()
        last: object = None
        last_change = start
        next_note = start + 5
        while True:
            try:
                states = await asyncio.to_thread(db.delivery_states)
            except Exception as exc:  # noqa: BLE001 - noted; the drain polls again
                states = {}
                tl.mark(f"drain: reading the database failed: {exc}", quiet=True)
            now = tl.now()
            pending = states.get("pending", 0)
            summary = ", ".join(f"{n:,} {s}" for s, n in sorted(states.items()))
            if states and pending == 0:
                note = f"drained in {now - start:.1f}s ({summary})"
                tl.mark(note)
                return note
            progress = (tuple(sorted(states.items())), len(self.hits))
            if progress != last:
                last, last_change = progress, now
            if now - last_change >= stall:
                note = f"NOT drained: nothing moved for {stall:g}s ({summary})"
                tl.mark(note)
                return note
            if now - start >= bound:
                note = f"NOT drained within {bound:g}s ({summary})"
                tl.mark(note)
                return note
            if now >= next_note:
                next_note = now + 5
                tl.say(f"draining: {summary}")
            await asyncio.sleep(1.0)

    def _dump(self, data: RunData) -> None:
        """The raw observations, for anyone who wants to check the report's sums."""
        raw = {
            "webhooks": [
                {k: v for k, v in asdict(h).items() if k != "body"}
                for h in data.sender.webhooks.values()
            ],
            "answers": [asdict(a) for a in data.sender.answers],
            "hits": [asdict(h) for h in data.hits],
            "lives": [asdict(life) for life in data.lives],
            "timeline": [asdict(m) for m in data.timeline.marks],
        }
        (self.config.out / "raw.json").write_text(json.dumps(raw))


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    wall_start = time.monotonic()
    config.out.mkdir(parents=True, exist_ok=True)
    for name in ("web.log", "dispatch.log", "report.md", "raw.json"):
        (config.out / name).unlink(missing_ok=True)
    try:
        return asyncio.run(Drill(config).run(wall_start))
    except DrillSetupError as exc:
        print(f"\ndrill: could not run: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
