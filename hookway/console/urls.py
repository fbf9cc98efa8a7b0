"""The console's URLconf, at the root of the standalone server (hookway.standalone.urls):
``/`` overview, ``/events/``, ``/events/<id>/``, ``/destinations/``, ``/dead/``,
``/sources/``; ``/login/`` and ``/logout/``. A project mounting it elsewhere includes it
under a prefix of its own (docs/console.md)."""

from django.urls import path

from hookway.console import access, dead, destinations, event, events, overview, sources

app_name = "hookway-console"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("login/", access.ConsoleLogin.as_view(), name="login"),
    path("logout/", access.ConsoleLogout.as_view(), name="logout"),
    path("events/", events.event_list, name="events"),
    path("events/rows/", events.event_rows, name="event-rows"),
    path("events/<str:event_id>/", event.event_detail, name="event"),
    path("events/<str:event_id>/timeline", event.timeline, name="timeline"),
    path("events/<str:event_id>/replay", event.replay, name="replay"),
    path("destinations/", destinations.destination_list, name="destinations"),
    path("destinations/<str:name>/test", destinations.send_test, name="destination-test"),
    path(
        "destinations/<str:name>/<str:action>",
        destinations.change_state,
        name="destination-state",
    ),
    path("dead/", dead.dead_letters, name="dead"),
    path("dead/replay", dead.replay_group, name="dead-replay"),
    path("sources/", sources.source_list, name="sources"),
]
