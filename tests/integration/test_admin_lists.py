"""The admin's lists of events and deliveries: what they show (times to the second,
durations in ms, the last error), how they search, and the shape of their queries that
keeps them fast at a million events (bench/admin.py measures the time itself)."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from hookway.admin import lists
from hookway.models import Attempt, AttemptOutcome, Destination, Event, Source
from tests.integration.test_admin import listed, make_delivery, make_event

ADMIN = "/admin/hookway"
LISTS = ["event", "delivery", "destination", "source", "route"]


@pytest.fixture
def admin_client(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


@pytest.fixture
def github(db: None) -> Source:
    return Source.objects.create(slug="github", verify="github", secrets=["s"])


@pytest.fixture
def ci(db: None) -> Destination:
    return Destination.objects.create(name="ci-bot", url="https://ci.example.com/hooks")


def fill(source: Source, destination: Destination, n: int) -> list[Event]:
    names = ["push", "pull_request", "issues"]
    events = [
        make_event(source, names[i % 3], delivery_id=f"gh-{destination.pk}-{i}", body=b"x" * 500)
        for i in range(n)
    ]
    for event in events:
        make_delivery(event, destination, state="dead", last_error="HTTP 503", attempts=1)
    return events


# -- what the lists show ------------------------------------------------------------------


def test_times_are_shown_to_the_second_with_their_zone(admin_client, github):
    make_event(github, received_at=datetime(2025, 3, 14, 9, 30, 7, tzinfo=UTC))

    page = admin_client.get(f"{ADMIN}/event/").content.decode()

    assert "2025-03-14 09:30:07 UTC" in page


def test_attempt_durations_are_rounded_to_the_millisecond(admin_client, github, ci):
    delivery = make_delivery(make_event(github), ci, state="dead", attempts=1)
    Attempt.objects.create(
        delivery=delivery,
        number=1,
        started_at=datetime(2025, 3, 14, 9, 30, 7, 250000, tzinfo=UTC),
        duration_ms=1234.5678,
        outcome=AttemptOutcome.FAILED,
    )

    page = admin_client.get(f"{ADMIN}/delivery/{delivery.pk}/change/").content.decode()

    assert "1,235 ms" in page
    assert "1234.5678" not in page
    assert "2025-03-14 09:30:07 UTC" in page


def test_the_delivery_list_shows_the_last_error_on_one_line(admin_client, github, ci):
    error = "HTTP 503 from the receiver:\n" + "upstream timed out " * 20
    make_delivery(make_event(github), ci, state="dead", last_error=error, attempts=3)

    page = admin_client.get(f"{ADMIN}/delivery/").content.decode()

    cell = page[page.index('class="field-last_error_line"') :].split("</td>")[0]
    shown = cell[cell.index('">', cell.index("<span")) + 2 : cell.index("</span>")]
    assert shown.startswith("HTTP 503 from the receiver: upstream timed out")
    assert shown.endswith("…")
    assert len(shown) <= 60
    assert f'title="{html.escape(error)}"' in cell  # the whole error on hover


def test_the_delivery_list_shows_the_event_name_and_links_the_event(admin_client, github, ci):
    event = make_event(github, "pull_request")
    make_delivery(event, ci)

    page = admin_client.get(f"{ADMIN}/delivery/").content.decode()

    assert f'href="{ADMIN}/event/{quote(event.pk)}/change/"' in page
    assert "pull_request" in page


# -- search -------------------------------------------------------------------------------


def test_events_are_found_by_the_start_of_their_event_name(admin_client, github):
    push = make_event(github, "push")
    pull = make_event(github, "pull_request")
    make_event(github, "issues")
    make_event(github, "repush")

    assert set(listed(admin_client, f"{ADMIN}/event/?q=pu")) == {push.pk, pull.pk}
    assert listed(admin_client, f"{ADMIN}/event/?q=pull_") == [pull.pk]
    assert listed(admin_client, f"{ADMIN}/event/?q=PU") == []  # names are case-sensitive


def test_a_search_matching_several_names_reads_each_names_newest_rows_only(
    admin_client, github, monkeypatch
):
    from hookway.admin import records

    monkeypatch.setattr(records, "COUNT_CAP", 1)  # each name gives its 2 newest rows
    start = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    # push, pull_request, push, ... one a minute: the newest matching rows, by name.
    made = [
        make_event(github, ["push", "pull_request"][i % 2], received_at=start.replace(minute=i))
        for i in range(6)
    ]
    newest_first = [e.pk for e in sorted(made, key=lambda e: e.received_at, reverse=True)]

    shown = listed(admin_client, f"{ADMIN}/event/?q=pu")
    oldest_first = listed(admin_client, f"{ADMIN}/event/?q=pu&o=5")

    assert shown == newest_first[:4]  # the first page is the same as over every row
    assert oldest_first == newest_first[::-1]  # another order reads every row


def test_an_exact_id_or_delivery_id_wins_over_names_starting_with_it(admin_client, github):
    stripe = Source.objects.create(slug="stripe", verify="stripe", secrets=["s"])
    make_event(github, "push-it")
    charge = make_event(stripe, "charge.succeeded", delivery_id="push")

    assert listed(admin_client, f"{ADMIN}/event/?q=push") == [charge.pk]
    assert listed(admin_client, f"{ADMIN}/event/?q=+{charge.pk}+") == [charge.pk]


def test_deliveries_are_found_by_delivery_id_not_by_a_part_of_it(admin_client, github, ci):
    delivery = make_delivery(make_event(github), ci)

    assert listed(admin_client, f"{ADMIN}/delivery/?q={delivery.pk}") == [delivery.pk]
    assert listed(admin_client, f"{ADMIN}/delivery/?q={delivery.pk[:10]}") == []


def test_the_event_name_filter_lists_each_name_once(admin_client, github):
    for name in ["push", "push", "issues", "", "release"]:
        make_event(github, name)

    response = admin_client.get(f"{ADMIN}/event/")

    (spec,) = [s for s in response.context["cl"].filter_specs if s.title == "event name"]
    assert [choice["display"] for choice in spec.choices(response.context["cl"])][1:] == [
        "issues",
        "push",
        "release",
    ]


# -- counting -----------------------------------------------------------------------------


def test_a_filtered_list_counts_up_to_a_cap(admin_client, github, ci, monkeypatch):
    monkeypatch.setattr(lists, "COUNT_CAP", 3)
    fill(github, ci, 6)
    Source.objects.create(slug="stripe")  # a filter with one choice is not applied

    page = admin_client.get(f"{ADMIN}/event/?source__id__exact={github.pk}").content.decode()
    assert "more than 3 events" in page

    page = admin_client.get(f"{ADMIN}/event/?event_name=issues").content.decode()
    assert "2 events" in page


def test_a_whole_list_shows_the_databases_estimate(admin_client, github, ci, monkeypatch):
    monkeypatch.setattr(lists, "COUNT_CAP", 3)
    fill(github, ci, 6)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Event._meta.db_table}")

    page = admin_client.get(f"{ADMIN}/event/").content.decode()

    assert "about 6 events" in page


def test_the_lists_link_no_further_than_max_pages(admin_client, github, ci, monkeypatch):
    monkeypatch.setattr(lists, "MAX_PAGES", 2)
    monkeypatch.setattr(lists.LargeListAdmin, "list_per_page", 2)
    fill(github, ci, 7)

    response = admin_client.get(f"{ADMIN}/event/?p=2")
    assert response.status_code == 200
    assert response.context["cl"].paginator.num_pages == 2
    # A page past the last: the admin's own answer to a bad page, back to the first.
    assert admin_client.get(f"{ADMIN}/event/?p=3").status_code == 302


# -- the shape of the queries (what keeps the lists fast at a million rows) ---------------


def queries(client: Client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return [q["sql"] for q in captured.captured_queries]


@pytest.mark.parametrize("model", LISTS)
def test_each_list_issues_as_many_queries_for_30_rows_as_for_3(admin_client, github, ci, model):
    fill(github, ci, 3)
    few = queries(admin_client, f"{ADMIN}/{model}/")
    fill(github, Destination.objects.create(name="b", url="https://b.example.com/"), 27)
    many = queries(admin_client, f"{ADMIN}/{model}/")

    assert len(many) == len(few)
    assert len(many) <= 12


@pytest.mark.parametrize(
    ("model", "query"),
    [
        *(("event", q) for q in ["", "?q=push", "?q=pu", "?event_name=push", "?p=2"]),
        *(("delivery", q) for q in ["", "?q=push", "?state__exact=dead", "?p=2"]),
    ],
)
def test_the_event_and_delivery_lists_never_read_an_events_body(
    admin_client, github, ci, model, query
):
    fill(github, ci, 250)
    table = connection.ops.quote_name(Event._meta.db_table)
    body, headers = (f"{table}.{connection.ops.quote_name(c)}" for c in ("body", "headers"))

    sql = queries(admin_client, f"{ADMIN}/{model}/{query}")

    assert not [q for q in sql if body in q or headers in q]


@pytest.mark.parametrize("url", ["event/", "event/?event_name=push", "delivery/"])
def test_no_list_counts_or_lists_distinct_over_the_whole_table(admin_client, github, ci, url):
    fill(github, ci, 5)

    sql = queries(admin_client, f"{ADMIN}/{url}")

    for q in sql:
        upper = q.upper()
        assert "DISTINCT" not in upper, q
        if "COUNT(" in upper:
            assert "LIMIT" in upper, q  # a count stops at the cap


def test_the_date_filter_is_a_time_range_not_a_date_hierarchy(admin_client, github):
    make_event(github, received_at=datetime(2025, 3, 14, 9, 30, 7, tzinfo=UTC))

    response = admin_client.get(f"{ADMIN}/event/")

    assert response.context["cl"].date_hierarchy is None
    titles = [spec.title for spec in response.context["cl"].filter_specs]
    assert "received at" in titles


def test_only_indexed_columns_sort_the_large_lists(admin_client, github, ci):
    make_delivery(make_event(github), ci)

    event_list = admin_client.get(f"{ADMIN}/event/").context["cl"]
    delivery_list = admin_client.get(f"{ADMIN}/delivery/").context["cl"]

    assert set(event_list.sortable_by) == {"id", "received_at"}
    assert set(delivery_list.sortable_by) == {"id", "created_at"}
