from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """An app of its own so its templates and static files are found like any app's;
    it has no models (it reads and writes Hookway's)."""

    name = "hookway.console"
    label = "hookway_console"
    verbose_name = "Hookway console"
