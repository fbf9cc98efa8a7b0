"""Hookway's ASGI application: limits every request before any of it is read, sends
``/hooks/…`` to a lean ingest handler and everything else to Django's stock handler.

Before anything else, for every request: at most HOOKWAY_MAX_HEADERS headers and
HOOKWAY_MAX_HEADER_BYTES of them (431 beyond), and, outside ingest, a body of at most
Django's DATA_UPLOAD_MAX_MEMORY_SIZE (413 beyond, decided before the body is spooled).

Ingest reads bodies up to each source's own ``max_body_bytes``: Django reads the whole
request body before any view or middleware runs, so the ingest handler looks the source
up from the path first and caps what it reads; past the limit (or at once, when
Content-Length already says so) it ends the body for Django and flags the scope, and the
view answers 413. A method other than POST reads no body at all (405).

With the default ingest chain, a POST is then answered by ingest's direct path
(hookway.ingest_direct: no Django request or response objects, the same answers);
otherwise, and for every other method, by Django's request, the chain and the view.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.cache import close_caches
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import reset_urlconf
from django.db import InterfaceError, OperationalError, close_old_connections, reset_queries
from django.dispatch import Signal
from django.http import HttpResponseBase
from django.urls import ResolverMatch, set_script_prefix
from django.utils.http import parse_header_parameters

from hookway import conf, gate, ingest_direct, proxy, timing, tracing
from hookway.ingest.views import (
    BODY_TOO_LARGE,
    DEADLINE_KEY,
    SLUG_RE,
    SOURCE_KEY,
    SOURCE_LOOKUP_ERROR,
    receive_hook,
)
from hookway.metrics import registry as metrics
from hookway.static import StaticFiles
from hookway.store.errors import StoreUnavailable

# Where the standalone server receives webhooks; a host project may include the app's
# URLconf elsewhere and tell hookway.asgi.wrap(prefix=...).
HOOKS_PREFIX = "/hooks/"
# The ingest chain when the settings name none (HOOKWAY_INGEST_MIDDLEWARE): async-only.
DEFAULT_INGEST_MIDDLEWARE = [
    "hookway.middleware.RequestTimingMiddleware",
    "hookway.middleware.AllowedHostsMiddleware",
]


def hook_path(prefix: str) -> re.Pattern[str]:
    """The pattern of an ingest path under ``prefix``; group 1 is the slug."""
    return re.compile(rf"^{re.escape(prefix)}(.+?)/?\Z", re.DOTALL)


Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

request_logger = logging.getLogger("hookway.request")

# The slug the handler matched in the path (scope key): the view is called with it
# directly, without resolving the path through the URLconf again.
SLUG_KEY = "hookway.slug"

# Django's own receivers of the request signals. Each acts on the request context's
# database connections, queries log, URLconf override and caches; the ingest path has
# none of them on the event loop (its database work runs on hookway.gate's threads), and
# running them there would be sync code on the loop. Every other receiver runs.
# tests/integration/test_django_internals.py pins this list to the Django in use.
DJANGO_REQUEST_RECEIVERS: frozenset[Callable[..., Any]] = frozenset(
    {reset_queries, close_old_connections, close_caches, reset_urlconf}
)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def header_problem(scope: Scope) -> str | None:
    """Why this request's headers are refused (too many, too large), or None."""
    headers: Sequence[tuple[bytes, bytes]] = scope.get("headers", [])
    limits = conf.get()
    if len(headers) > limits.max_headers:
        return f"{len(headers)} headers; at most {limits.max_headers} are accepted"
    size = sum(len(name) + len(value) for name, value in headers)
    if size > limits.max_header_bytes:
        return f"the headers total {size} bytes; at most {limits.max_header_bytes} are accepted"
    return None


def content_type_problem(scope: Scope) -> str | None:
    """Why Django can't parse this request's Content-Type, or None. ``ASGIRequest``
    raises ValueError for an RFC 2231 parameter in an unknown charset
    (``charset*=bogus''x``), before any view could answer: refused here instead, on
    both ingest paths, as a content type ingest can't take."""
    values = [v for n, v in scope.get("headers", []) if n == b"content-type"]
    # Only a value with parameters can fail; most webhooks send none.
    if not values or not any(b";" in v for v in values):
        return None
    line = b",".join(values).decode("latin1")
    try:
        parse_header_parameters(line)
    except ValueError as exc:
        return f"content type {line[:100]!r} can't be parsed: {exc}; send application/json"
    return None


