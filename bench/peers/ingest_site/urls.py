from django.urls import path

from bench.peers.ingest_site import views

urlpatterns = [
    path("hooks/sync", views.sync_ingest),
    path("hooks/async", views.async_ingest),
    path("hooks/celery", views.celery_ingest),
    path("hooks/slow", views.slow_ingest),
]
