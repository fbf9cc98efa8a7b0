"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from hookway import gate


@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the process serves requests (it checks nothing else)."""
    return JsonResponse({"status": "ok"})


@require_GET
async def readyz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers; 503 with the reason when it doesn't."""
    try:
        ready = await gate.adatabase_ready()
    except DatabaseError as exc:
        return JsonResponse(
            {"status": "unavailable", "detail": f"database: {exc}"},
            status=503,
            headers={"Retry-After": "5"},
        )
    return JsonResponse(
        {"status": "ready" if ready else "unavailable"}, status=200 if ready else 503
    )
