"""A 500 is logged with its traceback, whatever DEBUG says (Django's default sends
django.request errors only to mail_admins when DEBUG is off, so they would print nothing)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from hookway.admin.records import EventAdmin
from hookway.models import Event, Source


def output_handlers(logger: logging.Logger) -> list[logging.StreamHandler]:  # type: ignore[type-arg]
    """The stream handlers a record on ``logger`` reaches, as configured by settings.LOGGING
    (pytest's own capturing handlers left out)."""
    found = []
    current: logging.Logger | None = logger
    while current is not None:
        found += [
            h
            for h in current.handlers
            if isinstance(h, logging.StreamHandler) and not type(h).__module__.startswith("_pytest")
        ]
        current = current.parent if current.propagate else None
    return found


@pytest.fixture
def request_log() -> Iterator[io.StringIO]:
    """What django.request's configured output handlers write during the test."""
    buffer = io.StringIO()
    handlers = output_handlers(logging.getLogger("django.request"))
    previous = [h.setStream(buffer) for h in handlers]
    yield buffer
    for handler, stream in zip(handlers, previous, strict=True):
        handler.setStream(stream)


def test_a_500_in_an_admin_page_is_logged_with_its_traceback(db, monkeypatch, request_log):
    def explode(self, obj):
        raise RuntimeError("payload rendering exploded")

    monkeypatch.setattr(EventAdmin, "payload", explode)
    source = Source.objects.create(slug="demo")
    event = Event.objects.create(source=source, body=b"{}", received_at=timezone.now())
    client = Client(raise_request_exception=False)
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))

    response = client.get(f"/admin/hookway/event/{event.pk}/change/")

    assert response.status_code == 500
    logged = request_log.getvalue()
    assert "Internal Server Error: /admin/hookway/event/" in logged
    assert "Traceback (most recent call last)" in logged
    assert "RuntimeError: payload rendering exploded" in logged


def test_a_404_is_not_logged_as_an_error(db, request_log):
    assert Client().get("/no/such/page").status_code == 404
    assert request_log.getvalue() == ""
