from django.urls import path
from systemhooks.views import system_hook

urlpatterns = [
    path("hooks/gitlab", system_hook),
]
