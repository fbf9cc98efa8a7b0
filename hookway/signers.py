"""What a sender puts on a webhook so that a source's ``verify`` scheme accepts it: the
token or signature headers of each scheme in docs/verification.md, where the scheme reads
the event name and the sender's delivery id, and nothing else.

The mirror image of hookway.ingest.verify and hookway.ingest.extract, kept apart from
them: plain functions, no Django, so that the command line (``hookway send``, which talks
to Hookway over HTTP only) and the tests can sign webhooks. tests/unit/test_signers.py
holds each scheme's signer to ingest's check of it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from hookway.inbound import VerifyScheme
from hookway.secrets import decode_whsec
from hookway.send.signing import sign as sign_standard_webhooks

__all__ = ["SignError", "SignedWebhook", "needs_secret", "sign_webhook"]


class SignError(ValueError):
    """The webhook can't be signed as asked (a missing or unusable secret, an event name
    the body contradicts); the message says what to change."""


@dataclass(frozen=True)
class SignedWebhook:
    """The body to send (with the event name put in, when the scheme reads it from the
    body) and the headers that make ingest accept it."""

    body: bytes
    headers: dict[str, str]


# Where each scheme reads the event name from the body (first found wins over a header),
# as hookway.ingest.extract does; the header that names it when the body does not.
_BODY_NAME_KEYS: dict[VerifyScheme, tuple[str, ...]] = {
    VerifyScheme.NONE: ("event_name", "type", "event"),
    VerifyScheme.TOKEN: ("event_name", "type", "event"),
    VerifyScheme.HMAC_SHA256: ("event_name", "type", "event"),
    VerifyScheme.GITHUB: (),
    VerifyScheme.GITLAB: ("event_name", "object_kind"),
    VerifyScheme.STRIPE: ("type",),
    VerifyScheme.STANDARD_WEBHOOKS: ("type",),
}
_NAME_HEADER: dict[VerifyScheme, str | None] = {
    VerifyScheme.NONE: "X-Event-Name",
    VerifyScheme.TOKEN: "X-Event-Name",
    VerifyScheme.HMAC_SHA256: "X-Event-Name",
    VerifyScheme.GITHUB: "X-GitHub-Event",
    VerifyScheme.GITLAB: "X-Gitlab-Event",
    VerifyScheme.STRIPE: None,
    VerifyScheme.STANDARD_WEBHOOKS: None,
}
# The header carrying the sender's delivery id (Stripe's is the body's "id", which this
# module leaves as the caller wrote it).
_DELIVERY_HEADER: dict[VerifyScheme, str | None] = {
    VerifyScheme.NONE: "Idempotency-Key",
    VerifyScheme.TOKEN: "Idempotency-Key",
    VerifyScheme.HMAC_SHA256: "Idempotency-Key",
    VerifyScheme.GITHUB: "X-GitHub-Delivery",
    VerifyScheme.GITLAB: "X-Gitlab-Event-UUID",
    VerifyScheme.STRIPE: None,
    VerifyScheme.STANDARD_WEBHOOKS: "webhook-id",
}


def needs_secret(scheme: VerifyScheme) -> bool:
    return scheme != VerifyScheme.NONE


def _hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def _body_name(payload: Any, keys: tuple[str, ...]) -> tuple[str, str] | None:
    """The (key, name) the body names its event with, as ingest reads it, or None."""
    if not isinstance(payload, dict):
        return None
    for key in keys:
        value = payload.get(key)
        if isinstance(value, str) and value.strip():
            return key, value.strip()
    return None


def _name_event(
    scheme: VerifyScheme, body: bytes, event_name: str, headers: dict[str, str]
) -> bytes:
    """Put ``event_name`` where ``scheme`` reads it; the body, changed only when the
    scheme reads the name from the body alone and the body has none."""
    keys = _BODY_NAME_KEYS[scheme]
    header = _NAME_HEADER[scheme]
    try:
        payload = json.loads(body) if keys else None
    except (ValueError, RecursionError):
        payload = None
    named = _body_name(payload, keys)
    if named is not None:
        key, found = named
        if found != event_name:
            raise SignError(
                f"the body's {key!r} is {found!r}, and {scheme.value} reads the event name "
                f"from the body: leave out the event name or make the body say {event_name!r}"
            )
        if header is not None:
            headers[header] = event_name
        return body
    if header is not None:
        headers[header] = event_name
        return body
    # Stripe and Standard Webhooks name the event in the body's "type" only.
    if not isinstance(payload, dict):
        raise SignError(
            f'{scheme.value} reads the event name from the body\'s "type": the body must '
            "be a JSON object"
        )
    rest = {key: value for key, value in payload.items() if key != "type"}
    return json.dumps({"type": event_name, **rest}).encode()


def sign_webhook(
    scheme: VerifyScheme | str,
    body: bytes,
    secret: str | None,
    *,
    event_name: str | None = None,
    delivery_id: str | None = None,
    now: float | None = None,
) -> SignedWebhook:
    """Return ``body`` and the headers a sender of ``scheme`` sends with it, signed with
    ``secret`` at ``now`` (default: the present), naming ``event_name`` (when given) and
    a fresh delivery id (or ``delivery_id``) where the scheme reads them.

    Raises SignError when the scheme needs a secret and has none (or, for Standard
    Webhooks, one that is not ``whsec_`` base64), or when the body names another event
    where the scheme reads it."""
    scheme = VerifyScheme(scheme)
    headers: dict[str, str] = {}
    if event_name is not None:
        body = _name_event(scheme, body, event_name, headers)
    id_header = _DELIVERY_HEADER[scheme]
    if id_header is not None:
        prefix = "msg_" if scheme == VerifyScheme.STANDARD_WEBHOOKS else ""
        headers[id_header] = delivery_id or f"{prefix}{uuid.uuid4()}"
    if not needs_secret(scheme):
        return SignedWebhook(body, headers)
    if not secret:
        raise SignError(f"a source verified with {scheme.value} needs its secret to sign with")
    timestamp = int(time.time() if now is None else now)
    if scheme == VerifyScheme.TOKEN:
        headers["X-Webhook-Token"] = secret
    elif scheme == VerifyScheme.GITLAB:
        headers["X-Gitlab-Token"] = secret
    elif scheme == VerifyScheme.HMAC_SHA256:
        headers["X-Signature-256"] = "sha256=" + _hex_hmac(secret, body)
    elif scheme == VerifyScheme.GITHUB:
        headers["X-Hub-Signature-256"] = "sha256=" + _hex_hmac(secret, body)
    elif scheme == VerifyScheme.STRIPE:
        # Stripe signs with the whole "whsec_…" string as the HMAC key (not decoded).
        signed = f"{timestamp}.".encode() + body
        headers["Stripe-Signature"] = f"t={timestamp},v1={_hex_hmac(secret, signed)}"
    else:
        key = decode_whsec(secret)
        if key is None:
            raise SignError(
                "a Standard Webhooks secret is 'whsec_' followed by base64 (this one is not)"
            )
        headers["webhook-timestamp"] = str(timestamp)
        headers["webhook-signature"] = sign_standard_webhooks(
            key, headers["webhook-id"], timestamp, body
        )
    return SignedWebhook(body, headers)
