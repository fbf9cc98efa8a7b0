"""ASGI lifespan support around Django, which ignores the protocol.

On startup: sync the HOOKWAY_CONFIG file into the database and start the embedded
dispatcher (when enabled). On shutdown: stop the dispatcher gracefully. A failed startup
is reported to the server (``lifespan.startup.failed``) with the reason, and the server
exits instead of serving with a half-applied configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger("hookway.lifespan")

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class LifespanApp:
    def __init__(
        self,
        app: ASGIApp,
        startup: Callable[[], Awaitable[None]],
        shutdown: Callable[[], Awaitable[None]],
    ):
        self.app = app
        self.startup = startup
        self.shutdown = shutdown

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:  # any: the server is told why and exits
                    logger.exception("Hookway failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.shutdown()
                except Exception as exc:  # any: logged, and the server is told
                    logger.exception("Hookway failed to shut down cleanly")
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return
