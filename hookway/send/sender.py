"""Send one delivery attempt and classify what happened.

The sender never touches the database: it gets an OutboundDelivery (built by the store at
claim time), makes the request and returns an AttemptResult whose ``outcome`` is one of
success / retry / failed. When to retry is the dispatcher's retry policy's business.

The destination's ``timeout_seconds`` is a deadline over the whole attempt: resolving
the name, connecting, sending, the response's status line and headers and the body
Hookway keeps. The HTTP client's own timeouts apply per phase (a receiver trickling a
byte every two seconds never trips a three-second read timeout), so they alone can't
bound an attempt.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import time
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.utils import timezone

from hookway.headers import is_hop_by_hop, is_reserved
from hookway.outbound import AttemptResult, ErrorKind, OutboundDelivery, Outcome
from hookway.secrets import decode_whsec
from hookway.send import signing
from hookway.send.client import RESPONSE_BODY_LIMIT, Client, Phase, Reply
from hookway.send.errors import DeliveryError, InvalidDestination, TimedOut
from hookway.send.guard import Guard

__all__ = ["RESPONSE_BODY_LIMIT", "AttemptResult", "OutboundDelivery", "send"]

# 429 and these 5xx mean "later", and may say when in Retry-After.
RETRY_AFTER_STATUSES = frozenset({429, 502, 503, 504})


def authorization(delivery: OutboundDelivery) -> str | None:
    """The Authorization value from the destination's bearer_token or basic_auth, or None."""
    if delivery.bearer_token:
        return f"Bearer {delivery.bearer_token}"
    if delivery.basic_auth is not None:
        user, password = delivery.basic_auth
        # RFC 7617: user-pass in UTF-8, then base64.
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return None


def outbound_headers(delivery: OutboundDelivery, timestamp: int) -> dict[str, str]:
    """Return the request's headers. Lowest precedence first, each replacing an earlier
    one of the same name (case-insensitively): the event's forwarded headers, the
    destination's static headers, its Authorization, then Hookway's own, which always win
    (``Host`` is set when the URL is pinned, ``User-Agent`` by the client)."""
    chosen: dict[str, tuple[str, str]] = {}

    def put(name: str, value: str) -> None:
        chosen[name.lower()] = (name, value)

    for name, value in (*delivery.forwarded_headers, *delivery.headers):
        # The config file, the admin and the store checked them already; a row edited by
        # hand still can't break the request's framing or stand in for Hookway's headers.
        if not (is_reserved(name) or is_hop_by_hop(name)):
            put(name, value)
    auth = authorization(delivery)
    if auth is not None:
        put("Authorization", auth)
    put("Content-Type", delivery.content_type or "application/json")
    put("webhook-id", delivery.delivery_id)
    put("webhook-timestamp", str(timestamp))
    put("X-Hookway-Event", delivery.event_name)
    put("X-Hookway-Source", delivery.source_slug)
    put("X-Hookway-Attempt", str(delivery.attempt))
    if delivery.traceparent:
        put("traceparent", delivery.traceparent)
        if delivery.tracestate:
            put("tracestate", delivery.tracestate)
    if delivery.signing_secret:
        key = decode_whsec(delivery.signing_secret)
        if key is not None:
            put(
                "webhook-signature",
                signing.sign(key, delivery.delivery_id, timestamp, delivery.body),
            )
    return dict(chosen.values())


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _clean_text(raw: bytes) -> str:
    # PostgreSQL text can't hold U+0000; receivers' error pages sometimes do.
    return raw.decode("utf-8", "replace").replace("\x00", "\ufffd")


async def _exchange(
    client: Client,
    guard: Guard,
    delivery: OutboundDelivery,
    headers: dict[str, str],
    phase: Phase,
) -> Reply:
    """Resolve the destination through the guard, then POST to the address it allowed
    (pinned: the name is not resolved again), with the name in Host and for TLS."""
    if delivery.problem:
        raise InvalidDestination(f"not sent: {delivery.problem}")
    parts = urlsplit(delivery.url)
    # SplitResult parses the netloc again on every read of hostname or port: read once.
    hostname = parts.hostname
    if parts.scheme not in ("http", "https") or not hostname:
        raise InvalidDestination(f"can't send to {delivery.url!r}: not an http(s) URL")
    try:
        given_port = parts.port
    except ValueError:
        raise InvalidDestination(f"can't send to {delivery.url!r}: bad port") from None
    ip = await guard.resolve(hostname, given_port or (443 if parts.scheme == "https" else 80))
    host = f"[{ip}]" if isinstance(ip, ipaddress.IPv6Address) else str(ip)
    netloc = f"{host}:{given_port}" if given_port else host
    userinfo, _, host_header = parts.netloc.rpartition("@")
    if not host_header.isascii():  # an internationalised name goes out as punycode
        host_header = hostname.encode("idna").decode("ascii")
        host_header += f":{given_port}" if given_port else ""
    headers["Host"] = host_header
    explicit_auth = any(name.lower() == "authorization" for name in headers)
    if userinfo and not explicit_auth:  # kept so it goes out as Basic auth, as unpinned
        netloc = f"{userinfo}@{netloc}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    phase.name = "connecting and waiting for the response headers"
    return await client.post(
        pinned,
        headers,
        delivery.body,
        phase=phase,
        sni_hostname=hostname if parts.scheme == "https" else None,
    )


async def send(client: Client, guard: Guard, delivery: OutboundDelivery) -> AttemptResult:
    """Make one attempt, within ``delivery.timeout`` seconds in all; return its
    classified result (never raises for network or HTTP trouble)."""
    started_at = timezone.now()
    started = time.perf_counter()

    def result(outcome: Outcome, **fields: Any) -> AttemptResult:
        return AttemptResult(
            delivery_id=delivery.delivery_id,
            attempt=delivery.attempt,
            destination_id=delivery.destination_id,
            started_at=started_at,
            duration_ms=(time.perf_counter() - started) * 1000,
            outcome=outcome,
            **fields,
        )

    headers = outbound_headers(delivery, int(time.time()))
    phase = Phase()
    try:
        try:
            async with asyncio.timeout(delivery.timeout):
                reply = await _exchange(client, guard, delivery, headers, phase)
        except TimeoutError:
            raise TimedOut(f"timed out after {delivery.timeout:g} s while {phase.name}") from None
    except DeliveryError as exc:
        return result("retry" if exc.retryable else "failed", error=str(exc), error_kind=exc.kind)

    status = reply.status
    text = _clean_text(reply.body)
    if 200 <= status < 300:
        return result("success", status_code=status, response_body=text)
    if status == 410:
        return result(
            "failed",
            status_code=status,
            response_body=text,
            error="410 Gone: the receiver asked to stop; destination disabled",
            error_kind=ErrorKind.HTTP_STATUS,
            disable_destination=True,
        )
    if 300 <= status < 400:
        error = f"HTTP {status}: redirects are not followed (Location: {reply.headers.get('Location', '-')})"
    else:
        error = f"HTTP {status}"
    retry_after = None
    if status in RETRY_AFTER_STATUSES:
        retry_after = parse_retry_after(reply.headers.get("Retry-After"))
    return result(
        "retry",
        status_code=status,
        response_body=text,
        error=error,
        error_kind=ErrorKind.HTTP_STATUS,
        retry_after=retry_after,
    )
