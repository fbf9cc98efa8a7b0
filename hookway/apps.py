from typing import Any

from django.apps import AppConfig


class HookwayConfig(AppConfig):
    name = "hookway"
    verbose_name = "Hookway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_delete, post_save

        from hookway import checks, conf, gate, timing  # noqa: F401 (importing checks registers them)
        from hookway.models import Destination, Route, Source

        # A bad HOOKWAY setting or HOOKWAY_* variable stops every command and server
        # now, naming it, rather than at the first webhook.
        conf.get()

        def forget(**kwargs: object) -> None:
            gate.clear_source_cache()

        # Ingest caches sources and routes for a second; a change made here applies now.
        for model in (Source, Route, Destination):
            uid = f"hookway-cache-{model.__name__}"
            post_save.connect(forget, sender=model, weak=False, dispatch_uid=uid)
            post_delete.connect(forget, sender=model, weak=False, dispatch_uid=uid + "-del")

        def time_queries(connection: Any, **kwargs: object) -> None:
            # Every query of a request counts toward its Server-Timing "db" entry.
            if timing.time_query not in connection.execute_wrappers:
                connection.execute_wrappers.append(timing.time_query)

        connection_created.connect(time_queries, weak=False, dispatch_uid="hookway-db-timing")
