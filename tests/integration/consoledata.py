"""A staff login for the console's tests, and a world of events to show."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from tests.integration.apidata import event, source_and_destination

PASSWORD = "console-tests-password"


@pytest.fixture
def staff(db: None) -> Client:
    """A browser logged in as a staff user, checking CSRF like a real one."""
    user = User.objects.create_user("ops", "ops@localhost", PASSWORD, is_staff=True)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    return browser


def csrf(browser: Client, path: str = "/") -> str:
    """The CSRF token a page gives this browser (its cookie, as a form carries it)."""
    browser.get(path)
    return str(browser.cookies["csrftoken"].value)


def world() -> dict[str, Any]:
    """Four events a minute apart (received in the last hour), one per delivery state,
    from two sources to one destination."""
    now = timezone.now()
    gh, ci = source_and_destination("gh", "ci")
    gl, _ = source_and_destination("gl", "ci")
    made = {
        "pending": event(
            gh, "push", at=now - timedelta(minutes=4), deliveries=((ci, "pending", 0),)
        ),
        "failing": event(
            gh, "merge_request", at=now - timedelta(minutes=3), deliveries=((ci, "pending", 2),)
        ),
        "delivered": event(
            gl,
            "push",
            at=now - timedelta(minutes=2),
            deliveries=((ci, "succeeded", 1),),
            delivery_id="abc-1",
        ),
        "dead": event(gl, "tag_push", at=now - timedelta(minutes=1), deliveries=((ci, "dead", 3),)),
    }
    return {k: v.pk for k, v in made.items()}
