"""The event list's filters, as a form: what an operator typed, checked, and turned into
the query the operator API's list runs (hookway.store.browse.EventQuery), plus the same
filters as ``/api/v1/stream`` query parameters for the live view."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.utils import timezone

from hookway.api.filters import ApiState
from hookway.store import browse

EVENT_ID = re.compile(r"evt_[0-9a-z]{1,28}\Z")

RANGES = {
    "15m": ("last 15 minutes", timedelta(minutes=15)),
    "1h": ("last hour", timedelta(hours=1)),
    "24h": ("last 24 hours", timedelta(hours=24)),
    "7d": ("last 7 days", timedelta(days=7)),
}

# What a datetime-local input sends (no zone: the console's times are UTC), and ISO 8601.
TIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]


class UtcDateTimeField(forms.DateTimeField):
    """A time typed without a zone is UTC (what every page of the console shows)."""

    def to_python(self, value: Any) -> datetime | None:
        when = super().to_python(value)
        if when is not None:
            when = when.replace(tzinfo=UTC) if timezone.is_naive(when) else when.astimezone(UTC)
        return when


class EventFilters(forms.Form):
    source = forms.CharField(required=False, max_length=64)
    event = forms.CharField(
        required=False,
        max_length=255,
        label="Event name",
        help_text="A name or a glob: push, merge_*",
    )
    state = forms.ChoiceField(
        required=False,
        label="Delivery state",
        choices=[("", "any")] + [(s.value, s.value) for s in ApiState],
    )
    range = forms.ChoiceField(
        required=False,
        label="Received",
        choices=[("", "any time")] + [(k, label) for k, (label, _) in RANGES.items()],
    )
    since = UtcDateTimeField(required=False, label="From (UTC)", input_formats=TIME_FORMATS)
    until = UtcDateTimeField(required=False, label="Until (UTC)", input_formats=TIME_FORMATS)
    q = forms.CharField(
        required=False,
        max_length=255,
        label="Event id or sender's delivery id",
        help_text="evt_… or the sender's id (X-GitHub-Delivery, Idempotency-Key, …)",
    )
    cursor = forms.CharField(required=False, max_length=200)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            raise forms.ValidationError("'From' must be before 'Until'.")
        return data

    def query(self, now: datetime) -> browse.EventQuery:
        """The list's query (call after is_valid())."""
        data = self.cleaned_data
        since = data.get("since")
        if data.get("range"):
            start = now - RANGES[data["range"]][1]
            since = max(since, start) if since else start
        q = (data.get("q") or "").strip()
        return browse.EventQuery(
            source=data.get("source") or None,
            event=data.get("event") or None,
            state=data.get("state") or None,
            since=since,
            until=data.get("until"),
            id=q if EVENT_ID.match(q) else None,
            delivery_id=q if q and not EVENT_ID.match(q) else None,
        )

    def active(self) -> bool:
        """True when any filter (not the page) is set."""
        return any(v for k, v in self.cleaned_data.items() if k != "cursor")


def stream_params(query: browse.EventQuery) -> str:
    """The query string of /api/v1/stream giving what this list would show (a time
    range given as 'last hour' keeps its start: the stream only brings newer events)."""
    params = {
        "source": query.source,
        "event": query.event,
        "state": query.state,
        "since": query.since.isoformat() if query.since else None,
        "until": query.until.isoformat() if query.until else None,
        "delivery_id": query.delivery_id,
        "id": query.id,
    }
    return urlencode({k: v for k, v in params.items() if v})


def page_params(form: EventFilters, **changes: str) -> str:
    """The list's query string with ``changes`` (a next page's cursor)."""
    params = {k: v for k, v in form.data.items() if k != "cursor" and v}
    params.update(changes)
    return urlencode(params)
