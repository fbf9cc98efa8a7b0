"""The ingest HTTP contract (docs: design.md, "Ingest HTTP contract"), row by row, through
Hookway's real ASGI application in this process: handler, middleware, view, database.

Every test that uses ``client`` runs twice: on the direct path (hookway.ingest_direct,
the default) and on the Django path (Django's request, the ingest middleware, the view,
Django's response), which a customised HOOKWAY_INGEST_MIDDLEWARE takes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import OperationalError

from hookway import gate
from hookway.asgi_handler import HookwayASGIHandler, capped_receive
from hookway.ingest.views import BODY_TOO_LARGE
from hookway.models import Delivery, Destination, Event, Route
from tests.integration.conftest import SECRETS

pytestmark = pytest.mark.django_db(transaction=True)

JSON = {"Content-Type": "application/json"}


@pytest.fixture(params=["direct", "django"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on Hookway's application, on one ingest path or the other."""
    app = HookwayASGIHandler(direct_ingest=request.param == "direct")
    assert app.ingest.direct is (request.param == "direct")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


SIGNED_SCHEMES = [scheme for scheme, secret in SECRETS.items() if secret is not None]


def hex_hmac(key: str | bytes, message: bytes) -> str:
    raw_key = key.encode() if isinstance(key, str) else key
    return hmac.new(raw_key, message, hashlib.sha256).hexdigest()


def auth_headers(scheme: str, secret: str, body: bytes, timestamp: int | None = None):
    """Headers a genuine sender of this scheme would send with ``body``."""
    ts = int(time.time()) if timestamp is None else timestamp
    if scheme == "token":
        return {"X-Webhook-Token": secret}
    if scheme == "hmac-sha256":
        return {"X-Signature-256": "sha256=" + hex_hmac(secret, body)}
    if scheme == "github":
        return {
            "X-Hub-Signature-256": "sha256=" + hex_hmac(secret, body),
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
        }
    if scheme == "gitlab":
        return {"X-Gitlab-Token": secret, "X-Gitlab-Event": "Push Hook"}
    if scheme == "stripe":
        return {"Stripe-Signature": f"t={ts},v1={hex_hmac(secret, f'{ts}.'.encode() + body)}"}
    if scheme == "standard-webhooks":
        msg_id = "msg_" + uuid.uuid4().hex
        key = base64.b64decode(secret.removeprefix("whsec_"))
        digest = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        }
    return {}


def event_body(name: str = "push", **extra: Any) -> bytes:
    return json.dumps({"type": name, "id": "evt_" + uuid.uuid4().hex, **extra}).encode()


async def counts() -> tuple[int, int]:
    return await Event.objects.acount(), await Delivery.objects.acount()


async def post(
    client: httpx.AsyncClient, slug: str, body: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post(f"/hooks/{slug}", content=body, headers={**JSON, **(headers or {})})


def assert_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    payload = response.json()
    assert set(payload) == {"error", "detail"}
    assert payload["error"] == error
    assert isinstance(payload["detail"], str)
    assert payload["detail"]
    return payload


# --- 202: new event stored -----------------------------------------------------------------


async def test_new_event_is_stored_byte_for_byte_and_answered_202_with_id_and_deliveries(
    client, source
):
    await source("demo", "token", require_event_name=True)
    # Odd spacing, key order, escapes and non-ASCII: any re-serialisation would show.
    body = '{ "type":"push",  "zeta": 1, "alpha": "Zoë \\u2713 ✓", "n": 1.50 }\n'.encode()
    response = await client.post(
        "/hooks/demo",
        content=body,
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "X-Webhook-Token": SECRETS["token"],
            "Authorization": "Bearer sk_live_must_not_be_stored",
            "X-Gitlab-Token": "gitlab-token-must-not-be-stored",
            "X-Custom-Trace": "trace-42",
            "Idempotency-Key": "delivery-0001",
        },
    )
    assert response.status_code == 202, response.text
    payload = response.json()
    assert set(payload) == {"id", "deliveries"}
    assert payload["deliveries"] == 1
    event = await Event.objects.select_related("source").aget(id=payload["id"])
    assert bytes(event.body) == body
    assert event.content_type == "application/json; charset=utf-8"
    assert event.event_name == "push"
    assert event.delivery_id == "delivery-0001"
    assert event.source.slug == "demo"
    stored = {name.lower(): value for name, value in event.headers.items()}
    assert stored["x-custom-trace"] == "trace-42"
    assert stored["idempotency-key"] == "delivery-0001"
    for secret_header in ("x-webhook-token", "authorization", "x-gitlab-token"):
        assert secret_header not in stored
    dumped = json.dumps(event.headers)
    for secret_value in (SECRETS["token"], "sk_live_must_not_be_stored", "gitlab-token-must"):
        assert secret_value not in dumped
    assert await Delivery.objects.filter(event_id=event.id).acount() == 1


