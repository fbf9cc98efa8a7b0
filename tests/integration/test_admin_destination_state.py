"""The admin's Pause, Resume and Enable: buttons on a destination's page (POST forms with
a CSRF token) and actions on the list, for destinations the config file manages too."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.test import Client

from hookway.models import DISABLED_IN_FILE, Destination

ADMIN = "/admin/hookway/destination"
GONE = "410 Gone from the receiver at 2026-11-23 10:00:00 UTC"


@pytest.fixture
def admin_client(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


@pytest.fixture
def managed(db: None) -> Destination:
    return Destination.objects.create(name="cfg", url="https://cfg.example.com/", managed=True)


def buttons(client: Client, destination: Destination) -> dict[str, str]:
    """The page's buttons: label -> the URL its form posts to."""
    page = client.get(f"{ADMIN}/{destination.pk}/change/").content.decode()
    forms = re.findall(
        r'<form method="post" action="([^"]+)" class="hookway-button">(.*?)</form>', page, re.S
    )
    assert all('name="csrfmiddlewaretoken"' in body for _, body in forms)
    return {re.search(r">([^<>]+)</button>", body).group(1): url for url, body in forms}  # type: ignore[union-attr]


def messages_after(client: Client, response: Any) -> list[str]:
    assert response.status_code == 302, response.content[:2000]
    return [str(m) for m in client.get(response["Location"]).context["messages"]]


def test_a_managed_destination_can_be_paused_and_resumed_from_its_page(admin_client, managed):
    assert buttons(admin_client, managed) == {"Pause": f"{ADMIN}/{managed.pk}/pause/"}

    response = admin_client.post(f"{ADMIN}/{managed.pk}/pause/", {"reason": "maintenance"})

    assert response["Location"] == f"{ADMIN}/{managed.pk}/change/"
    assert messages_after(admin_client, response) == ["'cfg' paused; nothing is pending"]
    managed.refresh_from_db()
    assert (managed.paused, managed.paused_reason) == (True, "maintenance")
    assert managed.paused_at is not None
    assert buttons(admin_client, managed) == {"Resume": f"{ADMIN}/{managed.pk}/resume/"}

    response = admin_client.post(f"{ADMIN}/{managed.pk}/resume/")

    assert messages_after(admin_client, response) == ["'cfg' resumed; nothing is pending"]
    managed.refresh_from_db()
    assert (managed.paused, managed.paused_at, managed.paused_reason) == (False, None, "")


def test_a_managed_destination_disabled_by_a_410_can_be_enabled_from_its_page(
    admin_client, managed
):
    Destination.objects.filter(pk=managed.pk).update(enabled=False, disabled_reason=GONE)
    assert "Enable" in buttons(admin_client, managed)

    response = admin_client.post(f"{ADMIN}/{managed.pk}/enable/")

    assert messages_after(admin_client, response) == ["'cfg' enabled; nothing is pending"]
    managed.refresh_from_db()
    assert (managed.enabled, managed.disabled_reason) == (True, "")
    assert "Enable" not in buttons(admin_client, managed)


def test_no_enable_button_when_the_config_file_disabled_it(admin_client, managed):
    Destination.objects.filter(pk=managed.pk).update(
        enabled=False, disabled_reason=DISABLED_IN_FILE
    )

    assert "Enable" not in buttons(admin_client, managed)
    response = admin_client.post(f"{ADMIN}/{managed.pk}/enable/")
    assert messages_after(admin_client, response) == [
        "'cfg' is disabled in the config file (enabled = false): change it there; "
        "the next sync would disable it again"
    ]
    assert Destination.objects.get(pk=managed.pk).enabled is False


@pytest.mark.parametrize("action", ["pause", "resume", "enable"])
def test_a_get_to_a_state_button_changes_nothing(admin_client, managed, action):
    Destination.objects.filter(pk=managed.pk).update(enabled=False, disabled_reason=GONE)

    assert admin_client.get(f"{ADMIN}/{managed.pk}/{action}/").status_code == 405

    managed.refresh_from_db()
    assert (managed.paused, managed.enabled) == (False, False)


def test_a_state_button_needs_the_csrf_token(managed):
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))

    assert client.post(f"{ADMIN}/{managed.pk}/pause/").status_code == 403
    assert Destination.objects.get(pk=managed.pk).paused is False


def test_pausing_is_not_editable_in_the_form_of_an_admin_created_destination(admin_client, db):
    own = Destination.objects.create(name="own", url="https://own.example.com/")

    page = admin_client.get(f"{ADMIN}/{own.pk}/change/").content.decode()

    assert 'name="url"' in page
    assert 'name="paused"' not in page
    assert 'name="paused_reason"' not in page
    assert "Pause" in buttons(admin_client, own)


def test_the_list_actions_pause_resume_and_enable(admin_client, managed):
    other = Destination.objects.create(name="own", url="https://own.example.com/")
    both = [managed.pk, other.pk]

    response = admin_client.post(
        f"{ADMIN}/", {"action": "pause_destinations", ACTION_CHECKBOX_NAME: both}
    )
    assert messages_after(admin_client, response) == [
        "'cfg' paused; nothing is pending",
        "'own' paused; nothing is pending",
    ]
    assert set(Destination.objects.values_list("paused", flat=True)) == {True}

    response = admin_client.post(
        f"{ADMIN}/", {"action": "resume_destinations", ACTION_CHECKBOX_NAME: [managed.pk]}
    )
    assert messages_after(admin_client, response) == ["'cfg' resumed; nothing is pending"]

    Destination.objects.filter(pk=other.pk).update(enabled=False, disabled_reason=GONE)
    response = admin_client.post(
        f"{ADMIN}/", {"action": "enable_destinations", ACTION_CHECKBOX_NAME: both}
    )
    other.refresh_from_db()
    assert messages_after(admin_client, response) == [
        "'cfg' is already enabled (active)",
        f"'own' enabled, but it is paused since {other.paused_at:%Y-%m-%d %H:%M:%S} UTC; "
        "nothing is pending",
    ]
