"""What the admin's pages share: type shims for Django's admin classes, the admin of
entries the config file may manage, and forms whose secrets are write-only."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from django import forms
from django.contrib import admin
from django.db import models
from django.http import HttpRequest

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


@dataclass(frozen=True)
class WriteOnlySecret:
    """A model field holding a secret: pages show ``summary`` (an admin display method:
    fingerprints, never the value), the form's ``new`` input replaces it and its
    ``clear`` checkbox empties it (to ``empty``)."""

    field: str
    new: str
    clear: str
    summary: str
    empty: Any = ""


class ManagedByFileAdmin(ModelAdmin[_M]):
    """Entries from the config file are read-only here: the next start would undo edits.

    A model's secrets (``secrets``) are write-only: see WriteOnlySecret.
    """

    secrets: tuple[WriteOnlySecret, ...] = ()

    @staticmethod
    def _managed(obj: models.Model | None) -> bool:
        return obj is not None and bool(getattr(obj, "managed", False))

    def get_readonly_fields(self, request: HttpRequest, obj: _M | None = None) -> list[str]:
        summaries = [secret.summary for secret in self.secrets]
        if self._managed(obj):
            # The inputs too: the admin drops read-only declared fields from the form, so
            # a crafted POST can't replace a managed entry's secrets either.
            hidden = {secret.field for secret in self.secrets}
            fields = [f.name for f in self.model._meta.fields if f.name not in hidden]
            inputs = [name for secret in self.secrets for name in (secret.new, secret.clear)]
            return [*fields, *summaries, *inputs]
        return ["managed", *summaries]

    def get_fields(self, request: HttpRequest, obj: _M | None = None) -> _FieldGroups:
        managed = self._managed(obj)
        writable = not managed and (obj is None or self.has_change_permission(request, obj))
        secrets = {secret.field: secret for secret in self.secrets}
        names: list[str | _ListOrTuple[str]] = []
        for f in self.model._meta.fields:
            secret = secrets.get(f.name)
            if secret is not None:
                if obj is not None:
                    names.append(secret.summary)
                if writable:  # on the add page, nothing to remove yet
                    names += [secret.new, secret.clear] if obj is not None else [secret.new]
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
    """For each of ``secrets``: replace the model's field with the cleaned ``new`` input
    when it is filled, empty it when ``clear`` is ticked, keep it otherwise."""

    secrets: ClassVar[tuple[WriteOnlySecret, ...]]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for secret in self.secrets:
            if cleaned.get(secret.new) and cleaned.get(secret.clear):
                raise forms.ValidationError("Replace the secret or remove it, not both.")
        return cleaned

    def secret_after_save(self, secret: WriteOnlySecret) -> Any:
        """The value ``secret``'s field will have once this form is saved."""
        if self.cleaned_data.get(secret.new):
            return self.cleaned_data[secret.new]
        if self.cleaned_data.get(secret.clear):
            return copy.copy(secret.empty)
        return getattr(self.instance, secret.field)

    def save(self, commit: bool = True) -> _M:
        for secret in self.secrets:
            setattr(self.instance, secret.field, self.secret_after_save(secret))
        return super().save(commit)
