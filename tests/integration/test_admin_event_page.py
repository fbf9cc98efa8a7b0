"""The admin's event page renders any stored payload and headers: JSON with escapes that
aren't valid Unicode (a lone surrogate), bodies that aren't JSON or aren't UTF-8."""

from __future__ import annotations

import html

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from hookway.admin.records import EventAdmin
from hookway.models import Event, Source


@pytest.fixture
def admin_client(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


def stored(body: bytes, headers: dict[str, str] | None = None) -> Event:
    source, _ = Source.objects.get_or_create(slug="demo")
    return Event.objects.create(
        source=source,
        event_name="push",
        content_type="application/json",
        headers=headers or {},
        body=body,
        received_at=timezone.now(),
    )


def event_page(client: Client, event: Event) -> str:
    response = client.get(f"/admin/hookway/event/{event.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_json_lone_surrogate_escape_is_shown_as_its_escape(admin_client):
    page = event_page(admin_client, stored(b'{"a": "\\udfff", "b": "ok"}'))

    assert html.escape('"a": "\\udfff"') in page
    assert html.escape('"b": "ok"') in page


def test_a_json_surrogate_pair_is_shown_as_the_character_it_encodes(admin_client):
    page = event_page(admin_client, stored(b'{"emoji": "\\ud83d\\ude00", "lone": "\\ud83d"}'))

    assert html.escape('"emoji": "\U0001f600"') in page
    assert html.escape('"lone": "\\ud83d"') in page


def test_a_surrogate_encoded_in_the_raw_bytes_is_shown_as_its_escape(admin_client):
    # b"\xed\xbf\xbf" is U+DFFF encoded as if it were a character: not valid UTF-8, but
    # json.loads(bytes) lets it through.
    page = event_page(admin_client, stored(b'{"a": "\xed\xbf\xbf"}'))

    assert "\\udfff" in page


def test_a_body_that_is_not_utf8_is_shown_with_replacement_characters(admin_client):
    page = event_page(admin_client, stored(b'{"a": "\xc3\x28"}'))

    assert html.escape('{"a": "\ufffd("}') in page


def test_a_body_that_is_not_json_is_shown_as_text(admin_client):
    page = event_page(admin_client, stored(b"\x00binary\xff<b>"))

    assert "\x00binary\ufffd&lt;b&gt;" in page


def test_headers_with_a_lone_surrogate_render_as_text_that_encodes():
    # PostgreSQL's jsonb refuses to store a lone surrogate, so this one is not saved.
    event = Event(headers={"X-Odd": "a\udfffb"}, body=b"{}")

    rendered = EventAdmin.request_headers(EventAdmin(Event, admin.site), event)

    assert "a\\udfffb" in rendered
    rendered.encode("utf-8")  # what the response does with it
