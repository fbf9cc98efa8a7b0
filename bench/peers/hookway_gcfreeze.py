"""Hookway's own application with ``gc.freeze()`` once its startup is done: a measuring
stick for a follow-up, not a server to deploy.

Everything alive after Django's setup, the config sync and the first imports (hundreds
of thousands of objects) is moved out of the cyclic garbage collector's reach, so its
full collections no longer walk them while webhooks wait. ``python -m bench.ingest_ab
WORKTREE WORKTREE --app-b bench.peers.hookway_gcfreeze:application --pairs 2 --name
ingest_gcfreeze_probe`` serves it beside the same tree without the freeze.
"""

from __future__ import annotations

import gc
import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookway.standalone.settings")

from hookway.asgi import application as _hookway


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "lifespan":
        await _hookway(scope, receive, send)
        return

    async def frozen_send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            gc.collect()
            gc.freeze()
        await send(message)

    await _hookway(scope, receive, frozen_send)