@pytest.mark.parametrize("scheme", ["none", *SIGNED_SCHEMES])
async def test_every_scheme_accepts_a_genuine_request(client, source, scheme):
    await source(f"src-{scheme}", scheme)
    body = event_body("push", event_name="push", object_kind="push")
    headers = auth_headers(scheme, SECRETS[scheme] or "", body)
    response = await post(client, f"src-{scheme}", body, headers)
    assert response.status_code == 202, response.text
    event = await Event.objects.aget(id=response.json()["id"])
    assert bytes(event.body) == body
    assert event.event_name == "push"
    assert await counts() == (1, 1)


async def test_a_secret_given_as_env_reference_is_read_from_the_environment(
    client, source, monkeypatch
):
    monkeypatch.setenv("HOOKWAY_TEST_INGEST_TOKEN", "from-the-env-3c1d")
    await source("envsrc", "token", secrets=["env:HOOKWAY_TEST_INGEST_TOKEN"])
    good = await post(client, "envsrc", event_body(), {"X-Webhook-Token": "from-the-env-3c1d"})
    assert good.status_code == 202, good.text
    literal = await post(
        client, "envsrc", event_body(), {"X-Webhook-Token": "env:HOOKWAY_TEST_INGEST_TOKEN"}
    )
    assert_error(literal, 401, "unauthorized")


