"""Hookway's ingest work without Django's request and response: a measuring stick, not a
server to deploy.

The same steps as hookway.ingest.views for a valid webhook (the cached source lookup,
the signature check, the strict JSON parse, the event name and delivery id, the kept
headers, the group-committed store of the event and its deliveries, the dispatcher's
wake-up) called from a bare ASGI app: no ASGIRequest, no middleware, no JsonResponse,
no request signals, no Server-Timing. What it serves per second, against Hookway's own
app in the same run (``python -m bench.ingest_ab HEAD HEAD --app-b
bench.peers.hookway_core:application``), is what Django's request/response path costs
ingest. It answers only the happy path (anything else is a bare 400): the contract's
error answers are the real view's.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookway.standalone.settings")

import django

django.setup(set_prefix=False)

from django.utils import timezone  # noqa: E402

from hookway import gate, wakeup  # noqa: E402
from hookway.inbound import VerifyScheme  # noqa: E402
from hookway.ingest import extract, verify  # noqa: E402
from hookway.ingest.views import _kept_headers, _parse_json  # noqa: E402
from hookway.lifespan import LifespanApp  # noqa: E402
from hookway.runtime import shutdown, startup  # noqa: E402
from hookway.secrets import resolve_secret  # noqa: E402
from hookway.store.events import IncomingEvent  # noqa: E402


async def _answer(send: Any, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Request:
    """What _kept_headers reads: ``.headers.items()``."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


async def ingest(scope: dict[str, Any], receive: Any, send: Any) -> None:
    deadline = time.monotonic() + 5.0
    slug = scope["path"].removeprefix("/hooks/").rstrip("/")
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    # Title-cased names, as Django's request.headers spells them (the lookups the checks
    # make are in that case).
    headers = {k.decode("latin-1").title(): v.decode("latin-1") for k, v in scope["headers"]}
    source = await gate.aget_source(slug, deadline)
    if source is None:
        await _answer(send, 400, {"error": "unknown source"})
        return
    secrets = [s for s in (resolve_secret(ref) for ref in source.secrets) if s is not None]
    scheme = VerifyScheme(source.verify)
    try:
        verify.verify(scheme, headers, body, secrets)
        payload = _parse_json(body)
    except Exception:  # noqa: BLE001 - a measuring stick: the real view answers properly
        await _answer(send, 400, {"error": "refused"})
        return
    incoming = IncomingEvent(
        source_id=source.id,
        event_name=extract.event_name(scheme, headers, payload) or "",
        delivery_id=extract.delivery_id(scheme, headers, payload),
        content_type=headers.get("Content-Type", "")[:255],
        headers=_kept_headers(_Request(headers), secrets),  # type: ignore[arg-type]
        body=body,
        received_at=timezone.now(),
    )
    stored = await gate.astore_event(incoming, deadline)
    if stored.deliveries:
        wakeup.notify()
    await _answer(send, 202, {"id": stored.id, "deliveries": stored.deliveries})


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"].startswith("/hooks/"):
        await ingest(scope, receive, send)
        return
    if scope["type"] == "http":
        await _answer(send, 200, {"status": "ok"})


application = LifespanApp(_app, startup=startup, shutdown=shutdown)
