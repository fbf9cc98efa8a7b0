"""What ingest reads from a verified request besides the signature: the event name and
the sender's delivery id (the dedupe key), per the table in docs/verification.md."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hookway.inbound import VerifyScheme
from hookway.ingest.errors import InvalidField

MAX_FIELD_LENGTH = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
GITLAB_SYSTEM_HOOK = "system hook"  # X-Gitlab-Event of every GitLab system hook


def _body_str(payload: Any, *keys: str) -> str | None:
    if not isinstance(payload, dict):
        return None
    for key in keys:
        value = payload.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _header_str(headers: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = headers.get(name)
        if value and value.strip():
            return value
    return None


def _clean(what: str, value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > MAX_FIELD_LENGTH:
        raise InvalidField(f"{what} is longer than {MAX_FIELD_LENGTH} characters")
    if _CONTROL.search(value):
        raise InvalidField(f"{what} contains control characters")
    try:
        # JSON's \ud800 escapes decode to lone surrogates, which no database can store.
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidField(f"{what} is not valid Unicode (a lone surrogate)") from None
    return value


def event_name(scheme: VerifyScheme, headers: Mapping[str, str], payload: Any) -> str | None:
    """Return the event name the scheme defines for this request, or None if absent."""
    if scheme == VerifyScheme.GITHUB:
        found = _header_str(headers, "X-GitHub-Event")
    elif scheme == VerifyScheme.GITLAB:
        # System hooks carry `event_name` (or, for push, tag push and merge request system
        # hooks, only `object_kind`), project and group hooks `object_kind`. GitLab sends
        # `X-Gitlab-Event: System Hook` with every system hook: that names the kind of hook,
        # not the event, so it never stands in for a missing name. ("Push Hook" and the
        # other project hook headers do.)
        header = _header_str(headers, "X-Gitlab-Event")
        if header is not None and header.strip().lower() == GITLAB_SYSTEM_HOOK:
            header = None
        found = _body_str(payload, "event_name", "object_kind") or header
    elif scheme in (VerifyScheme.STRIPE, VerifyScheme.STANDARD_WEBHOOKS):
        found = _body_str(payload, "type")
    else:
        found = _body_str(payload, "event_name", "type", "event") or _header_str(
            headers, "X-Event-Name"
        )
    return _clean("event name", found)


def delivery_id(scheme: VerifyScheme, headers: Mapping[str, str], payload: Any) -> str | None:
    """Return the sender's delivery id (the dedupe key) for this request, or None."""
    if scheme == VerifyScheme.GITHUB:
        found = _header_str(headers, "X-GitHub-Delivery")
    elif scheme == VerifyScheme.GITLAB:
        found = _header_str(headers, "Idempotency-Key", "X-Gitlab-Event-UUID")
    elif scheme == VerifyScheme.STRIPE:
        found = _body_str(payload, "id")
    elif scheme == VerifyScheme.STANDARD_WEBHOOKS:
        found = _header_str(headers, "webhook-id")
    else:
        found = _header_str(headers, "Idempotency-Key")
    return _clean("delivery id", found)
