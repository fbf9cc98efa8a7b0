"""Buttons on an admin change page that do something (replay, pause, resume, enable):
each a POST form with its CSRF token, posted to a view of its own that answers GET with
405, does the work, says what happened in a message, and returns to the page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from hookway.admin.base import _M, ModelAdmin


@dataclass(frozen=True)
class Button:
    """One button: ``action`` names its view (``<object_id>/<action>/``), ``fields`` are
    posted with it, and ``text_input`` (a field name) adds a text box to fill in."""

    label: str
    action: str
    title: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    text_input: str = ""
    placeholder: str = ""


class ButtonsAdmin(ModelAdmin[_M]):
    """A ModelAdmin whose change page shows ``buttons(request, obj)``; a click calls
    ``press(request, obj, action)`` if ``may_press(request, action)``."""

    change_form_template = "admin/hookway/change_form_buttons.html"
    button_actions: tuple[str, ...] = ()

    def buttons(self, request: HttpRequest, obj: _M) -> list[Button]:
        return []

    def may_press(self, request: HttpRequest, action: str) -> bool:
        return False

    def press(self, request: HttpRequest, obj: _M, action: str) -> None:
        raise NotImplementedError

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        shown: list[dict[str, Any]] = []
        if obj is not None:
            for button in self.buttons(request, obj):
                if self.may_press(request, button.action):
                    url = reverse(
                        f"{self.admin_site.name}:{self._url_name(button.action)}",
                        args=[quote(obj.pk)],
                    )
                    shown.append({"button": button, "url": url})
        context = {**(extra_context or {}), "object_buttons": shown}
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self) -> list[URLPattern]:
        # Before the defaults: their "<path:object_id>/" pattern would take these too.
        own = [
            path(
                f"<path:object_id>/{action}/",
                self.admin_site.admin_view(self._button_view(action)),
                name=self._url_name(action),
            )
            for action in self.button_actions
        ]
        return own + super().get_urls()

    def _url_name(self, action: str) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{action}"

    def _button_view(self, action: str) -> Callable[..., HttpResponse]:
        @require_POST
        def view(request: HttpRequest, object_id: str) -> HttpResponse:
            if not self.may_press(request, action):
                raise PermissionDenied
            obj = self.get_object(request, unquote(object_id))
            if obj is None:
                raise Http404(f"no {self.opts.verbose_name} {object_id!r}")
            self.press(request, obj, action)
            change = f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change"
            return HttpResponseRedirect(reverse(change, args=[quote(obj.pk)]))

        return view
