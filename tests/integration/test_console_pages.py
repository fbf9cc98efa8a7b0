"""The console's pages with Django's test client, on the real database: an anonymous
visit goes to the login page; a staff user sees every page; the event list's filters
and cursor pages show exactly what the API's list would; bad input gets a 400 saying
what is wrong. Secrets never reach a page."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from hookway.models import Delivery, Destination, Event, Source
from hookway.policy import CircuitState
from tests.integration.apidata import event, source_and_destination
from tests.integration.consoledata import PASSWORD, staff, world

__all__ = ["staff"]

PAGES = ["/", "/events/", "/destinations/", "/dead/", "/sources/"]


def shown_ids(html: str) -> list[str]:
    return re.findall(r'<tr id="row-(evt_[0-9a-z]+)"', html)


@pytest.mark.parametrize("path", [*PAGES, "/events/evt_x/"])
def test_an_anonymous_visit_is_sent_to_the_login_page(db: None, path: str) -> None:
    response = Client().get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={path}"


def test_a_user_who_is_not_staff_is_sent_to_the_login_page_too(db: None) -> None:
    browser = Client()
    browser.force_login(User.objects.create_user("visitor", password=PASSWORD))

    assert browser.get("/events/")["Location"] == "/login/?next=/events/"


def test_logging_in_as_staff_goes_back_to_the_page_asked_for(db: None) -> None:
    User.objects.create_user("ops", password=PASSWORD, is_staff=True)
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/login/?next=/dead/")
    token = browser.cookies["csrftoken"].value
    assert 'name="password"' in page.content.decode()

    wrong = browser.post(
        "/login/?next=/dead/",
        {"username": "ops", "password": "nope", "next": "/dead/", "csrfmiddlewaretoken": token},
    )
    right = browser.post(
        "/login/?next=/dead/",
        {"username": "ops", "password": PASSWORD, "next": "/dead/", "csrfmiddlewaretoken": token},
    )

    assert wrong.status_code == 200
    assert "Please enter the correct username and password" in wrong.content.decode()
    assert right.status_code == 302
    assert right["Location"] == "/dead/"
    assert browser.get("/dead/").status_code == 200


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_for_staff_with_labelled_navigation(staff: Client, path: str) -> None:
    world()

    response = staff.get(path)

    html = response.content.decode()
    assert response.status_code == 200
    assert '<nav aria-label="Console">' in html
    assert 'aria-current="page"' in html
    assert "/static/console/htmx.min.js" in html


def test_the_overview_counts_charts_and_rates_what_is_stored(staff: Client) -> None:
    world()
    ci = Destination.objects.get(name="ci")
    ci.failures_in_a_row = 3
    ci.save()

    html = staff.get("/").content.decode()

    # Pending, failing and dead tiles: one each.
    values = re.findall(r'<span class="tile-value">([^<]+)</span>', html)
    assert values[:3] == ["1", "1", "1"]
    assert re.search(r"tile-value\">\d+ min</span>", html)  # the oldest pending's age
    assert html.count('<svg class="chart"') == 2
    assert "4 in the last hour" in html  # four events received in the last hour
    # The attempts of the last hour: delivered 1 success; failing 2 retries; dead 3.
    assert "16.7 % of 6 attempts" in html
    assert 'st-failing">failing' in html
    assert "3 failed attempts in a row" in html
    assert "83.3 % <span" in html  # ci's failure rate over the hour


def test_the_events_list_is_newest_first_and_every_filter_narrows_it(staff: Client) -> None:
    made = world()

    def ids(query: str) -> list[str]:
        response = staff.get(f"/events/?{query}")
        assert response.status_code == 200, response.content
        return shown_ids(response.content.decode())

    assert ids("") == [made[k] for k in ("dead", "delivered", "failing", "pending")]
    assert ids("source=gh") == [made["failing"], made["pending"]]
    assert ids("event=push") == [made["delivered"], made["pending"]]
    assert ids("event=*_push") == [made["dead"]]
    for state in ("pending", "failing", "delivered", "dead"):
        assert ids(f"state={state}") == [made[state]]
    assert ids(f"q={made['failing']}") == [made["failing"]]
    assert ids("q=abc-1") == [made["delivered"]]
    assert ids("q=no-such-id") == []
    assert ids("source=gl&event=push") == [made["delivered"]]
    received = Event.objects.get(pk=made["delivered"]).received_at
    since = received.strftime("%Y-%m-%dT%H:%M:%S")
    # A datetime-local has whole seconds: "since" that second includes the event.
    assert ids(f"since={since}") == [made["dead"], made["delivered"]]
    until = (received + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert made["delivered"] in ids(f"until={until}")
    assert made["dead"] not in ids(f"until={until}")
    assert ids("range=1h") == [made[k] for k in ("dead", "delivered", "failing", "pending")]


def test_the_range_filter_leaves_out_older_events(staff: Client) -> None:
    source, destination = source_and_destination()
    old = event(
        source, at=timezone.now() - timedelta(days=2), deliveries=((destination, "succeeded", 1),)
    )
    new = event(source, at=timezone.now() - timedelta(minutes=5))

    assert shown_ids(staff.get("/events/?range=24h").content.decode()) == [new.pk]
    assert shown_ids(staff.get("/events/?range=7d").content.decode()) == [new.pk, old.pk]


def test_the_events_list_pages_by_cursor_without_repeating_or_skipping(staff: Client) -> None:
    source, _destination = source_and_destination()
    now = timezone.now()
    made = [event(source, at=now - timedelta(seconds=i)).pk for i in range(120)]

    seen: list[str] = []
    path = "/events/?source=gh"
    while path:
        html = staff.get(path).content.decode()
        seen += shown_ids(html)
        found = re.search(r'href="\?([^"]+)" rel="next"', html)
        path = "/events/?" + found.group(1).replace("&amp;", "&") if found else ""

    assert seen == made  # newest first, each once
    assert len(seen) == 120


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("state=lost", "Select a valid choice"),
        ("range=forever", "Select a valid choice"),
        ("since=yesterday", "Enter a valid date/time"),
        ("since=2026-03-02T00:00&until=2026-03-01T00:00", "must be before"),
        ("cursor=not-a-cursor", "not one the console made"),
        ("q=" + "x" * 300, "at most 255 characters"),
        ("event=%00push", "Null characters are not allowed"),
    ],
)
def test_bad_filters_get_a_400_saying_what_is_wrong(staff: Client, query: str, says: str) -> None:
    world()

    response = staff.get(f"/events/?{query}")

    assert response.status_code == 400
    assert says in response.content.decode()
    assert shown_ids(response.content.decode()) == []


def test_the_live_switch_streams_with_the_lists_filters(staff: Client) -> None:
    world()

    html = staff.get("/events/?source=gh&state=dead").content.decode()

    assert 'data-stream="/api/v1/stream?source=gh&amp;state=dead"' in html
    # A later page has no live switch to turn on: new events go on the first page.
    paged = staff.get("/events/?source=gh&cursor=" + "e" * 10)
    assert paged.status_code == 400


def test_the_live_view_gets_rows_by_id(staff: Client) -> None:
    made = world()

    html = staff.get(
        f"/events/rows/?ids={made['dead']},{made['pending']},evt_nothing"
    ).content.decode()

    assert shown_ids(html) == [made["dead"], made["pending"]]
    assert staff.get("/events/rows/?ids=" + "x" * 40).status_code == 400


def test_the_stream_accepts_the_console_session(staff: Client) -> None:
    # The live view's EventSource sends the session cookie: the stream must take it.
    # (An anonymous one gets 401: tests/e2e/test_api_stream.py.)
    response = staff.get("/api/v1/me")

    assert response.status_code == 200
    assert response.json() == {"name": "ops", "scope": "write"}


def test_the_event_page_shows_payload_headers_and_every_attempt(staff: Client) -> None:
    source, destination = source_and_destination()
    row = event(
        source,
        "push",
        body=b'{"ref": "main", "n": 3, "ok": true, "html": "<script>alert(1)</script>"}',
        deliveries=((destination, "succeeded", 2),),
    )

    html = staff.get(f"/events/{row.pk}/").content.decode()

    assert '<span class="j-k">&quot;ref&quot;</span>' in html
    assert '<span class="j-n">3</span>' in html
    assert '<span class="j-l">true</span>' in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "X-Test" in html  # a stored header
    assert html.count('class="attempt out-') == 2
    assert "HTTP 503" in html
    assert "HTTP 200" in html
    assert "(first 2,000 characters)" in html  # the 3,000-character reply is cut
    assert "x" * 2001 not in html
    assert 'hx-trigger="every 2s"' not in html  # nothing pending: no polling


def test_a_body_that_is_not_json_is_shown_as_text(staff: Client) -> None:
    source, _ = source_and_destination()
    row = event(source, body=b"a=1&b=<2>\xff")

    html = staff.get(f"/events/{row.pk}/").content.decode()

    assert "(not JSON: the raw body)" in html
    assert "a=1&amp;b=&lt;2&gt;\ufffd" in html


def test_a_pending_delivery_makes_the_timeline_refresh_itself(staff: Client) -> None:
    made = world()

    html = staff.get(f"/events/{made['pending']}/").content.decode()
    fragment = staff.get(f"/events/{made['pending']}/timeline")

    assert f'hx-get="/events/{made["pending"]}/timeline" hx-trigger="every 2s"' in html
    assert fragment.status_code == 200
    assert fragment.content.decode().lstrip().startswith('<div id="timeline"')


@pytest.mark.parametrize("path", ["/events/evt_nothing/", "/events/" + "e" * 40 + "/"])
def test_an_unknown_event_is_404(staff: Client, path: str) -> None:
    assert staff.get(path).status_code == 404


def test_the_destinations_page_shows_state_and_never_a_secret(staff: Client) -> None:
    Destination.objects.create(
        name="billing",
        url="https://user:hunter2-pass@billing.example.com/hooks",
        signing_secret="whsec_c2VjcmV0LXNpZ25pbmcta2V5LWZvci10ZXN0cw==",
        bearer_token="tok-very-secret-1",
        basic_auth="env:BILLING_BASIC",
        enabled=False,
        disabled_reason="410 Gone from the receiver",
    )

    html = staff.get("/destinations/").content.decode()

    assert "billing" in html
    assert 'st-disabled">disabled' in html
    assert "410 Gone from the receiver" in html
    assert "https://user:***@billing.example.com/hooks" in html
    for secret in ("hunter2-pass", "c2VjcmV0LXNpZ25pbmcta2V5", "tok-very-secret-1"):
        assert secret not in html
    assert "env:BILLING_BASIC" in html  # a reference is shown by name
    assert "fingerprint" in html


def test_an_open_or_probing_circuit_shows_on_the_overview_and_destinations(staff: Client) -> None:
    retry_at = timezone.now().replace(microsecond=0) + timedelta(seconds=40)
    Destination.objects.create(
        name="flaky",
        url="https://flaky.example.com/",
        failures_in_a_row=5,
        circuit_state=CircuitState.OPEN,
        circuit_retry_at=retry_at,
    )
    Destination.objects.create(
        name="mending", url="https://mending.example.com/", circuit_state=CircuitState.HALF_OPEN
    )

    for path in ("/", "/destinations/"):
        html = staff.get(path).content.decode()
        assert 'st-circuit-open">circuit-open' in html
        assert f"nothing sent until {retry_at:%H:%M:%S} UTC, then one probe" in html
        assert 'st-probing">probing' in html


def test_the_dead_letters_page_groups_by_destination_and_error(staff: Client) -> None:
    source, ci = source_and_destination("gh", "ci")
    _, chat = source_and_destination("gh", "chat")
    for n, (destination, error) in enumerate(
        [(ci, "HTTP 500"), (ci, "HTTP 500"), (ci, "timed out"), (chat, "HTTP 500")]
    ):
        row = event(
            source, at=timezone.now() - timedelta(minutes=n), deliveries=((destination, "dead", 2),)
        )
        Delivery.objects.filter(event=row).update(last_error=error)

    html = staff.get("/dead/").content.decode()

    groups = re.findall(
        r'<strong>(\w+)</strong></td>\s*<td data-label="Last error" class="error-text">([^<]+)</td>\s*<td data-label="Dead">(\d+)',
        html,
    )
    assert groups == [("ci", "HTTP 500", "2"), ("chat", "HTTP 500", "1"), ("ci", "timed out", "1")]


def test_the_sources_page_gives_the_url_scheme_command_and_last_webhook(
    staff: Client, settings: Any
) -> None:
    settings.ALLOWED_HOSTS = ["hooks.example.com"]
    Source.objects.create(slug="gitlab", verify="gitlab", secrets=["env:GITLAB_TOKEN"])
    Source.objects.create(slug="shop", verify="hmac-sha256", secrets=["a-literal-secret-99"])
    gl = Source.objects.get(slug="gitlab")
    event(gl, "push")

    html = staff.get("/sources/", HTTP_HOST="hooks.example.com").content.decode()

    assert "http://hooks.example.com/hooks/gitlab" in html
    assert "http://hooks.example.com/hooks/shop" in html
    assert "GitLab (X-Gitlab-Token)" in html
    assert "secret=&quot;$GITLAB_TOKEN&quot;" in html
    assert "secret=&quot;$SHOP_SECRET&quot;" in html
    assert "a-literal-secret-99" not in html
    assert "s ago" in html or "min ago" in html  # gitlab's last webhook
    assert "never" in html  # shop has had none
