"""Pins the Django internals Hookway's lean ingest path relies on (hookway.asgi_handler).

The path skips Django's stock ``ASGIHandler.__call__`` and classic middleware for speed,
and re-does what they guarantee: the ALLOWED_HOSTS check, the request signals,
disconnect handling, body reading and response closing. If a Django upgrade changes any
of the code below, these tests fail on purpose: read the new Django code, bring
hookway.asgi_handler in line, then update the pinned fingerprint.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from typing import Any

import pytest
from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.dispatch import Signal
from django.http import HttpResponse
from django.http.response import HttpResponseBase

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
