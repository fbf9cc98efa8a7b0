"""Fuzzing ``/hooks/<slug>``: whatever a sender throws at ingest, the answer is one of the
documented statuses, never a 5xx (the database is healthy here, so not even the 503); a
4xx is JSON ``{"error", "detail"}`` and stores nothing; a 202 stores exactly one event.

Signed schemes get a correct signature on about half of the examples, so garbage bodies
and event names reach the parser and the extractor instead of stopping at the 401.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hookway.models import Delivery, Destination, Event, Route

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "fuzz-shared-secret"
WHSEC = "whsec_" + base64.b64encode(b"fuzz-standard-webhooks-key-32byt").decode()
SMALL_LIMIT = 1024
# Big enough for the 100,000-byte nesting bombs to reach the JSON parser.
BIG_LIMIT = 200_000
SCHEME_SECRETS = {
    "none": [],
    "token": [SECRET],
    "github": [SECRET],
    "stripe": [SECRET],
    "standard-webhooks": [WHSEC],
}
# slug -> (scheme, max_body_bytes); strict sources require an event name.
SOURCES = {
    f"{scheme}-{'strict' if strict else 'lax'}": (scheme, SMALL_LIMIT if strict else BIG_LIMIT)
    for scheme in SCHEME_SECRETS
    for strict in (True, False)
}
DISABLED_SLUG = "switched-off"

SIGNATURE_HEADERS = [
    "X-Webhook-Token",
    "X-Signature-256",
    "X-Hub-Signature-256",
    "X-Gitlab-Token",
    "Stripe-Signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
]
OTHER_HEADERS = [
    "X-GitHub-Event",
    "X-GitHub-Delivery",
    "X-Gitlab-Event",
    "X-Gitlab-Event-UUID",
    "X-Event-Name",
    "Idempotency-Key",
    "X-Request-ID",
    "Authorization",
    "Cookie",
    "Accept",
    "Content-Encoding",
    "Expect",
]
# Headers the transport owns (framing and routing): fuzzing them tests httpx, not Hookway.
TRANSPORT_HEADERS = {"host", "content-length", "transfer-encoding", "content-type"}

ODD_STRINGS = [
    "\u0000",
    "push\u0000",
    "\ud800",
    "a\udfffb",
    "\udc00push",
    "push\ud83d",
    "x" * 300,
    "y" * 255,
    "",
    " ",
    "\t\n",
    "é",
    "\u2028",
    "😀",
    "push",
    "merge_request",
    "invoice.paid",
]

odd_methods = st.sampled_from(
    [
        "GET",
        "PUT",
        "PATCH",
        "DELETE",
        "OPTIONS",
        "HEAD",
        "TRACE",
        "CONNECT",
        "PROPFIND",
        "M-SEARCH",
        "X_CUSTOM",
        "BREW",
    ]
)

odd_slugs = st.one_of(
    st.just(DISABLED_SLUG),
    st.sampled_from(["a" * 64, "a" * 65, "unknown", "with space", "ünï", "%00", "-", "_"]),
    # A slash would make it a different path (Django's own 404 page), not a slug.
    st.text(min_size=1, max_size=80).filter(lambda s: "/" not in s and s not in {".", ".."}),
)

# Latin-1 text: what ASGI servers hand Django for header bytes. CR/LF can't be in a value.
latin1_text = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=255, exclude_characters="\r\n"),
    max_size=60,
)
header_values = st.one_of(
    latin1_text,
    st.sampled_from(
        ["sha256=", "sha256=zz", "t=,v1=", "v1,", "v1,!!!", "t=1,v1=00", "0", "-1", "9" * 40]
    ),
    st.integers(min_value=1, max_value=200).map(lambda n: "A" * (n * 100)),
).map(lambda v: v.encode("latin-1"))
header_names = st.one_of(
    st.sampled_from(SIGNATURE_HEADERS + OTHER_HEADERS),
    st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,24}", fullmatch=True),
).filter(lambda n: n.lower() not in TRANSPORT_HEADERS)
header_sets = st.dictionaries(header_names, header_values, max_size=8)

JSON_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "application/json; charset=no-such-codec",
    "application/json;;;",
    "application/vnd.api+json",
]
odd_content_types = st.one_of(
    st.sampled_from(
        [
            None,
            "APPLICATION/JSON",
            "application/+json",
            "application/",
            "text/plain",
            "text/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=xyz",
            "multipart/form-data",
            "",
        ]
    ),
    latin1_text,
)

json_values = st.one_of(
    st.sampled_from(ODD_STRINGS),
    st.text(max_size=40),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.lists(st.sampled_from(ODD_STRINGS), max_size=3),
)
NAME_KEYS = ("event_name", "type", "event", "id", "object_kind")
# Objects with the fields the extractors read: one surely odd, the others maybe present.
event_objects = st.builds(
    lambda key, odd, others: {**others, key: odd},
    st.sampled_from(NAME_KEYS),
    st.sampled_from(ODD_STRINGS),
    st.fixed_dictionaries({}, optional=dict.fromkeys(NAME_KEYS, json_values)),
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=4)


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        document: Any = draw(event_objects)
    else:
        document = draw(st.one_of(json_objects, st.lists(json_values, max_size=3), json_values))
    if draw(st.booleans()):
        # Lone surrogates travel as \ud800 escapes: valid JSON text, invalid Unicode.
        return json.dumps(document, ensure_ascii=True).encode()
    # Raw characters; a lone surrogate becomes bytes that aren't valid UTF-8.
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _exactly(size: int) -> bytes:
    """A valid JSON webhook of exactly ``size`` bytes."""
    head = b'{"type":"push","event_name":"push","pad":"'
    return head + b"x" * (size - len(head) - 2) + b'"}'


# Valid JSON of exactly limit-3 … limit+3 bytes.
sized_bodies = st.builds(
    lambda limit, delta: _exactly(limit + delta),
    st.sampled_from([SMALL_LIMIT, BIG_LIMIT]),
    st.integers(min_value=-3, max_value=3),
)


bodies = st.one_of(
    json_bodies(),
    sized_bodies,
    st.binary(max_size=300),
    st.sampled_from(
        [
            b"",
            b"   ",
            b"\xff\xfe\xfd",
            b'{"type": "\xc3\x28"}',
            b'{"type": "push"',
            b"null",
            b"[]",
            b"1" * 5000,
            b"[" * 100_000,
            b"[" * 1000 + b"]" * 1000,
            b'{"a":' * 30_000,
            b"\xef\xbb\xbf" + b'{"type": "push"}',
        ]
    ),
)


def _hmac_hex(message: bytes) -> str:
    return hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()


def signature_headers(scheme: str, body: bytes, msg_id: str, skew: int) -> dict[str, str | bytes]:
    """Correct credentials for ``scheme`` over ``body`` (timestamp now + ``skew`` s)."""
    timestamp = int(time.time()) + skew
    if scheme == "token":
        return {"X-Webhook-Token": SECRET}
    if scheme == "github":
        return {"X-Hub-Signature-256": "sha256=" + _hmac_hex(body)}
    if scheme == "stripe":
        return {
            "Stripe-Signature": f"t={timestamp},v1={_hmac_hex(f'{timestamp}.'.encode() + body)}"
        }
    if scheme == "standard-webhooks":
        key = base64.b64decode(WHSEC.removeprefix("whsec_"))
        # The id is signed as the bytes sent, whatever they are.
        raw_id = msg_id.encode("utf-8", "surrogatepass")
        signed = raw_id + f".{timestamp}.".encode() + body
        digest = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        return {
            "webhook-id": raw_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": f"v1,{digest}",
        }
    return {}


msg_ids = st.one_of(
    st.sampled_from(["msg_fuzz1", "msg_fuzz2"]),
    st.text(
        alphabet=st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]),
        min_size=1,
        max_size=20,
    ),
)


@pytest.fixture
def fuzz_sources(make_source: Any) -> None:
    destination = Destination.objects.create(name="nowhere", url="http://127.0.0.1:9/hooks")
    for slug, (scheme, limit) in SOURCES.items():
        source = make_source(
            slug=slug,
            verify=scheme,
            secrets=SCHEME_SECRETS[scheme],
            require_event_name=slug.endswith("-strict"),
            max_body_bytes=limit,
        )
        Route.objects.create(source=source, destination=destination)
    make_source(slug=DISABLED_SLUG, enabled=False)


async def _counts() -> tuple[int, int]:
    return await Event.objects.acount(), await Delivery.objects.acount()


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str | bytes], bytes]:
    """A (method, url, headers, body) that is mostly plausible and partly garbage, so
    every stage of ingest (not just the first check) sees odd input."""

    def roll(percent: int) -> bool:
        return draw(st.integers(min_value=0, max_value=99)) < percent

    method = "POST" if roll(90) else draw(odd_methods)
    slug = draw(st.sampled_from(list(SOURCES))) if roll(90) else draw(odd_slugs)
    url = "/hooks/" + quote(slug, safe="") + ("/" if draw(st.booleans()) else "")
    body = draw(json_bodies()) if roll(50) else draw(bodies)
    headers: dict[str, str | bytes] = dict(draw(header_sets))
    content_type = draw(st.sampled_from(JSON_TYPES)) if roll(85) else draw(odd_content_types)
    if content_type is not None:
        headers["Content-Type"] = content_type.encode("latin-1")
    if slug in SOURCES and roll(80):
        skew = 0 if roll(75) else draw(st.sampled_from([-299, 299, -301, 301, -(10**9)]))
        msg_id = draw(msg_ids)
        headers.update(signature_headers(SOURCES[slug][0], body, msg_id, skew))
    return method, url, headers, body


JSON_HEADERS: dict[str, str | bytes] = {"Content-Type": "application/json"}


# Inputs that once broke ingest or sit on a boundary: always tried, before random ones.
@example(("POST", "/hooks/none-lax", JSON_HEADERS, b'{"type": "\\ud800"}'))
@example(
    (
        "POST",
        "/hooks/none-lax",
        JSON_HEADERS,
        '{"event": "a\udfff"}'.encode("utf-8", "surrogatepass"),
    )
)
@example(("POST", "/hooks/none-strict", JSON_HEADERS, b'{"event_name": "push\\u0000"}'))
@example(("POST", "/hooks/none-strict", JSON_HEADERS, b'{"type": "' + b"x" * 300 + b'"}'))
@example(("POST", "/hooks/none-lax", JSON_HEADERS, b"[" * 100_000))
@example(("POST", "/hooks/none-lax", JSON_HEADERS, b'{"type": "\xff\xfe"}'))
@example(("POST", "/hooks/none-lax", JSON_HEADERS, b""))
@example(("POST", "/hooks/none-strict", JSON_HEADERS, _exactly(SMALL_LIMIT)))
@example(("POST", "/hooks/none-strict", JSON_HEADERS, _exactly(SMALL_LIMIT + 1)))
@example(("POST", "/hooks/none-lax", {**JSON_HEADERS, "Idempotency-Key": "k\x00"}, b"{}"))
@example(("OPTIONS", "/hooks/none-lax", JSON_HEADERS, b"{}"))
@example(("POST", "/hooks/" + "a" * 65, JSON_HEADERS, b"{}"))
@example(("POST", "/hooks/%0A", JSON_HEADERS, b"{}"))
@example(("POST", "/hooks/demo%0A", JSON_HEADERS, b"{}"))
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests())
async def test_no_input_produces_a_5xx_and_rejected_input_changes_nothing(
    fuzz_sources: None,
    client: httpx.AsyncClient,
    request: tuple[str, str, dict[str, str | bytes], bytes],
) -> None:
    method, url, headers, body = request
    before = await _counts()
    wire = {
        name.encode(): value if isinstance(value, bytes) else value.encode("latin-1")
        for name, value in headers.items()
    }
    response = await client.request(method, url, content=body, headers=wire)
    after = await _counts()

    status = response.status_code
    assert status < 500, f"{status} for {method} {url}: {response.text[:500]}"
    assert status in {200, 202, 400, 401, 404, 405, 413, 415, 431}, response.text[:500]
    assert response.headers["Content-Type"] == "application/json"
    if response.request.method == "HEAD":
        return  # no body by definition; status and headers are checked above
    payload = response.json()
    if status >= 400:
        for key in ("error", "detail"):
            assert isinstance(payload.get(key), str), payload
            assert payload[key], payload
        assert after == before, f"a {status} changed the tables: {before} -> {after}"
        if status == 405:
            assert response.headers["Allow"] == "POST"
    elif status == 202:
        assert response.request.method == "POST"
        assert after == (before[0] + 1, before[1] + payload["deliveries"])
        assert payload["deliveries"] == 1  # every source has one catch-all route
        assert await Event.objects.filter(pk=payload["id"]).aexists()
    else:
        assert payload["duplicate"] is True
        assert after == before
