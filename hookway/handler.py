"""Django's ASGI handler, taught to stop reading an oversized webhook body.

Django reads the whole request body before any view or middleware runs, so a per-source
``max_body_bytes`` can't be enforced from a view without first buffering the entire
upload. This handler looks the source up from the path before the body is read and caps
what it reads: past the limit (or at once, when Content-Length already says so) it ends
the body for Django and flags the scope; the view answers 413. The rest of the upload is
never read; the server closes the connection.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.db import InterfaceError, OperationalError

from hookway import gate, timing
from hookway.ingest.views import BODY_TOO_LARGE, SLUG_RE, SOURCE_KEY, SOURCE_LOOKUP_ERROR

HOOK_PATH = re.compile(r"^/hooks/(.+?)/?$")

Scope = dict[str, Any]
Message = dict[str, Any]


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def capped_receive(receive: Any, scope: Scope, limit: int) -> Any:
    """Wrap an ASGI ``receive`` so the request body ends after ``limit`` bytes."""
    seen = 0
    ended = False
    declared = _content_length(scope)

    async def limited() -> Message:
        nonlocal seen, ended
        if ended:
            # Django listens for a disconnect after the body; the body was cut short, so
            # there is nothing more to give it. It cancels this wait when it responds.
            await asyncio.Event().wait()
        if declared is not None and declared > limit:
            ended = True
            scope[BODY_TOO_LARGE] = True
            return {"type": "http.request", "body": b"", "more_body": False}
        message: Message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                ended = True
                scope[BODY_TOO_LARGE] = True
                return {"type": "http.request", "body": b"", "more_body": False}
        return message

    return limited


class HookwayASGIHandler(ASGIHandler):
    async def handle(self, scope: Scope, receive: Any, send: Any) -> None:
        match = HOOK_PATH.match(scope.get("path", "")) if scope.get("method") == "POST" else None
        if match is None:
            await super().handle(scope, receive, send)
            return
        token = timing.current.set(timing.RequestTimer())
        try:
            slug = match.group(1)
            if SLUG_RE.match(slug):
                try:
                    source = await gate.aget_source(slug)
                except (OperationalError, InterfaceError) as exc:
                    # No limit is known, so read no body; the view answers 503.
                    scope[SOURCE_LOOKUP_ERROR] = exc
                    source = None
                else:
                    scope[SOURCE_KEY] = source
            else:
                source = None
                scope[SOURCE_KEY] = None
            limit = source.max_body_bytes if source is not None else 0
            await super().handle(scope, capped_receive(receive, scope, limit), send)
        finally:
            timing.current.reset(token)
