"""The Django admin, as a logged-in superuser: lists, filters and search, the read-only
records (events, deliveries, attempts), managed entries, and the Replay actions."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from hookway.admin import MANAGED_NOTE
from hookway.models import (
    Attempt,
    AttemptOutcome,
    Delivery,
    DeliveryState,
    Destination,
    Event,
    Route,
    Source,
)

ADMIN = "/admin/hookway"


@pytest.fixture
def admin_client(db: None) -> Client:
    user = User.objects.create_superuser("root", "root@example.com", "pw-not-used")
    client = Client()
    client.force_login(user)
    return client


def make_event(
    source: Source,
    name: str = "push",
    *,
    body: bytes = b"{}",
    received_at: datetime | None = None,
    delivery_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> Event:
    return Event.objects.create(
        source=source,
        event_name=name,
        delivery_id=delivery_id,
        content_type="application/json",
        headers=headers or {},
        body=body,
        received_at=received_at or timezone.now(),
    )


def make_delivery(event: Event, destination: Destination, **kw: Any) -> Delivery:
    now = timezone.now()
    return Delivery.objects.create(
        event=event, destination=destination, next_attempt_at=now, created_at=now, **kw
    )


@pytest.fixture
def records(db: None) -> dict[str, Any]:
    return make_records()


def make_records() -> dict[str, Any]:
    github = Source.objects.create(slug="github", verify="github", secrets=["s"])
    stripe = Source.objects.create(slug="stripe", verify="stripe", secrets=["s"])
    ci = Destination.objects.create(name="ci-bot", url="https://ci.example.com/hooks")
    Route.objects.create(source=github, destination=ci)
    push = make_event(
        github,
        "push",
        received_at=datetime(2025, 3, 14, 9, 30, tzinfo=UTC),
        delivery_id="gh-delivery-1",
    )
    issue = make_event(github, "issues", received_at=datetime(2025, 5, 1, 12, 0, tzinfo=UTC))
    charge = make_event(
        stripe, "charge.succeeded", received_at=datetime(2025, 3, 20, 8, 0, tzinfo=UTC)
    )
    delivery = make_delivery(push, ci, state=DeliveryState.DEAD, attempts=1)
    Attempt.objects.create(
        delivery=delivery,
        number=1,
        started_at=timezone.now(),
        outcome=AttemptOutcome.FAILED,
        status_code=500,
        error="HTTP 500",
    )
    return {
        "github": github,
        "stripe": stripe,
        "ci": ci,
        "push": push,
        "issue": issue,
        "charge": charge,
        "delivery": delivery,
    }


def listed(client: Client, url: str) -> list[Any]:
    response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return [obj.pk for obj in response.context["cl"].result_list]


# -- lists --------------------------------------------------------------------------------


def test_the_admin_lists_sources_destinations_routes_events_and_deliveries(admin_client, records):
    pages = {
        "source": [records["github"].pk, records["stripe"].pk],
        "destination": [records["ci"].pk],
        "route": list(Route.objects.values_list("pk", flat=True)),
        "event": [records["issue"].pk, records["charge"].pk, records["push"].pk],
        "delivery": [records["delivery"].pk],
    }
    for model, expected in pages.items():
        assert listed(admin_client, f"{ADMIN}/{model}/") == expected, model

    index = admin_client.get("/admin/")
    for link in ("source", "destination", "route", "event", "delivery"):
        assert f'href="{ADMIN}/{link}/"' in index.content.decode()


def test_the_admin_requires_a_login(db):
    response = Client().get(f"{ADMIN}/event/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# -- the event list: filters and search ---------------------------------------------------


def test_events_filter_by_source(admin_client, records):
    url = f"{ADMIN}/event/?source__id__exact={records['stripe'].pk}"
    assert listed(admin_client, url) == [records["charge"].pk]


def test_events_filter_by_event_name(admin_client, records):
    assert listed(admin_client, f"{ADMIN}/event/?event_name=issues") == [records["issue"].pk]


def test_events_filter_by_date(admin_client, records):
    march = listed(admin_client, f"{ADMIN}/event/?received_at__year=2025&received_at__month=3")
    assert march == [records["charge"].pk, records["push"].pk]
    day = f"{ADMIN}/event/?received_at__year=2025&received_at__month=3&received_at__day=14"
    assert listed(admin_client, day) == [records["push"].pk]
    assert listed(admin_client, f"{ADMIN}/event/?received_at__year=2024") == []


def test_events_are_found_by_event_id(admin_client, records):
    push = records["push"]
    assert listed(admin_client, f"{ADMIN}/event/?q={push.pk}") == [push.pk]


def test_events_are_found_by_the_senders_delivery_id(admin_client, records):
    assert listed(admin_client, f"{ADMIN}/event/?q=gh-delivery-1") == [records["push"].pk]
    assert listed(admin_client, f"{ADMIN}/event/?q=no-such-delivery") == []


def test_deliveries_are_found_by_their_id_and_by_event_id(admin_client, records):
    delivery = records["delivery"]
    assert listed(admin_client, f"{ADMIN}/delivery/?q={delivery.pk}") == [delivery.pk]
    assert listed(admin_client, f"{ADMIN}/delivery/?q={records['push'].pk}") == [delivery.pk]
    assert listed(admin_client, f"{ADMIN}/delivery/?q={records['issue'].pk}") == []


def test_deliveries_filter_by_state(admin_client, records):
    assert listed(admin_client, f"{ADMIN}/delivery/?state__exact=dead") == [records["delivery"].pk]
    assert listed(admin_client, f"{ADMIN}/delivery/?state__exact=pending") == []


# -- the event page -----------------------------------------------------------------------


def test_the_event_page_shows_the_payload_pretty_printed(admin_client, records):
    body = {"event_name": "push", "commits": [{"id": "abc", "message": "fix <b>"}]}
    event = make_event(records["github"], body=json.dumps(body, separators=(",", ":")).encode())

    response = admin_client.get(f"{ADMIN}/event/{event.pk}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    assert html.escape(json.dumps(body, indent=2)) in page
    # Escaped, never rendered as markup.
    assert "fix <b>" not in page


def test_the_event_page_shows_a_body_that_is_not_json_as_text(admin_client, records):
    event = make_event(records["github"], body=b"a=1&b=<2>")

    page = admin_client.get(f"{ADMIN}/event/{event.pk}/change/").content.decode()

    assert "a=1&amp;b=&lt;2&gt;" in page


@pytest.mark.django_db(transaction=True)
def test_the_event_page_shows_the_stored_headers_but_no_secret_header(make_source):
    make_source("tok", verify="token", secrets=["super-secret-token"])
    sender = Client()
    response = sender.post(
        "/hooks/tok",
        data=b'{"event_name": "push"}',
        content_type="application/json",
        headers={
            "X-Webhook-Token": "super-secret-token",
            "Authorization": "Bearer also-secret",
            "X-Trace-Id": "trace-1234",
        },
    )
    assert response.status_code == 202, response.content
    event_id = response.json()["id"]
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))

    page = admin.get(f"{ADMIN}/event/{event_id}/change/").content.decode()

    assert "trace-1234" in page
    assert "X-Trace-Id" in page
    assert "super-secret-token" not in page
    assert "also-secret" not in page
    assert Event.objects.get(pk=event_id).headers.get("X-Trace-Id") == "trace-1234"


def test_the_event_page_lists_its_deliveries(admin_client, records):
    page = admin_client.get(f"{ADMIN}/event/{records['push'].pk}/change/").content.decode()
    assert records["delivery"].pk in page


# -- read-only records --------------------------------------------------------------------


@pytest.mark.parametrize("model", ["event", "delivery"])
def test_records_cannot_be_added(admin_client, records, model):
    assert admin_client.get(f"{ADMIN}/{model}/add/").status_code == 403
    assert admin_client.post(f"{ADMIN}/{model}/add/", {}).status_code == 403


def test_an_event_cannot_be_changed(admin_client, records):
    push = records["push"]
    response = admin_client.post(
        f"{ADMIN}/event/{push.pk}/change/",
        {"event_name": "tampered", "delivery_id": "x", "source": records["stripe"].pk},
    )

    assert response.status_code == 403
    push.refresh_from_db()
    assert (push.event_name, push.delivery_id, push.source_id) == (
        "push",
        "gh-delivery-1",
        records["github"].pk,
    )


def test_a_delivery_and_its_attempts_cannot_be_changed(admin_client, records):
    delivery = records["delivery"]
    attempt = Attempt.objects.get(delivery=delivery)
    response = admin_client.post(
        f"{ADMIN}/delivery/{delivery.pk}/change/",
        {
            "state": "succeeded",
            "attempts": "0",
            "attempt_log-TOTAL_FORMS": "1",
            "attempt_log-INITIAL_FORMS": "1",
            "attempt_log-0-id": str(attempt.pk),
            "attempt_log-0-status_code": "200",
            "attempt_log-0-outcome": "success",
        },
    )

    assert response.status_code == 403
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == (DeliveryState.DEAD, 1)
    attempt.refresh_from_db()
    assert (attempt.status_code, attempt.outcome) == (500, AttemptOutcome.FAILED)


def test_the_delivery_page_shows_its_attempts_read_only(admin_client, records):
    response = admin_client.get(f"{ADMIN}/delivery/{records['delivery'].pk}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "HTTP 500" in page
    assert 'name="attempt_log-0-status_code"' not in page
    assert 'name="attempt_log-MAX_NUM_FORMS" value="0"' in page  # no row can be added
    assert 'name="_save"' not in page


def test_attempts_have_no_admin_page_of_their_own(admin_client, records):
    assert admin_client.get(f"{ADMIN}/attempt/").status_code == 404
    assert admin_client.get(f"{ADMIN}/attempt/add/").status_code == 404


# -- managed entries ----------------------------------------------------------------------


@pytest.fixture
def managed(db: None) -> dict[str, Any]:
    source = Source.objects.create(slug="cfg", verify="token", secrets=["env:T"], managed=True)
    destination = Destination.objects.create(
        name="cfg-dest", url="https://cfg.example.com/", managed=True
    )
    route = Route.objects.create(source=source, destination=destination, managed=True)
    return {"source": source, "destination": destination, "route": route}


def test_a_managed_source_is_read_only_and_says_why(admin_client, managed):
    source = managed["source"]
    url = f"{ADMIN}/source/{source.pk}/change/"

    page = admin_client.get(url).content.decode()
    assert MANAGED_NOTE in page
    assert 'name="slug"' not in page
    assert 'name="secrets"' not in page

    admin_client.post(
        url, {"slug": "hacked", "verify": "none", "secrets": "[]", "max_body_bytes": "1"}
    )
    source.refresh_from_db()
    assert (source.slug, source.verify, source.secrets) == ("cfg", "token", ["env:T"])
    assert source.max_body_bytes != 1


def test_a_managed_destination_is_read_only(admin_client, managed):
    destination = managed["destination"]
    url = f"{ADMIN}/destination/{destination.pk}/change/"

    assert 'name="url"' not in admin_client.get(url).content.decode()
    admin_client.post(url, {"name": "cfg-dest", "url": "https://evil.example.com/"})
    destination.refresh_from_db()
    assert destination.url == "https://cfg.example.com/"


@pytest.mark.parametrize("model", ["source", "destination", "route"])
def test_a_managed_entry_cannot_be_deleted(admin_client, managed, model):
    obj = managed[model]
    url = f"{ADMIN}/{model}/{obj.pk}/delete/"

    assert admin_client.get(url).status_code == 403
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert type(obj).objects.filter(pk=obj.pk).exists()


def test_a_managed_source_cannot_be_deleted_with_the_bulk_action(admin_client, managed):
    source = managed["source"]
    response = admin_client.post(
        f"{ADMIN}/source/",
        {"action": "delete_selected", ACTION_CHECKBOX_NAME: [source.pk], "post": "yes"},
    )

    assert response.status_code == 403
    assert Source.objects.filter(pk=source.pk).exists()


def test_a_source_created_in_the_admin_is_editable_and_deletable(admin_client, db):
    response = admin_client.post(
        f"{ADMIN}/source/add/",
        {
            "slug": "manual",
            "verify": "token",
            "new_secrets": "tok",  # write-only: one per line
            "max_body_bytes": "2048",
            "enabled": "on",
            "managed": "on",  # read-only: an admin entry can't claim the file's
        },
    )
    assert response.status_code == 302, response.content[:2000]
    source = Source.objects.get(slug="manual")
    assert (source.secrets, source.max_body_bytes, source.managed) == (["tok"], 2048, False)

    page = admin_client.get(f"{ADMIN}/source/{source.pk}/change/").content.decode()
    assert 'name="slug"' in page
    assert MANAGED_NOTE not in page
    response = admin_client.post(f"{ADMIN}/source/{source.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Source.objects.filter(pk=source.pk).exists()


# -- Replay actions -----------------------------------------------------------------------


def test_the_replay_action_on_events_creates_new_deliveries(admin_client, records):
    audit = Destination.objects.create(name="audit", url="https://audit.example.com/")
    Route.objects.create(source=records["stripe"], destination=audit)
    selected = [records["push"].pk, records["charge"].pk]
    before = set(Delivery.objects.values_list("pk", flat=True))

    response = admin_client.post(
        f"{ADMIN}/event/", {"action": "replay_events", ACTION_CHECKBOX_NAME: selected}
    )

    assert response.status_code == 302
    new = Delivery.objects.exclude(pk__in=before)
    assert sorted((d.event_id, d.destination.name) for d in new) == sorted(
        [(records["push"].pk, "ci-bot"), (records["charge"].pk, "audit")]
    )
    assert all(d.state == DeliveryState.PENDING for d in new)
    messages = [str(m) for m in admin_client.get(response["Location"]).context["messages"]]
    assert "2 new deliveries created." in messages
    # The original is untouched.
    original = Delivery.objects.get(pk=records["delivery"].pk)
    assert (original.state, original.attempts) == (DeliveryState.DEAD, 1)


def test_the_replay_action_on_deliveries_creates_new_deliveries(admin_client, records):
    original = records["delivery"]
    other = make_delivery(records["issue"], records["ci"], state=DeliveryState.SUCCEEDED)

    response = admin_client.post(
        f"{ADMIN}/delivery/",
        {"action": "replay_deliveries", ACTION_CHECKBOX_NAME: [original.pk, other.pk]},
    )

    assert response.status_code == 302
    replays = {d.replay_of_id: d for d in Delivery.objects.filter(replay_of__isnull=False)}
    assert set(replays) == {original.pk, other.pk}
    for source_delivery in (original, other):
        replay = replays[source_delivery.pk]
        assert replay.pk != source_delivery.pk
        assert (replay.event_id, replay.destination_id) == (
            source_delivery.event_id,
            source_delivery.destination_id,
        )
        assert (replay.state, replay.attempts) == (DeliveryState.PENDING, 0)
        assert replay.next_attempt_at <= timezone.now() + timedelta(seconds=1)
    original.refresh_from_db()
    assert (original.state, original.attempts) == (DeliveryState.DEAD, 1)
    assert Attempt.objects.filter(delivery=original).count() == 1


def messages_after(client: Client, response: Any) -> list[str]:
    assert response.status_code == 302, response.content[:2000]
    return [str(m) for m in client.get(response["Location"]).context["messages"]]


def test_the_replay_action_on_deliveries_replayed_already_skips_them_and_says_why(
    admin_client, records
):
    original = records["delivery"]
    action = {"action": "replay_deliveries", ACTION_CHECKBOX_NAME: [original.pk]}
    messages_after(admin_client, admin_client.post(f"{ADMIN}/delivery/", action))
    replay = Delivery.objects.get(replay_of=original)

    response = admin_client.post(f"{ADMIN}/delivery/", action)

    assert messages_after(admin_client, response) == [
        f"Not replayed: {original.pk}: already replayed as {replay.pk} (pending) "
        "(“Replay anyway” makes another copy)."
    ]
    assert original.replays.count() == 1

    response = admin_client.post(
        f"{ADMIN}/delivery/",
        {"action": "replay_deliveries_anyway", ACTION_CHECKBOX_NAME: [original.pk]},
    )
    assert messages_after(admin_client, response) == ["1 new delivery created."]
    assert original.replays.count() == 2


def test_the_replay_action_on_events_skips_pending_destinations_and_says_why(admin_client, records):
    push = records["push"]
    action = {"action": "replay_events", ACTION_CHECKBOX_NAME: [push.pk]}
    messages_after(admin_client, admin_client.post(f"{ADMIN}/event/", action))
    pending = Delivery.objects.get(event=push, state=DeliveryState.PENDING)

    response = admin_client.post(f"{ADMIN}/event/", action)

    assert messages_after(admin_client, response) == [
        f"Not replayed: {push.pk} → ci-bot: {pending.pk} is still pending "
        "(“Replay anyway” makes another copy)."
    ]
    assert Delivery.objects.filter(event=push).count() == 2


# -- Replay buttons -----------------------------------------------------------------------


def page_url(model: str, pk: str) -> str:
    # The admin escapes "_" (and others) in primary keys in its URLs.
    return f"{ADMIN}/{model}/{quote(pk)}/change/"


def replay_url(model: str, pk: str) -> str:
    return f"{ADMIN}/{model}/{quote(pk)}/replay/"


@pytest.mark.parametrize("model", ["event", "delivery"])
def test_the_page_has_replay_buttons_that_post_a_form_with_a_csrf_token(
    admin_client, records, model
):
    pk = records["push"].pk if model == "event" else records["delivery"].pk

    page = admin_client.get(page_url(model, pk)).content.decode()

    forms = re.findall(
        r'<form method="post" action="([^"]+)" class="hookway-button">(.*?)</form>', page, re.S
    )
    assert [action for action, _ in forms] == [replay_url(model, pk)] * 2
    assert all('name="csrfmiddlewaretoken"' in body for _, body in forms)
    assert ">Replay</button>" in forms[0][1]
    assert 'name="force" value="1"' in forms[1][1]
    assert ">Replay anyway</button>" in forms[1][1]


@pytest.mark.parametrize("model", ["event", "delivery"])
def test_a_get_to_the_replay_url_changes_nothing(admin_client, records, model):
    pk = records["push"].pk if model == "event" else records["delivery"].pk

    response = admin_client.get(replay_url(model, pk))

    assert response.status_code == 405
    assert Delivery.objects.count() == 1


def test_the_replay_button_needs_the_csrf_token(records):
    client = Client(enforce_csrf_checks=True)
    client.force_login(
        User.objects.get(username="root")
        if User.objects.exists()
        else User.objects.create_superuser("root", "root@example.com", "pw")
    )
    url = replay_url("delivery", records["delivery"].pk)

    assert client.post(url).status_code == 403
    assert Delivery.objects.count() == 1

    page = client.get(page_url("delivery", records["delivery"].pk)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    response = client.post(url, {"csrfmiddlewaretoken": token.group(1)})

    assert response.status_code == 302
    assert Delivery.objects.filter(replay_of=records["delivery"]).count() == 1


def test_the_delivery_replay_button_is_safe_to_press_twice(admin_client, records):
    original = records["delivery"]
    url = replay_url("delivery", original.pk)

    first = admin_client.post(url)
    assert first["Location"] == page_url("delivery", original.pk)
    assert messages_after(admin_client, first) == ["1 new delivery created."]
    replay = Delivery.objects.get(replay_of=original)

    second = admin_client.post(url)
    assert messages_after(admin_client, second) == [
        f"Not replayed: {original.pk}: already replayed as {replay.pk} (pending) "
        "(“Replay anyway” makes another copy)."
    ]
    assert original.replays.count() == 1

    anyway = admin_client.post(url, {"force": "1"})
    assert messages_after(admin_client, anyway) == ["1 new delivery created."]
    assert original.replays.count() == 2


def test_the_event_replay_button_replays_to_its_routes_and_points_back(admin_client, records):
    push, original = records["push"], records["delivery"]

    response = admin_client.post(replay_url("event", push.pk))

    assert response["Location"] == page_url("event", push.pk)
    assert messages_after(admin_client, response) == ["1 new delivery created."]
    replay = Delivery.objects.get(event=push, state=DeliveryState.PENDING)
    assert (replay.destination_id, replay.replay_of_id) == (records["ci"].pk, original.pk)

    again = admin_client.post(replay_url("event", push.pk))
    assert messages_after(admin_client, again) == [
        f"Not replayed: {push.pk} → ci-bot: {replay.pk} is still pending "
        "(“Replay anyway” makes another copy)."
    ]


def test_the_event_replay_button_explains_when_no_route_takes_the_event(admin_client, records):
    charge = records["charge"]  # stripe has no route

    response = admin_client.post(replay_url("event", charge.pk))

    assert messages_after(admin_client, response) == [
        f"Not replayed: {charge.pk}: no route of source 'stripe' takes 'charge.succeeded' "
        "and it was never delivered."
    ]
    assert not Delivery.objects.filter(event=charge).exists()


def test_the_event_replay_button_says_a_new_delivery_waits_for_a_paused_destination(
    admin_client, records
):
    Destination.objects.filter(pk=records["ci"].pk).update(paused=True)

    response = admin_client.post(replay_url("event", records["issue"].pk))

    assert messages_after(admin_client, response) == [
        "1 new delivery created.",
        "1 of them waits: 'ci-bot' is paused.",
    ]


def test_the_delivery_page_links_what_it_replays_and_what_replayed_it(admin_client, records):
    original = records["delivery"]
    admin_client.post(replay_url("delivery", original.pk))
    replay = Delivery.objects.get(replay_of=original)

    original_page = admin_client.get(page_url("delivery", original.pk)).content.decode()
    replay_page = admin_client.get(page_url("delivery", replay.pk)).content.decode()

    assert "<label>Replayed by:</label>" in original_page
    link = f'<a href="{page_url("delivery", replay.pk)}">{replay.pk}</a> (pending)'
    assert link in original_page
    assert "<label>Replay of:</label>" in replay_page
    assert f'<a href="{page_url("delivery", original.pk)}">{original.pk}</a>' in replay_page


def test_a_staff_user_who_may_only_view_cannot_replay(records):
    from django.contrib.auth.models import Permission

    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_event", "view_delivery"])
    )
    client = Client()
    client.force_login(user)
    original = records["delivery"]

    page = client.get(page_url("delivery", original.pk)).content.decode()
    assert 'class="hookway-button"' not in page
    assert client.post(replay_url("delivery", original.pk)).status_code == 403
    response = client.post(
        f"{ADMIN}/delivery/", {"action": "replay_deliveries", ACTION_CHECKBOX_NAME: [original.pk]}
    )
    assert not Delivery.objects.filter(replay_of=original).exists()
    assert response.status_code in (200, 302)


@pytest.mark.django_db(transaction=True)
async def test_the_replay_button_works_through_hookways_asgi_application(client):
    """The admin's views are sync, run in a worker thread by Django's ASGI handler; the
    button's store call crosses back through hookway.gate (as in production)."""
    records = await sync_to_async(make_records)()
    await sync_to_async(User.objects.create_superuser)("root", "root@example.com", "pw")

    def token(page: str) -> str:
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert found is not None
        return found.group(1)

    login = await client.get("/admin/login/")
    await client.post(
        "/admin/login/?next=/admin/",
        data={"username": "root", "password": "pw", "csrfmiddlewaretoken": token(login.text)},
    )
    original = records["delivery"]
    page = await client.get(page_url("delivery", original.pk))
    assert page.status_code == 200, page.text[:500]

    response = await client.post(
        replay_url("delivery", original.pk), data={"csrfmiddlewaretoken": token(page.text)}
    )

    assert response.status_code == 302, response.text[:500]
    replay = await Delivery.objects.aget(replay_of_id=original.pk)
    assert replay.state == DeliveryState.PENDING
    after = await client.get(response.headers["location"])
    assert "1 new delivery created." in after.text
    assert replay.pk in after.text
