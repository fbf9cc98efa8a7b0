from django.apps import AppConfig


class HookwayConfig(AppConfig):
    name = "hookway"
    verbose_name = "Hookway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from hookway import gate
        from hookway.models import Source

        def forget_sources(**kwargs: object) -> None:
            gate.clear_source_cache()

        post_save.connect(forget_sources, sender=Source, weak=False, dispatch_uid="hookway-sources")
        post_delete.connect(
            forget_sources, sender=Source, weak=False, dispatch_uid="hookway-sources-del"
        )
