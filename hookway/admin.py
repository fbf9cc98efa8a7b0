"""The Django admin: sources, destinations and routes (editable unless the config file
manages them), and events, deliveries and attempts (read-only records)."""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from hookway.config.file import destination_url_problem
from hookway.models import Attempt, Delivery, Destination, Event, Route, Source

MANAGED_NOTE = "Managed by the HOOKWAY_CONFIG file: edit the file, not this page."


class ManagedByFileAdmin(admin.ModelAdmin):
    """Entries from the config file are read-only here: the next start would undo edits."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and getattr(obj, "managed", False):
            return [f.name for f in self.model._meta.fields]
        return ["managed"]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and getattr(obj, "managed", False):
            (name, options), *rest = fieldsets
            return [(name, {**options, "description": MANAGED_NOTE}), *rest]
        return fieldsets

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and getattr(obj, "managed", False):
            return False
        return super().has_delete_permission(request, obj)


@admin.register(Source)
class SourceAdmin(ManagedByFileAdmin):
    list_display = ["slug", "verify", "enabled", "require_event_name", "max_body_bytes", "managed"]
    list_filter = ["verify", "enabled", "managed"]
    search_fields = ["slug"]


# Django 6 assumes https for a URL typed without a scheme, and Django 5.2 warns until a
# form says which: every form field built for a URLField here says https.
HTTPS_URLS: dict[type[models.Field], dict[str, Any]] = {models.URLField: {"assume_scheme": "https"}}


def _formfield(db_field: models.Field, **kwargs: Any) -> forms.Field | None:
    return db_field.formfield(**{**HTTPS_URLS.get(type(db_field), {}), **kwargs})


class DestinationForm(forms.ModelForm):
    class Meta:
        model = Destination
        fields = [
            "name",
            "url",
            "signing_secret",
            "timeout_seconds",
            "max_attempts",
            "concurrency",
            "enabled",
            "disabled_reason",
            "managed",
        ]
        formfield_callback = _formfield

    def clean_url(self) -> str:
        # The same rule as the config file: Django's URLField takes ftp:// and port 99999.
        url: str = self.cleaned_data["url"]
        problem = destination_url_problem(url)
        if problem is not None:
            raise forms.ValidationError(problem)
        return url


@admin.register(Destination)
class DestinationAdmin(ManagedByFileAdmin):
    form = DestinationForm
    formfield_overrides = HTTPS_URLS
    list_display = [
        "name",
        "url",
        "enabled",
        "disabled_reason",
        "max_attempts",
        "concurrency",
        "managed",
    ]
    list_filter = ["enabled", "managed"]
    search_fields = ["name", "url"]


@admin.register(Route)
class RouteAdmin(ManagedByFileAdmin):
    list_display = ["source", "destination", "events", "enabled", "managed"]
    list_filter = ["source", "destination", "managed"]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DeliveryInline(admin.TabularInline):
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

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# A JSON "\udfff" escape decodes to a lone surrogate, which UTF-8 can't encode: left in
# the page, it makes the response fail (a 500) when Django encodes it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _pretty(text: str) -> str:
    """Return ``text`` as escaped HTML, each lone surrogate written as its JSON escape."""
    text = _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return format_html('<pre style="white-space: pre-wrap">{}</pre>', text)


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
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


class AttemptInline(admin.TabularInline):
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

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
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
