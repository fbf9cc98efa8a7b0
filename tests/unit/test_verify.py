"""Unit tests of hookway.ingest.verify and hookway.ingest.extract, scheme by scheme.

Headers are built the way Django hands them to the view: a case-insensitive HttpHeaders
whose values are the raw header bytes decoded as latin-1 (what ASGI servers give Django).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from django.http.request import HttpHeaders
from standardwebhooks.webhooks import Webhook

from hookway.inbound import VerifyScheme
from hookway.ingest import extract
from hookway.ingest.errors import InvalidField, SignatureInvalid
from hookway.ingest.verify import CHECKS, TOLERANCE_SECONDS, verify

NOW = 1_700_000_000
BODY = b'{"type": "invoice.paid", "id": "evt_1"}'


def headers(named: Mapping[str, str | bytes]) -> HttpHeaders:
    """Request headers as Django's ASGI request exposes them; bytes are sent as-is."""
    meta = {}
    for name, value in named.items():
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        key = name.upper().replace("-", "_")
        meta[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = text
    return HttpHeaders(meta)


def hex_hmac(secret: str | bytes, message: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def arabic_indic(number: int) -> str:
    """``number`` in Arabic-Indic digits, which str.isdigit() accepts and int() parses."""
    return str(number).translate(
        str.maketrans("0123456789", "".join(map(chr, range(0x660, 0x66A))))
    )


def rejects(scheme: str, named: Mapping[str, str | bytes], body: bytes, secrets: list[str]):
    with pytest.raises(SignatureInvalid) as caught:
        verify(scheme, headers(named), body, secrets, now=NOW)
    return caught.value


def test_every_scheme_has_a_check():
    assert set(CHECKS) == set(VerifyScheme)


# --- none ---------------------------------------------------------------------------------


def test_none_accepts_anything_without_a_secret():
    verify("none", headers({}), b"whatever", [], now=NOW)


# --- token --------------------------------------------------------------------------------


def test_token_accepts_the_configured_secret():
    verify("token", headers({"X-Webhook-Token": "s3cret"}), BODY, ["s3cret"], now=NOW)


def test_token_rejects_a_missing_header_and_a_wrong_token():
    rejects("token", {}, BODY, ["s3cret"])
    rejects("token", {"X-Webhook-Token": ""}, BODY, ["s3cret"])
    rejects("token", {"X-Webhook-Token": "s3cre"}, BODY, ["s3cret"])
    rejects("token", {"X-Webhook-Token": "s3cret-and-more"}, BODY, ["s3cret"])


def test_token_accepts_the_second_of_two_rotated_secrets():
    verify("token", headers({"X-Webhook-Token": "new"}), BODY, ["old", "new"], now=NOW)


def test_a_source_without_any_usable_secret_rejects_everything():
    error = rejects("token", {"X-Webhook-Token": ""}, BODY, [])
    assert "secret" in error.detail
    rejects("github", {"X-Hub-Signature-256": "sha256=" + hex_hmac("", BODY)}, BODY, [])


def test_token_compares_the_raw_header_bytes_with_a_utf8_secret():
    # A sender sends UTF-8 bytes; Django decodes them as latin-1; the check must undo that.
    verify("token", headers({"X-Webhook-Token": "tökén".encode()}), BODY, ["tökén"], now=NOW)
    rejects("token", {"X-Webhook-Token": "tökén".encode("latin-1")}, BODY, ["tökén"])


# --- hmac-sha256 and github (same signature format, different headers) ----------------------


@pytest.mark.parametrize(
    ("scheme", "header"), [("hmac-sha256", "X-Signature-256"), ("github", "X-Hub-Signature-256")]
)
def test_body_hmac_accepts_a_valid_signature_in_its_own_header_only(scheme, header):
    signature = "sha256=" + hex_hmac("topsecret", BODY)
    verify(scheme, headers({header: signature}), BODY, ["topsecret"], now=NOW)
    other = "X-Hub-Signature-256" if header == "X-Signature-256" else "X-Signature-256"
    rejects(scheme, {other: signature}, BODY, ["topsecret"])


@pytest.mark.parametrize("scheme", ["hmac-sha256", "github"])
def test_body_hmac_rejects_wrong_secret_tampered_body_and_missing_header(scheme):
    header = "X-Signature-256" if scheme == "hmac-sha256" else "X-Hub-Signature-256"
    signature = "sha256=" + hex_hmac("topsecret", BODY)
    rejects(scheme, {header: signature}, BODY, ["wrong"])
    rejects(scheme, {header: signature}, BODY + b" ", ["topsecret"])
    rejects(scheme, {header: signature}, BODY.replace(b"paid", b"void"), ["topsecret"])
    rejects(scheme, {}, BODY, ["topsecret"])


@pytest.mark.parametrize("scheme", ["hmac-sha256", "github"])
def test_body_hmac_accepts_the_second_of_two_rotated_secrets(scheme):
    header = "X-Signature-256" if scheme == "hmac-sha256" else "X-Hub-Signature-256"
    signature = "sha256=" + hex_hmac("new", BODY)
    verify(scheme, headers({header: signature}), BODY, ["old", "new"], now=NOW)


@pytest.mark.parametrize(
    "value",
    [
        "sha256=zz",
        "sha256=",
        "sha256",
        "sha1=" + hex_hmac("topsecret", BODY)[:40],
        hex_hmac("topsecret", BODY),  # the hex without its prefix
        "sha256=" + hex_hmac("topsecret", BODY)[:-1],
        "sha256=" + hex_hmac("topsecret", BODY) + "0",
        "sha256=" + "é" * 64,
        "sha256=" + "€" * 64,  # not latin-1: can't come from a real server, must not crash
        "sha256=\x00",
        "  ",
    ],
)
@pytest.mark.parametrize("scheme", ["hmac-sha256", "github"])
def test_body_hmac_rejects_malformed_signature_headers(scheme, value):
    header = "X-Signature-256" if scheme == "hmac-sha256" else "X-Hub-Signature-256"
    rejects(scheme, {header: value}, BODY, ["topsecret"])


def test_github_documented_example_signature_verifies():
    # GitHub's own test values, "Testing the webhook payload validation" in
    # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    # (github/docs: content/webhooks/using-webhooks/validating-webhook-deliveries.md).
    secret = "It's a Secret to Everybody"
    payload = b"Hello, World!"
    documented = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    verify("github", headers({"X-Hub-Signature-256": documented}), payload, [secret], now=NOW)
    rejects("github", {"X-Hub-Signature-256": documented}, b"Hello, World?", [secret])
    rejects("github", {"X-Hub-Signature-256": documented}, payload, [secret + " "])


def test_github_reads_event_name_and_delivery_id_from_its_headers():
    named = headers(
        {"X-GitHub-Event": "push", "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
    )
    payload = {"event_name": "ignored", "type": "ignored", "action": "opened"}
    assert extract.event_name("github", named, payload) == "push"
    assert extract.delivery_id("github", named, payload) == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert extract.event_name("github", headers({}), payload) is None
    assert extract.delivery_id("github", headers({}), payload) is None


# --- gitlab -------------------------------------------------------------------------------

# Trimmed from GitLab's documented payloads. System hook "Project created" in
# https://docs.gitlab.com/administration/system_hooks/ (gitlabhq: doc/administration/system_hooks.md);
# project hook "Push events" and "Merge request events" in
# https://docs.gitlab.com/user/project/integrations/webhook_events/
# (gitlabhq: doc/user/project/integrations/webhook_events.md).
GITLAB_SYSTEM_PROJECT_CREATE = b"""{
            "created_at": "2012-07-21T07:30:54Z",
            "updated_at": "2012-07-21T07:38:22Z",
            "event_name": "project_create",
                  "name": "StoreCloud",
           "owner_email": "johnsmith@example.com",
            "owner_name": "John Smith",
                  "path": "storecloud",
   "path_with_namespace": "jsmith/storecloud",
            "project_id": 74,
 "project_namespace_id" : 23,
    "project_visibility": "private"
}"""
GITLAB_PUSH = b"""{
  "object_kind": "push",
  "event_name": "push",
  "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
  "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
  "ref": "refs/heads/master",
  "ref_protected": true,
  "checkout_sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
  "user_id": 4,
  "user_name": "John Smith",
  "project_id": 15,
  "commits": [],
  "total_commits_count": 4
}"""
GITLAB_MERGE_REQUEST = b"""{
  "object_kind": "merge_request",
  "event_type": "merge_request",
  "user": {"id": 1, "name": "Administrator", "username": "root"},
  "project": {"id": 1, "name": "Gitlab Test", "path_with_namespace": "gitlabhq/gitlab-test"},
  "object_attributes": {
    "id": 99,
    "iid": 1,
    "target_branch": "master",
    "source_branch": "ms-viewport",
    "title": "MS-Viewport",
    "state": "opened",
    "action": "open"
  }
}"""


def test_gitlab_accepts_the_secret_token_and_the_second_of_two_rotated_tokens():
    verify("gitlab", headers({"X-Gitlab-Token": "glt"}), GITLAB_PUSH, ["glt"], now=NOW)
    verify("gitlab", headers({"X-Gitlab-Token": "glt2"}), GITLAB_PUSH, ["glt", "glt2"], now=NOW)


def test_gitlab_rejects_a_missing_or_wrong_token_and_other_schemes_headers():
    rejects("gitlab", {}, GITLAB_PUSH, ["glt"])
    rejects("gitlab", {"X-Gitlab-Token": "GLT"}, GITLAB_PUSH, ["glt"])
    rejects("gitlab", {"X-Webhook-Token": "glt"}, GITLAB_PUSH, ["glt"])
    # HTTP strips only spaces and tabs around a value; latin-1 NBSP and NEL are content.
    rejects("gitlab", {"X-Gitlab-Token": b"glt\xa0"}, GITLAB_PUSH, ["glt"])
    rejects("gitlab", {"X-Gitlab-Token": b"\x85glt"}, GITLAB_PUSH, ["glt"])


@pytest.mark.parametrize(
    ("body", "header", "expected"),
    [
        (GITLAB_SYSTEM_PROJECT_CREATE, "System Hook", "project_create"),
        (GITLAB_PUSH, "Push Hook", "push"),
        (GITLAB_MERGE_REQUEST, "Merge Request Hook", "merge_request"),
    ],
)
def test_gitlab_event_name_comes_from_event_name_or_object_kind_before_the_header(
    body, header, expected
):
    named = headers({"X-Gitlab-Event": header})
    assert extract.event_name("gitlab", named, json.loads(body)) == expected


def test_gitlab_event_name_falls_back_to_the_x_gitlab_event_header():
    named = headers({"X-Gitlab-Event": "Pipeline Hook"})
    assert extract.event_name("gitlab", named, {"object_attributes": {}}) == "Pipeline Hook"
    assert extract.event_name("gitlab", named, ["not", "an", "object"]) == "Pipeline Hook"
    assert extract.event_name("gitlab", named, {"object_kind": "  "}) == "Pipeline Hook"
    assert extract.event_name("gitlab", headers({}), {"object_kind": 3}) is None


@pytest.mark.parametrize("header", ["System Hook", "system hook", " SYSTEM HOOK "])
def test_gitlab_system_hook_header_is_never_the_event_name(header):
    named = headers({"X-Gitlab-Event": header})
    assert extract.event_name("gitlab", named, {"project_id": 15}) is None
    assert extract.event_name("gitlab", named, {"object_kind": "push"}) == "push"
    assert extract.event_name("gitlab", named, {"event_name": "user_create"}) == "user_create"


def test_gitlab_delivery_id_prefers_idempotency_key_over_the_event_uuid():
    both = headers(
        {
            "Idempotency-Key": "2f7a0c3e-retry-stable",
            "X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e",
        }
    )
    uuid_only = headers({"X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e"})
    payload = json.loads(GITLAB_PUSH)
    assert extract.delivery_id("gitlab", both, payload) == "2f7a0c3e-retry-stable"
    assert (
        extract.delivery_id("gitlab", uuid_only, payload) == "13792a34-cac6-4fda-95a8-c58e00a3954e"
    )
    assert extract.delivery_id("gitlab", headers({}), payload) is None


# --- stripe -------------------------------------------------------------------------------


def stripe_header(secret: str, body: bytes, timestamp: int = NOW, *extra: str) -> str:
    # As Stripe documents it: HMAC-SHA256 keyed with the endpoint secret over
    # "{t}.{raw body}", hex, sent as "t=…,v1=…" ("Verify signatures manually" in
    # https://docs.stripe.com/webhooks#verify-manually; stripe-ruby's compute_signature,
    # https://www.rubydoc.info/gems/stripe/Stripe/Webhook/Signature).
    signature = hex_hmac(secret, f"{timestamp}.".encode() + body)
    return ",".join([f"t={timestamp}", f"v1={signature}", *extra])


STRIPE_SECRET = "whsec_test_5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH"


def test_stripe_accepts_a_valid_signature():
    named = headers({"Stripe-Signature": stripe_header(STRIPE_SECRET, BODY)})
    verify("stripe", named, BODY, [STRIPE_SECRET], now=NOW)


def test_stripe_accepts_one_matching_v1_among_several_and_ignores_v0():
    good = stripe_header(STRIPE_SECRET, BODY).split(",v1=")[1]
    stale = hex_hmac("whsec_rolled_away", f"{NOW}.".encode() + BODY)
    header = f"t={NOW},v1={stale},v1={good},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07"
    verify("stripe", headers({"Stripe-Signature": header}), BODY, [STRIPE_SECRET], now=NOW)
    rejects("stripe", {"Stripe-Signature": f"t={NOW},v1={stale}"}, BODY, [STRIPE_SECRET])
    v0_only = f"t={NOW},v0={good}"
    rejects("stripe", {"Stripe-Signature": v0_only}, BODY, [STRIPE_SECRET])


def test_stripe_accepts_the_second_of_two_rotated_secrets():
    named = headers({"Stripe-Signature": stripe_header("whsec_new", BODY)})
    verify("stripe", named, BODY, ["whsec_old", "whsec_new"], now=NOW)


def test_stripe_rejects_wrong_secret_tampered_body_and_missing_header():
    header = stripe_header(STRIPE_SECRET, BODY)
    rejects("stripe", {"Stripe-Signature": header}, BODY, ["whsec_other"])
    rejects("stripe", {"Stripe-Signature": header}, BODY[:-1] + b" }", [STRIPE_SECRET])
    rejects("stripe", {}, BODY, [STRIPE_SECRET])


def test_stripe_signature_covers_the_timestamp():
    signature = stripe_header(STRIPE_SECRET, BODY).split(",v1=")[1]
    moved = f"t={NOW + 1},v1={signature}"
    rejects("stripe", {"Stripe-Signature": moved}, BODY, [STRIPE_SECRET])


@pytest.mark.parametrize(
    "offset", [TOLERANCE_SECONDS + 1, -(TOLERANCE_SECONDS + 1), 86_400, -86_400]
)
def test_stripe_rejects_timestamps_outside_the_tolerance_in_both_directions(offset):
    header = stripe_header(STRIPE_SECRET, BODY, NOW + offset)
    error = rejects("stripe", {"Stripe-Signature": header}, BODY, [STRIPE_SECRET])
    assert "tolerance" in error.detail


@pytest.mark.parametrize("offset", [TOLERANCE_SECONDS, -TOLERANCE_SECONDS, 0])
def test_stripe_accepts_timestamps_at_the_edge_of_the_tolerance(offset):
    header = stripe_header(STRIPE_SECRET, BODY, NOW + offset)
    verify("stripe", headers({"Stripe-Signature": header}), BODY, [STRIPE_SECRET], now=NOW)


@pytest.mark.parametrize(
    "template",
    [
        "v1={sig}",  # no t=
        "t={t}",  # no v1=
        "t={t},t={t},v1={sig}",  # two timestamps
        "t=,v1={sig}",
        "t=abc,v1={sig}",
        "t=-{t},v1={sig}",
        "t=+{t},v1={sig}",
        "t={t}.0,v1={sig}",
        "t={arabic},v1={sig}",  # Arabic-Indic digits: str.isdigit() says yes
        "t=1e9,v1={sig}",
        "t=99999999999999999999,v1={sig}",
        "t {t}, v1 {sig}",
        "t={t};v1={sig}",
        "t={t},v1=zz",
        "t={t},v1=",
        "t={t},v1=ü{sig}",
        "t={t},v1=€",
        ",,,",
        "=",
    ],
)
def test_stripe_rejects_malformed_signature_headers(template):
    signature = stripe_header(STRIPE_SECRET, BODY).split(",v1=")[1]
    header = template.format(t=NOW, sig=signature, arabic=arabic_indic(NOW))
    rejects("stripe", {"Stripe-Signature": header}, BODY, [STRIPE_SECRET])


def test_stripe_reads_type_and_id_from_the_body():
    payload = {"id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "object": "event", "type": "invoice.paid"}
    named = headers({"Idempotency-Key": "not-this", "X-Event-Name": "not-this"})
    assert extract.event_name("stripe", named, payload) == "invoice.paid"
    assert extract.delivery_id("stripe", named, payload) == "evt_1NG8Du2eZvKYlo2CUI79vXWy"
    assert extract.event_name("stripe", named, {"id": 5}) is None
    assert extract.delivery_id("stripe", named, {"id": 5}) is None


# --- standard-webhooks --------------------------------------------------------------------

# The reference library's test vector: test_sign_function in
# https://github.com/standard-webhooks/standard-webhooks/blob/main/libraries/python/tests/test_webhooks.py
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = 1614265330
SW_PAYLOAD = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def sw_headers(signature: str, msg_id: str | bytes = SW_MSG_ID, ts: int | str = SW_TIMESTAMP):
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def test_standard_webhooks_reference_example_verifies():
    named = headers(sw_headers(SW_SIGNATURE))
    verify("standard-webhooks", named, SW_PAYLOAD, [SW_SECRET], now=SW_TIMESTAMP)


def test_standard_webhooks_reference_example_rejects_any_changed_part():
    now = SW_TIMESTAMP
    for named, body in [
        (sw_headers(SW_SIGNATURE), b'{"test": 2432232315}'),
        (sw_headers(SW_SIGNATURE, msg_id="msg_p5jXN8AQM9LWM0D4loKWxJel"), SW_PAYLOAD),
        (sw_headers(SW_SIGNATURE, ts=SW_TIMESTAMP + 1), SW_PAYLOAD),
        # The reference library's own "invalid signature" case: one character changed.
        (sw_headers("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="), SW_PAYLOAD),
        (sw_headers(SW_SIGNATURE.replace("v1,", "v2,")), SW_PAYLOAD),
    ]:
        with pytest.raises(SignatureInvalid):
            verify("standard-webhooks", headers(named), body, [SW_SECRET], now=now)
    other = "whsec_" + base64.b64encode(b"another key of 24 bytes.").decode()
    with pytest.raises(SignatureInvalid):
        verify("standard-webhooks", headers(sw_headers(SW_SIGNATURE)), SW_PAYLOAD, [other], now=now)


def test_standard_webhooks_accepts_a_secret_without_the_whsec_prefix():
    named = headers(sw_headers(SW_SIGNATURE))
    bare = SW_SECRET.removeprefix("whsec_")
    verify("standard-webhooks", named, SW_PAYLOAD, [bare], now=SW_TIMESTAMP)


def test_standard_webhooks_accepts_the_second_of_two_rotated_secrets():
    named = headers(sw_headers(SW_SIGNATURE))
    old = "whsec_" + base64.b64encode(b"the key that was rotated").decode()
    verify("standard-webhooks", named, SW_PAYLOAD, [old, SW_SECRET], now=SW_TIMESTAMP)


def test_standard_webhooks_skips_an_undecodable_secret_and_tries_the_next():
    named = headers(sw_headers(SW_SIGNATURE))
    verify("standard-webhooks", named, SW_PAYLOAD, ["whsec_!!!", SW_SECRET], now=SW_TIMESTAMP)
    with pytest.raises(SignatureInvalid):
        verify("standard-webhooks", named, SW_PAYLOAD, ["whsec_!!!", "whsec_"], now=SW_TIMESTAMP)


def test_standard_webhooks_accepts_one_match_among_several_signatures():
    # The shape of the reference library's test_multi_sig_payload_is_valid.
    wrong = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
    several = " ".join([wrong, "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", SW_SIGNATURE])
    verify(
        "standard-webhooks", headers(sw_headers(several)), SW_PAYLOAD, [SW_SECRET], now=SW_TIMESTAMP
    )
    with pytest.raises(SignatureInvalid):
        verify(
            "standard-webhooks",
            headers(sw_headers(wrong)),
            SW_PAYLOAD,
            [SW_SECRET],
            now=SW_TIMESTAMP,
        )


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_standard_webhooks_rejects_a_missing_header(missing):
    named = sw_headers(SW_SIGNATURE)
    del named[missing]
    with pytest.raises(SignatureInvalid):
        verify("standard-webhooks", headers(named), SW_PAYLOAD, [SW_SECRET], now=SW_TIMESTAMP)


@pytest.mark.parametrize("offset", [TOLERANCE_SECONDS + 1, -(TOLERANCE_SECONDS + 1), 3_600, -3_600])
def test_standard_webhooks_rejects_timestamps_outside_the_tolerance_in_both_directions(offset):
    named = headers(sw_headers(SW_SIGNATURE))
    with pytest.raises(SignatureInvalid) as caught:
        verify("standard-webhooks", named, SW_PAYLOAD, [SW_SECRET], now=SW_TIMESTAMP + offset)
    assert "tolerance" in caught.value.detail


@pytest.mark.parametrize("offset", [TOLERANCE_SECONDS, -TOLERANCE_SECONDS])
def test_standard_webhooks_accepts_timestamps_at_the_edge_of_the_tolerance(offset):
    named = headers(sw_headers(SW_SIGNATURE))
    verify("standard-webhooks", named, SW_PAYLOAD, [SW_SECRET], now=SW_TIMESTAMP + offset)


@pytest.mark.parametrize(
    ("signature", "timestamp"),
    [
        ("v1", str(SW_TIMESTAMP)),  # v1 without a comma
        ("v1" + SW_SIGNATURE[3:], str(SW_TIMESTAMP)),
        ("v1,", str(SW_TIMESTAMP)),
        ("v1,not base64 at all", str(SW_TIMESTAMP)),
        ("v1,ü" + SW_SIGNATURE[3:], str(SW_TIMESTAMP)),
        ("v1,€€€", str(SW_TIMESTAMP)),
        (SW_SIGNATURE.replace(",", ", "), str(SW_TIMESTAMP)),
        (SW_SIGNATURE, "hello"),  # the reference library's invalid-timestamp case
        (SW_SIGNATURE, f"{SW_TIMESTAMP}.0"),
        (SW_SIGNATURE, f"-{SW_TIMESTAMP}"),
        (SW_SIGNATURE, arabic_indic(SW_TIMESTAMP)),  # str.isdigit() says yes
        (SW_SIGNATURE, "9" * 30),
        (SW_SIGNATURE, "2021-02-25T15:02:10Z"),
    ],
)
def test_standard_webhooks_rejects_malformed_signature_and_timestamp_headers(signature, timestamp):
    named = headers(sw_headers(signature, ts=timestamp))
    with pytest.raises(SignatureInvalid):
        verify("standard-webhooks", named, SW_PAYLOAD, [SW_SECRET], now=SW_TIMESTAMP)


def oracle_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Sign with the standardwebhooks reference library (an independent implementation)."""
    return Webhook(secret).sign(
        msg_id=msg_id, timestamp=datetime.fromtimestamp(timestamp, tz=UTC), data=body.decode()
    )


@pytest.mark.parametrize(
    ("secret", "body"),
    [
        ("whsec_" + base64.b64encode(bytes(range(24))).decode(), b'{"type": "user.created"}'),
        ("whsec_" + base64.b64encode(b"\xff" * 64).decode(), b"{}"),
        ("whsec_" + base64.b64encode(b"k" * 32).decode(), '{"name": "Zoë ✓"}'.encode()),
        ("whsec_" + base64.b64encode(b"k" * 32).decode(), b'{\n  "a": [1, 2, 3]\n}\n'),
    ],
)
def test_standard_webhooks_agrees_with_the_reference_library(secret, body):
    msg_id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    signature = oracle_signature(secret, msg_id, NOW, body)
    named = headers(sw_headers(signature, msg_id=msg_id, ts=NOW))
    verify("standard-webhooks", named, body, [secret], now=NOW)
    with pytest.raises(SignatureInvalid):
        verify("standard-webhooks", named, body + b" ", [secret], now=NOW)


def test_standard_webhooks_accepts_an_unpadded_secret_like_the_reference_library():
    # The reference library pads the base64 secret itself, so senders may hand it out bare.
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode().rstrip("=")
    assert not secret.endswith("=")
    signature = oracle_signature(secret, SW_MSG_ID, NOW, SW_PAYLOAD)
    named = headers(sw_headers(signature, ts=NOW))
    verify("standard-webhooks", named, SW_PAYLOAD, [secret], now=NOW)


def test_standard_webhooks_signs_the_raw_bytes_of_a_non_ascii_message_id():
    msg_id = "msg_zoë"
    signature = oracle_signature(SW_SECRET, msg_id, NOW, SW_PAYLOAD)
    named = headers(sw_headers(signature, msg_id=msg_id.encode(), ts=NOW))
    verify("standard-webhooks", named, SW_PAYLOAD, [SW_SECRET], now=NOW)


def test_standard_webhooks_reads_type_from_the_body_and_id_from_the_header():
    named = headers(sw_headers(SW_SIGNATURE))
    payload = {"type": "user.created", "id": "not-this", "event_name": "not-this"}
    assert extract.event_name("standard-webhooks", named, payload) == "user.created"
    assert extract.delivery_id("standard-webhooks", named, payload) == SW_MSG_ID
    assert extract.event_name("standard-webhooks", named, {"event": "x"}) is None


# --- no exception other than SignatureInvalid, whatever the headers ----------------------


@pytest.mark.parametrize(
    "scheme", ["token", "hmac-sha256", "github", "gitlab", "stripe", "standard-webhooks"]
)
@pytest.mark.parametrize(
    "value",
    ["", " ", ",", "=", "v1,", "t=", "\x00", "é" * 10, "€", "\udcff", "x" * 10_000, "sha256=é"],
)
def test_every_scheme_answers_garbage_with_signature_invalid_only(scheme, value):
    named = {
        name: value
        for name in [
            "X-Webhook-Token",
            "X-Signature-256",
            "X-Hub-Signature-256",
            "X-Gitlab-Token",
            "Stripe-Signature",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
        ]
    }
    rejects(scheme, named, BODY, ["s3cret", SW_SECRET])


def test_error_details_never_name_a_secret():
    secrets = ["first-secret-value", "second-secret-value"]
    cases = [
        ("token", {"X-Webhook-Token": "first-secret-valu"}),
        ("gitlab", {"X-Gitlab-Token": "nope"}),
        ("github", {"X-Hub-Signature-256": "sha256=" + hex_hmac("x", BODY)}),
        ("stripe", {"Stripe-Signature": stripe_header("x", BODY)}),
    ]
    for scheme, named in cases:
        detail = rejects(scheme, named, BODY, secrets).detail
        assert "secret-value" not in detail
        assert "first" not in detail
        assert "second" not in detail


# --- extract: defaults and field hygiene --------------------------------------------------


@pytest.mark.parametrize("scheme", ["none", "token", "hmac-sha256"])
def test_generic_schemes_read_event_name_type_event_then_the_header(scheme):
    named = headers({"X-Event-Name": "from.header", "Idempotency-Key": "key-1"})
    assert extract.event_name(scheme, named, {"event_name": "a", "type": "b", "event": "c"}) == "a"
    assert extract.event_name(scheme, named, {"type": "b", "event": "c"}) == "b"
    assert extract.event_name(scheme, named, {"event": "c"}) == "c"
    assert extract.event_name(scheme, named, {"event": ""}) == "from.header"
    assert extract.event_name(scheme, headers({}), {"type": None}) is None
    assert extract.delivery_id(scheme, named, {"id": "not-this"}) == "key-1"
    assert extract.delivery_id(scheme, headers({}), {"id": "not-this"}) is None


def test_extracted_fields_are_stripped_of_surrounding_whitespace():
    named = headers({"Idempotency-Key": "  key-1  "})
    assert extract.event_name("none", named, {"type": "  push\t"}) == "push"
    assert extract.delivery_id("none", named, {}) == "key-1"


@pytest.mark.parametrize(
    "name", ["x" * 256, "push\x00", "push\nX-Injected: 1", "a\rb", "tab\tinside", "del\x7f"]
)
def test_an_event_name_too_long_or_with_control_characters_is_an_invalid_field(name):
    with pytest.raises(InvalidField) as caught:
        extract.event_name("none", headers({}), {"type": name})
    assert caught.value.status == 400
    assert "event name" in caught.value.detail


def test_an_event_name_of_exactly_255_characters_is_kept():
    assert extract.event_name("none", headers({}), {"type": "x" * 255}) == "x" * 255


@pytest.mark.parametrize("key", ["y" * 256, "key\x01", "key\x1b[31m"])
def test_a_delivery_id_too_long_or_with_control_characters_is_an_invalid_field(key):
    with pytest.raises(InvalidField) as caught:
        extract.delivery_id("none", headers({"Idempotency-Key": key}), {})
    assert "delivery id" in caught.value.detail


def test_an_event_name_from_a_header_is_checked_too():
    with pytest.raises(InvalidField):
        extract.event_name("github", headers({"X-GitHub-Event": "p" * 300}), {})
