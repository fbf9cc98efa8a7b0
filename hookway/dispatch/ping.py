"""Testing a destination: send it a signed ``hookway.ping`` now, through the
dispatcher's own sender (the SSRF guard, signing, its headers and auth, the timeout
over the whole attempt), store nothing, and say what came back in one of four words.

The operator API (``POST /api/v1/destinations/{name}/test``) and the console's *Send
test* button both call ``aping``; each tells the outcome its own way."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

from django.utils import timezone

from hookway import gate
from hookway.outbound import ErrorKind
from hookway.send import sender
from hookway.send.client import make_client
from hookway.send.guard import Guard

# The most of the reply a ping's answer shows.
EXCERPT = 2000


class Verdict(StrEnum):
    DELIVERED = "delivered"  # a 2xx came back
    DESTINATION_ERROR = "destination error"  # another status came back
    UNREACHABLE = "unreachable"  # refused, DNS, TLS, the SSRF guard
    TIMED_OUT = "timed out"  # no answer within the destination's timeout


@dataclass(frozen=True)
class PingResult:
    verdict: Verdict
    status: int | None
    latency_ms: float
    webhook_id: str
    response_excerpt: str
    error_kind: ErrorKind
    error: str  # what went wrong, in words (empty when delivered)


class NoSuchDestination(LookupError):
    pass


class NotHttp(ValueError):
    """A handler or Celery destination: a ping would run the project's own code (or
    queue its task) with an event it never expects."""

    def __init__(self, name: str, kind: str, target: str) -> None:
        self.kind = kind
        self.target = target
        super().__init__(f"'{name}' is a {kind} destination ({target}): the test sends HTTP")


async def aping(name: str) -> PingResult:
    """Ping the destination ``name`` and say what happened. Raises NoSuchDestination,
    or NotHttp for a handler or Celery destination."""
    body = json.dumps(
        {
            "type": "hookway.ping",
            "timestamp": timezone.now().isoformat(),
            "data": {"destination": name},
        }
    ).encode()
    delivery = await gate.aping_delivery(name, body)
    if delivery is None:
        raise NoSuchDestination(f"no destination named {name!r}")
    if delivery.kind != "http":
        raise NotHttp(name, delivery.kind, delivery.handler or delivery.celery_task)
    client = make_client(max_connections=1)
    try:
        result = await sender.send(client, Guard.from_settings(), delivery)
    finally:
        await client.aclose()
    if result.outcome == "success":
        verdict = Verdict.DELIVERED
    elif result.status_code is not None:
        verdict = Verdict.DESTINATION_ERROR
    elif result.error_kind == ErrorKind.TIMEOUT:
        verdict = Verdict.TIMED_OUT
    else:
        verdict = Verdict.UNREACHABLE
    return PingResult(
        verdict=verdict,
        status=result.status_code,
        latency_ms=round(result.duration_ms, 1),
        webhook_id=delivery.delivery_id,
        response_excerpt=result.response_body[:EXCERPT],
        error_kind=result.error_kind,
        error=result.error,
    )
