"""The plain-Django ingest views: what a Django developer writes without Hookway."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time

from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from bench.peers.ingest_site.models import Event

SECRET = os.environ.get("INGEST_SECRET", "bench-secret").encode()


def _verified(request: HttpRequest) -> bool:
    expected = "sha256=" + hmac.new(SECRET, request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request.headers.get("X-Signature-256", ""))


def _parse(request: HttpRequest) -> tuple[dict | None, JsonResponse | None]:
    if not _verified(request):
        return None, JsonResponse({"error": "bad signature"}, status=401)
    try:
        payload = json.loads(request.body)
    except ValueError:
        return None, JsonResponse({"error": "malformed JSON"}, status=400)
    return payload, None


def _insert(request: HttpRequest, payload: dict) -> str:
    event = Event.objects.create(
        id="evt_" + secrets.token_hex(13),
        source_id=1,
        event_name=str(payload.get("event_name", "")),
        delivery_id=request.headers.get("Idempotency-Key"),
        content_type=request.content_type,
        headers=dict(request.headers),
        body=request.body,
        received_at=timezone.now(),
    )
    return event.id


@csrf_exempt
def sync_ingest(request: HttpRequest) -> JsonResponse:
    payload, error = _parse(request)
    if error is not None:
        return error
    # Autocommit: the INSERT commits (and fsyncs) before the view returns.
    return JsonResponse({"id": _insert(request, payload)}, status=202)


_ainsert = sync_to_async(_insert)


@csrf_exempt
async def async_ingest(request: HttpRequest) -> JsonResponse:
    payload, error = _parse(request)
    if error is not None:
        return error
    return JsonResponse({"id": await _ainsert(request, payload)}, status=202)


@csrf_exempt
def celery_ingest(request: HttpRequest) -> JsonResponse:
    from bench.peers.ingest_site.celery_app import process_webhook

    payload, error = _parse(request)
    if error is not None:
        return error
    result = process_webhook.delay(
        str(payload.get("event_name", "")), payload, dict(request.headers)
    )
    return JsonResponse({"id": result.id}, status=202)


WORK_SECONDS = float(os.environ.get("INGEST_WORK_SECONDS", "15"))
DONE_FILE = os.environ.get("INGEST_DONE_FILE", "")


@csrf_exempt
def slow_ingest(request: HttpRequest) -> JsonResponse:
    """The sender-timeout peer: the webhook's I/O work done inline, before the answer
    (``time.sleep`` stands in for it), then the time it finished appended to DONE_FILE."""
    time.sleep(WORK_SECONDS)
    if DONE_FILE:
        with open(DONE_FILE, "a") as done:
            done.write(f"{request.headers.get('X-Sender', '?')} {time.time()}\n")
    return JsonResponse({"processed": True}, status=200)
