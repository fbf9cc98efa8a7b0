"""The admin checks a destination's URL as the config file does: an absolute http(s) URL
whose port, if any, is a number from 1 to 65535."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from hookway.models import Destination

ADD = "/admin/hookway/destination/add/"


@pytest.fixture
def admin_client(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


def form(url: str) -> dict[str, str]:
    return {
        "name": "ci",
        "url": url,
        "timeout_seconds": "15",
        "max_attempts": "10",
        "concurrency": "20",
        # The delivery policies' fields, as the form shows them (their defaults).
        "circuit_failures": "5",
        "circuit_cooldown_seconds": "30",
        "disable_after_seconds": "432000",
        "on_dead": "skip",  # the select always posts its choice
        "enabled": "on",
    }


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://ci.example.com:99999/hooks", "port 99999 is out of range (1-65535)"),
        ("https://ci.example.com:0/hooks", "port 0 is out of range (1-65535)"),
        ("ftp://ci.example.com/hooks", "must be an absolute http:// or https:// URL"),
    ],
)
def test_the_admin_refuses_a_destination_url_the_sender_cannot_use(admin_client, url, problem):
    response = admin_client.post(ADD, form(url))

    assert response.status_code == 200  # the form again, with the error
    assert problem in response.content.decode()
    assert not Destination.objects.filter(name="ci").exists()


def test_the_admin_accepts_a_destination_url_with_a_valid_port(admin_client):
    response = admin_client.post(ADD, form("https://ci.example.com:8443/hooks"))

    assert response.status_code == 302, response.content[:2000]
    assert Destination.objects.get(name="ci").url == "https://ci.example.com:8443/hooks"


def test_the_admin_adds_a_handler_destination_without_a_url(admin_client):
    response = admin_client.post(ADD, {**form(""), "handler": "tests.handler_funcs:on_push"})

    assert response.status_code == 302, response.content[:2000]
    destination = Destination.objects.get(name="ci")
    assert (destination.url, destination.handler) == ("", "tests.handler_funcs:on_push")
    assert destination.kind == "handler"


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({}, "Set exactly one of URL, handler and Celery task."),
        ({"url": "https://ci.example.com/", "celery_task": "t.x"}, "Set exactly one of URL"),
        ({"handler": "tests.handler_funcs:nope"}, "has no attribute &#x27;nope&#x27;"),
    ],
)
def test_the_admin_refuses_a_destination_with_no_kind_several_or_a_missing_handler(
    admin_client, extra, problem
):
    response = admin_client.post(ADD, {**form(""), **extra})

    assert response.status_code == 200
    assert problem in response.content.decode()
    assert not Destination.objects.filter(name="ci").exists()


def test_the_admin_makes_a_destination_ordered_with_a_dead_policy(admin_client):
    data = {**form("https://ci.example.com/hooks"), "ordered": "on", "on_dead": "block"}
    response = admin_client.post(ADD, data)

    assert response.status_code == 302, response.content[:2000]
    destination = Destination.objects.get(name="ci")
    assert (destination.ordered, destination.on_dead) == (True, "block")
    refused = admin_client.post(ADD, {**data, "name": "ci2", "on_dead": "later"})
    assert refused.status_code == 200
    assert not Destination.objects.filter(name="ci2").exists()
