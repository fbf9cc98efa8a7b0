"""Signature and token checks for every ``verify`` scheme in the ingest contract.

Each check takes the raw body bytes (never a decoded or re-serialised copy), the request
headers and the source's resolved secrets, and raises ``SignatureInvalid`` or returns.
Secrets are tried in turn (rotation: any may match) and compared in constant time. Error
messages never say which secret was tried or how close a signature came.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence

from hookway.inbound import VerifyScheme
from hookway.ingest.errors import SignatureInvalid
from hookway.secrets import decode_whsec

__all__ = ["decode_whsec", "verify"]

TOLERANCE_SECONDS = 300

# A scheme's check: (headers, raw body, resolved secrets, now) -> None, or SignatureInvalid.
Check = Callable[[Mapping[str, str], bytes, Sequence[str], float], None]


def _raw(value: str) -> bytes:
    # ASGI servers hand Django header bytes that it decodes as latin-1; encoding back
    # gives the exact bytes the sender sent. Secrets from config are text: UTF-8.
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


def _equal(given: str, expected: str | bytes) -> bool:
    expected_bytes = expected if isinstance(expected, bytes) else expected.encode("utf-8")
    return hmac.compare_digest(_raw(given), expected_bytes)


def _hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise SignatureInvalid(f"missing {name} header")
    # HTTP's optional whitespace is spaces and tabs only; str.strip() would also eat
    # latin-1 NBSP and NEL, which are part of the value the sender sent.
    return value.strip(" \t")


def _check_timestamp(raw: str, now: float, header: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise SignatureInvalid(f"{header}: timestamp must be whole seconds since the epoch")
    timestamp = int(raw)
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise SignatureInvalid(
            f"{header}: timestamp is outside the {TOLERANCE_SECONDS} s tolerance"
        )
    return timestamp


def _shared_token(header: str) -> Check:
    def check(headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float) -> None:
        given = _header(headers, header)
        # Check every secret (no early exit) so timing doesn't reveal which one matched.
        matched = False
        for secret in secrets:
            matched |= _equal(given, secret)
        if not matched:
            raise SignatureInvalid(f"{header} does not match")

    return check


def _body_hmac(header: str) -> Check:
    def check(headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float) -> None:
        given = _header(headers, header)
        if not given.startswith("sha256="):
            raise SignatureInvalid(f"{header} must be 'sha256=' followed by a hex HMAC")
        given = given.lower()
        matched = False
        for secret in secrets:
            matched |= _equal(given, "sha256=" + _hex_hmac(secret, body))
        if not matched:
            raise SignatureInvalid(f"{header} does not match the body")

    return check


def check_stripe(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float
) -> None:
    """Stripe-Signature: ``t=<unix>,v1=<hex>[,v1=…]`` over ``"{t}.{body}"``."""
    raw = _header(headers, "Stripe-Signature")
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in raw.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            signatures.append(value.lower())
    if len(timestamps) != 1 or not signatures:
        raise SignatureInvalid("Stripe-Signature must hold one t= and at least one v1=")
    timestamp = _check_timestamp(timestamps[0], now, "Stripe-Signature")
    signed = f"{timestamp}.".encode() + body
    matched = False
    for secret in secrets:
        expected = _hex_hmac(secret, signed)
        for signature in signatures:
            matched |= _equal(signature, expected)
    if not matched:
        raise SignatureInvalid("Stripe-Signature does not match the body")


def check_standard_webhooks(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float
) -> None:
    """Standard Webhooks v1: ``webhook-signature: v1,<base64>`` over ``"{id}.{ts}.{body}"``."""
    msg_id = _header(headers, "webhook-id")
    raw_ts = _header(headers, "webhook-timestamp")
    raw_signatures = _header(headers, "webhook-signature")
    timestamp = _check_timestamp(raw_ts, now, "webhook-timestamp")
    signed = _raw(msg_id) + f".{timestamp}.".encode() + body
    given = [sig.partition(",")[2] for sig in raw_signatures.split(" ") if sig.startswith("v1,")]
    if not given:
        raise SignatureInvalid("webhook-signature has no v1 signature")
    matched = False
    for secret in secrets:
        key = decode_whsec(secret)
        if key is None:
            continue
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
        for signature in given:
            matched |= _equal(signature, expected)
    if not matched:
        raise SignatureInvalid("webhook-signature does not match the body")


def _no_check(headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float) -> None:
    return None


CHECKS: dict[VerifyScheme, Check] = {
    VerifyScheme.NONE: _no_check,
    VerifyScheme.TOKEN: _shared_token("X-Webhook-Token"),
    VerifyScheme.HMAC_SHA256: _body_hmac("X-Signature-256"),
    VerifyScheme.GITHUB: _body_hmac("X-Hub-Signature-256"),
    VerifyScheme.GITLAB: _shared_token("X-Gitlab-Token"),
    VerifyScheme.STRIPE: check_stripe,
    VerifyScheme.STANDARD_WEBHOOKS: check_standard_webhooks,
}


def verify(
    scheme: VerifyScheme,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    now: float | None = None,
) -> None:
    """Return if the request is authentic under ``scheme``; raise SignatureInvalid if not.

    ``headers`` must look names up case-insensitively (Django's ``request.headers`` does).
    A source whose secrets are all unset can't verify anything, so it rejects everything.
    """
    check = CHECKS[scheme]
    if scheme != VerifyScheme.NONE and not secrets:
        raise SignatureInvalid("this source has no usable secret configured")
    check(headers, body, secrets, time.time() if now is None else now)
