"""The admin of what Hookway recorded: events, deliveries and attempts (read-only), with
the Replay actions."""

from __future__ import annotations

import json
import re

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from hookway.admin.base import _M, ModelAdmin, TabularInline
from hookway.models import Attempt, Delivery, Event


class ReadOnlyAdmin(ModelAdmin[_M]):
    def has_add_permission(self, request: HttpRequest, obj: _M | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: _M | None = None) -> bool:
        return False


class DeliveryInline(TabularInline[Delivery, Event]):
    model = Delivery
    fields = readonly_fields = (
        "id",
        "destination",
        "state",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
    )
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False


# A JSON "\udfff" escape decodes to a lone surrogate, which UTF-8 can't encode: left in
# the page, it makes the response fail (a 500) when Django encodes it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _pretty(text: str) -> str:
    """Return ``text`` as escaped HTML, each lone surrogate written as its JSON escape."""
    text = _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return format_html('<pre style="white-space: pre-wrap">{}</pre>', text)


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin[Event]):
    list_display = ["id", "source", "event_name", "delivery_id", "received_at"]
    list_filter = ["source", "event_name", "received_at"]
    date_hierarchy = "received_at"
    search_fields = ["id", "delivery_id"]
    fields = readonly_fields = (
        "id",
        "source",
        "event_name",
        "delivery_id",
        "content_type",
        "received_at",
        "payload",
        "request_headers",
    )
    inlines = [DeliveryInline]
    actions = ["replay_events"]

    @admin.display(description="payload")
    def payload(self, obj: Event) -> str:
        raw = bytes(obj.body)
        try:
            text = json.dumps(json.loads(raw), indent=2, ensure_ascii=False, sort_keys=False)
        except (ValueError, RecursionError):
            text = raw.decode("utf-8", "replace")
        return _pretty(text)

    @admin.display(description="headers")
    def request_headers(self, obj: Event) -> str:
        return _pretty(json.dumps(obj.headers, indent=2, ensure_ascii=False))

    @admin.action(description="Replay to every destination of its routes")
    def replay_events(self, request: HttpRequest, queryset: QuerySet[Event]) -> None:
        from hookway.store import replay

        created = replay.replay_events([e.pk for e in queryset])
        self.message_user(request, f"{created} new deliveries created.")


class AttemptInline(TabularInline[Attempt, Delivery]):
    model = Attempt
    fields = readonly_fields = (
        "number",
        "started_at",
        "duration_ms",
        "outcome",
        "status_code",
        "error",
        "response_body",
        "worker",
    )
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Delivery | None = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin[Delivery]):
    list_display = [
        "id",
        "event",
        "destination",
        "state",
        "attempts",
        "next_attempt_at",
        "last_status_code",
    ]
    list_filter = ["state", "destination"]
    search_fields = ["id", "event__id"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    inlines = [AttemptInline]
    actions = ["replay_deliveries"]

    @admin.action(description="Replay (a new delivery of the same event)")
    def replay_deliveries(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        from hookway.store import replay

        created = replay.replay_deliveries([d.pk for d in queryset])
        self.message_user(request, f"{created} new deliveries created.")
