"""API keys in the admin: made here (the key shown once, in the page's message), listed
with their last use, and revoked; never shown again and never edited."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from hookway.admin.base import ModelAdmin
from hookway.models import ApiKey
from hookway.store import apikeys

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldGroups


@admin.register(ApiKey)
class ApiKeyAdmin(ModelAdmin[ApiKey]):
    list_display = ["name", "prefix", "scope", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    fields = ["name", "scope"]
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        # A key is made once; afterwards only its name may change (and it may be revoked).
        if obj is None:
            return []
        return ["scope", "prefix", "created_at", "last_used_at", "revoked_at"]

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> _FieldGroups:
        if obj is None:
            return ["name", "scope"]
        return ["name", "scope", "prefix", "created_at", "last_used_at", "revoked_at"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        row, key = apikeys.create(obj.name, obj.scope)
        obj.pk, obj.prefix, obj.key_hash, obj.created_at = (
            row.pk,
            row.prefix,
            row.key_hash,
            row.created_at,
        )
        self.message_user(
            request,
            f"API key {row.name!r} created. Copy it now, it is not shown again: {key}",
            messages.WARNING,
        )

    @admin.action(description="Revoke the selected API keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = sum(apikeys.revoke(pk) for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, f"{revoked} API key(s) revoked.")
