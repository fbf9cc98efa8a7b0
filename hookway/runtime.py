"""What a Hookway process does when it starts and stops (shared by the ASGI lifespan and
``manage.py dispatch``)."""

from __future__ import annotations

import logging

from django.conf import settings

from hookway import gate
from hookway.config import file as config_file

logger = logging.getLogger("hookway.runtime")


async def apply_config_file() -> None:
    """Sync HOOKWAY_CONFIG into the database, if it is set; raise ConfigError if invalid."""
    path = settings.HOOKWAY.config_path
    if path is None:
        return
    config = config_file.load(path)
    report = await gate.async_sync_config(config)
    logger.info("config %s: %s", path, report)


async def startup() -> None:
    await apply_config_file()


async def shutdown() -> None:
    return None
