"""A built-in receiver for demos and smoke tests: ``POST /echo`` answers 200 with what it
got (size, webhook-id, whether a signature was present). It stores nothing."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
async def echo(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        return JsonResponse(
            {"error": "method_not_allowed", "detail": "POST a webhook here"},
            status=405,
            headers={"Allow": "POST"},
        )
    return JsonResponse(
        {
            "received": True,
            "bytes": len(request.body),
            "webhook_id": request.headers.get("webhook-id"),
            "event": request.headers.get("X-Hookway-Event"),
            "signed": "webhook-signature" in request.headers,
        }
    )
