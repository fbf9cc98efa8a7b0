"""Ingest's exception tree. Each error carries the HTTP status the ingest contract gives
it; the view turns any of them into ``{"error": ..., "detail": ...}`` in one place."""

from __future__ import annotations


class IngestError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class MalformedBody(IngestError):
    status = 400
    code = "malformed_json"


class MissingEventName(IngestError):
    status = 400
    code = "missing_event_name"


class InvalidField(IngestError):
    status = 400
    code = "invalid_field"


class UnstorableBody(IngestError):
    """The database refused this webhook's data (nothing was stored)."""

    status = 400
    code = "unstorable"


class RequestHeadersTooLarge(IngestError):
    status = 431
    code = "headers_too_large"

    def __init__(self, detail: str):
        # Refused before the body was read, so the connection can't be reused.
        super().__init__(detail, headers={"Connection": "close"})


class SignatureInvalid(IngestError):
    status = 401
    code = "unauthorized"


class UnknownSource(IngestError):
    status = 404
    code = "unknown_source"


class MethodNotAllowed(IngestError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, detail: str):
        super().__init__(detail, headers={"Allow": "POST"})


class BodyTooLarge(IngestError):
    status = 413
    code = "body_too_large"

    def __init__(self, detail: str):
        # The rest of the upload is never read, so the connection can't be reused.
        super().__init__(detail, headers={"Connection": "close"})


class UnsupportedContentType(IngestError):
    status = 415
    code = "unsupported_media_type"


class StoreUnavailable(IngestError):
    """The database could not commit in time: the sender should retry later."""

    status = 503
    code = "unavailable"

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
