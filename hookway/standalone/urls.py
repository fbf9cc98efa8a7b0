"""The standalone server's URLconf: the app's ingest under /hooks/, plus the admin, the
operator API, the health checks, the Prometheus metrics and, at the root, the operator console."""

from django.contrib import admin
from django.urls import include, path

from hookway import echo, health
from hookway.api.app import api
from hookway.metrics.views import metrics

# The standalone server's admin is Hookway's own; a host project's admin keeps its titles.
admin.site.site_header = "Hookway"
admin.site.site_title = "Hookway admin"
admin.site.index_title = "Sources, destinations and what was received and delivered"

urlpatterns = [
    path("hooks/", include("hookway.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("echo", echo.echo, name="echo"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("", include("hookway.console.urls")),
]