async def test_trailing_slash_is_accepted(client, source):
    await source("demo")
    response = await client.post("/hooks/demo/", content=event_body(), headers=JSON)
    assert response.status_code == 202, response.text
    assert await counts() == (1, 1)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/cloudevents+json",
        "application/vnd.github+json",
    ],
)
async def test_json_and_plus_json_content_types_are_accepted(client, source, content_type):
    await source("demo")
    body = event_body()
    response = await client.post(
        "/hooks/demo", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 202, response.text
    event = await Event.objects.aget(id=response.json()["id"])
    assert event.content_type == content_type
    assert bytes(event.body) == body


async def test_event_without_name_is_stored_when_the_source_does_not_require_one(client, source):
    await source("demo", require_event_name=False)
    response = await post(client, "demo", b'{"hello": "world"}')
    assert response.status_code == 202, response.text
    event = await Event.objects.aget(id=response.json()["id"])
    assert event.event_name == ""
    assert event.delivery_id is None


async def test_body_within_max_body_bytes_is_accepted_even_past_djangos_upload_limit(
    client, source
):
    # Django refuses request.body above DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB by default);
    # a source may allow up to 64 MiB, and its own limit is the one that counts.
    limit = 4 * 1024 * 1024
    await source("big", max_body_bytes=limit)
    body = b'{"type": "bulk", "data": "' + b"a" * (3 * 1024 * 1024) + b'"}'
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE < len(body) < limit
    response = await post(client, "big", body)
    assert response.status_code == 202, response.text
    event = await Event.objects.aget(id=response.json()["id"])
    assert bytes(event.body) == body


async def test_body_of_exactly_max_body_bytes_is_accepted(client, source):
    body = event_body(pad="")
    await source("exact", max_body_bytes=len(body))
    response = await post(client, "exact", body)
    assert response.status_code == 202, response.text


# --- 200: duplicate ------------------------------------------------------------------------


async def test_duplicate_delivery_id_returns_original_event_id(client, source):
    await source("demo")
    headers = {"Idempotency-Key": "dup-key-1"}
    body = event_body()
    first = await post(client, "demo", body, headers)
    assert first.status_code == 202, first.text
    before = await counts()
    assert before == (1, 1)

    again = await post(client, "demo", body, headers)
    assert again.status_code == 200, again.text
    assert again.json() == {"id": first.json()["id"], "duplicate": True}
    assert await counts() == before


async def test_a_reused_delivery_id_with_another_body_is_stored_as_a_conflict(client, source):
    """A captured body replayed under a chosen id must not make the real event with
    that id a 'duplicate': the same id with a different body is a new event, marked."""
    await source("demo")
    headers = {"Idempotency-Key": "chosen-by-an-attacker"}
    planted = await post(client, "demo", event_body("replayed"), headers)
    assert planted.status_code == 202, planted.text

    real_body = event_body("push")
    real = await post(client, "demo", real_body, headers)
    assert real.status_code == 202, real.text
    answer = real.json()
    assert answer["conflict_with"] == planted.json()["id"]
    assert answer["id"] != planted.json()["id"]
    assert answer["deliveries"] == 1
    event = await Event.objects.aget(id=answer["id"])
    assert bytes(event.body) == real_body
    assert event.conflict_with == planted.json()["id"]
    assert await counts() == (2, 2)

    # The real sender's retry of the real body is its duplicate, not the planted one's.
    retry = await post(client, "demo", real_body, headers)
    assert retry.status_code == 200, retry.text
    assert retry.json() == {"id": answer["id"], "duplicate": True}
    assert await counts() == (2, 2)


@pytest.mark.parametrize("scheme", ["github", "stripe", "standard-webhooks", "gitlab"])
async def test_duplicate_is_detected_by_each_schemes_own_delivery_id(client, source, scheme):
    await source("dedupe", scheme)
    body = event_body("push", id="evt_same_for_stripe")
    headers = auth_headers(scheme, SECRETS[scheme] or "", body)
    if scheme == "github":
        headers["X-GitHub-Delivery"] = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    elif scheme == "gitlab":
        headers["X-Gitlab-Event-UUID"] = "13792a34-cac6-4fda-95a8-c58e00a3954e"
    first = await post(client, "dedupe", body, headers)
    assert first.status_code == 202, first.text
    again = await post(client, "dedupe", body, headers)
    assert again.status_code == 200, again.text
    assert again.json() == {"id": first.json()["id"], "duplicate": True}
    assert await counts() == (1, 1)


async def test_same_delivery_id_on_another_source_is_a_new_event(client, source):
    await source("one")
    await source("two")
    headers = {"Idempotency-Key": "shared-key"}
    first = await post(client, "one", event_body(), headers)
    second = await post(client, "two", event_body(), headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] != second.json()["id"]
    assert await counts() == (2, 2)


# --- 400: malformed JSON, missing event name, invalid fields -------------------------------


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"type": "push",\n "broken": }', "line 2 column"),
        (b'{"type": "push"', "line 1 column"),
        (b"", "empty"),
        (b"   \n", "empty"),
        (b'{"type": "\xff\xfe"}', "UTF-8"),
        # A UTF-16 surrogate encoded as UTF-8 bytes: json.loads(bytes) would accept it.
        (b'{"type": "push", "x": "\xed\xa0\x80"}', "UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
        (b'{"type": "push"} trailing', "line 1 column 18"),
    ],
)
async def test_malformed_json_is_400_with_a_detail_saying_where(client, source, body, where):
    await source("demo")
    response = await post(client, "demo", body)
    payload = assert_error(response, 400, "malformed_json")
    assert where in payload["detail"]
    assert await counts() == (0, 0)


