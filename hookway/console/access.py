"""Who may use the console: logged-in, active staff users (as for the admin). Anyone
else is sent to the console's login page, which comes back to the page they asked for."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.views import LoginView, LogoutView, redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import reverse

View = Callable[..., Coroutine[Any, Any, HttpResponseBase]]


def staff_only(view: View) -> View:
    """``view`` for staff users; others are redirected to the login page (an htmx
    request is told to go there with HX-Redirect, rather than get the login page
    swapped into a fragment)."""

    @wraps(view)
    async def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        user = await request.auser()
        if not (user.is_authenticated and user.is_active and user.is_staff):
            login = reverse("hookway-console:login")
            if request.headers.get("HX-Request"):
                response = HttpResponse(status=204)
                response["HX-Redirect"] = f"{login}?next={request.path}"
                return response
            return redirect_to_login(request.get_full_path(), login)
        # Templates read request.user (the auth context processor): the user loaded
        # here, or it would be loaded again with a sync query on the event loop.
        request.user = user
        return await view(request, *args, **kwargs)

    return guarded


class ConsoleLogin(LoginView):
    """Django's login, refusing non-staff users as the admin's does."""

    template_name = "console/login.html"
    authentication_form = AdminAuthenticationForm
    redirect_authenticated_user = False

    def get_default_redirect_url(self) -> str:
        return reverse("hookway-console:overview")


class ConsoleLogout(LogoutView):
    """A POST (with its CSRF token) logs out; then the login page."""

    def get_success_url(self) -> str:
        return reverse("hookway-console:login")
