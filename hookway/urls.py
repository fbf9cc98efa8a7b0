"""The ``hookway`` app's URLconf, what a project includes: ingest at its root.

    path("hooks/", include("hookway.urls"))  # POST /hooks/<slug>

The standalone server's URLconf (hookway.standalone.urls) includes it the same way and
adds the admin, the API and the health checks.
"""

from django.urls import re_path

from hookway.ingest.views import receive_hook

urlpatterns = [
    # Any segment reaches the view, so an unknown slug gets the contract's JSON 404.
    # (?s:): a slug may hold any character, a newline too, and still get the JSON 404.
    re_path(r"^(?P<slug>(?s:.+?))/?$", receive_hook, name="hookway-ingest"),
]
