"""hookway.signers against ingest's own checks: every scheme's signed webhook passes
hookway.ingest.verify, names its event and delivery id where hookway.ingest.extract reads
them, and fails with any other secret. (``hookway send`` signs with these functions, so
this is what keeps the command line and ingest in agreement.)"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from hookway.inbound import VerifyScheme
from hookway.ingest import extract
from hookway.ingest.errors import SignatureInvalid
from hookway.ingest.verify import TOLERANCE_SECONDS, verify
from hookway.signers import SignError, sign_webhook
from tests.unit.test_verify import headers

NOW = 1_700_000_000
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SECRETS = {
    VerifyScheme.NONE: None,
    VerifyScheme.TOKEN: "tok-3f9a",
    VerifyScheme.HMAC_SHA256: "hmac-secret",
    VerifyScheme.GITHUB: "It's a Secret to Everybody",
    VerifyScheme.GITLAB: "glpat-like-token",
    VerifyScheme.STRIPE: "whsec_stripe_test_secret",
    VerifyScheme.STANDARD_WEBHOOKS: WHSEC,
}
WRONG = {
    VerifyScheme.TOKEN: "tok-3f9b",
    VerifyScheme.HMAC_SHA256: "hmac-secreT",
    VerifyScheme.GITHUB: "It's a Secret to Everybody ",
    VerifyScheme.GITLAB: "glpat-like-tokeN",
    VerifyScheme.STRIPE: "whsec_stripe_test_secreT",
    VerifyScheme.STANDARD_WEBHOOKS: "whsec_" + base64.b64encode(b"another key").decode(),
}


def payload(body: bytes) -> object:
    return json.loads(body)


@pytest.mark.parametrize("scheme", list(VerifyScheme))
def test_every_schemes_signed_webhook_passes_ingests_check_and_names_its_event(scheme):
    signed = sign_webhook(scheme, b'{"ref": "main"}', SECRETS[scheme], event_name="push", now=NOW)

    named = headers(signed.headers)
    verify(scheme, named, signed.body, [s for s in [SECRETS[scheme]] if s], now=NOW)
    assert extract.event_name(scheme, named, payload(signed.body)) == "push"
    assert payload(signed.body)["ref"] == "main"


@pytest.mark.parametrize("scheme", [s for s in VerifyScheme if s != VerifyScheme.STRIPE])
def test_each_webhook_gets_a_fresh_delivery_id_where_ingest_reads_it(scheme):
    first = sign_webhook(scheme, b"{}", SECRETS[scheme], event_name="push", now=NOW)
    second = sign_webhook(scheme, b"{}", SECRETS[scheme], event_name="push", now=NOW)

    ids = [extract.delivery_id(scheme, headers(s.headers), {}) for s in (first, second)]
    assert ids[0]
    assert ids[1]
    assert ids[0] != ids[1]
    given_id = sign_webhook(scheme, b"{}", SECRETS[scheme], delivery_id="d-1", now=NOW)
    assert extract.delivery_id(scheme, headers(given_id.headers), {}) == "d-1"


@pytest.mark.parametrize("scheme", list(WRONG))
def test_a_webhook_signed_with_another_secret_is_rejected(scheme):
    signed = sign_webhook(scheme, b'{"type": "push"}', WRONG[scheme], now=NOW)

    with pytest.raises(SignatureInvalid):
        verify(scheme, headers(signed.headers), signed.body, [SECRETS[scheme]], now=NOW)


@pytest.mark.parametrize("scheme", [VerifyScheme.STRIPE, VerifyScheme.STANDARD_WEBHOOKS])
def test_timestamped_schemes_sign_the_time_given(scheme):
    signed = sign_webhook(scheme, b'{"type": "a"}', SECRETS[scheme], now=NOW)

    verify(scheme, headers(signed.headers), signed.body, [SECRETS[scheme]], now=NOW + 10)
    late = NOW + TOLERANCE_SECONDS + 1
    with pytest.raises(SignatureInvalid):
        verify(scheme, headers(signed.headers), signed.body, [SECRETS[scheme]], now=late)


def test_standard_webhooks_signature_is_what_the_reference_library_verifies():
    signed = sign_webhook("standard-webhooks", b'{"type": "invoice.paid"}', WHSEC, now=NOW)

    when = datetime.fromtimestamp(NOW, UTC)
    reference = Webhook(WHSEC).sign(
        msg_id=signed.headers["webhook-id"], timestamp=when, data=signed.body.decode()
    )
    assert signed.headers["webhook-signature"] == reference


def test_stripe_signature_is_the_documented_hmac_of_timestamp_and_body():
    # https://docs.stripe.com/webhooks#verify-manually: HMAC-SHA256, keyed with the
    # endpoint's whole signing secret, of "{t}.{body}".
    body = b'{"id": "evt_1", "type": "invoice.paid"}'
    signed = sign_webhook("stripe", body, "whsec_abc", now=NOW)

    expected = hmac.new(b"whsec_abc", f"{NOW}.".encode() + body, hashlib.sha256).hexdigest()
    assert signed.headers["Stripe-Signature"] == f"t={NOW},v1={expected}"
    assert extract.delivery_id("stripe", headers(signed.headers), payload(body)) == "evt_1"


@pytest.mark.parametrize("scheme", [VerifyScheme.STRIPE, VerifyScheme.STANDARD_WEBHOOKS])
def test_schemes_naming_the_event_in_the_body_get_it_put_there(scheme):
    signed = sign_webhook(
        scheme, b'{"data": {"n": 1}, "type": ""}', SECRETS[scheme], event_name="x"
    )

    assert payload(signed.body) == {"type": "x", "data": {"n": 1}}


@pytest.mark.parametrize("scheme", [VerifyScheme.STRIPE, VerifyScheme.STANDARD_WEBHOOKS])
def test_schemes_naming_the_event_in_the_body_need_a_json_object(scheme):
    with pytest.raises(SignError, match="JSON object"):
        sign_webhook(scheme, b"[1, 2]", SECRETS[scheme], event_name="x")


@pytest.mark.parametrize(
    ("scheme", "body"),
    [
        ("none", b'{"event_name": "pull"}'),
        ("hmac-sha256", b'{"type": "pull"}'),
        ("gitlab", b'{"object_kind": "pull"}'),
        ("stripe", b'{"type": "pull"}'),
    ],
)
def test_an_event_name_the_body_contradicts_is_refused_not_sent(scheme, body):
    with pytest.raises(SignError, match="'pull'"):
        sign_webhook(scheme, body, "whsec_abc", event_name="push")


def test_the_event_name_the_body_already_gives_is_fine():
    signed = sign_webhook("gitlab", b'{"object_kind": "push"}', "t", event_name="push")
    assert signed.body == b'{"object_kind": "push"}'


@pytest.mark.parametrize("scheme", [s for s in VerifyScheme if s != VerifyScheme.NONE])
def test_a_scheme_with_a_secret_refuses_to_sign_without_one(scheme):
    with pytest.raises(SignError, match="needs its secret"):
        sign_webhook(scheme, b"{}", None)


def test_a_standard_webhooks_secret_must_be_whsec_base64():
    with pytest.raises(SignError, match="whsec_"):
        sign_webhook("standard-webhooks", b"{}", "whsec_not*base64")


@settings(max_examples=60)
@given(
    scheme=st.sampled_from([s for s in VerifyScheme if s != VerifyScheme.NONE]),
    secret=st.text(
        st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=40
    ),
    body=st.binary(max_size=200),
)
def test_any_body_signed_with_any_secret_passes_ingests_check(scheme, secret, body):
    if scheme == VerifyScheme.STANDARD_WEBHOOKS:
        secret = "whsec_" + base64.b64encode(secret.encode()).decode()
    if scheme in (VerifyScheme.TOKEN, VerifyScheme.GITLAB):
        # A token travels as a header value: spaces and tabs at its ends are not part of
        # it (HTTP strips them), and it is sent as UTF-8 bytes, as a sender would.
        secret = secret.strip(" \t") or "t"
    signed = sign_webhook(scheme, body, secret, now=NOW)

    raw = {name: value.encode() for name, value in signed.headers.items()}
    verify(scheme, headers(raw), signed.body, [secret], now=NOW)
    assert signed.body == body
