"""The admin of what the config file defines: sources, destinations and routes (editable
unless the file manages them; secrets write-only). A destination's pause, resume and
enable (after a 410) are operational state, with actions and buttons of their own that
work on managed destinations too."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from hookway import gate, handlers
from hookway.admin.base import (
    ManagedByFileAdmin,
    ModelAdmin,
    ModelForm,
    WriteOnlySecret,
    WriteOnlySecretForm,
    WriteOnlyTextarea,
    _check_ref,
)
from hookway.admin.buttons import Button, ButtonsAdmin
from hookway.config.file import destination_url_problem
from hookway.headers import (
    duplicate_name,
    pattern_problem,
    static_header_problem,
    token_problem,
    value_problem,
)
from hookway.models import (
    DISABLED_IN_FILE,
    REMOVED_FROM_FILE,
    CircuitState,
    Destination,
    DestinationChange,
    Event,
    Route,
    Source,
)
from hookway.policy import MAX_CIRCUIT_COOLDOWN, parse_duration, rate_problem
from hookway.routing import lanes, rules
from hookway.secrets import describe, describe_basic_auth, describe_ref

SOURCE_SECRETS = (
    WriteOnlySecret("secrets", "new_secrets", "clear_secrets", "secrets_summary", empty=[]),
)


class SourceForm(WriteOnlySecretForm[Source]):
    secrets = SOURCE_SECRETS

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
    secrets = SOURCE_SECRETS
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


DESTINATION_SECRETS = (
    WriteOnlySecret(
        "signing_secret", "new_signing_secret", "clear_signing_secret", "signing_secret_summary"
    ),
    WriteOnlySecret(
        "bearer_token", "new_bearer_token", "clear_bearer_token", "bearer_token_summary"
    ),
    WriteOnlySecret("basic_auth", "new_basic_auth", "clear_basic_auth", "basic_auth_summary"),
)
# The label of each write-only input on the add page, where there is nothing to replace.
FIRST_LABELS = {
    "new_signing_secret": ("Signing secret", 'Optional: "whsec_…" or env:NAME. Never shown again.'),
    "new_bearer_token": (
        "Bearer token",
        'Optional: sent as "Authorization: Bearer …"; a literal or env:NAME. Never shown again.',
    ),
    "new_basic_auth": (
        "Basic auth",
        "Optional: user:password, user:env:NAME (the password from the environment) or "
        "env:NAME (holding user:password). Never shown again.",
    ),
}


def _secret_input(label: str, max_length: int | None, help_text: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=max_length,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=help_text,
    )


class DestinationForm(WriteOnlySecretForm[Destination]):
    secrets = DESTINATION_SECRETS

    new_signing_secret = _secret_input(
        "New signing secret",
        Destination._meta.get_field("signing_secret").max_length,
        'Replaces the current one: "whsec_…" or env:NAME. Leave blank to keep the current '
        "one. Never shown again.",
    )
    clear_signing_secret = forms.BooleanField(
        label="Remove the signing secret", required=False, help_text="Stop signing requests."
    )
    new_bearer_token = _secret_input(
        "New bearer token",
        Destination._meta.get_field("bearer_token").max_length,
        'Replaces the current one (sent as "Authorization: Bearer …"): a literal or env:NAME. '
        "Leave blank to keep the current one. Never shown again.",
    )
    clear_bearer_token = forms.BooleanField(label="Remove the bearer token", required=False)
    new_basic_auth = _secret_input(
        "New basic auth",
        Destination._meta.get_field("basic_auth").max_length,
        "Replaces the current one: user:password, user:env:NAME (the password from the "
        "environment) or env:NAME (holding user:password). Leave blank to keep the current "
        "one. Never shown again.",
    )
    clear_basic_auth = forms.BooleanField(label="Remove basic auth", required=False)

    class Meta:
        model = Destination
        fields = [
            "name",
            "url",
            "handler",
            "celery_task",
            "timeout_seconds",
            "max_attempts",
            "concurrency",
            "ordered",
            "on_dead",
            "order_key",
            "enabled",
            "disabled_reason",
            "headers",
            "forward_headers",
            "rate_limit",
            "circuit_failures",
            "circuit_cooldown_seconds",
            "disable_after_seconds",
            "notifications",
            "managed",
        ]
        formfield_callback = _formfield
        help_texts = {
            "headers": 'A JSON object, e.g. {"X-Team": "ops", "X-Api-Key": "env:API_KEY"}: '
            "each value a literal or env:NAME (read when sending); a header whose name looks "
            "like a credential must use env:NAME. Hookway's own headers can't be set.",
            "forward_headers": 'A JSON list of glob patterns, e.g. ["X-Gitlab-*"]: the '
            "sender's stored headers to pass on (credential, hop-by-hop and Hookway's own "
            "headers never are).",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            for name, (label, help_text) in FIRST_LABELS.items():
                field = self.fields.get(name)
                if field is not None:
                    field.label, field.help_text = label, help_text

    def clean_new_signing_secret(self) -> str:
        return _check_ref(self.cleaned_data.get("new_signing_secret", "").strip())

    def clean_new_bearer_token(self) -> str:
        ref = _check_ref(self.cleaned_data.get("new_bearer_token", "").strip())
        problem = token_problem(ref) if ref and not ref.startswith("env:") else None
        if problem is not None:
            raise forms.ValidationError(problem)
        return ref

    def clean_new_basic_auth(self) -> str:
        ref = _check_ref(self.cleaned_data.get("new_basic_auth", "").strip())
        if not ref or ref.startswith("env:"):
            return ref
        user, colon, password = ref.partition(":")
        if not (colon and user) or value_problem(user):
            raise forms.ValidationError(
                "Expected user:password, user:env:NAME or env:NAME (holding user:password)."
            )
        _check_ref(password)
        return ref

    def clean_headers(self) -> dict[str, str]:
        value = self.cleaned_data.get("headers")
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise forms.ValidationError(
                'Expected a JSON object of header names and string values, e.g. {"X-Team": "ops"}.'
            )
        for name, ref in value.items():
            problem = static_header_problem(name, ref)
            if problem is not None:
                raise forms.ValidationError(f"{name}: {problem}")
        twice = duplicate_name(value)
        if twice is not None:
            raise forms.ValidationError(f"{twice}: given twice (header names ignore case).")
        return value

    def clean_forward_headers(self) -> list[str]:
        value = self.cleaned_data.get("forward_headers")
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise forms.ValidationError('Expected a JSON list of patterns, e.g. ["X-Gitlab-*"].')
        for pattern in value:
            problem = pattern_problem(pattern)
            if problem is not None:
                raise forms.ValidationError(problem)
        return value

    def clean_rate_limit(self) -> str:
        # The config file's rule, with its message.
        text: str = self.cleaned_data.get("rate_limit", "").strip()
        problem = rate_problem(text)
        if problem is not None:
            raise forms.ValidationError(problem)
        return text

    def clean_order_key(self) -> str:
        # The config file's rule, with its message ("line 1, column 9: …").
        text: str = self.cleaned_data.get("order_key", "").strip()
        if text:
            try:
                lanes.check(text)
            except lanes.RuleError as exc:
                raise forms.ValidationError(str(exc)) from None
        return text

    def clean_circuit_cooldown_seconds(self) -> float:
        value: float = self.cleaned_data["circuit_cooldown_seconds"]
        if not 0.1 <= value <= MAX_CIRCUIT_COOLDOWN:
            raise forms.ValidationError(f"Expected 0.1 to {MAX_CIRCUIT_COOLDOWN:g} seconds.")
        return value

    def clean_disable_after_seconds(self) -> float:
        value: float = self.cleaned_data["disable_after_seconds"]
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_url(self) -> str:
        # The same rule as the config file: Django's URLField takes ftp:// and port 99999.
        url: str = self.cleaned_data["url"]
        if not url:
            return url  # a handler or Celery destination (clean checks there is one kind)
        problem = destination_url_problem(url)
        if problem is not None:
            raise forms.ValidationError(problem)
        return url

    def clean_handler(self) -> str:
        # The config file's rule: it must import and be callable, in this process.
        target: str = self.cleaned_data["handler"]
        if target:
            try:
                handlers.resolve(target)
            except handlers.HandlerNotFound as exc:
                raise forms.ValidationError(str(exc)) from None
        return target

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        kinds = [k for k in ("url", "handler", "celery_task") if cleaned.get(k)]
        if len(kinds) != 1:
            raise forms.ValidationError("Set exactly one of URL, handler and Celery task.")
        if cleaned.get("order_key") and not cleaned.get("ordered"):
            self.add_error(
                "order_key", "Only for an ordered destination: tick Ordered, or clear it."
            )
            return cleaned
        # The config file's rules: one way to set Authorization.
        after = {secret.field: self.secret_after_save(secret) for secret in self.secrets}
        bearer, basic = after["bearer_token"], after["basic_auth"]
        if bearer and basic:
            raise forms.ValidationError("Set a bearer token or basic auth, not both.")
        headers = cleaned.get("headers") or {}
        if (bearer or basic) and any(name.lower() == "authorization" for name in headers):
            raise forms.ValidationError(
                "The bearer token or basic auth sets Authorization already: remove it from "
                "the headers."
            )
        url = cleaned.get("url") or self.instance.url
        if (bearer or basic) and urlsplit(url).netloc.rpartition("@")[1]:
            raise forms.ValidationError(
                "The URL carries user:password@ and a bearer token or basic auth is set too: "
                "move the credentials to basic auth."
            )
        return cleaned


# Set by the Pause / Resume / Enable buttons and actions only, so they stay consistent;
# the health columns by the dispatcher as it records attempts.
STATE_FIELDS = (
    "paused",
    "paused_at",
    "paused_reason",
    "last_success_at",
    "failures_in_a_row",
    "failing_since",
    "circuit_state",
    "circuit_changed_at",
    "circuit_retry_at",
    "circuit_cooldown",
    "circuit_probe",
    "recent_changes",
)
# The destination page lists this many of its latest state changes (all of them are in
# the list of destination state changes, filtered by destination).
RECENT_CHANGES = 20


@admin.register(Destination)
class DestinationAdmin(ManagedByFileAdmin[Destination], ButtonsAdmin[Destination]):
    form = DestinationForm
    formfield_overrides = HTTPS_URLS
    secrets = DESTINATION_SECRETS
    list_display = [
        "name",
        "url",
        "enabled",
        "disabled_reason",
        "paused",
        "circuit",
        "last_success_at",
        "failures_in_a_row",
        "rate_limit",
        "max_attempts",
        "concurrency",
        "ordered",
        "signing_secret_summary",
        "auth_summary",
        "managed",
    ]
    list_filter = ["enabled", "paused", "circuit_state", "ordered", "managed"]
    search_fields = ["name", "url", "handler", "celery_task"]
    actions = ["pause_destinations", "resume_destinations", "enable_destinations"]
    button_actions = ("pause", "resume", "enable")

    def get_readonly_fields(
        self, request: HttpRequest, obj: Destination | None = None
    ) -> list[str]:
        fields = super().get_readonly_fields(request, obj)
        return [*fields, *(f for f in STATE_FIELDS if f not in fields)]

    def get_fields(self, request: HttpRequest, obj: Destination | None = None) -> Any:
        fields = list(super().get_fields(request, obj))
        return [*fields, "recent_changes"] if obj is not None else fields

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

    @admin.action(
        description="Enable again (after a 410 or failing too long)", permissions=["change"]
    )
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

    @admin.display(description="circuit", ordering="circuit_state")
    def circuit(self, obj: Destination) -> str:
        if obj.circuit_state == CircuitState.OPEN and obj.circuit_retry_at is not None:
            return f"open (probe at {obj.circuit_retry_at:%H:%M:%S} UTC)"
        return obj.circuit_state.replace("_", "-")

    @admin.display(description="recent state changes")
    def recent_changes(self, obj: Destination) -> str:
        rows = DestinationChange.objects.filter(destination=obj).order_by("-id")[:RECENT_CHANGES]
        if obj.pk is None or not rows:
            return "none"
        link = reverse("admin:hookway_destinationchange_changelist")
        return format_html(
            "<table><tr><th>at</th><th>change</th><th>from</th><th>to</th><th>why</th></tr>"
            '{}</table><p><a href="{}?destination__id__exact={}">All its changes</a></p>',
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (f"{c.at:%Y-%m-%d %H:%M:%S} UTC", c.change, c.from_state, c.to_state, c.reason)
                    for c in rows
                ),
            ),
            link,
            obj.pk,
        )

    @admin.display(description="signing secret")
    def signing_secret_summary(self, obj: Destination) -> str:
        return describe_ref(obj.signing_secret) if obj.signing_secret else "not set"

    @admin.display(description="bearer token")
    def bearer_token_summary(self, obj: Destination) -> str:
        return describe_ref(obj.bearer_token) if obj.bearer_token else "not set"

    @admin.display(description="basic auth")
    def basic_auth_summary(self, obj: Destination) -> str:
        return describe_basic_auth(obj.basic_auth) if obj.basic_auth else "not set"

    @admin.display(description="auth")
    def auth_summary(self, obj: Destination) -> str:
        if obj.bearer_token:
            return f"bearer token {describe_ref(obj.bearer_token)}"
        if obj.basic_auth:
            return f"basic auth {describe_basic_auth(obj.basic_auth)}"
        return "none"


@admin.register(DestinationChange)
class DestinationChangeAdmin(ModelAdmin[DestinationChange]):
    """Every destination state change, with its reason: read-only, as it happened."""

    list_display = ["at", "destination", "change", "from_state", "to_state", "reason", "email"]
    list_filter = ["change", "destination"]
    list_select_related = ["destination"]
    search_fields = ["reason", "destination__name"]
    fields = readonly_fields = (
        "at",
        "destination",
        "change",
        "from_state",
        "to_state",
        "reason",
        "email",
        "emailed_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: DestinationChange | None = None
    ) -> bool:
        return False


class RouteForm(ModelForm[Route]):
    """A route's rules checked as the config file and the API check them (a syntax
    error's line and column, a match document's key), on the field at fault."""

    class Meta:
        model = Route
        fields = ["source", "destination", "events", "filter", "match", "transform", "enabled"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        match = cleaned.get("match")
        if match is None and "match" in cleaned:
            cleaned["match"] = {}  # an emptied box: no match, as the API and the file say
        try:
            rules.check(cleaned.get("filter") or "", match or None, cleaned.get("transform") or "")
        except rules.RuleError as exc:
            field = str(exc).split(":", 1)[0].split("[", 1)[0]
            self.add_error(field if field in self.fields else None, str(exc))
        return cleaned


@admin.register(Route)
class RouteAdmin(ManagedByFileAdmin[Route], ButtonsAdmin[Route]):
    form = RouteForm
    list_display = ["source", "destination", "events", "rules", "enabled", "managed"]
    list_filter = ["source", "destination", "managed"]
    button_actions = ("test",)

    @admin.display(description="filter / match / transform")
    def rules(self, obj: Route) -> str:
        parts = [
            name
            for name, value in (
                ("filter", obj.filter),
                ("match", obj.match),
                ("transform", obj.transform),
            )
            if value
        ]
        return ", ".join(parts) or "-"

    def buttons(self, request: HttpRequest, obj: Route) -> list[Button]:
        return [
            Button(
                "Test on an event",
                "test",
                title="Run this route's filter, match and transform on a stored event "
                "(nothing is sent or saved)",
                text_input="event_id",
                placeholder="event id, e.g. evt_…",
            )
        ]

    def may_press(self, request: HttpRequest, action: str) -> bool:
        return action == "test" and self.has_view_permission(request)

    def press(self, request: HttpRequest, obj: Route, action: str) -> None:
        event_id = request.POST.get("event_id", "").strip()
        row = (
            Event.objects.filter(pk=event_id)
            .values_list("body", "headers", "event_name", "source__slug")
            .first()
            if event_id
            else None
        )
        if row is None:
            self.message_user(request, f"No event {event_id!r}.", messages.ERROR)
            return
        try:
            compiled = rules.check(obj.filter, obj.match or None, obj.transform)
        except rules.RuleError as exc:
            self.message_user(request, f"This route's rules can't be used: {exc}", messages.ERROR)
            return
        body, headers, event_name, source = row
        event = rules.EventVariables(
            bytes(body), headers if isinstance(headers, dict) else {}, event_name, source
        )
        result = rules.trial(compiled, event)
        if result["matched"]:
            said = f"Event {event_id}: this route takes it."
        else:
            said = f"Event {event_id}: this route does not take it ({result['reason']})."
        if event_name and not rules.event_name_matches(obj.events or [], event_name):
            said += f" Its event name {event_name!r} is not one of the route's events, though."
        transform = result["transform"]
        if transform is not None:
            if transform["problem"]:
                said += f" The transform fails: {transform['problem']}."
            else:
                sent = json.dumps(transform["body"], ensure_ascii=False)
                said += f" It would send: {sent[:1000]}"
        level = messages.SUCCESS if result["matched"] else messages.WARNING
        self.message_user(request, said, level)
