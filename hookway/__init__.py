"""Hookway: a self-hosted webhook gateway on async Django."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from hookway.handlers import HandlerEvent, Reject, Retry, handler

# The Python API, imported on first use: `import hookway` must not import Django models
# before the apps are ready.
_LAZY = {
    "handler": "hookway.handlers",
    "Retry": "hookway.handlers",
    "Reject": "hookway.handlers",
    "HandlerEvent": "hookway.handlers",
}

__all__ = ["HandlerEvent", "Reject", "Retry", "__version__", "handler"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hookway' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