@pytest.mark.parametrize("body", [b'{"hello": "world"}', b'{"type": ""}', b"[1, 2]", b'"push"'])
async def test_missing_event_name_is_400_when_the_source_requires_one(client, source, body):
    await source("strict", require_event_name=True)
    response = await post(client, "strict", body)
    payload = assert_error(response, 400, "missing_event_name")
    assert "X-Event-Name" in payload["detail"]
    assert await counts() == (0, 0)


async def test_missing_event_name_detail_names_where_the_scheme_looks(client, source):
    await source("gl", "gitlab", require_event_name=True)
    body = b'{"project_id": 15}'
    response = await post(client, "gl", body, {"X-Gitlab-Token": SECRETS["gitlab"]})
    payload = assert_error(response, 400, "missing_event_name")
    assert "object_kind" in payload["detail"]
    assert "X-Gitlab-Event" in payload["detail"]
    assert await counts() == (0, 0)


async def test_a_gitlab_system_hook_without_a_name_is_400_and_stored_nowhere(client, source):
    # GitLab sends "X-Gitlab-Event: System Hook" with every system hook: not an event name.
    await source("gl", "gitlab", require_event_name=True)
    headers = {"X-Gitlab-Token": SECRETS["gitlab"], "X-Gitlab-Event": "System Hook"}

    missing = await post(client, "gl", b'{"project_id": 15}', headers)
    named = await post(client, "gl", b'{"event_name": "project_create"}', headers)

    payload = assert_error(missing, 400, "missing_event_name")
    assert "System Hook" in payload["detail"]
    assert named.status_code == 202
    stored = await Event.objects.aget()
    assert stored.event_name == "project_create"


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (json.dumps({"type": "x" * 256}).encode(), {}),
        (json.dumps({"type": "push\r\nX-Evil: 1"}).encode(), {}),
        (event_body(), {"Idempotency-Key": "k" * 256}),
    ],
    ids=["name-too-long", "name-with-crlf", "key-too-long"],
)
async def test_invalid_event_name_or_delivery_id_is_400(client, source, body, headers):
    await source("demo")
    response = await post(client, "demo", body, headers)
    assert_error(response, 400, "invalid_field")
    assert await counts() == (0, 0)


# --- 401: signature / token ----------------------------------------------------------------


def _spoil(scheme: str, case: str, body: bytes) -> tuple[bytes, dict[str, str]]:
    secret = SECRETS[scheme] or ""
    now = int(time.time())
    if case == "missing":
        headers = auth_headers(scheme, secret, body)
        signature_header = {
            "token": "X-Webhook-Token",
            "hmac-sha256": "X-Signature-256",
            "github": "X-Hub-Signature-256",
            "gitlab": "X-Gitlab-Token",
            "stripe": "Stripe-Signature",
            "standard-webhooks": "webhook-signature",
        }[scheme]
        del headers[signature_header]
        return body, headers
    if case == "wrong-secret":
        wrong = "whsec_" + base64.b64encode(b"a different key of 32 bytes!!!!!").decode()
        return body, auth_headers(scheme, wrong, body)
    if case == "tampered":
        return body.replace(b"push", b"pull"), auth_headers(scheme, secret, body)
    if case == "too-old":
        return body, auth_headers(scheme, secret, body, timestamp=now - 301)
    if case == "too-new":
        # Well past the 300 s tolerance: the server checks it a moment after `now` was
        # taken (a second later on a loaded machine), which brings a future stamp closer.
        # The exact boundary is pinned with a fixed clock in tests/unit/test_verify.py.
        return body, auth_headers(scheme, secret, body, timestamp=now + 360)
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("scheme", "case"),
    [(scheme, case) for scheme in SIGNED_SCHEMES for case in ("missing", "wrong-secret")]
    + [(scheme, "tampered") for scheme in ("hmac-sha256", "github", "stripe", "standard-webhooks")]
    + [
        (scheme, case)
        for scheme in ("stripe", "standard-webhooks")
        for case in ("too-old", "too-new")
    ],
)
async def test_bad_signature_or_token_is_401_and_stores_nothing(client, source, scheme, case):
    await source("signed", scheme)
    body, headers = _spoil(scheme, case, event_body("push"))
    response = await post(client, "signed", body, headers)
    payload = assert_error(response, 401, "unauthorized")
    assert SECRETS[scheme] not in response.text
    assert SECRETS[scheme] not in payload["detail"]
    assert await counts() == (0, 0)


