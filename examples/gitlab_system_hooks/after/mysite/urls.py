from django.urls import re_path

from hookway.ingest.views import receive_hook

urlpatterns = [
    re_path(r"^hooks/(?P<slug>[^/]+)/?$", receive_hook),
]
