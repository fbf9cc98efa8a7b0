"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import asyncio

from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from hookway import conf, gate, runtime


@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the process serves requests (it checks nothing else)."""
    return JsonResponse({"status": "ok"})


@require_GET
async def readyz(request: HttpRequest) -> JsonResponse:
    """200 when the database commits a write (this process's heartbeat row) within
    HOOKWAY_DB_TIMEOUT and the embedded dispatcher, if any, is running; 503 with the
    reasons otherwise."""
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(gate.abeat(runtime.WORKER_ID, "web"), timeout=conf.get().db_timeout)
        checks["database"] = "ok"
    except TimeoutError:
        checks["database"] = f"a write did not commit within {conf.get().db_timeout:g} s"
    except DatabaseError as exc:
        checks["database"] = f"a write failed: {str(exc).strip() or type(exc).__name__}"
    dispatcher = runtime.dispatcher_status()
    if dispatcher.enabled:
        checks["dispatcher"] = "ok" if dispatcher.running else dispatcher.detail
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
        headers={} if ready else {"Retry-After": "5"},
    )
