"""Who may call the operator API, and what they may do.

Two ways in: an API key (``Authorization: Bearer hwk_…``, hookway.store.apikeys) or a
logged-in staff session (the admin's, and the console's). A key's scope is ``read`` or
``write``; a staff session may write, with Django's CSRF check on every unsafe method,
as a form post would have. Anything else gets 401 with ``WWW-Authenticate: Bearer``;
a read key on a write gets 403."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja.security import HttpBearer
from ninja.security.apikey import APIKeyCookie
from ninja.utils import check_csrf

from hookway.api.errors import ApiError
from hookway.models import ApiKeyScope
from hookway.store import apikeys

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``request.auth`` in every API view."""

    name: str  # the key's name, or the staff user's username
    scope: str  # "read" or "write"
    key_id: int | None = None  # None for a staff session


class ApiKeyAuth(HttpBearer):
    """``Authorization: Bearer <key>``; with ``write=True``, a read key is refused (403)."""

    def __init__(self, *, write: bool) -> None:
        self.write = write
        super().__init__()

    async def authenticate(self, request: HttpRequest, token: str) -> Principal | None:
        key = await apikeys.aauthenticate(token.strip())
        if key is None:
            return None
        if self.write and key.scope != ApiKeyScope.WRITE:
            raise ApiError(
                403, "forbidden", f"API key {key.name!r} is read-only; this needs a write key"
            )
        return Principal(name=key.name, scope=key.scope, key_id=key.pk)


class StaffSession(APIKeyCookie):
    """A logged-in staff user's session cookie; unsafe methods need Django's CSRF token
    (the ``X-CSRFToken`` header, as the admin's own JavaScript sends it)."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self) -> None:
        super().__init__(csrf=True)

    async def __call__(self, request: HttpRequest) -> Principal | None:
        if self.param_name not in request.COOKIES:
            return None
        user = await request.auser()
        if not (user.is_authenticated and user.is_active and user.is_staff):
            return None
        if request.method not in SAFE_METHODS and check_csrf(request) is not None:
            raise ApiError(
                403,
                "csrf_failed",
                "a write from a logged-in session needs Django's CSRF token in X-CSRFToken "
                "(or use an API key)",
            )
        return Principal(name=user.get_username(), scope=ApiKeyScope.WRITE)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:  # pragma: no cover
        raise NotImplementedError  # __call__ does the work


# For views: ``auth=READ`` (the API's default) or ``auth=WRITE``.
READ = [ApiKeyAuth(write=False), StaffSession()]
WRITE = [ApiKeyAuth(write=True), StaffSession()]
