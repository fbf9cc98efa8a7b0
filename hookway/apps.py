from django.apps import AppConfig


class HookwayConfig(AppConfig):
    name = "hookway"
    verbose_name = "Hookway"
    default_auto_field = "django.db.models.BigAutoField"
