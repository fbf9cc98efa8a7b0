"""The Django admin: sources, destinations and routes (editable unless the config file
manages them), and events, deliveries and attempts (read-only records)."""

from __future__ import annotations

import copy
import json
import re
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from django import forms
from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from hookway.config.file import destination_url_problem
from hookway.models import Attempt, Delivery, Destination, Event, Route, Source
from hookway.secrets import describe, describe_ref

MANAGED_NOTE = "Managed by the HOOKWAY_CONFIG file: edit the file, not this page."

_M = TypeVar("_M", bound=models.Model)
_P = TypeVar("_P", bound=models.Model)

# django-stubs makes the admin's and the forms' classes generic in their model, but
# Django's own take no type arguments at runtime. To mypy these names are Django's
# classes; at runtime, the same classes made subscriptable by Generic. (The other way,
# django_stubs_ext.monkeypatch(), patches Django at startup from a runtime dependency,
# for what only the type checker reads.)
if TYPE_CHECKING:
    # The stubs' names for what the admin's field and fieldset hooks return.
    from django.contrib.admin.options import _FieldGroups, _FieldsetSpec
    from django.utils.datastructures import _ListOrTuple

    ModelAdmin = admin.ModelAdmin
    TabularInline = admin.TabularInline
    ModelForm = forms.ModelForm
else:

    class ModelAdmin(admin.ModelAdmin, Generic[_M]):
        pass

    class TabularInline(admin.TabularInline, Generic[_M, _P]):
        pass

    class ModelForm(forms.ModelForm, Generic[_M]):
        pass


class ManagedByFileAdmin(ModelAdmin[_M]):
    """Entries from the config file are read-only here: the next start would undo edits.

    A model's secret (``secret_field``) is write-only: pages show ``secret_summary``
    (fingerprints, never the value) and the form's ``secret_inputs`` replace or remove it.
    """

    secret_field = ""
    secret_summary = ""
    secret_inputs: tuple[str, ...] = ()
    # Secret fields with no write-only input yet: never shown, never editable here.
    withheld: tuple[str, ...] = ()

    @staticmethod
    def _managed(obj: models.Model | None) -> bool:
        return obj is not None and bool(getattr(obj, "managed", False))

    def get_readonly_fields(self, request: HttpRequest, obj: _M | None = None) -> list[str]:
        summary = [self.secret_summary] if self.secret_summary else []
        if self._managed(obj):
            # The inputs too: the admin drops read-only declared fields from the form, so
            # a crafted POST can't replace a managed entry's secret either.
            fields = [
                f.name
                for f in self.model._meta.fields
                if f.name != self.secret_field and f.name not in self.withheld
            ]
            return [*fields, *summary, *self.secret_inputs]
        return ["managed", *summary]

    def get_fields(self, request: HttpRequest, obj: _M | None = None) -> _FieldGroups:
        managed = self._managed(obj)
        writable = not managed and (obj is None or self.has_change_permission(request, obj))
        names: list[str | _ListOrTuple[str]] = []
        for f in self.model._meta.fields:
            if f.name in self.withheld:
                continue
            if f.name == self.secret_field:
                if obj is not None:
                    names.append(self.secret_summary)
                if writable:  # on the add page, nothing to remove yet
                    names += self.secret_inputs if obj is not None else self.secret_inputs[:1]
            elif managed or (f.editable and not f.auto_created):
                names.append(f.name)
        return names

    def get_fieldsets(self, request: HttpRequest, obj: _M | None = None) -> _FieldsetSpec:
        fieldsets = super().get_fieldsets(request, obj)
        if self._managed(obj):
            (name, options), *rest = fieldsets
            return [(name, {**options, "description": MANAGED_NOTE}), *rest]
        return fieldsets

    def has_delete_permission(self, request: HttpRequest, obj: _M | None = None) -> bool:
        if self._managed(obj):
            return False
        return super().has_delete_permission(request, obj)


class WriteOnlyTextarea(forms.Textarea):
    """A textarea that never renders a value, not even the one just submitted with errors."""

    def format_value(self, value: Any) -> str | None:
        return None


def _check_ref(ref: str) -> str:
    if ref == "env:":
        raise forms.ValidationError("'env:' needs a variable name, e.g. env:GITLAB_TOKEN")
    return ref


class WriteOnlySecretForm(ModelForm[_M]):
    """Replace the model's ``secret_field`` with the cleaned ``new_field`` when it is
    filled, empty it when ``clear_field`` is ticked, keep it otherwise."""

    secret_field: ClassVar[str]
    new_field: ClassVar[str]
    clear_field: ClassVar[str]
    empty: ClassVar[list[str] | str]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get(self.new_field) and cleaned.get(self.clear_field):
            raise forms.ValidationError("Replace the secret or remove it, not both.")
        return cleaned

    def save(self, commit: bool = True) -> _M:
        if self.cleaned_data.get(self.new_field):
            setattr(self.instance, self.secret_field, self.cleaned_data[self.new_field])
        elif self.cleaned_data.get(self.clear_field):
            setattr(self.instance, self.secret_field, copy.copy(self.empty))
        return super().save(commit)


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


@admin.register(Destination)
class DestinationAdmin(ManagedByFileAdmin[Destination]):
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
        "max_attempts",
        "concurrency",
        "signing_secret_summary",
        "managed",
    ]
    list_filter = ["enabled", "managed"]
    search_fields = ["name", "url"]

    @admin.display(description="signing secret")
    def signing_secret_summary(self, obj: Destination) -> str:
        return describe_ref(obj.signing_secret) if obj.signing_secret else "not set"


@admin.register(Route)
class RouteAdmin(ManagedByFileAdmin[Route]):
    list_display = ["source", "destination", "events", "enabled", "managed"]
    list_filter = ["source", "destination", "managed"]


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
