"""What the admin's pages share: type shims for Django's admin classes, the admin of
entries the config file may manage, and forms whose secrets are write-only."""

from __future__ import annotations

import copy
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
