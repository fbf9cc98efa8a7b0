"""Hookway's ASGI application: ``hookway.asgi:application`` (lifespan-aware)."""

import os

import django
from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookway.settings")
try:
    django.setup(set_prefix=False)
except ImproperlyConfigured as exc:
    # A setting from the environment is wrong: the server exits with the message, which
    # names the variable, and no traceback.
    raise SystemExit(f"Hookway can't start: {exc}") from None

from hookway.asgi_handler import HookwayASGIHandler
from hookway.lifespan import LifespanApp
from hookway.runtime import shutdown, startup

application = LifespanApp(HookwayASGIHandler(), startup=startup, shutdown=shutdown)
