"""What a Hookway process does when it starts and stops (shared by the ASGI lifespan and
``manage.py dispatch``)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from django.conf import settings

from hookway import gate
from hookway.config import file as config_file
from hookway.loopmonitor import MonitorTask

if TYPE_CHECKING:
    from hookway.dispatch.dispatcher import Dispatcher, Stats

logger = logging.getLogger("hookway.runtime")

# The embedded dispatcher and loop monitor of this process, owned here between startup
# and shutdown.
_embedded: tuple[Dispatcher, asyncio.Task[Stats]] | None = None
_monitor: MonitorTask | None = None


def start_loop_monitor() -> None:
    """Start sampling event-loop lag if HOOKWAY_LOOP_LAG_FILE is set."""
    global _monitor
    path = settings.HOOKWAY.loop_lag_file
    if path is not None and _monitor is None:
        _monitor = MonitorTask(path)
        _monitor.start()


async def stop_loop_monitor() -> None:
    global _monitor
    if _monitor is not None:
        monitor, _monitor = _monitor, None
        await monitor.stop()


async def apply_config_file() -> None:
    """Sync HOOKWAY_CONFIG into the database, if it is set; raise ConfigError if invalid."""
    path = settings.HOOKWAY.config_path
    if path is None:
        return
    config = config_file.load(path)
    report = await gate.async_sync_config(config)
    logger.info("config %s: %s", path, report)


async def startup() -> None:
    """ASGI lifespan startup: apply the config file, start the embedded dispatcher."""
    global _embedded
    await apply_config_file()
    start_loop_monitor()
    if settings.HOOKWAY.embedded_dispatcher and _embedded is None:
        from hookway.dispatch.dispatcher import Dispatcher, DispatcherConfig

        dispatcher = Dispatcher(DispatcherConfig.from_settings())
        task = asyncio.create_task(dispatcher.run(), name="hookway-embedded-dispatcher")
        _embedded = (dispatcher, task)


async def shutdown() -> None:
    """ASGI lifespan shutdown: stop the embedded dispatcher, letting in-flight deliveries
    finish within HOOKWAY_SHUTDOWN_GRACE and releasing the rest."""
    global _embedded
    if _embedded is not None:
        dispatcher, task = _embedded
        _embedded = None
        dispatcher.stop()
        await task
    await stop_loop_monitor()
