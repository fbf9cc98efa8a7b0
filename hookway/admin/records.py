"""The admin of what Hookway recorded: events, deliveries and attempts (read-only), with
Replay actions on the lists and Replay buttons on the pages (hookway.store.replay:
idempotent unless forced, and every skip explained in a message)."""

from __future__ import annotations

import json
import re

from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from hookway import gate
from hookway.admin.base import _M, ModelAdmin, TabularInline
from hookway.admin.buttons import Button, ButtonsAdmin
from hookway.gate import ReplayResult, SkipKind
from hookway.models import Attempt, Delivery, Event

# What the operator can do about a skip, said after its reason.
ANYWAY = "“Replay anyway” makes another copy"
REPLAY_HINTS = {
    SkipKind.ALREADY_REPLAYED: ANYWAY,
    SkipKind.PENDING: ANYWAY,
    SkipKind.NO_ROUTE: "“Replay anyway” sends it there all the same",
}
# A message lists this many skips at most; the rest are counted.
MAX_SKIPS_SHOWN = 10
REPLAY_BUTTONS = [
    Button(
        "Replay",
        "replay",
        title="A new delivery, unless it was replayed already or one is still pending",
    ),
    Button(
        "Replay anyway",
        "replay",
        title="Another copy, even if it was replayed already, one is still pending, or no "
        "route leads there any more",
        fields={"force": "1"},
    ),
]


def report_replay(model_admin: ModelAdmin[_M], request: HttpRequest, result: ReplayResult) -> None:
    """Say what a replay did: how many it created, which wait, and why each skip."""
    if result.created:
        count = len(result.created)
        model_admin.message_user(
            request, f"{count} new {'delivery' if count == 1 else 'deliveries'} created."
        )
    waits: dict[str, int] = {}
    for created in result.created:
        if created.waits:
            waits[created.waits] = waits.get(created.waits, 0) + 1
    for why, count in waits.items():
        verb = "waits" if count == 1 else "wait"
        model_admin.message_user(request, f"{count} of them {verb}: {why}.", messages.WARNING)
    for skip in result.skipped[:MAX_SKIPS_SHOWN]:
        hint = REPLAY_HINTS.get(skip.kind)
        text = f"Not replayed: {skip}" + (f" ({hint})" if hint else "") + "."
        model_admin.message_user(request, text, messages.WARNING if skip.done else messages.ERROR)
    if len(result.skipped) > MAX_SKIPS_SHOWN:
        more = len(result.skipped) - MAX_SKIPS_SHOWN
        model_admin.message_user(request, f"… and {more} more not replayed.", messages.WARNING)
    if not result.created and not result.skipped:
        model_admin.message_user(request, "Nothing to replay.", messages.WARNING)


def may_replay(request: HttpRequest) -> bool:
    """Replaying adds deliveries: it takes the permission to add them."""
    return request.user.has_perm("hookway.add_delivery")


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
        "replay_of",
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
class EventAdmin(ReadOnlyAdmin[Event], ButtonsAdmin[Event]):
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
    actions = ["replay_events", "replay_events_anyway"]
    button_actions = ("replay",)

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

    @admin.action(description="Replay to every destination of its routes", permissions=["replay"])
    def replay_events(self, request: HttpRequest, queryset: QuerySet[Event]) -> None:
        result = gate.run_sync(gate.areplay_events, [e.pk for e in queryset])
        report_replay(self, request, result)

    @admin.action(
        description="Replay anyway (another copy, even if one is pending)", permissions=["replay"]
    )
    def replay_events_anyway(self, request: HttpRequest, queryset: QuerySet[Event]) -> None:
        result = gate.run_sync(gate.areplay_events, [e.pk for e in queryset], force=True)
        report_replay(self, request, result)

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return may_replay(request)

    def buttons(self, request: HttpRequest, obj: Event) -> list[Button]:
        return REPLAY_BUTTONS

    def may_press(self, request: HttpRequest, action: str) -> bool:
        return action == "replay" and may_replay(request)

    def press(self, request: HttpRequest, obj: Event, action: str) -> None:
        force = request.POST.get("force") == "1"
        report_replay(self, request, gate.run_sync(gate.areplay_events, [obj.pk], force=force))


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
class DeliveryAdmin(ReadOnlyAdmin[Delivery], ButtonsAdmin[Delivery]):
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
    # "replay of" (a field: a link) and "replayed by" (the other way): a replay and what
    # it replays each lead to the other.
    readonly_fields = [*(f.name for f in Delivery._meta.fields), "replayed_by"]
    inlines = [AttemptInline]
    actions = ["replay_deliveries", "replay_deliveries_anyway"]
    button_actions = ("replay",)

    @admin.display(description="replayed by")
    def replayed_by(self, obj: Delivery) -> str:
        replays = list(obj.replays.order_by("created_at", "pk").values_list("pk", "state"))
        if not replays:
            return "-"
        return format_html_join(
            ", ",
            '<a href="{}">{}</a> ({})',
            (
                (reverse("admin:hookway_delivery_change", args=[quote(pk)]), pk, state)
                for pk, state in replays
            ),
        )

    @admin.action(description="Replay (a new delivery of the same event)", permissions=["replay"])
    def replay_deliveries(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        result = gate.run_sync(gate.areplay_deliveries, [d.pk for d in queryset])
        report_replay(self, request, result)

    @admin.action(
        description="Replay anyway (another copy, even if replayed already)",
        permissions=["replay"],
    )
    def replay_deliveries_anyway(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        result = gate.run_sync(gate.areplay_deliveries, [d.pk for d in queryset], force=True)
        report_replay(self, request, result)

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return may_replay(request)

    def buttons(self, request: HttpRequest, obj: Delivery) -> list[Button]:
        return REPLAY_BUTTONS

    def may_press(self, request: HttpRequest, action: str) -> bool:
        return action == "replay" and may_replay(request)

    def press(self, request: HttpRequest, obj: Delivery, action: str) -> None:
        force = request.POST.get("force") == "1"
        result = gate.run_sync(gate.areplay_deliveries, [obj.pk], force=force)
        report_replay(self, request, result)
