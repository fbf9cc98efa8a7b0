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

from django.conf import settings
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import InterfaceError, OperationalError
from django.urls import set_script_prefix

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


class IngestASGIHandler(ASGIHandler):
    """Django's ASGI handler for ``/hooks/…``, trimmed to what ingest needs.

    Measured here (bench/results/ingest.md), two costs dominated an ingest request in
    Django's stock handler, and ingest needs neither:

    - In async mode every classic ``MiddlewareMixin`` middleware (sessions, CSRF, auth,
      messages, …) runs its hooks through ``sync_to_async``: two thread hops each. Ingest
      uses none of them (no cookies, no sessions, CSRF-exempt), so its chain holds only
      INGEST_MIDDLEWARE (async-native).
    - ``ASGIHandler.__call__`` opens a ``ThreadSensitiveContext`` per request: a new
      thread, started and joined, for the request signals and ``response.close()``. The
      request signals exist to recycle the request thread's database connection, and
      ingest has none: its database work runs on hookway.gate's writer thread.

    What is left is Django's own request parsing, URL resolution, exception handling,
    the timing middleware and the same async view.
    """

    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler builds its chain from settings.MIDDLEWARE; swap the list in only
        # while this one handler is built (once, at import).
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.HOOKWAY_INGEST_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full

    async def handle(self, scope: Scope, receive: Any, send: Any) -> None:
        token = timing.current.set(timing.RequestTimer())
        try:
            match = HOOK_PATH.match(scope.get("path", ""))
            if scope.get("method") == "POST" and match is not None:
                receive = await self._cap_body(scope, receive, match.group(1))
            try:
                body_file = await self.read_body(receive)
            except RequestAborted:
                return
            try:
                set_script_prefix(get_script_prefix(scope))
                request, error_response = self.create_request(scope, body_file)
                if request is None:
                    assert error_response is not None  # Django returns one or the other
                    response = error_response
                else:
                    response = await self.run_get_response(request)
                await self.send_response(response, send)
                # Fires request_finished; its receivers find no connection on this thread.
                response.close()
            finally:
                body_file.close()
        finally:
            timing.current.reset(token)

    async def _cap_body(self, scope: Scope, receive: Any, slug: str) -> Any:
        """Look the source up and return a ``receive`` that stops at its body limit."""
        source = None
        if SLUG_RE.match(slug):
            try:
                source = await gate.aget_source(slug)
            except (OperationalError, InterfaceError) as exc:
                # No limit is known, so read no body; the view answers 503.
                scope[SOURCE_LOOKUP_ERROR] = exc
            else:
                scope[SOURCE_KEY] = source
        else:
            scope[SOURCE_KEY] = None
        limit = source.max_body_bytes if source is not None else 0
        return capped_receive(receive, scope, limit)


class HookwayASGIHandler(ASGIHandler):
    """Hookway's ASGI app: ``/hooks/…`` to the lean ingest handler, everything else
    (admin, health, echo) through Django's stock handler and full middleware stack."""

    def __init__(self) -> None:
        super().__init__()
        self.ingest = IngestASGIHandler()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith("/hooks/"):
            await self.ingest.handle(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)
