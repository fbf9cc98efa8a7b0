"""The admin of what the config file defines: sources, destinations and routes (editable
unless the file manages them; secrets write-only). A destination's pause, resume and
enable (after a 410) are operational state, with actions and buttons of their own that
work on managed destinations too."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from hookway import gate
from hookway.admin.base import (
    ManagedByFileAdmin,
    WriteOnlySecretForm,
    WriteOnlyTextarea,
    _check_ref,
)
from hookway.admin.buttons import Button, ButtonsAdmin
from hookway.config.file import destination_url_problem
from hookway.models import DISABLED_IN_FILE, REMOVED_FROM_FILE, Destination, Route, Source
from hookway.secrets import describe, describe_ref


class SourceForm(WriteOnlySecretForm[Source]):
    secret_field, new_field, clear_field, empty = "secrets", "new_secrets", "clear_secrets", []

    new_secrets = forms.CharField(
        label="New secrets",
        required=False,
        widget=WriteOnlyTextarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
        help_text="Replaces every current secret: one per line, each a literal or env:NAME "
        "(any may match, for rotation). Leave blank to keep the current ones. Never shown "
        "again.",
    )
    clear_secrets = forms.BooleanField(label="Remove all secrets", required=False)

    class Meta:
        model = Source
        fields = ["slug", "verify", "require_event_name", "max_body_bytes", "enabled", "managed"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields.get("new_secrets")
        if self.instance.pk is None and field is not None:
            field.label = "Secrets"
            field.help_text = (
                "One per line, each a literal or env:NAME (any may match, for rotation). "
                "Never shown again."
            )

    def clean_new_secrets(self) -> list[str]:
        lines = self.cleaned_data.get("new_secrets", "").splitlines()
        return [_check_ref(line.strip()) for line in lines if line.strip()]


@admin.register(Source)
class SourceAdmin(ManagedByFileAdmin[Source]):
    form = SourceForm
    secret_field, secret_summary = "secrets", "secrets_summary"
    secret_inputs = ("new_secrets", "clear_secrets")
    list_display = [
        "slug",
        "verify",
        "enabled",
        "require_event_name",
        "max_body_bytes",
        "secrets_summary",
        "managed",
    ]
    list_filter = ["verify", "enabled", "managed"]
    search_fields = ["slug"]

    @admin.display(description="secrets")
    def secrets_summary(self, obj: Source) -> str:
        refs = obj.secrets if isinstance(obj.secrets, list) else [obj.secrets]
        return describe([str(ref) for ref in refs if ref])


# Django 6 assumes https for a URL typed without a scheme, and Django 5.2 warns until a
# form says which: every form field built for a URLField here says https.
HTTPS_URLS: dict[type[models.Field[Any, Any]], dict[str, Any]] = {
    models.URLField: {"assume_scheme": "https"}
}


def _formfield(db_field: models.Field[Any, Any], **kwargs: Any) -> forms.Field | None:
    return db_field.formfield(**{**HTTPS_URLS.get(type(db_field), {}), **kwargs})


class DestinationForm(WriteOnlySecretForm[Destination]):
    secret_field, new_field, clear_field, empty = (
        "signing_secret",
        "new_signing_secret",
        "clear_signing_secret",
        "",
    )

    new_signing_secret = forms.CharField(
        label="New signing secret",
        required=False,
        max_length=Destination._meta.get_field("signing_secret").max_length,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text='Replaces the current one: "whsec_…" or env:NAME. Leave blank to keep '
        "the current one. Never shown again.",
    )
    clear_signing_secret = forms.BooleanField(
        label="Remove the signing secret", required=False, help_text="Stop signing requests."
    )

    class Meta:
        model = Destination
        fields = [
            "name",
            "url",
            "timeout_seconds",
            "max_attempts",
            "concurrency",
            "enabled",
            "disabled_reason",
            "managed",
        ]
        formfield_callback = _formfield

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields.get("new_signing_secret")
        if self.instance.pk is None and field is not None:
            field.label = "Signing secret"
            field.help_text = 'Optional: "whsec_…" or env:NAME. Never shown again.'

    def clean_new_signing_secret(self) -> str:
        return _check_ref(self.cleaned_data.get("new_signing_secret", "").strip())

    def clean_url(self) -> str:
        # The same rule as the config file: Django's URLField takes ftp:// and port 99999.
        url: str = self.cleaned_data["url"]
        problem = destination_url_problem(url)
        if problem is not None:
            raise forms.ValidationError(problem)
        return url


# Set by the Pause / Resume / Enable buttons and actions only, so they stay consistent.
STATE_FIELDS = ("paused", "paused_at", "paused_reason")


@admin.register(Destination)
class DestinationAdmin(ManagedByFileAdmin[Destination], ButtonsAdmin[Destination]):
    form = DestinationForm
    formfield_overrides = HTTPS_URLS
    secret_field, secret_summary = "signing_secret", "signing_secret_summary"
    secret_inputs = ("new_signing_secret", "clear_signing_secret")
    withheld = ("bearer_token", "basic_auth")
    list_display = [
        "name",
        "url",
        "enabled",
        "disabled_reason",
        "paused",
        "max_attempts",
        "concurrency",
        "signing_secret_summary",
        "managed",
    ]
    list_filter = ["enabled", "paused", "managed"]
    search_fields = ["name", "url"]
    actions = ["pause_destinations", "resume_destinations", "enable_destinations"]
    button_actions = ("pause", "resume", "enable")

    def get_readonly_fields(
        self, request: HttpRequest, obj: Destination | None = None
    ) -> list[str]:
        fields = super().get_readonly_fields(request, obj)
        return [*fields, *(f for f in STATE_FIELDS if f not in fields)]

    def _change(self, request: HttpRequest, action: str, name: str, reason: str = "") -> None:
        try:
            if action == "pause":
                change = gate.run_sync(gate.apause_destination, name, reason)
            elif action == "resume":
                change = gate.run_sync(gate.aresume_destination, name)
            else:
                change = gate.run_sync(gate.aenable_destination, name)
        except gate.DestinationError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(
            request, change.message, messages.SUCCESS if change.changed else messages.WARNING
        )

    @admin.action(description="Pause: hold their deliveries until resumed", permissions=["change"])
    def pause_destinations(self, request: HttpRequest, queryset: QuerySet[Destination]) -> None:
        for name in queryset.values_list("name", flat=True):
            self._change(request, "pause", name)

    @admin.action(description="Resume: send what waits, oldest first", permissions=["change"])
    def resume_destinations(self, request: HttpRequest, queryset: QuerySet[Destination]) -> None:
        for name in queryset.values_list("name", flat=True):
            self._change(request, "resume", name)

    @admin.action(description="Enable again (after a 410)", permissions=["change"])
    def enable_destinations(self, request: HttpRequest, queryset: QuerySet[Destination]) -> None:
        for name in queryset.values_list("name", flat=True):
            self._change(request, "enable", name)

    def buttons(self, request: HttpRequest, obj: Destination) -> list[Button]:
        shown = []
        if obj.paused:
            shown.append(Button("Resume", "resume", title="Send what waits, oldest first"))
        else:
            shown.append(
                Button(
                    "Pause",
                    "pause",
                    title="Hold its deliveries (new ones too) until it is resumed",
                    text_input="reason",
                    placeholder="reason (optional)",
                )
            )
        file_decides = obj.managed and obj.disabled_reason in (DISABLED_IN_FILE, REMOVED_FROM_FILE)
        if not obj.enabled and not file_decides:
            shown.append(Button("Enable", "enable", title="Enable it again and send what waits"))
        return shown

    def may_press(self, request: HttpRequest, action: str) -> bool:
        return action in self.button_actions and self.has_change_permission(request)

    def press(self, request: HttpRequest, obj: Destination, action: str) -> None:
        self._change(request, action, obj.name, request.POST.get("reason", ""))

    @admin.display(description="signing secret")
    def signing_secret_summary(self, obj: Destination) -> str:
        return describe_ref(obj.signing_secret) if obj.signing_secret else "not set"


@admin.register(Route)
class RouteAdmin(ManagedByFileAdmin[Route]):
    list_display = ["source", "destination", "events", "enabled", "managed"]
    list_filter = ["source", "destination", "managed"]
