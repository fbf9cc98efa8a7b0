"""Logging in to the admin through a TLS proxy: the browser's form comes with
``Origin: https://hooks.example.com`` and the proxy adds ``X-Forwarded-Proto: https``.
It succeeds when Hookway trusts the proxy's header or the origin, and otherwise fails with
a 403 that says why and which setting fixes it (docs/operations.md)."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

HOST = "hooks.example.com"
ORIGIN = f"https://{HOST}"
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _admin_user(db: None, settings: Any) -> None:
    settings.ALLOWED_HOSTS = [HOST, "127.0.0.1"]
    # A fast hasher: the login checks one password, the cost is not what's tested.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    User.objects.create_superuser("root", "root@example.com", PASSWORD)


def login_through_proxy(host: str = HOST, **headers: str) -> Any:
    """GET the login page and POST it back, as a browser behind a TLS proxy would."""
    client = Client(enforce_csrf_checks=True)
    proxy = {"HTTP_HOST": host, "HTTP_X_FORWARDED_PROTO": "https", **headers}
    form = client.get("/admin/login/", **proxy)
    assert form.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.content.decode())
    assert token is not None
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": "root", "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)},
        HTTP_ORIGIN=ORIGIN,
        HTTP_REFERER=f"{ORIGIN}/admin/login/",
        **proxy,
    )


def test_login_succeeds_when_hookway_trusts_x_forwarded_proto(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    response = login_through_proxy()

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_login_succeeds_when_the_origin_is_trusted(settings):
    settings.CSRF_TRUSTED_ORIGINS = [ORIGIN]

    response = login_through_proxy()

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_login_succeeds_when_the_proxy_rewrites_host_and_the_origin_is_trusted(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.CSRF_TRUSTED_ORIGINS = [ORIGIN]

    response = login_through_proxy(host="127.0.0.1")

    assert response.status_code == 302


def test_login_fails_clearly_when_the_proxy_is_not_trusted(caplog):
    caplog.set_level(logging.WARNING, "hookway.csrf")

    response = login_through_proxy()

    assert response.status_code == 403
    page = response.content.decode()
    assert f"Origin checking failed - {ORIGIN} does not match any trusted origins." in page
    assert f"Hookway saw this request as http://{HOST}." in page
    assert "FORWARDED_ALLOW_IPS" in page
    assert "HOOKWAY_TRUST_X_FORWARDED_PROTO=true" in page
    assert f"add {ORIGIN} to CSRF_TRUSTED_ORIGINS" in page
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == "hookway.csrf"]
    assert line["event"] == "csrf_refused"
    assert line["seen_as"] == f"http://{HOST}"
    assert line["origin"] == ORIGIN
    assert "FORWARDED_ALLOW_IPS" in line["hint"]


def test_a_proxy_that_rewrites_host_gets_the_host_hint(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    response = login_through_proxy(host="127.0.0.1")

    assert response.status_code == 403
    page = response.content.decode()
    assert f"with Host 127.0.0.1, not the browser&#x27;s {HOST}" in page
    assert "proxy_set_header Host $host" in page


def test_the_page_escapes_what_the_request_sent(settings):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/admin/login/", {}, HTTP_HOST=HOST, HTTP_ORIGIN="https://<script>x</script>"
    )
    assert response.status_code == 403
    assert "<script>" not in response.content.decode()


def test_a_missing_cookie_gets_the_secure_cookie_hint():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/admin/login/", {}, HTTP_HOST=HOST, HTTP_ORIGIN=f"http://{HOST}")
    assert response.status_code == 403
    page = response.content.decode()
    assert "CSRF cookie not set." in page
    assert "HOOKWAY_SECURE_COOKIES" in page
