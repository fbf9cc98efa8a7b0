"""Who gets into /api/v1/: API keys (read, write, revoked, unknown), staff sessions, and
the answer everyone else gets (401, ``WWW-Authenticate: Bearer``, the error shape)."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from hookway.models import ApiKey
from hookway.store import apikeys

pytestmark = pytest.mark.django_db(transaction=True)


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), f"a key appears twice among {keys}"
    return dict(pairs)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_no_key_is_401_with_a_bearer_challenge_in_the_error_shape(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/me")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == "unauthorized"
    assert "create_api_key" in response.json()["detail"]


@pytest.mark.parametrize("key", ["hwk_not-a-key", "nonsense", "hwk_" + "x" * 500, ""])
async def test_an_unknown_key_is_401(client: httpx.AsyncClient, key: str) -> None:
    response = await client.get("/api/v1/me", headers=bearer(key))

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_key_works_until_it_is_revoked(client: httpx.AsyncClient) -> None:
    row, key = await sync_to_async(apikeys.create)("ci", "read")

    ok = await client.get("/api/v1/me", headers=bearer(key))
    await sync_to_async(apikeys.revoke)(row.pk)
    revoked = await client.get("/api/v1/me", headers=bearer(key))

    assert ok.status_code == 200
    assert ok.json() == {"name": "ci", "scope": "read"}
    assert revoked.status_code == 401
    assert revoked.json()["detail"] == "this API key is unknown or revoked"


async def test_a_key_is_stored_hashed_and_its_use_is_noted(client: httpx.AsyncClient) -> None:
    row, key = await sync_to_async(apikeys.create)("ci", "write")

    await client.get("/api/v1/me", headers=bearer(key))

    stored = await ApiKey.objects.aget(pk=row.pk)
    assert key not in {stored.key_hash, stored.prefix, stored.name}
    assert key.startswith(stored.prefix)
    assert stored.last_used_at is not None


def test_create_api_key_prints_the_key_alone_on_the_last_line() -> None:
    out = StringIO()

    call_command("create_api_key", "deploy-bot", "--scope", "write", stdout=out)

    key = out.getvalue().rstrip("\n").splitlines()[-1]
    row = ApiKey.objects.get()
    assert key.startswith("hwk_")
    assert row.key_hash == apikeys.digest(key)
    assert (row.name, row.scope) == ("deploy-bot", "write")


def test_a_staff_session_is_accepted_and_a_non_staff_one_is_not() -> None:
    staff = User.objects.create_user("ops", password="pw-ops-1", is_staff=True)
    plain = User.objects.create_user("someone", password="pw-someone-1")
    browser = Client()

    browser.force_login(staff)
    as_staff = browser.get("/api/v1/me")
    browser.force_login(plain)
    as_plain = browser.get("/api/v1/me")

    assert as_staff.status_code == 200
    assert as_staff.json() == {"name": "ops", "scope": "write"}
    assert as_plain.status_code == 401


async def test_the_schema_and_docs_need_no_key_and_no_internet(client: httpx.AsyncClient) -> None:
    schema = await client.get("/api/v1/openapi.json")
    docs = await client.get("/api/v1/docs")

    assert schema.status_code == 200
    assert "/api/v1/me" in schema.json()["paths"]
    # Swagger UI's parser refuses a document with a key twice (Python's json keeps the last).
    json.loads(schema.text, object_pairs_hook=no_duplicate_keys)
    assert schema.json()["components"]["securitySchemes"]
    assert docs.status_code == 200
    assert "/static/ninja/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    bundle = await client.get("/static/ninja/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert len(bundle.content) > 100_000
