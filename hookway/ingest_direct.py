"""Ingest's direct path: ``POST /hooks/<slug>`` answered from the ASGI scope, without
Django's request and response objects, when the ingest chain is Hookway's default.

What the Django path does for a webhook (hookway.asgi_handler.IngestASGIHandler with
``RequestTimingMiddleware``, ``AllowedHostsMiddleware`` and ``receive_hook``), done here
with the same code wherever Django or Hookway exposes it:

- the headers become Django's ``HttpHeaders``, from the ``META`` entries
  ``ASGIRequest`` would build (``scope_meta``: same names, same merging, headers with an
  underscore dropped), so the view's lookups and the stored headers are the same;
- ``ALLOWED_HOSTS`` is Django's own ``HttpRequest.get_host`` (``USE_X_FORWARDED_HOST``,
  ``USE_X_FORWARDED_PORT``, ``SECURE_PROXY_SSL_HEADER``, ``DEBUG``'s local hosts, the
  port rules and ``validate_host``), run on a request that holds only the scope and
  those ``META`` entries; a refused host gets the same JSON 400 and security log line;
- the checks and the store are hookway.ingest.views.ingest, the view's own code;
- the answer is the ``JsonResponse`` the view would give, as Django would send it:
  ``ResponseHeaders`` (Django's), stamped by hookway.middleware.finish (``Server-Timing``,
  ``X-Request-ID``, ``nosniff``, ``Content-Length``, the request log line);
- an answer of 400 or more is logged by Django's ``log_response`` as its handler does,
  and an unexpected exception is answered by Django's ``response_for_exception`` (500,
  logged with its traceback, ``got_request_exception`` sent). Both take a request: a
  real ``ASGIRequest`` is built for them from the scope and the body, on those paths
  only.

The handler keeps the rest as it is for both paths: header and body limits, the request
signals, cancelling the view when the client disconnects, metrics and tracing.
``tests/integration/test_ingest_direct.py`` sends the same requests down both paths and
compares the answers byte for byte and the rows stored; the Django code mirrored here is
pinned by ``tests/integration/test_django_internals.py``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Awaitable, Callable, ItemsView, Mapping
from functools import lru_cache
from http.client import responses
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestAborted
from django.core.handlers.asgi import ASGIRequest, get_script_prefix
from django.core.serializers.json import DjangoJSONEncoder
from django.http.request import HttpHeaders
from django.http.response import HttpResponse, HttpResponseBase, ResponseHeaders
from django.utils.http import parse_header_parameters

from hookway import gate, middleware, timing
from hookway.ingest.views import IngestRequest, ingest

Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]


def eligible(scope: Scope) -> bool:
    """Whether a ``POST /hooks/<slug>`` can take the direct path: no script prefix
    (``FORCE_SCRIPT_NAME`` or a ``root_path``, which change ``request.path``) and a
    query string Django can decode (it answers 400 itself otherwise)."""
    if get_script_prefix(scope):
        return False
    query = scope.get("query_string", b"")
    if isinstance(query, bytes) and query:
        try:
            query.decode()
        except UnicodeDecodeError:
            return False
    return True


def scope_meta(scope: Scope) -> dict[str, str]:
    """The ``SERVER_NAME``, ``SERVER_PORT`` and header entries of the ``META`` that
    ``ASGIRequest(scope, …)`` builds, with the same keys, values and order."""
    meta: dict[str, str] = {}
    server = scope.get("server")
    if server:
        meta["SERVER_NAME"] = server[0]
        meta["SERVER_PORT"] = str(server[1])
    else:
        meta["SERVER_NAME"] = "unknown"
        meta["SERVER_PORT"] = "0"
    merged: dict[str, list[str]] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin1")
        # As Django: a name with an underscore could pass for one with a hyphen.
        if "_" in name:
            continue
        if name == "content-length":
            key = "CONTENT_LENGTH"
        elif name == "content-type":
            key = "CONTENT_TYPE"
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
        merged.setdefault(key, []).append(raw_value.decode("latin1"))
    meta.update({key: ",".join(values) for key, values in merged.items()})
    return meta


class ScopeHeaders(HttpHeaders):
    """Django's ``HttpHeaders`` (same names, same case-insensitive lookups, same
    underscore-for-hyphen rule), with ``get`` and ``items`` answered from its store
    directly: ``Mapping.get`` looks a missing name up through a KeyError, and
    ``Mapping.items`` looks every name up again, which ingest does for every header of
    every webhook. Header names are parsed once per name (senders repeat them)."""

    def get(self, key: str, default: Any = None) -> Any:
        hit = self._store.get(key.replace("_", "-").lower())
        return default if hit is None else hit[1]

    def items(self) -> Any:
        return ItemsView(dict(self._store.values()))

    @classmethod
    def parse_header_name(cls, header: str) -> str | None:
        return _header_name(header)


@lru_cache(maxsize=1024)
def _header_name(header: str) -> str | None:
    return HttpHeaders.parse_header_name(header)


class _HostRequest(ASGIRequest):
    """A request that holds only what ``get_host`` reads (the scope, for the scheme, and
    ``META``), so ALLOWED_HOSTS is judged by Django's own code without building the
    rest of a request."""

    def __init__(self, scope: Scope, meta: dict[str, str]) -> None:
        # ASGIRequest.__init__ is not called on purpose: it is the cost being avoided.
        self.scope = scope
        self.META = meta


class Reply:
    """A JSON answer as ``JsonResponse`` would hold it: status, Django's
    ``ResponseHeaders`` and the encoded body."""

    __slots__ = ("_has_been_logged", "body", "headers", "status_code")

    def __init__(self, status: int, payload: dict[str, Any], headers: Mapping[str, str]) -> None:
        self.status_code = status
        # HttpResponseBase.__init__'s order: the given headers, then Content-Type.
        self.headers = ResponseHeaders(headers)
        if "Content-Type" not in self.headers:
            self.headers["Content-Type"] = "application/json"
        try:
            # What DjangoJSONEncoder writes for ingest's payloads (strings, numbers,
            # booleans), from json's cached encoder rather than a new one per answer.
            text = json.dumps(payload)
        except TypeError:
            text = json.dumps(payload, cls=DjangoJSONEncoder)
        self.body = text.encode(settings.DEFAULT_CHARSET)
        self._has_been_logged = False  # set by Django's log_response

    @property
    def reason_phrase(self) -> str:
        return responses.get(self.status_code, "Unknown Status Code")


async def read_body(receive: Receive) -> bytes:
    """The whole request body (already capped by the handler); RequestAborted if the
    client disconnects first, as Django's ``ASGIHandler.read_body``."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestAborted()
        if "body" in message:
            chunks.append(message["body"])
        if not message.get("more_body", False):
            return b"".join(chunks)


