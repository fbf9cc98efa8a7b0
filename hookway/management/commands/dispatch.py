"""``manage.py dispatch``: a standalone dispatcher process.

Run any number of them against one PostgreSQL database (claims skip each other's locked
rows). SIGTERM or SIGINT stops claiming, lets in-flight deliveries finish within the
grace period and releases the rest back to the queue.

Its metrics reach Prometheus through a web server's /metrics when it shares that
server's PROMETHEUS_MULTIPROC_DIR, or through its own endpoint (``--metrics-address``,
HOOKWAY_DISPATCHER_METRICS_ADDRESS): docs/operations.md, "Metrics".
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hookway import conf
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
        parser.add_argument(
            "--metrics-address",
            help="Serve this dispatcher's /metrics on HOST:PORT (default: "
            "$HOOKWAY_DISPATCHER_METRICS_ADDRESS; none when unset).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["concurrency"] is not None and options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1")
        address = conf.get().dispatcher_metrics_address
        if options["metrics_address"]:
            try:
                address = conf.envhostport(
                    {"--metrics-address": options["metrics_address"]}, "--metrics-address"
                )
            except ImproperlyConfigured as exc:
                raise CommandError(str(exc)) from None
        options["metrics_address"] = address
        # The dispatcher logs its own "running" and "stopped: …" lines.
        try:
            asyncio.run(self._run(options))
        except ConfigError as exc:
            raise CommandError(str(exc)) from None

    async def _run(self, options: dict[str, Any]) -> Any:
        from hookway.dispatch.dispatcher import Dispatcher, DispatcherConfig
        from hookway.metrics import server as metrics_server
        from hookway.runtime import (
            apply_config_file,
            prepare_collector,
            start_loop_monitor,
            start_observing,
            stop_loop_monitor,
            stop_observing,
        )

        await apply_config_file()
        prepare_collector()  # before the loop is watched: the collection takes a while
        endpoint = None
        if options["metrics_address"] is not None:
            host, port = options["metrics_address"]
            try:
                endpoint = await metrics_server.start(host, port)
            except OSError as exc:
                raise CommandError(f"can't serve metrics on {host}:{port}: {exc}") from None
            self.stdout.write(f"metrics on http://{host}:{port}/metrics")
        start_loop_monitor()
        start_observing()
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
            if endpoint is not None:
                endpoint.close()
                await endpoint.wait_closed()
            await stop_loop_monitor()
            await stop_observing()
