"""``/events/<id>/``: one event: its payload (highlighted), its headers, and a timeline
per destination of every attempt; *Replay* to every destination or one. The timeline
is its own fragment (``/events/<id>/timeline``), which refreshes itself while a
delivery is still pending, so a replay's attempt appears without a reload."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from hookway import gate
from hookway.api.events import EXCERPT
from hookway.api.filters import api_state
from hookway.console.access import staff_only
from hookway.console.highlight import render_body
from hookway.models import Attempt, Delivery, Event, Route
from hookway.store import browse


@dataclass(frozen=True)
class AttemptView:
    attempt: Attempt
    excerpt: str
    truncated: bool


@dataclass(frozen=True)
class DeliveryView:
    delivery: Delivery
    state: str
    attempts: list[AttemptView]


async def _event(event_id: str) -> Event:
    if len(event_id) > 32:
        raise Http404("no such event")
    try:
        return await browse.event_detail().aget(pk=event_id)
    except Event.DoesNotExist:
        raise Http404(f"no event {event_id}") from None


def _timeline(event: Event) -> list[DeliveryView]:
    return [
        DeliveryView(
            d,
            api_state(d.state, d.attempts),
            [
                AttemptView(a, a.response_body[:EXCERPT], len(a.response_body) > EXCERPT)
                for a in d.attempt_log.all()
            ],
        )
        for d in event.deliveries.all()
    ]


def _timeline_context(event: Event) -> dict[str, object]:
    timeline = _timeline(event)
    return {
        "event": event,
        "timeline": timeline,
        "waiting": any(d.state in ("pending", "failing") for d in timeline),
    }


async def _targets(event: Event) -> list[str]:
    """Destinations a replay may name: those the event went to, and those a route of
    its source leads to now."""
    names = {d.destination.name for d in event.deliveries.all()}
    async for name in Route.objects.filter(source_id=event.source_id).values_list(
        "destination__name", flat=True
    ):
        names.add(name)
    return sorted(names)


async def _page_context(event: Event) -> dict[str, object]:
    headers = event.headers if isinstance(event.headers, dict) else {}
    return {
        "section": "events",
        "body": render_body(bytes(event.body)),
        "headers": sorted(headers.items()),
        "targets": await _targets(event),
        **_timeline_context(event),
    }


@staff_only
async def event_detail(request: HttpRequest, event_id: str) -> HttpResponse:
    event = await _event(event_id)
    return render(request, "console/event.html", await _page_context(event))


@staff_only
async def timeline(request: HttpRequest, event_id: str) -> HttpResponse:
    event = await _event(event_id)
    return render(request, "console/_timeline.html", {**_timeline_context(event), "fragment": True})


def report(request: HttpRequest, result: gate.ReplayResult) -> None:
    """Say what a replay did, as messages on the next page."""
    for created in result.created:
        waits = f" ({created.waits})" if created.waits else ""
        messages.success(
            request, f"Replayed to {created.destination} as {created.delivery_id}{waits}."
        )
    for skipped in result.skipped:
        level = messages.INFO if skipped.done else messages.ERROR
        messages.add_message(request, level, f"Not replayed: {skipped}.")


@require_POST
@staff_only
async def replay(request: HttpRequest, event_id: str) -> HttpResponseBase:
    """Replay to every destination (``destination`` empty) or the one named; an htmx
    request gets the refreshed timeline, a plain form post the event page again."""
    event = await _event(event_id)
    destination = request.POST.get("destination", "").strip() or None
    if destination is not None and destination not in await _targets(event):
        messages.error(request, f"{destination!r} is not a destination of this event.")
        status = 400
    else:
        report(request, await gate.areplay_events([event.pk], destination))
        status = 200
    if request.headers.get("HX-Request"):
        event = await _event(event_id)
        context = {**_timeline_context(event), "fragment": True}
        return render(request, "console/_timeline.html", context, status=status)
    if status != 200:
        return render(request, "console/event.html", await _page_context(event), status=status)
    return redirect("hookway-console:event", event_id=event.pk)
