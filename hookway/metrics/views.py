"""``GET /metrics``: Prometheus's scrape of the web server (docs/operations.md,
"Metrics"). Refused (403, no data) unless hookway.metrics.access lets the client in."""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from hookway import gate
from hookway.metrics import access, registry
from hookway.metrics.exposition import CONTENT_TYPE

logger = logging.getLogger("hookway.metrics")


# Exempt: it changes nothing and reads no cookie, and a scraper's mistaken POST should
# get the 403 or 405 that says what is wrong, not a CSRF page.
@csrf_exempt
async def metrics(request: HttpRequest) -> HttpResponse:
    """The text exposition of Hookway's metrics: every process's counters and
    histograms and the database's gauges; 403 for a client not allowed to read them."""
    problem = access.refusal(request.META.get("REMOTE_ADDR"), request.headers.get("Authorization"))
    if problem is not None:
        return JsonResponse({"error": "forbidden", "detail": problem}, status=403)
    if request.method not in ("GET", "HEAD"):
        return JsonResponse(
            {"error": "method_not_allowed", "detail": f"{request.method} is not allowed; use GET"},
            status=405,
            headers={"Allow": "GET, HEAD"},
        )
    registry.flush()  # this process's latest ingest counts (on the loop's thread)
    try:
        destinations = await gate.ametrics_gauges()
    except DatabaseError as exc:
        # The process's own metrics still answer; hookway_database_up says 0.
        logger.warning("metrics: reading the queue's gauges failed: %s", str(exc).strip())
        destinations = None
    body = await gate.arender_metrics(destinations)
    return HttpResponse(body, content_type=CONTENT_TYPE)
