"""Hookway's ASGI application: ``hookway.asgi:application`` (lifespan-aware)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookway.settings")
django.setup(set_prefix=False)

from hookway.handler import HookwayASGIHandler  # noqa: E402
from hookway.lifespan import LifespanApp  # noqa: E402
from hookway.runtime import shutdown, startup  # noqa: E402

application = LifespanApp(HookwayASGIHandler(), startup=startup, shutdown=shutdown)
