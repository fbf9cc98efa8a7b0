"""Python handlers as destinations: what a handler gets, what it may raise, and the
``@hookway.handler`` decorator (docs/handlers.md).

A handler is a destination whose target is a callable (``handler = "myapp.hooks:fn"`` in
hookway.toml, or the decorator) instead of a URL. The dispatcher calls it with a
HandlerEvent, with the same retries, timeout, dead letters and replay as an HTTP
destination (hookway.send.handler makes the call).

Plain Python, no Django: ``import hookway`` reaches this module lazily and it must work
before the apps are ready.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# "package.module:function" or "package.module:Class.method".
TARGET_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*\Z")


@dataclass(frozen=True)
class HandlerEvent:
    """One stored event, as a handler gets it. ``payload`` is the parsed JSON body (None
    when the body is not JSON); ``body`` the raw bytes as received; ``headers`` the
    sender's stored headers (names case-insensitive). ``delivery_id`` is stable across retries of this delivery
    (dedupe on it: delivery is at-least-once); ``attempt`` is 1-based."""

    id: str
    delivery_id: str
    source: str
    event_name: str
    payload: Any
    body: bytes = field(repr=False)
    headers: Mapping[str, str] = field(repr=False)
    content_type: str
    attempt: int
    received_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        """The event as a JSON-serialisable dict (what a Celery task receives): ``body``
        is the body as text, or None with ``body_base64`` when it is not UTF-8."""
        import base64

        try:
            body: str | None = self.body.decode("utf-8")
        except UnicodeDecodeError:
            body = None
        data: dict[str, Any] = {
            "id": self.id,
            "delivery_id": self.delivery_id,
            "source": self.source,
            "event_name": self.event_name,
            "payload": self.payload,
            "body": body,
            "headers": dict(self.headers),
            "content_type": self.content_type,
            "attempt": self.attempt,
            "received_at": self.received_at.isoformat() if self.received_at else None,
        }
        if body is None:
            data["body_base64"] = base64.b64encode(self.body).decode("ascii")
        return data


def parse_payload(body: bytes) -> Any:
    """The body parsed as JSON, or None when it is not JSON."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


class Retry(Exception):
    """Raise in a handler to try again later: no sooner than ``after`` seconds (the retry
    schedule's delay applies when it is longer), while attempts are left."""

    def __init__(self, after: float | None = None, reason: str = ""):
        if after is not None and after < 0:
            raise ValueError(f"Retry(after={after!r}): must be >= 0 seconds")
        self.after = after
        self.reason = reason
        super().__init__(reason or (f"retry no sooner than {after:g} s" if after else "retry"))


class Reject(Exception):
    """Raise in a handler to fail the delivery for good: it is dead at once (replayable),
    with ``reason`` recorded, and no more attempts are made."""

    def __init__(self, reason: str = ""):
        self.reason = reason
        super().__init__(reason or "rejected by the handler")


class HandlerNotFound(ImportError):
    """A handler target that can't be imported or isn't callable; names the target."""


@dataclass(frozen=True)
class Registered:
    """A ``@hookway.handler``: a destination named ``name`` calling ``target``, and its
    route from ``source``. Synced into the database with the config file."""

    name: str
    target: str
    source: str
    events: tuple[str, ...] = ()
    timeout_seconds: float = 15.0
    max_attempts: int = 10
    concurrency: int = 20


_registry: dict[str, Registered] = {}


def handler(
    *,
    source: str,
    events: Iterable[str] = (),
    name: str | None = None,
    timeout_seconds: float = 15.0,
    max_attempts: int = 10,
    concurrency: int = 20,
) -> Callable[[F], F]:
    """Make the decorated function a destination (named after it unless ``name`` is
    given, ``_`` becoming ``-``) routed from ``source`` for ``events`` (glob patterns;
    none means all). Returns the function unchanged.

    The registration takes effect when Hookway syncs its configuration at start; the
    module must have been imported by then: Hookway imports every installed app's
    ``hooks`` module (docs/handlers.md)."""
    patterns = (events,) if isinstance(events, str) else tuple(events)

    def register(func: F) -> F:
        module = getattr(func, "__module__", None)
        qualname = getattr(func, "__qualname__", "")
        if not module or "<" in qualname:
            raise TypeError(
                f"@hookway.handler: {func!r} must be a module-level function (the "
                "dispatcher imports it by name)"
            )
        dest = name or qualname.rsplit(".", 1)[-1].replace("_", "-").lower()
        entry = Registered(
            name=dest,
            target=f"{module}:{qualname}",
            source=source,
            events=patterns,
            timeout_seconds=timeout_seconds,
            max_attempts=max_attempts,
            concurrency=concurrency,
        )
        other = _registry.get(dest)
        if other is not None and other.target != entry.target:
            raise ValueError(
                f"@hookway.handler: {entry.target} and {other.target} both register the "
                f"destination {dest!r}; give one a name="
            )
        _registry[dest] = entry
        return func

    return register


def registered() -> tuple[Registered, ...]:
    """Every ``@hookway.handler`` imported so far, by destination name."""
    return tuple(_registry[name] for name in sorted(_registry))


def unregister(name: str) -> None:
    """Forget a registration (tests)."""
    _registry.pop(name, None)


def import_object(target: str, what: str = "handler") -> Any:
    """Import ``"module:qualname"`` and return the object; raise HandlerNotFound naming
    ``what`` and the target, and the reason, when it can't."""
    if not TARGET_RE.match(target):
        raise HandlerNotFound(
            f"{what} {target!r}: expected 'module:attribute', e.g. 'myapp.hooks:on_push'"
        )
    module_name, _, qualname = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise HandlerNotFound(f"{what} {target!r}: can't import {module_name}: {exc}") from exc
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise HandlerNotFound(
                f"{what} {target!r}: {module_name} has no attribute {qualname!r}"
            ) from None
    return obj


def resolve(target: str) -> Callable[..., Any]:
    """Import the handler ``"module:function"`` and return it; raise HandlerNotFound with
    the target and the reason when it can't, or when it is not callable."""
    obj = import_object(target)
    if not callable(obj):
        raise HandlerNotFound(f"handler {target!r}: {target.partition(':')[2]} is not callable")
    return obj  # type: ignore[no-any-return]


def is_async(func: Callable[..., Any]) -> bool:
    """True for an ``async def`` handler (run on the dispatcher's loop)."""
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - a callable object's async __call__
    )
