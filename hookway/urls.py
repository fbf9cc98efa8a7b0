from django.contrib import admin
from django.urls import path, re_path

from hookway import echo, health
from hookway.api.app import api
from hookway.ingest.views import receive_hook

urlpatterns = [
    # Any segment reaches the view, so an unknown slug gets the contract's JSON 404.
    # (?s:): a slug may hold any character, a newline too, and still get the JSON 404.
    re_path(r"^hooks/(?P<slug>(?s:.+?))/?$", receive_hook, name="hookway-ingest"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("echo", echo.echo, name="echo"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
]
