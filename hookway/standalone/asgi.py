"""The standalone server's ASGI application, built when this module is imported.

For servers that look the application up in the module's namespace instead of as an
attribute: hypercorn evaluates ``application`` in ``vars(module)``, where
``hookway.asgi``'s lazily built ``application`` (PEP 562 ``__getattr__``) is not found.
``hookway.standalone.asgi:application`` is the same object, for every server.
"""

from __future__ import annotations

from hookway.asgi import application

__all__ = ["application"]
