"""Every operation of /api/v1/ (read from the OpenAPI schema, so a new one is covered
without touching this file) refuses what it must: no key, a bad key, a revoked key
(401), a read key on a write (403), a staff session's write without Django's CSRF token
(403); and takes a staff session's write with it.

And no sync ORM call runs on the event loop: these requests go through the ASGI
application in this process without DJANGO_ALLOW_ASYNC_UNSAFE, so one would raise
SynchronousOnlyOperation, which the API answers with a 500 (checked below), which every
status assertion here would catch."""

from __future__ import annotations

import os
import re
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import SynchronousOnlyOperation

from hookway.api.app import api
from hookway.models import Event
from hookway.store import apikeys
from tests.integration.apidata import bearer, event, key, source_and_destination

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLE = {"event_id": "evt_x", "slug": "gh", "name": "ci", "route_id": "1"}


def operations() -> list[tuple[str, str]]:
    schema = api.get_openapi_schema(path_prefix="/api/v1")
    found = []
    for path, methods in schema["paths"].items():
        if path.startswith("/api/v1/stream"):
            continue  # Server-Sent Events: tested with the stream
        concrete = re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m[1]], path)
        found += [(method.upper(), concrete) for method in methods]
    return found


OPERATIONS = operations()
# POSTs that change nothing, so a read key may make them (docs/api.md).
READ_ONLY_POSTS = [("POST", "/api/v1/routes/test-filter")]
WRITES = [(m, p) for m, p in OPERATIONS if m != "GET" and (m, p) not in READ_ONLY_POSTS]


def test_the_schema_lists_every_resource_s_operations() -> None:
    assert len(OPERATIONS) >= 30
    assert ("POST", "/api/v1/destinations/ci/test") in OPERATIONS
    assert ("POST", "/api/v1/deliveries/replay") in OPERATIONS
    assert ("GET", "/api/v1/events/evt_x/body") in OPERATIONS


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
async def test_no_key_a_bad_key_and_a_revoked_key_are_401(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    row, revoked = await sync_to_async(apikeys.create)("old", "write")
    await sync_to_async(apikeys.revoke)(row.pk)

    for headers in ({}, bearer("hwk_unknown"), bearer(revoked), {"Authorization": "Basic eDp5"}):
        response = await client.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (headers, response.text)
        assert response.json()["error"] == "unauthorized"


@pytest.mark.parametrize(("method", "path"), WRITES)
async def test_a_read_key_may_not_write(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path, headers=await key("read"), json={})

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


@pytest.mark.parametrize(("method", "path"), READ_ONLY_POSTS)
async def test_a_read_key_may_make_the_posts_that_change_nothing(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    assert (method, path) in OPERATIONS
    response = await client.request(
        method, path, headers=await key("read"), json={"filter": "true", "payload": {}}
    )

    assert response.status_code == 200, response.text


@sync_to_async
def staff_session() -> dict[str, str]:
    user = User.objects.create_user("ops", password="pw-ops-1", is_staff=True)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return {settings.SESSION_COOKIE_NAME: session.session_key or ""}


@pytest.mark.parametrize(("method", "path"), WRITES)
async def test_a_staff_session_writes_only_with_the_csrf_token(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    cookies = await staff_session()
    token = "a" * 32
    client.cookies.update(cookies)

    without = await client.request(method, path, json={})
    client.cookies.set(settings.CSRF_COOKIE_NAME, token)
    wrong = await client.request(method, path, json={}, headers={"X-CSRFToken": "b" * 32})
    with_token = await client.request(method, path, json={}, headers={"X-CSRFToken": token})

    assert without.status_code == 403
    assert without.json()["error"] == "csrf_failed"
    assert wrong.status_code == 403
    # Past authentication: whatever the operation says about this (empty) request.
    assert with_token.status_code not in (401, 403, 500), with_token.text


async def test_a_staff_session_reads_without_a_token(client: httpx.AsyncClient) -> None:
    client.cookies.update(await staff_session())

    response = await client.get("/api/v1/me")

    assert response.status_code == 200
    assert response.json() == {"name": "ops", "scope": "write"}


async def test_every_read_answers_through_the_asgi_app_with_real_rows(
    client: httpx.AsyncClient,
) -> None:
    assert not os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")

    @sync_to_async
    def seed() -> dict[str, str]:
        gh, ci = source_and_destination("gh", "ci")
        row = event(gh, deliveries=((ci, "dead", 2),))
        from hookway.models import Route

        return {"event_id": row.pk, "route_id": str(Route.objects.get().pk)}

    sample = {**SAMPLE, **await seed()}
    h = await key("read")
    reads = [p for m, p in operations() if m == "GET"]
    for path in reads:
        for name, value in SAMPLE.items():
            path = path.replace(f"/{value}", f"/{sample[name]}")
        response = await client.get(path, headers=h)
        assert response.status_code == 200, (path, response.text)


async def test_a_sync_orm_call_on_the_event_loop_would_fail_these_tests(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    with pytest.raises(SynchronousOnlyOperation):
        Event.objects.count()

    from hookway.api import sources

    async def sync_inside(slug: str) -> Any:
        return sources.Source.objects.get(slug=slug)  # a sync query on the event loop

    monkeypatch.setattr(sources, "_get", sync_inside)

    response = await client.get("/api/v1/sources/gh", headers=await key("read"))

    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"
    assert "SynchronousOnlyOperation" in caplog.text