async def refuse(
    scope: Scope, send: Send, status: int, code: str, detail: str, **extra: str
) -> None:
    """Answer with the JSON error shape and close the connection (the request, or its
    body, was not read), and log the request line."""
    body = json.dumps({"error": code, "detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        (b"x-content-type-options", b"nosniff"),
        *((name.encode(), value.encode()) for name, value in extra.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    request_logger.info(
        json.dumps(
            {
                "event": "request",
                "method": scope.get("method"),
                "path": scope.get("path"),
                "status": status,
                "error": code,
            },
            ensure_ascii=True,
        )
    )


def capped_receive(receive: Receive, scope: Scope, limit: int) -> Receive:
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
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                ended = True
                scope[BODY_TOO_LARGE] = True
                return {"type": "http.request", "body": b"", "more_body": False}
        return message

    return limited


async def send_request_signal(signal: Signal, sender: type, **named: Any) -> None:
    """Send ``signal`` to its receivers other than Django's own request hygiene ones
    (DJANGO_REQUEST_RECEIVERS): sync ones in a worker thread, async ones here. With only
    Django's receivers connected (the default) this costs nothing."""
    sync_receivers, async_receivers = signal._live_receivers(sender)
    others = [r for r in sync_receivers if r not in DJANGO_REQUEST_RECEIVERS]
    if others:
        await gate.acall_receivers(others, signal, sender, named)
    if async_receivers:
        await asyncio.gather(*(r(signal=signal, sender=sender, **named) for r in async_receivers))


async def close_response(response: HttpResponseBase) -> None:
    """What ``response.close()`` does (close its resources, send request_finished),
    with request_finished sent as ``send_request_signal`` does."""
    closable: Any = response  # _resource_closers and _handler_class are Django's internals
    for closer in closable._resource_closers:
        try:
            closer()
        except Exception:  # as Django's close(): a resource failing to close is not the client's
            request_logger.exception("closing a response resource failed")
    closable._resource_closers.clear()
    response.closed = True
    await send_request_signal(signals.request_finished, closable._handler_class)


class IngestASGIHandler(ASGIHandler):
    """Django's ASGI handler for ``/hooks/…``, trimmed to what ingest needs.

    Measured here (bench/results/ingest.md), two costs dominated an ingest request in
    Django's stock handler, and ingest needs neither:

    - In async mode every classic ``MiddlewareMixin`` middleware (sessions, CSRF, auth,
      messages, …) runs its hooks through ``sync_to_async``: two thread hops each. Ingest
      uses none of them (no cookies, no sessions, CSRF-exempt), so its chain holds only
      INGEST_MIDDLEWARE (async-native; it keeps the ALLOWED_HOSTS check).
    - ``ASGIHandler.__call__`` opens a ``ThreadSensitiveContext`` per request: a new
      thread, started and joined, for the request signals and ``response.close()``. The
      thread exists to run Django's connection-recycling receivers against the request's
      database connection, and ingest has none: its database work runs on
      hookway.gate's threads. The signals still fire for every other receiver.

    What is kept, as in ``ASGIHandler.handle``: request parsing, exception handling,
    the request signals, and cancelling the view when the client disconnects (a webhook
    not yet being committed is then not stored: its sender got no answer and will
    retry). The view is the one the URLconf names for the path (``resolve_request``),
    found from the slug this handler already matched.
    """

    def __init__(self, prefix: str = HOOKS_PREFIX, *, direct: bool = True) -> None:
        self.hook_path = hook_path(prefix)
        self.route = prefix + "{slug}"
        super().__init__()
        # The direct path (hookway.ingest_direct) is what the default chain does, minus
        # Django's request and response objects; a project's own chain runs on the
        # Django path, which is the only one that can run middleware. ``direct=False``
        # keeps every webhook on the Django path (the tests compare the two).
        chain = getattr(settings, "HOOKWAY_INGEST_MIDDLEWARE", DEFAULT_INGEST_MIDDLEWARE)
        self.direct = direct and list(chain) == DEFAULT_INGEST_MIDDLEWARE

    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler builds its chain from settings.MIDDLEWARE; swap the list in only
        # while this one handler is built (once, at import).
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = getattr(
            settings, "HOOKWAY_INGEST_MIDDLEWARE", DEFAULT_INGEST_MIDDLEWARE
        )
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full

    def resolve_request(self, request: Any) -> ResolverMatch:
        """The ingest view for the slug ``handle`` matched, as the URLconf would resolve
        it (``hookway.urls``, included at this handler's prefix: ``hookway.asgi.wrap``
        checks that it is), without walking the URLconf's patterns for every webhook.
        A path with no slug is resolved by Django as usual (its 404)."""
        slug = request.scope.get(SLUG_KEY)
        if slug is None or hasattr(request, "urlconf"):
            return super().resolve_request(request)
        match = ResolverMatch(receive_hook, (), {"slug": slug}, url_name="hookway-ingest")
        request.resolver_match = match
        return match

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one webhook, then count it (hookway.metrics) under its source's slug,
        and trace it (hookway.tracing) when OpenTelemetry is installed."""
        timer = timing.RequestTimer()
        token = timing.current.set(timer)
        scope[DEADLINE_KEY] = time.monotonic() + conf.get().db_timeout
        status: int | None = None
        try:
            if tracing.ENABLED and tracing.recording():
                with tracing.ingest_span(scope, self.route) as span:
                    status = await self._handle(scope, receive, send)
                    tracing.ingest_done(
                        span, _slug(scope), status, timer.labels.get("event_id", "")
                    )
            else:
                status = await self._handle(scope, receive, send)
        finally:
            timing.current.reset(token)
            if status is not None:  # None: the client left before an answer
                metrics.webhook_received(_slug(scope), status, time.perf_counter() - timer.started)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> int | None:
        """Read, route and answer the request; return the status answered (None if the
        client left first)."""
        match = self.hook_path.match(scope.get("path", ""))
        if match is not None:
            scope[SLUG_KEY] = match.group(1)
        if scope.get("method") == "POST" and match is not None:
            problem = content_type_problem(scope)
            if problem is not None:
                await refuse(scope, send, 415, "unsupported_media_type", problem)
                return 415
            receive = await self._cap_body(scope, receive, match.group(1))
            if self.direct and ingest_direct.eligible(scope):
                return await self._handle_direct(scope, receive, send, match.group(1))
        else:
            # Any other method is refused (405) before a byte of its body is read.
            receive = capped_receive(receive, scope, 0)
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return None
        try:
            set_script_prefix(get_script_prefix(scope))
            await send_request_signal(signals.request_started, self.__class__, scope=scope)
            request, error_response = self.create_request(scope, body_file)
            if request is None:
                assert error_response is not None  # Django returns one or the other
                # Django's internal, set as ASGIHandler.handle sets it: close_response
                # sends request_finished from it. The stubs don't declare it.
                error_response._handler_class = self.__class__  # type: ignore[attr-defined]
                await self.send_response(error_response, send)
                await close_response(error_response)
                return error_response.status_code
            return await self._respond(lambda: self.run_get_response(request), receive, send)
        finally:
            body_file.close()

    async def _handle_direct(
        self, scope: Scope, receive: Receive, send: Send, slug: str
    ) -> int | None:
        """``_handle`` on the direct path: the same steps, with the body read into bytes
        and the answer from hookway.ingest_direct instead of Django's request, chain
        and response."""
        try:
            body = await ingest_direct.read_body(receive)
        except RequestAborted:
            return None
        set_script_prefix(get_script_prefix(scope))
        await send_request_signal(signals.request_started, self.__class__, scope=scope)
        return await self._respond(lambda: ingest_direct.answer(scope, body, slug), receive, send)

    async def _send_reply(self, reply: ingest_direct.Reply | HttpResponseBase, send: Send) -> None:
        if isinstance(reply, HttpResponseBase):
            await self.send_response(reply, send)
            return
        # What send_response sends for the JsonResponse the Reply stands for.
        headers = [
            (name.encode("ascii"), value.encode("latin1")) for name, value in reply.headers.items()
        ]
        await send({"type": "http.response.start", "status": reply.status_code, "headers": headers})
        for part, last in self.chunk_bytes(reply.body):
            await send({"type": "http.response.body", "body": part, "more_body": not last})

    async def _close_reply(self, reply: ingest_direct.Reply | HttpResponseBase) -> None:
        if isinstance(reply, HttpResponseBase):
            # Django's internal, as run_get_response sets it: close_response sends
            # request_finished from it. The stubs don't declare it.
            reply._handler_class = self.__class__  # type: ignore[attr-defined]
            await close_response(reply)
        else:
            await send_request_signal(signals.request_finished, self.__class__)

    async def _respond(
        self,
        produce: Callable[[], Awaitable[ingest_direct.Reply | HttpResponseBase]],
        receive: Receive,
        send: Send,
    ) -> int | None:
        """Produce the answer (run the view, on either path) and send it, cancelling the
        view if the client disconnects first (Django's ``handle`` does the same); return
        the status sent, None if the client left first.

        Django runs the view in a task of its own beside the disconnect listener and
        waits for the first to finish; here the view runs in this task and the listener
        cancels it, which is the same behaviour for one task and one wait fewer per
        webhook."""
        this = asyncio.current_task()
        assert this is not None  # an ASGI server runs every request in a task
        stage = "view"  # then "sending", then "done"
        aborted = False

        async def listen() -> None:
            nonlocal aborted
            try:
                await self.listen_for_disconnect(receive)
            except RequestAborted:
                # While the view runs, stop it (nobody will read its answer); while the
                # response is being sent, stop that (its error is ignored, as Django does).
                if stage != "done":
                    aborted = True
                    this.cancel()

        listener = asyncio.create_task(listen())
        response: ingest_direct.Reply | HttpResponseBase | None = None
        try:
            response = await produce()
            stage = "sending"
            # CancelledError: the client disconnected while the response was sent.
            with contextlib.suppress(asyncio.CancelledError):
                await self._send_reply(response, send)
        except asyncio.CancelledError:
            if not aborted:
                raise  # cancelled from outside (the server stopping): not ours to swallow
        finally:
            stage = "done"
            listener.cancel()
        if aborted:
            this.uncancel()
        with contextlib.suppress(RequestAborted, asyncio.CancelledError):
            await listener
        if response is None:
            await send_request_signal(signals.request_finished, self.__class__)
            return None
        await self._close_reply(response)
        return response.status_code

    async def _cap_body(self, scope: Scope, receive: Receive, slug: str) -> Receive:
        """Look the source up and return a ``receive`` that stops at its body limit."""
        source = None
        if SLUG_RE.match(slug):
            try:
                source = await gate.aget_source(slug, scope[DEADLINE_KEY])
            except (OperationalError, InterfaceError, StoreUnavailable) as exc:
                # No limit is known, so read no body; the view answers 503.
                scope[SOURCE_LOOKUP_ERROR] = exc
            else:
                scope[SOURCE_KEY] = source
        else:
            scope[SOURCE_KEY] = None
        limit = source.max_body_bytes if source is not None else 0
        return capped_receive(receive, scope, limit)


def _slug(scope: Scope) -> str:
    """The slug of the enabled source the request reached, "" if none (metrics label)."""
    source = scope.get(SOURCE_KEY)
    return source.slug if source is not None else ""


async def _buffered_body(scope: Scope, receive: Receive, send: Send, limit: int) -> Receive | None:
    """Read the request body up to ``limit`` bytes and return a ``receive`` that replays
    it; answer 413 and return None past the limit (None too if the client left)."""
    declared = _content_length(scope)
    too_large = f"the request body is larger than {limit} bytes"
    if declared is not None and declared > limit:
        await refuse(scope, send, 413, "body_too_large", too_large)
        return None
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None  # disconnected: nobody to answer
        size += len(message.get("body", b""))
        if size > limit:
            await refuse(scope, send, 413, "body_too_large", too_large)
            return None
        messages.append(message)
        if not message.get("more_body", False):
            break

    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return replay


class HookwayASGIHandler(ASGIHandler):
    """Hookway's ASGI app: request limits first, then ``/hooks/…`` to the lean ingest
    handler, static files (hookway.static), and everything else (admin, health, echo)
    through Django's stock handler and full middleware stack."""

    def __init__(self, *, direct_ingest: bool = True) -> None:
        super().__init__()
        self.ingest = IngestASGIHandler(direct=direct_ingest)
        self.static = StaticFiles()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # not served: 403
            return
        if scope["type"] != "http":
            return
        problem = header_problem(scope)
        if problem is not None:
            await refuse(scope, send, 431, "headers_too_large", problem)
            return
        # The standalone server owns FORWARDED_ALLOW_IPS (hookway.proxy): the client's
        # address and scheme are settled once, here, for everything that reads them.
        proxy.apply(scope, proxy.trusted_proxies(tuple(conf.get().forwarded_allow_ips)))
        path = scope.get("path", "")
        if path.startswith(HOOKS_PREFIX):
            await self.ingest.handle(scope, receive, send)
            return
        if path.startswith(self.static.prefix) and await self.static.serve(scope, send):
            return
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        replay = receive if limit is None else await _buffered_body(scope, receive, send, limit)
        if replay is not None:
            await super().__call__(scope, replay, send)


class HookRouter:
    """The fast ingest path in front of a host project's ASGI application: requests
    under ``prefix`` go to the lean ingest handler (with the header limits), everything
    else to ``app`` as it was. See hookway.asgi.wrap."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], prefix: str):
        self.app = app
        self.prefix = prefix
        self.ingest = IngestASGIHandler(prefix)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith(self.prefix):
            problem = header_problem(scope)
            if problem is not None:
                await refuse(scope, send, 431, "headers_too_large", problem)
                return
            await self.ingest.handle(scope, receive, send)
            return
        await self.app(scope, receive, send)
