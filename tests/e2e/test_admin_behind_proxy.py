"""An admin login through a TLS proxy, against a real uvicorn server started with the
environment docs/operations.md ("Behind a TLS proxy") documents. The test plays the
proxy: it connects from 127.0.0.1 with ``Host: hooks.example.com`` and
``X-Forwarded-Proto: https``, and posts the login form with the browser's
``Origin: https://hooks.example.com``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django.contrib import admin
from django.contrib.auth.models import User

# The standalone URLconf gives the server's admin Hookway's titles; imported here so this
# process reads the same ones whatever ran before.
import hookway.standalone.urls  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HOST = "hooks.example.com"
ORIGIN = f"https://{HOST}"
PASSWORD = "correct horse battery staple"
# A proxy address the server does not trust: the test's own 127.0.0.1 is then untrusted.
ELSEWHERE = "192.0.2.1"


def cookie(response: httpx.Response, name: str) -> tuple[str, str]:
    """The value of cookie ``name`` the response sets, and its whole Set-Cookie line
    (read by hand: a Secure cookie would not be sent back over http by a cookie jar)."""
    for line in response.headers.get_list("set-cookie"):
        if line.startswith(f"{name}="):
            return line.split(";", 1)[0].split("=", 1)[1], line
    raise AssertionError(f"no {name} cookie in {response.headers.get_list('set-cookie')}")


def login(url: str) -> httpx.Response:
    proxy = {"Host": HOST, "X-Forwarded-Proto": "https"}
    form = httpx.get(f"{url}/admin/login/", headers=proxy, timeout=30)
    assert form.status_code == 200, form.text
    csrf, _ = cookie(form, "csrftoken")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token is not None
    return httpx.post(
        f"{url}/admin/login/?next=/admin/",
        data={"username": "root", "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)},
        headers={
            **proxy,
            "Origin": ORIGIN,
            "Referer": f"{ORIGIN}/admin/login/",
            "Cookie": f"csrftoken={csrf}",
        },
        timeout=30,
    )


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"FORWARDED_ALLOW_IPS": "127.0.0.1"}, id="proxy-address-trusted"),
        pytest.param(
            {"FORWARDED_ALLOW_IPS": ELSEWHERE, "CSRF_TRUSTED_ORIGINS": ORIGIN},
            id="origin-trusted",
        ),
        pytest.param(
            {"FORWARDED_ALLOW_IPS": ELSEWHERE, "HOOKWAY_TRUST_X_FORWARDED_PROTO": "true"},
            id="header-trusted-by-django",
        ),
    ],
)
def test_a_login_through_a_configured_proxy_succeeds(
    start_server: Callable[..., Any], env: dict[str, str]
) -> None:
    User.objects.create_superuser("root", "root@example.com", PASSWORD)
    server = start_server(
        {"ALLOWED_HOSTS": f"{HOST},127.0.0.1", "HOOKWAY_SECURE_COOKIES": "true", **env}
    )

    response = login(server.url)

    assert response.status_code == 302, response.text
    assert response.headers["location"] == "/admin/"
    session, line = cookie(response, "sessionid")
    assert "Secure" in line
    home = httpx.get(
        f"{server.url}/admin/",
        headers={"Host": HOST, "X-Forwarded-Proto": "https", "Cookie": f"sessionid={session}"},
        timeout=30,
    )
    assert home.status_code == 200
    # The logged-in index: its title, and the logout form only a session sees.
    assert str(admin.site.index_title) in home.text
    assert 'id="logout-form"' in home.text


def test_a_login_through_a_proxy_hookway_does_not_trust_fails_and_says_why(
    start_server: Callable[..., Any],
) -> None:
    User.objects.create_superuser("root", "root@example.com", PASSWORD)
    server = start_server({"ALLOWED_HOSTS": f"{HOST},127.0.0.1", "FORWARDED_ALLOW_IPS": ELSEWHERE})

    response = login(server.url)

    assert response.status_code == 403
    assert f"Origin checking failed - {ORIGIN} does not match any trusted origins." in response.text
    assert f"Hookway saw this request as http://{HOST}." in response.text
    assert "FORWARDED_ALLOW_IPS" in response.text
    assert "CSRF_TRUSTED_ORIGINS" in response.text
    server.stop()
    assert '"event": "csrf_refused"' in server.log()
