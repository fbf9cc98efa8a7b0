"""What a Hookway process does when it starts and stops (shared by the ASGI lifespan and
``manage.py dispatch``), and the owner of the embedded dispatcher."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hookway import conf, gate, tracing
from hookway.config import file as config_file
from hookway.config import registry
from hookway.dispatch.dispatcher import Dispatcher, DispatcherConfig, new_worker_id
from hookway.loopmonitor import MonitorTask, ProcessMetricsTask

logger = logging.getLogger("hookway.runtime")

# This process's name in the workers table (its readiness checks write it).
WORKER_ID = new_worker_id()
RESTART_FIRST = 1.0
RESTART_MAX = 30.0

_monitor: MonitorTask | None = None
_process_metrics: ProcessMetricsTask | None = None
# Stops of background tasks started on demand (the API's stream watcher), run at shutdown.
_on_shutdown: dict[Callable[[], Awaitable[None]], None] = {}
_heap_frozen = False


def on_shutdown(stop: Callable[[], Awaitable[None]]) -> None:
    """Have the process's shutdown await ``stop()`` (once, however often registered)."""
    _on_shutdown[stop] = None


def start_loop_monitor() -> None:
    """Start sampling event-loop lag if HOOKWAY_LOOP_LAG_FILE is set."""
    global _monitor
    path = conf.get().loop_lag_file
    if path is not None and _monitor is None:
        _monitor = MonitorTask(path)
        _monitor.start()


async def stop_loop_monitor() -> None:
    global _monitor
    if _monitor is not None:
        monitor, _monitor = _monitor, None
        await monitor.stop()


def start_observing() -> None:
    """What every Hookway process reports on itself: its event-loop lag and ingest's
    counts to Prometheus (hookway.metrics, hookway.loopmonitor.ProcessMetricsTask) and,
    with OpenTelemetry set up from the environment, its spans (hookway.tracing)."""
    global _process_metrics
    tracing.configure()
    if _process_metrics is None:
        _process_metrics = ProcessMetricsTask()
        _process_metrics.start()


async def stop_observing() -> None:
    """Stop the metrics task (its last flush counts what ingest has not yet reported)
    and export the spans still buffered."""
    global _process_metrics
    if _process_metrics is not None:
        task, _process_metrics = _process_metrics, None
        await task.stop()
    await gate.aflush_traces()


async def apply_config_file() -> None:
    """Sync HOOKWAY_CONFIG and the ``@hookway.handler`` functions of installed apps'
    ``hooks`` modules into the database; raise ConfigError if either is invalid."""
    path = conf.get().config_path
    entries = registry.discover()
    if path is None and not entries:
        return
    # Validated at every start, applied once per change.
    config = config_file.load(path) if path is not None else config_file.HookwayConfig()
    config = registry.with_registered(config, entries)
    name = str(path) if path is not None else "@hookway.handler registrations"
    report = await gate.async_sync_config_if_changed(config, name)
    if report is None:
        logger.debug("config %s: unchanged since it was last applied", name)
    else:
        logger.info("config %s applied: %s", name, report)


@dataclass(frozen=True)
class DispatcherStatus:
    """What readiness reports about the embedded dispatcher."""

    enabled: bool
    running: bool
    detail: str


class EmbeddedDispatcher:
    """Owns the web process's dispatcher: runs it, and if it ever ends without being
    asked to (a bug escaped it), logs the traceback and starts a new one after a
    backoff. Readiness is false from the failure until the new one runs."""

    def __init__(self) -> None:
        self.dispatcher: Dispatcher | None = None
        self.restarts = 0
        self.last_failure = ""
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._own(), name="hookway-embedded-dispatcher")

    async def _own(self) -> None:
        failures = 0
        while not self._stopping:
            self.dispatcher = Dispatcher(DispatcherConfig.from_settings())
            started = time.monotonic()
            try:
                await self.dispatcher.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the owner logs any failure and restarts
                self.last_failure = f"{type(exc).__name__}: {exc}"
                logger.exception("the embedded dispatcher failed")
            else:
                if self._stopping:
                    return
                self.last_failure = "the embedded dispatcher ended unexpectedly"
                logger.error(self.last_failure)
            if time.monotonic() - started > 60:
                failures = 0
            failures += 1
            self.restarts += 1
            delay = min(RESTART_MAX, RESTART_FIRST * 2 ** (failures - 1))
            logger.error("restarting the embedded dispatcher in %.0f s", delay)
            self.dispatcher = None
            await asyncio.sleep(delay)

    async def stop(self) -> None:
        """Stop it: in-flight deliveries get HOOKWAY_SHUTDOWN_GRACE, the rest are released."""
        self._stopping = True
        if self.dispatcher is not None:
            self.dispatcher.stop()
        if self._task is not None:
            if self.dispatcher is None:
                self._task.cancel()  # waiting to restart: nothing to drain
            try:
                await self._task
            except asyncio.CancelledError:
                if not self._task.cancelled():
                    raise

    def status(self) -> DispatcherStatus:
        d = self.dispatcher
        if d is not None and d.healthy:
            return DispatcherStatus(True, True, "running")
        if d is not None and d.running:
            unhealthy = [
                f"{n}: {t.state} ({t.last_error})"
                for n, t in d.tasks.items()
                if t.state != "running"
            ]
            return DispatcherStatus(
                True, False, "; ".join(unhealthy) or "no progress: the database may be unavailable"
            )
        return DispatcherStatus(True, False, f"not running: {self.last_failure or 'starting'}")


