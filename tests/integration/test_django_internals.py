"""Pins the Django internals Hookway's lean ingest path relies on (hookway.asgi_handler,
and its direct path, hookway.ingest_direct).

The path skips Django's stock ``ASGIHandler.__call__`` and classic middleware for speed,
and re-does what they guarantee: the ALLOWED_HOSTS check, the request signals,
disconnect handling, body reading and response closing. The direct path goes further:
it builds no Django request or response for a webhook, so it mirrors how
``ASGIRequest`` turns the scope into ``META`` and ``headers``, how ``get_host`` is
reached, how a ``JsonResponse`` is built and sent, and what Django's handler does with
an answer of 400 or more and with an exception. If a Django upgrade changes any of the
code below, these tests fail on purpose: read the new Django code, bring
hookway.asgi_handler and hookway.ingest_direct in line (tests/integration/
test_ingest_direct.py compares the two paths), then update the pinned fingerprint.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from typing import Any

import pytest
from django.core import signals
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response, response_for_exception
from django.dispatch import Signal
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import HttpHeaders
from django.http.response import HttpResponseBase, ResponseHeaders
from django.utils.http import parse_header_parameters
from django.utils.log import log_response

from hookway.asgi_handler import DJANGO_REQUEST_RECEIVERS

# Django 5.2's code, by the SHA-256 of its source (first 16 hex digits).
PINNED: dict[str, tuple[Callable[..., Any], str]] = {
    # Fires the request signals, reads the body, watches for a disconnect, closes.
    "ASGIHandler.handle": (ASGIHandler.handle, "98faeb5bef800331"),
    "ASGIHandler.read_body": (ASGIHandler.read_body, "cf4aa904631d5410"),
    "ASGIHandler.listen_for_disconnect": (ASGIHandler.listen_for_disconnect, "c729aa315c734f98"),
    "ASGIHandler.create_request": (ASGIHandler.create_request, "5eae59c6696013ff"),
    # Closes resources, then sends request_finished: hookway.asgi_handler.close_response.
    "HttpResponseBase.close": (HttpResponseBase.close, "84589f5b23acbb23"),
    # Splits receivers into sync and async: hookway.asgi_handler.send_request_signal.
    "Signal._live_receivers": (Signal._live_receivers, "0a7af5d851f7fd87"),
    # Builds the chain from settings.MIDDLEWARE: IngestASGIHandler.load_middleware.
    "BaseHandler.load_middleware": (BaseHandler.load_middleware, "a1fb7ee5f8586195"),
    # --- The direct path (hookway.ingest_direct) ---
    # META and headers from the scope: ingest_direct.scope_meta, and the HttpHeaders
    # built from it.
    "ASGIRequest.__init__": (ASGIRequest.__init__, "5ff1464df4bf995e"),
    "HttpHeaders.__init__": (HttpHeaders.__init__, "647e3199cf4e1abe"),
    "HttpHeaders.parse_header_name": (HttpHeaders.parse_header_name, "fded58afb5b250b4"),
    "parse_header_parameters": (parse_header_parameters, "3b8526e15e8b3378"),
    # ALLOWED_HOSTS: get_host and what it reads, on a request holding only scope and META.
    "HttpRequest.get_host": (HttpRequest.get_host, "02735c918f5ce9f1"),
    "HttpRequest._get_raw_host": (HttpRequest._get_raw_host, "49d5b852251e9afb"),
    "HttpRequest.get_port": (HttpRequest.get_port, "2b4e51a3216cc234"),
    "HttpRequest.scheme": (HttpRequest.scheme.fget, "c0908b0322122369"),
    "ASGIRequest._get_scheme": (ASGIRequest._get_scheme, "952bc6875e89c628"),
    # Eligibility: a script prefix changes request.path, so it keeps the Django path.
    "get_script_prefix": (get_script_prefix, "bd6e761a557ee4c5"),
    # The answer as a JsonResponse holds it (ingest_direct.Reply) and as it is sent.
    "HttpResponseBase.__init__": (HttpResponseBase.__init__, "02085fb94d60a0e9"),
    "JsonResponse.__init__": (JsonResponse.__init__, "7eae01f52b6b3803"),
    "ResponseHeaders.__init__": (ResponseHeaders.__init__, "1a14383b0da69b1f"),
    "ASGIHandler.send_response": (ASGIHandler.send_response, "77eda2b08689b44e"),
    "ASGIHandler.chunk_bytes": (ASGIHandler.chunk_bytes, "6c045731cd77bd2d"),
    # What Django's handler does after the chain (log_response for >= 400) and with an
    # exception (response_for_exception in a worker thread): ingest_direct.answer.
    "BaseHandler.get_response_async": (BaseHandler.get_response_async, "ad82c920df0cebbb"),
    "convert_exception_to_response": (convert_exception_to_response, "a297ae868bddaca2"),
    "response_for_exception": (response_for_exception, "a4f71341850593c6"),
    "log_response": (log_response, "9e4646dc28f9a7ec"),
}


@pytest.mark.parametrize("name", list(PINNED))
def test_the_django_code_the_lean_ingest_path_mirrors_is_unchanged(name: str) -> None:
    func, pinned = PINNED[name]
    actual = hashlib.sha256(inspect.getsource(func).encode()).hexdigest()[:16]
    assert actual == pinned, (
        f"Django's {name} changed (now {actual}): review hookway.asgi_handler against it, "
        "then update PINNED"
    )


def test_djangos_request_receivers_are_the_ones_the_lean_path_leaves_out() -> None:
    for signal in (signals.request_started, signals.request_finished):
        sync_receivers, async_receivers = signal._live_receivers(None)
        assert isinstance(sync_receivers, list)
        assert isinstance(async_receivers, list)
        djangos = {r for r in sync_receivers if r.__module__.startswith("django.")}
        assert djangos <= DJANGO_REQUEST_RECEIVERS, (
            f"Django connected new request receivers {djangos - DJANGO_REQUEST_RECEIVERS}: "
            "check whether hookway.asgi_handler's lean ingest path must run them"
        )


def test_a_response_keeps_its_closers_where_close_response_looks() -> None:
    import asyncio

    from hookway.asgi_handler import close_response

    response = HttpResponse(b"x")
    response._handler_class = ASGIHandler  # type: ignore[attr-defined]
    closed: list[bool] = []
    response._resource_closers.append(lambda: closed.append(True))
    # close_response, not response.close(): Django's own request_finished receivers
    # would close the test's database connection.
    asyncio.run(close_response(response))
    assert closed == [True]
    assert response._resource_closers == []
    assert response.closed


def test_get_host_runs_on_a_request_holding_only_the_scope_and_meta() -> None:
    """ingest_direct._HostRequest skips ASGIRequest.__init__: get_host and everything it
    calls must read nothing else (a new attribute read would raise here)."""
    from django.core.exceptions import DisallowedHost
    from django.test import override_settings

    from hookway.ingest_direct import _HostRequest, scope_meta

    scope = {"type": "http", "scheme": "https", "server": ("h", 443), "headers": []}
    with override_settings(
        ALLOWED_HOSTS=["h"],
        USE_X_FORWARDED_HOST=True,
        USE_X_FORWARDED_PORT=True,
        SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
    ):
        assert _HostRequest(scope, scope_meta(scope)).get_host() == "h"
        forwarded = {**scope, "headers": [(b"x-forwarded-host", b"evil.example")]}
        with pytest.raises(DisallowedHost):
            _HostRequest(forwarded, scope_meta(forwarded)).get_host()


def test_scope_meta_is_the_header_part_of_asgirequests_meta() -> None:
    import io

    from hookway.ingest_direct import scope_meta

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/hooks/x",
        "query_string": b"",
        "server": ("h", 8000),
        "headers": [
            (b"content-type", b"application/json"),
            (b"x-a", b"1"),
            (b"x_a", b"spoof"),
            (b"x-a", b"2"),
            (b"content-length", b"2"),
            (b"x-latin", b"\xe9"),
        ],
    }
    request = ASGIRequest(scope, io.BytesIO(b"{}"))
    expected = {k: v for k, v in request.META.items() if k in scope_meta(scope)}
    assert scope_meta(scope) == expected
    assert list(scope_meta(scope)) == [k for k in request.META if k in expected]
    assert list(HttpHeaders(scope_meta(scope)).items()) == list(request.headers.items())
