"""Hookway's system checks (``manage.py check``; ``--deploy`` for the production ones)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register

from hookway import conf


@register(Tags.security, deploy=True)
def check_secret_key(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Warn (hookway.W001) when the process runs on the public development SECRET_KEY."""
    if settings.SECRET_KEY != conf.DEVELOPMENT_SECRET_KEY:
        return []
    return [
        Warning(
            "SECRET_KEY is Hookway's development key, which is public: anyone can forge "
            "admin sessions. It is in use because DEBUG or HOOKWAY_DEMO is on.",
            hint=f"Set SECRET_KEY to a long random string, e.g. from {conf.MAKE_A_KEY}, "
            "and turn DEBUG and HOOKWAY_DEMO off.",
            id="hookway.W001",
        )
    ]
