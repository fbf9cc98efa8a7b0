from django.urls import include, path

urlpatterns = [
    path("hooks/", include("hookway.urls")),  # POST /hooks/gitlab, as before
]
