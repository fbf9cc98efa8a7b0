"""API keys (hookway.models.ApiKey): made, checked and revoked here, nowhere else.

A key reads ``hwk_`` then 43 URL-safe characters (256 random bits). It is shown once, when
it is made; the database keeps its SHA-256 and its first 12 characters."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone

from hookway.models import ApiKey, ApiKeyScope

PREFIX = "hwk_"
SHOWN = 12  # characters of a key kept in clear, to tell keys apart

# last_used_at is written at most this often per key: an API client polling ten times a
# second must not turn every read into a write.
LAST_USED_EVERY = timedelta(seconds=60)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(name: str, scope: str = ApiKeyScope.READ) -> tuple[ApiKey, str]:
    """Make a key; return its row and the key itself (the only time it exists in clear)."""
    if scope not in ApiKeyScope.values:
        raise ValueError(f"scope must be one of {', '.join(ApiKeyScope.values)}, not {scope!r}")
    name = name.strip()
    if not name:
        raise ValueError("a key needs a name (what uses it)")
    key = PREFIX + secrets.token_urlsafe(32)
    row = ApiKey.objects.create(name=name, scope=scope, prefix=key[:SHOWN], key_hash=digest(key))
    return row, key


def revoke(pk: int) -> bool:
    """Revoke a key; False if there is no such key or it was already revoked."""
    return bool(ApiKey.objects.filter(pk=pk, revoked_at=None).update(revoked_at=timezone.now()))


async def aauthenticate(key: str) -> ApiKey | None:
    """The live (not revoked) key ``key`` is, or None; notes its use."""
    if not key.startswith(PREFIX) or len(key) > 100:
        return None
    row = await ApiKey.objects.filter(key_hash=digest(key), revoked_at=None).afirst()
    if row is None:
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
        row.last_used_at = now
        await ApiKey.objects.filter(pk=row.pk).aupdate(last_used_at=now)
    return row
