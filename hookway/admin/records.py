"""The admin of what Hookway recorded: events, deliveries and attempts (read-only), with
Replay actions on the lists and Replay buttons on the pages (hookway.store.replay:
idempotent unless forced, and every skip explained in a message)."""

from __future__ import annotations

import json
import re

from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.contrib.admin.views.main import ORDER_VAR
from django.db import connection
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from hookway import gate
from hookway.admin.base import _M, ModelAdmin, TabularInline
from hookway.admin.buttons import Button, ButtonsAdmin
from hookway.admin.lists import (
    COUNT_CAP,
    EventNameFilter,
    LargeListAdmin,
    milliseconds,
    shortened,
)
from hookway.gate import ReplayResult, SkipKind
from hookway.models import Attempt, Delivery, Event, Source

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


def name_starts_with(prefix: str, newest_first: bool = False) -> Q:
    """Event names starting with ``prefix`` (case-sensitive), in a form the event-name
    index serves: the names themselves, when the index lists them all (a LIKE can't use
    it on SQLite, whose LIKE ignores case, nor on PostgreSQL outside the C collation).

    With ``newest_first`` (the list shows the newest events first) and several names,
    each name contributes only its newest rows the list can reach (MAX_PAGES pages, or
    the count's cap), read in order from the (event_name, received_at) index: without
    that, SQLite gathers every row of every name ("pu": push and pull_request, 40 % of
    the table) and sorts them all to show the first page."""
    names = gate.run_sync(gate.aevent_names, EventNameFilter.max_choices + 1)
    if len(names) <= EventNameFilter.max_choices:
        matching = [name for name in names if name.startswith(prefix)]
        if not newest_first or len(matching) < 2:
            return Q(event_name__in=matching)
        reach = COUNT_CAP + 1
        newest = Q()
        for name in matching:
            rows = Event.objects.filter(event_name=name).order_by("-received_at", "-id")
            newest |= Q(pk__in=rows.values("pk")[:reach])
        return newest
    starts = Q(event_name__startswith=prefix)
    if connection.vendor == "sqlite":
        # A range of names the index can serve; U+10FFFF sorts after every character
        # in SQLite's byte order.
        starts &= Q(event_name__gte=prefix, event_name__lt=prefix + "\U0010ffff")
    return starts


def _pretty(text: str) -> str:
    """Return ``text`` as escaped HTML, each lone surrogate written as its JSON escape."""
    text = _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return format_html('<pre style="white-space: pre-wrap">{}</pre>', text)


@admin.register(Event)
class EventAdmin(LargeListAdmin[Event], ReadOnlyAdmin[Event], ButtonsAdmin[Event]):
    list_display = ["id", "source", "event_name", "delivery_id", "received_at"]
    list_select_related = ["source"]
    list_only = ("id", "source__slug", "event_name", "delivery_id", "received_at")
    # received_at: "today", "past 7 days"… are time ranges on its index (a date
    # hierarchy would read every event to list the months that have some).
    list_filter = ["source", EventNameFilter, "received_at"]
    # Only the columns an index sorts: sorting a million rows by another reads them all.
    sortable_by = ["id", "received_at"]
    # Searched by get_search_results: an event id, a sender's delivery id, or the start
    # of an event name.
    search_fields = ["id"]
    search_help_text = "An event id, the sender's delivery id, or the start of an event name."
    fields = readonly_fields = (
        "id",
        "source",
        "event_name",
        "delivery_id",
        "content_type",
        "received_at",
        "client_ip",
        "payload",
        "request_headers",
        "not_routed",
    )
    inlines = [DeliveryInline]
    actions = ["replay_events", "replay_events_anyway"]
    button_actions = ("replay",)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Event], search_term: str
    ) -> tuple[QuerySet[Event], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        # An exact id or delivery id (the latter on the (source, delivery id) index, for
        # each source), else the names that start with the text.
        exact = Q(pk=term) | Q(
            source_id__in=list(Source.objects.values_list("pk", flat=True)), delivery_id=term
        )
        if queryset.filter(exact).exists():
            return queryset.filter(exact), False
        # The list's order: none chosen (newest first), or columns all descending.
        order = request.GET.get(ORDER_VAR, "")
        newest_first = all(part.startswith("-") for part in order.split(".") if part)
        return queryset.filter(name_starts_with(term, newest_first)), False

    @admin.display(description="payload")
    def payload(self, obj: Event) -> str:
        raw = bytes(obj.body)
        try:
            text = json.dumps(json.loads(raw), indent=2, ensure_ascii=False, sort_keys=False)
        except (ValueError, RecursionError):
            text = raw.decode("utf-8", "replace")
        return _pretty(text)

    @admin.display(description="filtered out")
    def not_routed(self, obj: Event) -> str:
        """The routes whose filter or match did not take it, and why."""
        notes = obj.filtered_out if isinstance(obj.filtered_out, list) else []
        lines = [
            f"{n.get('destination', '?')}: {n.get('reason', '')}"
            for n in notes
            if isinstance(n, dict)
        ]
        return _pretty("\n".join(lines)) if lines else "-"

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
        "duration",
        "outcome",
        "status_code",
        "error",
        "error_kind",
        "response_body",
        "request_body",
        "worker",
    )
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Delivery | None = None) -> bool:
        return False

    @admin.display(description="duration")
    def duration(self, obj: Attempt) -> str:
        return milliseconds(obj.duration_ms)


@admin.register(Delivery)
class DeliveryAdmin(LargeListAdmin[Delivery], ReadOnlyAdmin[Delivery], ButtonsAdmin[Delivery]):
    list_display = [
        "id",
        "event_link",
        "event_name",
        "destination",
        "state",
        "attempts",
        "created_at",
        "next_attempt_at",
        "last_status_code",
        "last_error_line",
    ]
    # The event's name, not its body: a list of 100 deliveries would load 100 bodies.
    list_select_related = ["event", "destination"]
    list_only = (
        "id",
        "event__id",
        "event__event_name",
        "destination__name",
        "state",
        "attempts",
        "created_at",
        "next_attempt_at",
        "last_status_code",
        "last_error",
    )
    list_filter = ["state", "destination"]
    sortable_by = ["id", "created_at"]
    # Searched by get_search_results: a delivery id or an event id, exactly.
    search_fields = ["id"]
    search_help_text = "A delivery id (msg_…, the webhook-id a receiver got) or an event id."
    # "replay of" (a field: a link) and "replayed by" (the other way): a replay and what
    # it replays each lead to the other.
    readonly_fields = [*(f.name for f in Delivery._meta.fields), "replayed_by"]
    inlines = [AttemptInline]
    actions = ["replay_deliveries", "replay_deliveries_anyway"]
    button_actions = ("replay",)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Delivery], search_term: str
    ) -> tuple[QuerySet[Delivery], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(pk=term) | Q(event_id=term)), False

    @admin.display(description="event", ordering="event_id")
    def event_link(self, obj: Delivery) -> str:
        url = reverse("admin:hookway_event_change", args=[quote(obj.event_id)])
        return format_html('<a href="{}">{}</a>', url, obj.event_id)

    @admin.display(description="event name")
    def event_name(self, obj: Delivery) -> str:
        return obj.event.event_name

    @admin.display(description="last error")
    def last_error_line(self, obj: Delivery) -> str:
        if not obj.last_error:
            return "-"
        # Short enough to keep the row one line high; the whole error on hover.
        return format_html(
            '<span title="{}" style="white-space: nowrap">{}</span>',
            obj.last_error,
            shortened(obj.last_error),
        )

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