async def answer(scope: Scope, body: bytes, slug: str) -> Reply | HttpResponseBase:
    """What the default ingest chain and Django's ``get_response_async`` answer to this
    webhook, stamped and logged the same way: a Reply, or Django's own response when
    something raised (``response_for_exception``)."""
    timer = timing.current.get()
    if timer is None:  # the handler sets one; a caller that didn't still gets its timing
        timer = timing.RequestTimer()
    meta = scope_meta(scope)
    headers = ScopeHeaders(meta)
    rid = middleware.request_id(headers)
    built: list[ASGIRequest] = []

    def django_request() -> ASGIRequest:
        # Only the error paths hand a request to others (log records, signal receivers):
        # there it is Django's real one.
        if not built:
            built.append(ASGIRequest(scope, io.BytesIO(body)))
        return built[0]

    reply: Reply | HttpResponseBase
    try:
        try:
            _HostRequest(scope, meta).get_host()
        except DisallowedHost as exc:
            middleware.log_disallowed_host(exc, django_request())
            reply = Reply(400, middleware.DISALLOWED_HOST, {})
        else:
            request = IngestRequest(
                method="POST",
                headers=headers,
                content_type=parse_header_parameters(meta.get("CONTENT_TYPE", ""))[0],
                content_length=meta.get("CONTENT_LENGTH"),
                read=lambda n: body[:n],
                scope=scope,
            )
            result = await ingest(request, slug)
            reply = Reply(result.status, result.payload, result.headers)
    except Exception as exc:  # noqa: BLE001 - answered as Django answers any view's exception
        response = await gate.aresponse_for_exception(django_request(), exc)
        response._resource_closers.append(django_request().close)  # type: ignore[attr-defined]
        reply = response
    length: int | None
    if isinstance(reply, Reply):
        length = len(reply.body)
    elif isinstance(reply, HttpResponse) and "Content-Length" not in reply:
        length = len(reply.content)
    else:
        length = None
    middleware.finish(reply.headers, length, timer, rid, "POST", scope["path"], reply.status_code)
    if reply.status_code >= 400:
        # Django's get_response_async does this for every answer of 400 or more (a
        # response Django logged already, with its exception, is skipped).
        await gate.alog_response(django_request(), reply)
    return reply