def near_miss(secret: str, scheme: str) -> str:
    """A secret one bit away from ``secret`` (a Standard Webhooks key stays base64)."""
    if scheme == "standard-webhooks":
        key = bytearray(base64.b64decode(secret.removeprefix("whsec_")))
        key[-1] ^= 1
        return "whsec_" + base64.b64encode(bytes(key)).decode()
    return secret[:-1] + chr(ord(secret[-1]) ^ 1)


@pytest.mark.parametrize("scheme", SIGNED_SCHEMES)
async def test_401_body_never_says_which_secret_came_close(client, source, scheme):
    first = SECRETS[scheme]
    second = "whsec_" + base64.b64encode(b"second rotation key, 32 bytes.!!").decode()
    await source("rotating", scheme, secrets=[first, second])
    body = event_body("push")
    near_first, near_second = near_miss(first, scheme), near_miss(second, scheme)
    answers = []
    for near in (near_first, near_second):
        response = await post(client, "rotating", body, auth_headers(scheme, near, body))
        payload = assert_error(response, 401, "unauthorized")
        for secret in (first, second, near_first, near_second):
            assert secret not in response.text
        answers.append(payload)
    assert answers[0] == answers[1]
    assert await counts() == (0, 0)


async def test_a_source_whose_secrets_are_unset_rejects_everything(client, source, monkeypatch):
    monkeypatch.delenv("HOOKWAY_TEST_UNSET_TOKEN", raising=False)
    await source("unset", "token", secrets=["env:HOOKWAY_TEST_UNSET_TOKEN"])
    response = await post(client, "unset", event_body(), {"X-Webhook-Token": ""})
    assert_error(response, 401, "unauthorized")
    assert await counts() == (0, 0)


# --- 404: unknown or disabled source -------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/hooks/nope",
        "/hooks/%00",
        "/hooks/A%20B",
        "/hooks/a%2Fb",
        "/hooks/a/b/",
        "/hooks/" + "a" * 65,
    ],
)
async def test_unknown_source_is_404(client, source, path):
    await source("demo")
    response = await client.post(path, content=event_body(), headers=JSON)
    assert_error(response, 404, "unknown_source")
    assert await counts() == (0, 0)


async def test_disabled_source_is_404(client, source):
    await source("sleepy", enabled=False)
    response = await post(client, "sleepy", event_body())
    assert_error(response, 404, "unknown_source")
    assert await counts() == (0, 0)


async def test_unknown_source_gets_404_before_its_body_is_judged(client, source):
    await source("demo")
    response = await client.post("/hooks/nope", content=b"x" * 5000, headers={})
    assert_error(response, 404, "unknown_source")
    assert await counts() == (0, 0)


# --- 405: method ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_method_other_than_post_is_405_with_allow_post(client, source, method):
    await source("demo")
    response = await client.request(method, "/hooks/demo", content=event_body(), headers=JSON)
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "POST"
    assert await counts() == (0, 0)


# --- 413: body too large -------------------------------------------------------------------


async def test_body_larger_than_max_body_bytes_by_content_length_is_413(client, source):
    await source("small", max_body_bytes=64)
    body = event_body(pad="x" * 64)
    response = await post(client, "small", body)
    payload = assert_error(response, 413, "body_too_large")
    assert "64" in payload["detail"]
    assert await counts() == (0, 0)


