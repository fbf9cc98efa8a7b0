"""``/events/``: what Hookway received, newest first, filtered and paged by cursor exactly
as ``GET /api/v1/events`` does (hookway.store.browse), with a *Live* switch that
streams new events in from ``/api/v1/stream`` (static/console/console.js asks
``/events/rows/`` for the rows of the events the stream names)."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from hookway import gate
from hookway.api.filters import api_state
from hookway.console.access import staff_only
from hookway.console.filters import EventFilters, page_params, stream_params
from hookway.models import Event, Source
from hookway.store import browse

PAGE = 50
# The most rows one /events/rows/ request returns (the live view asks in batches).
MAX_ROWS = 100
# Event names offered as suggestions in the filter (read from the name index).
NAME_SUGGESTIONS = 100


@dataclass(frozen=True)
class DeliveryBadge:
    destination: str
    state: str
    attempts: int


@dataclass(frozen=True)
class EventRow:
    event: Event
    deliveries: list[DeliveryBadge]


def rows_of(events: list[Event]) -> list[EventRow]:
    return [
        EventRow(
            e,
            [
                DeliveryBadge(d.destination.name, api_state(d.state, d.attempts), d.attempts)
                for d in e.deliveries.all()
            ],
        )
        for e in events
    ]


@staff_only
async def event_list(request: HttpRequest) -> HttpResponse:
    form = EventFilters(request.GET)
    sources = [
        slug async for slug in Source.objects.order_by("slug").values_list("slug", flat=True)
    ]
    names = await gate.aevent_names(NAME_SUGGESTIONS)
    context: dict[str, object] = {
        "section": "events",
        "form": form,
        "sources": sources,
        "names": names,
        "rows": [],
    }
    if not form.is_valid():
        return render(request, "console/events.html", context, status=400)
    query = form.query(timezone.now())
    try:
        page = await browse.apage(browse.events(query), form.cleaned_data["cursor"] or None, PAGE)
    except browse.BadCursor:
        context["error"] = (
            "This page's link is not one the console made: start again from the first page."
        )
        return render(request, "console/events.html", context, status=400)
    context.update(
        rows=rows_of(page.rows),
        next_page=page_params(form, cursor=page.next) if page.next else None,
        first_page=page_params(form) if form.cleaned_data["cursor"] else None,
        paged=bool(form.cleaned_data["cursor"]),
        filtered=form.active(),
        stream=stream_params(query),
    )
    return render(request, "console/events.html", context)


@staff_only
async def event_rows(request: HttpRequest) -> HttpResponse:
    """The table rows of the events named in ``ids`` (comma-separated), newest first:
    what the live view adds or refreshes. Unknown ids are left out."""
    ids = [i for i in request.GET.get("ids", "").split(",") if i][:MAX_ROWS]
    if any(len(i) > 32 for i in ids):
        return HttpResponse("ids: each an event id (evt_…)", status=400, content_type="text/plain")
    events = [e async for e in browse.events(browse.EventQuery()).filter(pk__in=ids)]
    return render(request, "console/_event_rows.html", {"rows": rows_of(events), "live": True})
