"""The operator API at ``/api/v1/``: one NinjaAPI, its routers and its error shape.

OpenAPI at ``/api/v1/openapi.json`` and interactive docs at ``/api/v1/docs`` (Swagger UI
from ninja's bundled static files: nothing is loaded from the internet)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from hookway.api import deliveries, destinations, events, routes, sources, stats, stream
from hookway.api.auth import READ, Principal
from hookway.api.errors import ApiError

logger = logging.getLogger("hookway.api")

api = NinjaAPI(
    title="Hookway operator API",
    version="1",
    description=(
        "Events Hookway received, their deliveries and attempts, and the sources, "
        "destinations and routes behind them. Authenticate with an API key "
        "(`Authorization: Bearer hwk_…`, made by `./manage.py create_api_key`) or a "
        'logged-in staff session. Errors are `{"error": code, "detail": message}`.'
    ),
    urls_namespace="hookway-api",
    auth=READ,
    docs_url="/docs",
)


def error(
    request: HttpRequest,
    status: int,
    code: str,
    detail: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    response = api.create_response(
        request, {"error": code, "detail": detail, **(extra or {})}, status=status
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return error(request, exc.status, exc.code, exc.detail, exc.extra, exc.headers)


@api.exception_handler(AuthenticationError)
def _unauthorized(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    detail = (
        "this API key is unknown or revoked"
        if request.headers.get("Authorization", "").lower().startswith("bearer ")
        else "send an API key as 'Authorization: Bearer <key>' (./manage.py create_api_key)"
    )
    return error(request, 401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg', 'invalid')}"
        for e in exc.errors
    )
    return error(
        request, 422, "invalid_request", problems or "invalid request", {"errors": exc.errors}
    )


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    codes = {400: "bad_request", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
    return error(request, exc.status_code, codes.get(exc.status_code, "error"), str(exc))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error(request, 404, "not_found", str(exc) or "not found")


@api.exception_handler(DataError)
def _bad_value(request: HttpRequest, exc: DataError) -> HttpResponse:
    # A value the database can't hold in a query (PostgreSQL: a NUL character in text, a
    # number out of range): the request's fault, whatever parameter carried it.
    return error(request, 400, "bad_request", f"a value the database can't take: {exc}")


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    # A bug, never an expected answer: logged with its traceback, and still the API's shape.
    logger.error("API %s %s failed", request.method, request.path, exc_info=exc)
    return error(request, 500, "internal_error", "Hookway failed to answer; the log says why")


@api.get("/me", tags=["auth"], summary="Who this key or session is")
async def me(request: HttpRequest) -> dict[str, str]:
    principal: Principal = request.auth  # type: ignore[attr-defined]
    return {"name": principal.name, "scope": principal.scope}


for prefix, module in [
    ("/events", events),
    ("/deliveries", deliveries),
    ("/sources", sources),
    ("/destinations", destinations),
    ("/routes", routes),
    ("/stats", stats),
    ("/stream", stream),
]:
    api.add_router(prefix, module.router)
