"""``manage.py dispatch``: a standalone dispatcher process.

Run any number of them against one PostgreSQL database (claims skip each other's locked
rows). SIGTERM or SIGINT stops claiming, lets in-flight deliveries finish within the
grace period and releases the rest back to the queue.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hookway.config.file import ConfigError


class Command(BaseCommand):
    help = "Deliver stored events to their destinations until stopped (SIGTERM/SIGINT)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency",
            type=int,
            help="Max deliveries in flight (default: $HOOKWAY_DISPATCHER_CONCURRENCY or 200).",
        )
        parser.add_argument(
            "--until-empty",
            action="store_true",
            help="Exit once no delivery is pending (scheduled retries included).",
        )
        parser.add_argument(
            "--grace", type=float, help="Seconds in-flight deliveries get at shutdown."
        )
        parser.add_argument("--poll-interval", type=float, help="Seconds between polls (backstop).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["concurrency"] is not None and options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1")
        # The dispatcher logs its own "running" and "stopped: …" lines.
        try:
            asyncio.run(self._run(options))
        except ConfigError as exc:
            raise CommandError(str(exc)) from None

    async def _run(self, options: dict[str, Any]) -> Any:
        from hookway.dispatch.dispatcher import Dispatcher, DispatcherConfig
        from hookway.runtime import apply_config_file, start_loop_monitor, stop_loop_monitor

        await apply_config_file()
        start_loop_monitor()
        config = DispatcherConfig.from_settings(
            concurrency=options["concurrency"],
            until_empty=options["until_empty"],
            shutdown_grace=options["grace"],
            poll_interval=options["poll_interval"],
        )
        dispatcher = Dispatcher(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, dispatcher.stop)
        try:
            return await dispatcher.run()
        finally:
            await stop_loop_monitor()
