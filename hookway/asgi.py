"""Hookway's ASGI entry points.

``hookway.asgi:application`` is the standalone server (lifespan-aware): created on first
use, with DJANGO_SETTINGS_MODULE defaulting to hookway.standalone.settings, so importing
this module from a host project's own ``asgi.py`` changes nothing.

``wrap(app)`` is for a project that added the ``hookway`` app: it puts the fast ingest
path and the embedded dispatcher's lifespan in front of the project's own ASGI app
(docs/django-app.md).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hookway.lifespan import LifespanApp

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

# Set on first access by __getattr__ (PEP 562): declared here for type checkers.
application: LifespanApp


def wrap(app: ASGIApp, *, prefix: str = "/hooks/") -> LifespanApp:
    """Return ``app`` behind Hookway: POSTs under ``prefix`` take the lean ingest path
    (no thread per request, no sync middleware; hookway.asgi_handler), everything else reaches
    ``app`` unchanged, and the ASGI lifespan runs Hookway's startup (the config file,
    the embedded dispatcher) and shutdown. ``prefix`` must be where the project's
    URLconf includes ``hookway.urls``; ImproperlyConfigured if it is not."""
    from django.core.exceptions import ImproperlyConfigured
    from django.urls import Resolver404, resolve

    from hookway.asgi_handler import HookRouter
    from hookway.ingest.views import receive_hook
    from hookway.lifespan import LifespanApp
    from hookway.runtime import shutdown, startup

    if not (prefix.startswith("/") and prefix.endswith("/")):
        raise ImproperlyConfigured(f"hookway.asgi.wrap(prefix={prefix!r}): expected '/…/'")
    try:
        found = resolve(prefix + "a-source").func
    except Resolver404:
        found = None
    if found is not receive_hook:
        raise ImproperlyConfigured(
            f"hookway.asgi.wrap(prefix={prefix!r}): the URLconf does not send {prefix}<slug> "
            f"to Hookway; add path({prefix.strip('/') + '/'!r}, include('hookway.urls'))"
        )
    return LifespanApp(HookRouter(app, prefix), startup=startup, shutdown=shutdown)


def _standalone() -> LifespanApp:
    import django
    from django.core.exceptions import ImproperlyConfigured

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookway.standalone.settings")
    try:
        django.setup(set_prefix=False)
    except ImproperlyConfigured as exc:
        # A setting from the environment is wrong: the server exits with the message,
        # which names the variable, and no traceback.
        raise SystemExit(f"Hookway can't start: {exc}") from None

    from hookway.asgi_handler import HookwayASGIHandler
    from hookway.lifespan import LifespanApp
    from hookway.runtime import shutdown, startup

    return LifespanApp(HookwayASGIHandler(), startup=startup, shutdown=shutdown)


def __getattr__(name: str) -> Any:
    if name == "application":
        app = _standalone()
        globals()["application"] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