async def test_body_one_byte_over_max_body_bytes_is_413(client, source):
    body = event_body(pad="")
    await source("exact", max_body_bytes=len(body) - 1)
    response = await post(client, "exact", body)
    assert_error(response, 413, "body_too_large")
    assert await counts() == (0, 0)


async def test_streamed_body_without_content_length_over_the_limit_is_413(client, source):
    await source("small", max_body_bytes=1000)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"type": "push", "pad": "'
        for _ in range(50):
            yield b"x" * 100
        yield b'"}'

    response = await client.post("/hooks/small", content=chunks(), headers=JSON)
    assert_error(response, 413, "body_too_large")
    assert await counts() == (0, 0)


async def test_streamed_body_without_content_length_under_the_limit_is_stored(client, source):
    await source("small", max_body_bytes=1000)
    parts = [b'{"type": "push", ', b'"pad": "', b"x" * 100, b'"}']

    async def chunks() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    response = await client.post("/hooks/small", content=chunks(), headers=JSON)
    assert response.status_code == 202, response.text
    event = await Event.objects.aget(id=response.json()["id"])
    assert bytes(event.body) == b"".join(parts)


class EndlessBody:
    """An ASGI ``receive`` for a client that would upload ``total`` chunks; counts reads."""

    def __init__(self, chunk: bytes, total: int):
        self.chunk = chunk
        self.total = total
        self.calls = 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if self.calls > self.total:
            raise AssertionError("read the whole upload")
        return {"type": "http.request", "body": self.chunk, "more_body": self.calls < self.total}


async def test_capped_receive_stops_asking_for_chunks_soon_after_the_limit():
    upstream = EndlessBody(b"x" * 100, total=10_000)
    scope: dict[str, Any] = {"type": "http", "headers": []}
    receive = capped_receive(upstream, scope, limit=1000)
    seen = 0
    while True:
        message = await receive()
        seen += len(message["body"])
        if not message["more_body"]:
            break
    assert upstream.calls == 11  # 1,100 bytes: the first read past the limit ends it
    assert seen == 1000
    assert scope[BODY_TOO_LARGE] is True


async def test_capped_receive_reads_nothing_when_content_length_is_already_too_large():
    upstream = EndlessBody(b"x" * 100, total=10_000)
    scope: dict[str, Any] = {"type": "http", "headers": [(b"content-length", b"1000001")]}
    message = await capped_receive(upstream, scope, limit=1000)()
    assert message == {"type": "http.request", "body": b"", "more_body": False}
    assert upstream.calls == 0
    assert scope[BODY_TOO_LARGE] is True


async def test_capped_receive_passes_a_body_within_the_limit_through():
    upstream = EndlessBody(b"x" * 100, total=10)
    scope: dict[str, Any] = {"type": "http", "headers": []}
    receive = capped_receive(upstream, scope, limit=1000)
    messages = [await receive() for _ in range(10)]
    assert [m["more_body"] for m in messages] == [True] * 9 + [False]
    assert upstream.calls == 10
    assert BODY_TOO_LARGE not in scope


async def test_application_answers_413_without_reading_the_rest_of_a_streamed_upload(source):
    from hookway.asgi import application

    await source("small", max_body_bytes=4096)
    upstream = EndlessBody(b"x" * 1024, total=100_000)  # a 100 MB upload, no Content-Length
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/hooks/small",
        "raw_path": b"/hooks/small",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await application(scope, upstream, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 413
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert json.loads(body)["error"] == "body_too_large"
    assert upstream.calls <= 4096 // 1024 + 2
    assert await counts() == (0, 0)


# --- 415: content type ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "text/json",
        "application/jsonp",
        "application/json-seq",
        None,
    ],
)
async def test_content_type_the_source_cant_take_is_415(client, source, content_type):
    await source("demo")
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await client.post("/hooks/demo", content=event_body(), headers=headers)
    payload = assert_error(response, 415, "unsupported_media_type")
    assert "application/json" in payload["detail"]
    assert await counts() == (0, 0)


# --- 503: database can't commit ------------------------------------------------------------


