"""The console's writes with Django's test client on the real database (and real local
receivers for the destination test): each is a POST that needs its CSRF token, does
what the API's twin does, says what it did, and changes nothing when refused."""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from hookway.models import Delivery, Destination
from tests.conftest import free_port
from tests.integration.apidata import event, source_and_destination
from tests.integration.consoledata import csrf, staff, world
from tests.receivers import Receiver, Reply

__all__ = ["staff"]


@pytest.fixture
def private_allowed(settings: Any) -> None:
    settings.HOOKWAY = dataclasses.replace(settings.HOOKWAY, allow_private_destinations=True)


def writes(made: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    return [
        (f"/events/{made['dead']}/replay", {}),
        ("/destinations/ci/disable", {}),
        ("/destinations/ci/pause", {}),
        ("/destinations/ci/test", {}),
        ("/dead/replay", {"destination": "ci", "error": ""}),
        ("/logout/", {}),
    ]


def test_every_write_without_its_csrf_token_is_refused_and_changes_nothing(staff: Client) -> None:
    made = world()
    before = Delivery.objects.count()

    for path, form in writes(made):
        response = staff.post(path, form)
        assert response.status_code == 403, path
        assert "CSRF" in response.content.decode()

    assert Delivery.objects.count() == before
    ci = Destination.objects.get(name="ci")
    assert ci.enabled
    assert not ci.paused
    assert staff.get("/").status_code == 200  # still logged in


def test_an_anonymous_write_is_sent_to_the_login_page(db: None) -> None:
    made = world()
    browser = Client(enforce_csrf_checks=True)
    token = csrf(browser, "/login/")

    response = browser.post(f"/events/{made['dead']}/replay", {"csrfmiddlewaretoken": token})

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")
    assert Delivery.objects.filter(replay_of__isnull=False).count() == 0


def test_replaying_an_event_to_every_destination_says_what_it_made(staff: Client) -> None:
    made = world()
    token = csrf(staff)

    response = staff.post(
        f"/events/{made['dead']}/replay", {"csrfmiddlewaretoken": token}, follow=True
    )

    (copy,) = Delivery.objects.filter(replay_of__isnull=False)
    assert copy.event_id == made["dead"]
    assert copy.state == "pending"
    page = response.content.decode()
    assert f"Replayed to ci as {copy.pk}." in page
    assert 'hx-trigger="every 2s"' in page  # the new delivery is pending: the page polls


def test_replaying_to_one_destination_over_htmx_answers_the_new_timeline(staff: Client) -> None:
    source, ci = source_and_destination("gh", "ci")
    _, chat = source_and_destination("gh", "chat")
    row = event(source, deliveries=((ci, "succeeded", 1), (chat, "succeeded", 1)))
    token = csrf(staff)

    response = staff.post(
        f"/events/{row.pk}/replay",
        {"csrfmiddlewaretoken": token, "destination": "chat"},
        HTTP_HX_REQUEST="true",
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith('<div id="timeline"')
    (copy,) = Delivery.objects.filter(replay_of__isnull=False)
    assert copy.destination_id == chat.pk
    assert f"Replayed to chat as {copy.pk}." in page
    assert page.count('class="delivery"') == 3


def test_replaying_to_a_destination_the_event_has_nothing_to_do_with_is_400(
    staff: Client,
) -> None:
    made = world()
    Destination.objects.create(name="elsewhere", url="http://127.0.0.1:9/")
    token = csrf(staff)

    response = staff.post(
        f"/events/{made['dead']}/replay",
        {"csrfmiddlewaretoken": token, "destination": "elsewhere"},
    )

    assert response.status_code == 400
    assert "is not a destination of this event" in response.content.decode()
    assert not Delivery.objects.filter(replay_of__isnull=False).exists()


def test_a_pending_delivery_is_not_replayed_and_the_page_says_why(staff: Client) -> None:
    made = world()
    token = csrf(staff)

    response = staff.post(
        f"/events/{made['pending']}/replay", {"csrfmiddlewaretoken": token}, follow=True
    )

    assert "Not replayed" in response.content.decode()
    assert "still pending" in response.content.decode()
    assert not Delivery.objects.filter(replay_of__isnull=False).exists()


def test_a_get_on_a_write_is_405(staff: Client) -> None:
    made = world()

    assert staff.get(f"/events/{made['dead']}/replay").status_code == 405
    assert staff.get("/destinations/ci/disable").status_code == 405


@pytest.mark.parametrize(
    ("action", "enabled", "paused", "says"),
    [
        ("disable", False, False, "'ci' disabled"),
        ("pause", True, True, "paused"),
    ],
)
def test_disable_and_pause_change_the_destination_and_say_so(
    staff: Client, action: str, enabled: bool, paused: bool, says: str
) -> None:
    world()
    token = csrf(staff)

    response = staff.post(f"/destinations/ci/{action}", {"csrfmiddlewaretoken": token}, follow=True)

    ci = Destination.objects.get(name="ci")
    assert (ci.enabled, ci.paused) == (enabled, paused)
    assert says in html.unescape(response.content.decode())


def test_enable_and_resume_undo_them(staff: Client) -> None:
    world()
    Destination.objects.filter(name="ci").update(enabled=False, paused=True)
    token = csrf(staff)

    staff.post("/destinations/ci/enable", {"csrfmiddlewaretoken": token})
    staff.post("/destinations/ci/resume", {"csrfmiddlewaretoken": token})

    ci = Destination.objects.get(name="ci")
    assert ci.enabled
    assert not ci.paused


def test_enabling_what_the_config_file_disabled_is_refused_with_the_reason(
    staff: Client,
) -> None:
    Destination.objects.create(
        name="filed",
        url="http://127.0.0.1:9/",
        managed=True,
        enabled=False,
        disabled_reason="disabled in the config file",
    )
    token = csrf(staff)

    response = staff.post("/destinations/filed/enable", {"csrfmiddlewaretoken": token})

    assert response.status_code == 409
    assert "config file" in response.content.decode()
    assert not Destination.objects.get(name="filed").enabled


@pytest.mark.parametrize("path", ["/destinations/nothing/disable", "/destinations/ci/explode"])
def test_an_unknown_destination_or_action_is_404(staff: Client, path: str) -> None:
    world()

    assert staff.post(path, {"csrfmiddlewaretoken": csrf(staff)}).status_code == 404


def test_send_test_shows_delivered_with_status_and_latency(
    staff: Client, receiver: Callable[..., Receiver], private_allowed: None
) -> None:
    r = receiver(lambda request, n: Reply(204, body=b""))
    Destination.objects.create(name="ci", url=r.url())

    response = staff.post(
        "/destinations/ci/test", {"csrfmiddlewaretoken": csrf(staff)}, HTTP_HX_REQUEST="true"
    )

    page = response.content.decode()
    assert "Test to ci: delivered" in page
    assert "HTTP 204" in page
    (ping,) = r.received()
    assert ping.webhook_id in page


@pytest.mark.parametrize(
    ("reply", "verdict", "detail"),
    [
        (Reply(500, body=b"boom: database down"), "destination error", "HTTP 500"),
        (Reply(200, delay=3), "timed out", "timed out"),
    ],
)
def test_send_test_maps_a_failure_to_its_outcome(
    staff: Client,
    receiver: Callable[..., Receiver],
    private_allowed: None,
    reply: Reply,
    verdict: str,
    detail: str,
) -> None:
    r = receiver(lambda request, n: reply)
    Destination.objects.create(name="ci", url=r.url(), timeout_seconds=0.5)

    response = staff.post(
        "/destinations/ci/test", {"csrfmiddlewaretoken": csrf(staff)}, HTTP_HX_REQUEST="true"
    )

    page = response.content.decode()
    assert f"Test to ci: {verdict}" in page
    assert detail in page


def test_send_test_to_nothing_listening_is_unreachable(
    staff: Client, private_allowed: None
) -> None:
    Destination.objects.create(name="ci", url=f"http://127.0.0.1:{free_port()}/hook")

    page = staff.post(
        "/destinations/ci/test", {"csrfmiddlewaretoken": csrf(staff)}
    ).content.decode()

    assert "Test to ci: unreachable" in page
    assert '<section class="card destination"' in page  # without htmx: the whole page


def test_send_test_refuses_a_private_address_unless_allowed(staff: Client) -> None:
    Destination.objects.create(name="ci", url="http://127.0.0.1:9/hook")

    page = staff.post(
        "/destinations/ci/test", {"csrfmiddlewaretoken": csrf(staff)}, HTTP_HX_REQUEST="true"
    ).content.decode()

    assert "Test to ci: unreachable" in page


def test_send_test_to_a_handler_destination_says_to_replay_instead(staff: Client) -> None:
    Destination.objects.create(name="py", handler="tests.handler_funcs:record")

    response = staff.post(
        "/destinations/py/test", {"csrfmiddlewaretoken": csrf(staff)}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 409
    assert "replay a stored event to it instead" in response.content.decode()


def dead_world() -> None:
    source, ci = source_and_destination("gh", "ci")
    for n in range(3):
        row = event(source, at=timezone.now() - timedelta(minutes=n), deliveries=((ci, "dead", 2),))
        Delivery.objects.filter(event=row).update(last_error="HTTP 500")
    row = event(source, deliveries=((ci, "dead", 2),))
    Delivery.objects.filter(event=row).update(last_error="timed out")


def test_bulk_replay_asks_first_saying_how_many_then_replays_them(staff: Client) -> None:
    dead_world()

    confirm = staff.get("/dead/replay?destination=ci&error=HTTP+500")

    page = confirm.content.decode()
    assert confirm.status_code == 200
    assert "Replay 3 dead deliveries to ci?" in page
    assert not Delivery.objects.filter(replay_of__isnull=False).exists()  # asking changed nothing

    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    done = staff.post(
        "/dead/replay",
        {"csrfmiddlewaretoken": token, "destination": "ci", "error": "HTTP 500"},
        follow=True,
    )

    copies = Delivery.objects.filter(replay_of__isnull=False)
    assert copies.count() == 3
    assert set(copies.values_list("replay_of__last_error", flat=True)) == {"HTTP 500"}
    assert "Replayed 3 dead deliveries to ci." in done.content.decode()
    # Asked again, the same group has nothing left to replay.
    again = staff.get("/dead/replay?destination=ci&error=HTTP+500").content.decode()
    assert "Replay 0 dead deliveries to ci?" in again
    assert "3 of the 3 will not be replayed" in again


def test_bulk_replay_without_a_group_is_400(staff: Client) -> None:
    dead_world()

    response = staff.post("/dead/replay", {"csrfmiddlewaretoken": csrf(staff)})

    assert response.status_code == 400
    assert "Choose a group" in response.content.decode()
    assert not Delivery.objects.filter(replay_of__isnull=False).exists()


def test_logging_out_ends_the_session(staff: Client) -> None:
    token = csrf(staff)

    response = staff.post("/logout/", {"csrfmiddlewaretoken": token})

    assert response.status_code == 302
    assert staff.get("/").status_code == 302
