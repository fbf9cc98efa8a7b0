"""Hookway's middleware: request timing (``Server-Timing``, ``X-Request-ID`` and one
structured log line per request) and the ALLOWED_HOSTS check of the lean ingest path.
Async-only, so neither adds a thread hop on Django's async path."""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping

from asgiref.sync import markcoroutinefunction
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.http.response import ResponseHeaders

from hookway import timing

logger = logging.getLogger("hookway.request")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


GetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


class AsyncMiddleware:
    """Django's middleware protocol, async only: Django calls ``__call__`` without
    wrapping it in ``sync_to_async``."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: GetResponse):
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        raise NotImplementedError


def request_id(headers: Mapping[str, str]) -> str:
    """The request's id: the sender's ``X-Request-ID`` when it is a sane token, else a
    new one."""
    incoming = headers.get("X-Request-ID", "")
    # 32 hex digits, as uuid4().hex gave, without a getrandom() system call per
    # request: a request id names a request in the logs, it guards nothing.
    return incoming if _REQUEST_ID.match(incoming) else f"{random.getrandbits(128):032x}"


def finish(
    headers: ResponseHeaders,
    content_length: int | None,
    timer: timing.RequestTimer,
    rid: str,
    method: str,
    path: str,
    status: int,
) -> None:
    """Stamp a response's headers (``Server-Timing``, ``X-Request-ID``, ``nosniff``, and
    ``Content-Length`` when given and not set) and write the request's log line. One
    implementation for the middleware and for ingest's direct path
    (hookway.ingest_direct), which answers without a Django response."""
    total_ms = (time.perf_counter() - timer.started) * 1000
    metrics = [f"total;dur={total_ms:.2f}", f"db;dur={timer.db_seconds * 1000:.2f}"]
    headers["Server-Timing"] = ", ".join(metrics)
    headers["X-Request-ID"] = rid
    # Ingest skips Django's other middleware (hookway.asgi_handler): keep what it adds.
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if content_length is not None and "Content-Length" not in headers:
        headers["Content-Length"] = str(content_length)
    # Built only when it will be written: at the default WARNING level, never (the
    # JSON encoding was a measurable part of an ingest request's time on the loop).
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            json.dumps(
                {
                    "event": "request",
                    "request_id": rid,
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": round(total_ms, 2),
                    "db_ms": round(timer.db_seconds * 1000, 2),
                    **timer.labels,
                },
                ensure_ascii=True,
            )
        )


class RequestTimingMiddleware(AsyncMiddleware):
    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        # The ASGI handler may have started the timer already (it looks up the source
        # before reading the body); then its database time counts too.
        timer = timing.current.get()
        token = None
        if timer is None:
            timer = timing.RequestTimer()
            token = timing.current.set(timer)
        rid = request_id(request.headers)
        try:
            response = await self.get_response(request)
        finally:
            if token is not None:
                timing.current.reset(token)
        # HttpResponse is Django's non-streaming response, the one with a .content.
        length = None
        if isinstance(response, HttpResponse) and "Content-Length" not in response:
            length = len(response.content)
        finish(
            response.headers,
            length,
            timer,
            rid,
            request.method or "",
            request.path,
            response.status_code,
        )
        return response


# The answer to a request for a host not in ALLOWED_HOSTS (status 400).
DISALLOWED_HOST = {"error": "bad_request", "detail": "the Host header names a host not served here"}


def log_disallowed_host(exc: DisallowedHost, request: HttpRequest) -> None:
    """Django's security log line for a refused Host, as CommonMiddleware's
    ``get_host()`` would have it logged."""
    logging.getLogger("django.security.DisallowedHost").error(
        str(exc), extra={"status_code": 400, "request": request}
    )


class AllowedHostsMiddleware(AsyncMiddleware):
    """The ALLOWED_HOSTS check for the ingest path, which skips Django's classic
    middleware (CommonMiddleware is what calls ``request.get_host()`` elsewhere): a
    request for another host gets the JSON 400 and Django's security log line."""

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        try:
            request.get_host()
        except DisallowedHost as exc:
            log_disallowed_host(exc, request)
            return JsonResponse(DISALLOWED_HOST, status=400)
        return await self.get_response(request)