_embedded: EmbeddedDispatcher | None = None


def dispatcher_status() -> DispatcherStatus:
    if _embedded is None:
        return DispatcherStatus(False, False, "not embedded (HOOKWAY_EMBEDDED_DISPATCHER=false)")
    return _embedded.status()


async def startup() -> None:
    """ASGI lifespan startup: apply the config file, start the embedded dispatcher."""
    global _embedded
    await apply_config_file()
    load_urlconf()
    # Before anything watches the loop: the collection takes a while (hundreds of ms on a
    # busy machine) and would read as a blocked loop.
    prepare_collector()
    start_loop_monitor()
    start_observing()
    if conf.get().embedded_dispatcher and _embedded is None:
        _embedded = EmbeddedDispatcher()
        _embedded.start()


def load_urlconf() -> None:
    """Import the URLconf and everything it includes (the API's schemas, the console) now,
    not in the first request, where it held the event loop for most of a second."""
    from django.urls import get_resolver

    resolver = get_resolver()
    resolver.url_patterns  # noqa: B018 - the property imports the modules
    resolver.reverse_dict  # noqa: B018 - and this one builds the lookup tables


def prepare_collector() -> None:
    """Set the cyclic garbage collector up for a long-running server, once per process.

    1. Move what startup left alive (Django's setup, the URLconf, the config, the
       imported modules: hundreds of thousands of objects that live as long as the
       process) out of its reach. Its full collections then walk only what requests
       create, instead of pausing the event loop to re-walk the whole heap; measured
       -13 % CPU per webhook and p99 88 -> 38 ms at 64 connections
       (bench/results/ingest_gcfreeze_probe.md). Garbage is collected first, so nothing
       already dead is kept; reference counting still frees frozen objects that are
       released.
    2. Raise the youngest generation's threshold to HOOKWAY_GC_GEN0_THRESHOLD
       (``raise_gen0_threshold``). At Python's 700 container allocations, a dispatcher
       with hundreds of deliveries in flight (each holding its task's, connection's and
       request's objects) collected about 330 times per 5,000 deliveries, its whole
       heap twice, up to 17 ms each with the loop waiting; at 2000 it spent 30 % less
       time collecting, never collected the whole heap, and its loop lag p99 fell from
       12.1 to 10.6 ms (bench/results/gc_pauses.md)."""
    global _heap_frozen
    if _heap_frozen:
        return
    _heap_frozen = True
    gc.collect()
    gc.freeze()
    raise_gen0_threshold(conf.get().gc_gen0_threshold)


def raise_gen0_threshold(threshold: int) -> None:
    """Collect the youngest generation after ``threshold`` container allocations
    instead of the interpreter's (fewer, and so rarer, older-generation collections
    too), keeping the older generations' thresholds. Never lowers it: a process that
    set a higher one keeps it; 0 changes nothing."""
    gen0, *older = gc.get_threshold()
    if threshold > gen0:
        gc.set_threshold(threshold, *older)


async def shutdown() -> None:
    """ASGI lifespan shutdown: stop the embedded dispatcher, letting in-flight deliveries
    finish within HOOKWAY_SHUTDOWN_GRACE and releasing the rest."""
    global _embedded
    if _embedded is not None:
        embedded, _embedded = _embedded, None
        await embedded.stop()
    while _on_shutdown:
        stop = next(iter(_on_shutdown))
        del _on_shutdown[stop]
        try:
            await stop()
        except Exception:  # one failing stop must not keep the others from running
            logger.exception("stopping %r failed", stop)
    await stop_loop_monitor()
    await stop_observing()
