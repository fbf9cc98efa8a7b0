"""The admin of a destination's delivery policies: its rate limit and breaker settings
validated as the config file does, its circuit on the list, and its state changes on
its page and in a read-only list of their own."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from django.utils import timezone

from hookway.models import Destination, DestinationChange
from hookway.policy import Change
from hookway.store import changelog

ADMIN = "/admin/hookway"


@pytest.fixture
def admin_client(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


def form(**overrides: str) -> dict[str, str]:
    return {
        "name": "ci",
        "url": "https://ci.example.com/hooks",
        "timeout_seconds": "15",
        "max_attempts": "10",
        "concurrency": "20",
        "enabled": "on",
        "circuit_failures": "5",
        "circuit_cooldown_seconds": "30",
        "disable_after_seconds": "432000",
        "on_dead": "skip",  # the select always posts its choice
        **overrides,
    }


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("rate_limit", "50 per second", "is not a rate"),
        ("rate_limit", "0/min", "the count must be at least 1"),
        ("circuit_cooldown_seconds", "0", "Expected 0.1 to 3600 seconds."),
        ("disable_after_seconds", "-1", "expected a duration of 0 or more"),
    ],
)
def test_a_bad_policy_is_refused_with_the_config_file_s_message(admin_client, field, value, says):
    response = admin_client.post(f"{ADMIN}/destination/add/", form(**{field: value}))

    assert response.status_code == 200
    assert says in " ".join(response.context["adminform"].form.errors[field])
    assert not Destination.objects.exists()


def test_a_rate_limit_and_breaker_settings_are_saved(admin_client):
    response = admin_client.post(
        f"{ADMIN}/destination/add/",
        form(rate_limit="3000/min", circuit_failures="0", notifications="on"),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    made = Destination.objects.get()
    assert (made.rate_limit, made.circuit_failures, made.notifications) == ("3000/min", 0, True)


def test_the_circuit_is_on_the_list_and_the_changes_on_the_page(admin_client):
    destination = Destination.objects.create(name="ci", url="https://ci.example.com/")
    retry_at = timezone.now() + timedelta(seconds=30)
    Destination.objects.filter(pk=destination.pk).update(
        circuit_state="open", circuit_retry_at=retry_at
    )
    with transaction.atomic():
        changelog.record(
            destination.pk,
            "ci",
            Change.CIRCUIT_OPENED,
            "closed",
            "open",
            "5 failed attempts in a row, the last HTTP 503; a probe in 30 s",
        )

    listed = admin_client.get(f"{ADMIN}/destination/").content.decode()
    page = admin_client.get(f"{ADMIN}/destination/{destination.pk}/change/").content.decode()
    changes = admin_client.get(f"{ADMIN}/destinationchange/").content.decode()

    assert f"open (probe at {retry_at:%H:%M:%S} UTC)" in listed
    assert "5 failed attempts in a row, the last HTTP 503; a probe in 30 s" in page
    assert f"destinationchange/?destination__id__exact={destination.pk}" in page
    assert "circuit_opened" in changes
    # A record, not something to edit.
    change = DestinationChange.objects.get()
    assert admin_client.get(f"{ADMIN}/destinationchange/add/").status_code == 403
    edit = admin_client.post(f"{ADMIN}/destinationchange/{change.pk}/change/", {"reason": "x"})
    assert edit.status_code == 403
    change.refresh_from_db()
    assert change.reason.startswith("5 failed")
