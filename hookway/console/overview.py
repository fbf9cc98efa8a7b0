"""``/``: how Hookway is doing at a glance: what came in and how deliveries went over
the last hour (two charts), what waits or failed, the oldest backlog, and one row per
destination. Its figures come from hookway.store.stats, run as the API's stats are
(hookway.api.stats.gather_parts): under HOOKWAY_STATS_TIMEOUT, a part that misses it
says so on the page instead of holding the page up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from hookway import conf
from hookway.api.stats import gather_parts
from hookway.console import charts
from hookway.console.access import staff_only
from hookway.console.templatetags.console import age_text
from hookway.models import Destination
from hookway.policy import CircuitState
from hookway.secrets import redact_url
from hookway.store import stats


async def _backlog(now: datetime) -> stats.Backlog:
    return await stats.abacklog()


PARTS = {
    "backlog": _backlog,
    "oldest_pending": stats.aoldest_pending,
    "window": stats.alast_hour,
}


@dataclass(frozen=True)
class DestinationRow:
    name: str
    target: str
    state: str  # healthy, failing, probing, circuit-open, paused, disabled
    detail: str
    last_success_at: datetime | None
    last_hour: stats.Rate | None
    pending: int | None


def health(row: Destination) -> tuple[str, str]:
    if not row.enabled:
        return "disabled", row.disabled_reason
    if row.paused:
        return "paused", row.paused_reason
    if row.circuit_state == CircuitState.OPEN:
        until = f" until {row.circuit_retry_at:%H:%M:%S} UTC" if row.circuit_retry_at else ""
        return "circuit-open", (
            f"{row.failures_in_a_row} failed attempts in a row: nothing sent{until}, then one probe"
        )
    if row.circuit_state == CircuitState.HALF_OPEN:
        return "probing", "circuit half-open: one delivery sent as a probe"
    if row.failures_in_a_row:
        return "failing", f"{row.failures_in_a_row} failed attempts in a row"
    return "healthy", ""


@staff_only
async def overview(request: HttpRequest) -> HttpResponse:
    values, timed_out = await gather_parts(conf.get().stats_timeout, PARTS)
    window: stats.Window | None = values["window"]
    backlog: stats.Backlog | None = values["backlog"]
    pending = backlog.pending_by_destination if backlog is not None else None
    destinations = []
    async for row in Destination.objects.order_by("name"):
        state, detail = health(row)
        destinations.append(
            DestinationRow(
                name=row.name,
                target=redact_url(row.url) if row.url else row.target,
                state=state,
                detail=detail,
                last_success_at=row.last_success_at,
                last_hour=window.by_destination.get(row.pk, stats.Rate(0, 0)) if window else None,
                pending=pending.get(row.pk, 0) if pending is not None else None,
            )
        )
    ingest_chart = delivery_chart = None
    if window is not None:
        minutes = [m.at for m in window.minutes]
        ingest_chart = charts.bars(
            "Events received per minute, last hour",
            minutes,
            [charts.Series("events", "bar-ingest", [m.events for m in window.minutes])],
        )
        delivery_chart = charts.bars(
            "Delivery attempts per minute, last hour",
            minutes,
            [
                charts.Series("succeeded", "bar-ok", [m.succeeded for m in window.minutes]),
                charts.Series("failed", "bar-fail", [m.failed for m in window.minutes]),
            ],
        )
    oldest = values["oldest_pending"]
    context = {
        "section": "overview",
        "counts": backlog.counts if backlog is not None else None,
        "oldest_pending": age_text(oldest) if oldest is not None else None,
        "window": window,
        "ingest_chart": ingest_chart,
        "delivery_chart": delivery_chart,
        "destinations": destinations,
        "timed_out": timed_out,
        "now": timezone.now(),
    }
    return render(request, "console/overview.html", context)
