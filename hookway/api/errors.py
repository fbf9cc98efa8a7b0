"""The API's errors: one shape, ``{"error": code, "detail": message}`` (ingest's), from
one place. Views raise ApiError; hookway.api.app turns it, and ninja's own errors, into
that shape."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An answer other than success: its HTTP status, a stable code, a message for people,
    and optionally more fields (``extra``) and headers."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra or {}
        self.headers = headers or {}


def not_found(what: str, key: object) -> ApiError:
    return ApiError(404, "not_found", f"no {what} {key}")
