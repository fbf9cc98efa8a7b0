"""Hookway: a self-hosted webhook gateway on async Django, and a Django app."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from hookway.handlers import HandlerEvent, Reject, Retry, handler
    from hookway.outbox import Published, UnknownSource, apublish, publish

__all__ = [
    "HandlerEvent",
    "Published",
    "Reject",
    "Retry",
    "UnknownSource",
    "__version__",
    "apublish",
    "handler",
    "publish",
]

# The Python API, imported on first use (PEP 562): `import hookway` (a settings module, an
# app registry still loading) must not import Django's models.
_LAZY = {
    "publish": "hookway.outbox",
    "apublish": "hookway.outbox",
    "Published": "hookway.outbox",
    "UnknownSource": "hookway.outbox",
    "handler": "hookway.handlers",
    "Retry": "hookway.handlers",
    "Reject": "hookway.handlers",
    "HandlerEvent": "hookway.handlers",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hookway' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