async def test_database_that_cant_commit_is_503_with_retry_after(client, source, monkeypatch):
    await source("demo")

    async def locked(incoming: Any, deadline: float) -> Any:
        raise OperationalError("database is locked")

    monkeypatch.setattr(gate, "astore_event", locked)
    response = await post(client, "demo", event_body())
    payload = assert_error(response, 503, "unavailable")
    assert response.headers["Retry-After"] == str(settings.HOOKWAY.retry_after_seconds)
    assert "locked" not in payload["detail"]
    assert await counts() == (0, 0)


async def test_database_that_cant_look_up_the_source_is_503_with_retry_after(
    client, source, monkeypatch
):
    await source("demo")

    async def unreachable(slug: str, deadline: float) -> Any:
        raise OperationalError("connection refused")

    monkeypatch.setattr(gate, "aget_source", unreachable)
    response = await post(client, "demo", event_body())
    assert_error(response, 503, "unavailable")
    assert "Retry-After" in response.headers
    assert await counts() == (0, 0)


async def test_source_lookup_failing_once_is_503_not_413(client, source, monkeypatch):
    # The ASGI handler's lookup fails, the view's retry succeeds: the body was never read
    # (no limit was known), so the only honest answer is "retry later".
    await source("demo")
    real = gate.aget_source
    calls = 0

    async def flaky(slug: str, deadline: float) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OperationalError("connection reset")
        return await real(slug, deadline)

    monkeypatch.setattr(gate, "aget_source", flaky)
    response = await post(client, "demo", event_body())
    assert_error(response, 503, "unavailable")
    assert "Retry-After" in response.headers
    assert await counts() == (0, 0)


# --- routes --------------------------------------------------------------------------------


# A disabled (or paused) destination still gets its delivery: it waits until the
# destination is enabled again (docs/delivery.md); a disabled route creates none.
@pytest.mark.parametrize(
    ("event_name", "expected"),
    [
        ("push", {"ci", "everything", "disabled-destination"}),
        ("merge_request", {"ci", "everything", "disabled-destination"}),
        ("merge_request_note", {"ci", "everything", "disabled-destination"}),
        ("tag_push", {"tags", "everything", "disabled-destination"}),
        ("Push", {"everything", "disabled-destination"}),  # globs are case-sensitive
        ("issue", {"everything", "disabled-destination"}),
    ],
)
async def test_routes_with_event_globs_create_one_delivery_per_matching_destination(
    client, make_source, event_name, expected
):
    def setup() -> None:
        gitlab = make_source(slug="gitlab", verify="none")
        quiet = make_source(slug="quiet", verify="none")
        for name, events, enabled, route_enabled in [
            ("ci", ["push", "merge_request*"], True, True),
            ("everything", [], True, True),
            ("tags", ["tag_*"], True, True),
            ("disabled-destination", ["*"], False, True),
            ("disabled-route", ["*"], True, False),
        ]:
            destination = Destination.objects.create(
                name=name, url=f"http://127.0.0.1:9/{name}", enabled=enabled
            )
            Route.objects.create(
                source=gitlab, destination=destination, events=events, enabled=route_enabled
            )
        other = Destination.objects.create(name="other-source", url="http://127.0.0.1:9/o")
        Route.objects.create(source=quiet, destination=other)

    await sync_to_async(setup)()
    response = await post(client, "gitlab", event_body(event_name))
    assert response.status_code == 202, response.text
    assert response.json()["deliveries"] == len(expected)
    names = {
        name
        async for name in Delivery.objects.filter(event_id=response.json()["id"]).values_list(
            "destination__name", flat=True
        )
    }
    assert names == expected
    assert await Delivery.objects.acount() == len(expected)


async def test_source_without_routes_stores_the_event_with_zero_deliveries(client, make_source):
    await sync_to_async(make_source)(slug="lonely")
    response = await post(client, "lonely", event_body())
    assert response.status_code == 202, response.text
    assert response.json()["deliveries"] == 0
    assert await counts() == (1, 0)
