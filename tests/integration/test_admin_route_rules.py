"""A route's filter, match and transform in the admin: refused on the field at fault as
the config file and the API refuse them, and tried on a stored event with the route
page's *Test on an event* button; an event's page shows the routes that did not take it
and an attempt the body a transform sent."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from hookway.models import Destination, Event, Route, Source

ADMIN = "/admin/hookway/route"


@pytest.fixture
def admin_client(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


@pytest.fixture
def entries(db: None) -> tuple[Source, Destination]:
    return (
        Source.objects.create(slug="billing"),
        Destination.objects.create(name="ledger", url="https://ledger.example/hooks"),
    )


def form(source: Source, destination: Destination, **rules: str) -> dict[str, Any]:
    return {
        "source": source.pk,
        "destination": destination.pk,
        "events": "[]",
        "filter": "",
        "match": "",
        "transform": "",
        "enabled": "on",
        **rules,
    }


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("filter", "payload.amount >", "filter: line 1, column 17: Syntax error"),
        ("match", '{"payload.amount": {"$gtee": 1}}', 'match["payload.amount"]["$gtee"]: unknown'),
        ("transform", "{'a': nope}", "transform: unknown variable 'nope'"),
    ],
)
def test_a_bad_rule_is_refused_on_its_field_and_nothing_is_saved(
    admin_client: Client, entries: tuple[Source, Destination], field: str, value: str, says: str
) -> None:
    response = admin_client.post(f"{ADMIN}/add/", form(*entries, **{field: value}))

    assert response.status_code == 200  # the form again, with the error
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert errors[field][0].startswith(says), errors[field][0]
    assert not Route.objects.exists()


def test_good_rules_are_saved_and_an_emptied_match_is_none(
    admin_client: Client, entries: tuple[Source, Destination]
) -> None:
    response = admin_client.post(
        f"{ADMIN}/add/",
        form(
            *entries,
            filter="payload.amount >= 100",
            transform="{'cents': payload.amount * 100}",
        ),
    )

    assert response.status_code == 302, response.content[:3000]
    route = Route.objects.get()
    assert (route.filter, route.match, route.transform) == (
        "payload.amount >= 100",
        {},
        "{'cents': payload.amount * 100}",
    )


def test_the_test_button_tries_the_routes_rules_on_a_stored_event(
    admin_client: Client, entries: tuple[Source, Destination]
) -> None:
    source, destination = entries
    route = Route.objects.create(
        source=source,
        destination=destination,
        filter="payload.amount >= 100",
        transform="{'cents': payload.amount * 100}",
    )
    small, big = (
        Event.objects.create(
            source=source,
            event_name="invoice.paid",
            body=json.dumps({"amount": amount}).encode(),
            headers={},
            received_at=timezone.now(),
        )
        for amount in (5, 150)
    )
    page = admin_client.get(f"{ADMIN}/{route.pk}/change/").content.decode()
    assert f'action="{ADMIN}/{route.pk}/test/"' in page

    said = {}
    for event in (small, big, None):
        response = admin_client.post(
            f"{ADMIN}/{route.pk}/test/", {"event_id": event.pk if event else "evt_nope"}
        )
        assert response.status_code == 302
        said[event.pk if event else None] = [
            str(m) for m in admin_client.get(response["Location"]).context["messages"]
        ]

    assert said[small.pk] == [
        f"Event {small.pk}: this route does not take it (filter is false). "
        'It would send: {"cents": 500}'
    ]
    assert said[big.pk] == [
        f'Event {big.pk}: this route takes it. It would send: {{"cents": 15000}}'
    ]
    assert said[None] == ["No event 'evt_nope'."]


def test_an_events_page_shows_the_routes_that_did_not_take_it(
    admin_client: Client, entries: tuple[Source, Destination]
) -> None:
    source, _ = entries
    event = Event.objects.create(
        source=source,
        event_name="invoice.paid",
        body=b"{}",
        headers={},
        received_at=timezone.now(),
        filtered_out=[{"destination": "ledger", "reason": "filter is false"}],
    )

    page = admin_client.get(f"/admin/hookway/event/{event.pk}/change/").content.decode()

    assert "ledger: filter is false" in page
