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

import httpx
from django.utils import timezone

from hookway.headers import is_hop_by_hop, is_reserved
from hookway.outbound import AttemptResult, ErrorKind, OutboundDelivery, Outcome
from hookway.secrets import decode_whsec
from hookway.send import signing
from hookway.send.errors import DeliveryError, InvalidDestination, TimedOut, classify
from hookway.send.guard import Guard

__all__ = ["AttemptResult", "OutboundDelivery", "send"]

RESPONSE_BODY_LIMIT = 20 * 1024
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


async def _pinned_request(
    client: httpx.AsyncClient, guard: Guard, delivery: OutboundDelivery, headers: dict[str, str]
) -> httpx.Request:
    parts = urlsplit(delivery.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidDestination(f"can't send to {delivery.url!r}: not an http(s) URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidDestination(f"can't send to {delivery.url!r}: bad port") from None
    ip = await guard.resolve(parts.hostname, port)
    host = f"[{ip}]" if isinstance(ip, ipaddress.IPv6Address) else str(ip)
    netloc = f"{host}:{parts.port}" if parts.port else host
    userinfo, _, host_header = parts.netloc.rpartition("@")
    if not host_header.isascii():  # an internationalised name goes out as punycode
        host_header = parts.hostname.encode("idna").decode("ascii")
        host_header += f":{parts.port}" if parts.port else ""
    headers["Host"] = host_header
    explicit_auth = any(name.lower() == "authorization" for name in headers)
    if userinfo and not explicit_auth:  # kept so httpx sends it as Basic auth, as unpinned
        netloc = f"{userinfo}@{netloc}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return client.build_request(
        "POST",
        pinned,
        content=delivery.body,
        # httpx encodes str header values as ASCII and raises on anything else; event
        # names may be any Unicode, so send UTF-8.
        headers={name.encode(): value.encode() for name, value in headers.items()},
        timeout=delivery.timeout,
        extensions=extensions,
    )


class _Phase:
    """Where the attempt is, for the message when its deadline passes."""

    def __init__(self) -> None:
        self.name = "resolving the host name"


async def _exchange(
    client: httpx.AsyncClient,
    guard: Guard,
    delivery: OutboundDelivery,
    headers: dict[str, str],
    phase: _Phase,
) -> tuple[httpx.Response, bytes]:
    if delivery.problem:
        raise InvalidDestination(f"not sent: {delivery.problem}")
    request = await _pinned_request(client, guard, delivery, headers)
    phase.name = "connecting and waiting for the response headers"
    try:
        response = await client.send(request, stream=True)
    except httpx.TransportError as exc:
        raise classify(exc, phase.name) from None
    except OSError as exc:
        raise classify(exc, phase.name) from None
    phase.name = "reading the response body"
    body = bytearray()
    try:
        # Decoded (gzip, …) so the stored body is readable; the cap bounds memory.
        async for chunk in response.aiter_bytes():
            body.extend(chunk)
            if len(body) >= RESPONSE_BODY_LIMIT:
                break
    except httpx.DecodingError as exc:
        # A bad Content-Encoding spoils the body, not the status the receiver sent.
        body = bytearray(f"(undecodable response body: {exc})".encode())
    except (httpx.TransportError, OSError) as exc:
        raise classify(exc, phase.name) from None
    finally:
        await response.aclose()
    return response, bytes(body[:RESPONSE_BODY_LIMIT])


async def send(
    client: httpx.AsyncClient, guard: Guard, delivery: OutboundDelivery
) -> AttemptResult:
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
    phase = _Phase()
    try:
        try:
            async with asyncio.timeout(delivery.timeout):
                response, raw = await _exchange(client, guard, delivery, headers, phase)
        except TimeoutError:
            raise TimedOut(f"timed out after {delivery.timeout:g} s while {phase.name}") from None
    except DeliveryError as exc:
        return result("retry" if exc.retryable else "failed", error=str(exc), error_kind=exc.kind)

    status = response.status_code
    text = _clean_text(raw)
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
        error = f"HTTP {status}: redirects are not followed (Location: {response.headers.get('Location', '-')})"
    else:
        error = f"HTTP {status}"
    retry_after = None
    if status in RETRY_AFTER_STATUSES:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return result(
        "retry",
        status_code=status,
        response_body=text,
        error=error,
        error_kind=ErrorKind.HTTP_STATUS,
        retry_after=retry_after,
    )
