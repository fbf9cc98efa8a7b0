"""The console in a real headless Chromium against a real Hookway server (uvicorn, the
embedded dispatcher) and a real receiver: an anonymous visit lands on the login page;
after logging in, a webhook POSTed to /hooks/<slug> appears on the events page live
(no reload), its page shows the delivery's attempt, a replay's attempt appears without
a reload; then the receiver fails, the delivery dies, and a replay from the dead-letter
page, confirmed with its count, succeeds. A write without its CSRF token is refused."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User

from hookway.models import Destination, Route, Source
from tests.browser import find_chromium
from tests.receivers import Receiver, Reply

# Once, in the SQLite run: the browser's view; the console's pages are tested on both databases.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.sqlite_only]

ENV = {
    "HOOKWAY_RETRY_SCHEDULE": "0,0.2",
    "HOOKWAY_STREAM_POLL_INTERVAL": "0.2",
    "HOOKWAY_STREAM_HEARTBEAT": "1",
}
PASSWORD = "console-e2e-password"
WAIT_MS = 15_000


@pytest.fixture
def chromium() -> Iterator[Callable[[], Any]]:
    """``chromium()`` launches the browser. Call it once the database is set up:
    Playwright's sync API runs an event loop in this thread, where Django then refuses
    sync queries."""
    path, why = find_chromium()
    if path is None:
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    started: list[Any] = []

    def launch() -> Any:
        playwright = sync_playwright().start()
        started.append(playwright)
        browser = playwright.chromium.launch(executable_path=str(path), headless=True)
        started.append(browser)
        return browser

    yield launch
    for thing in reversed(started):
        thing.close() if hasattr(thing, "close") else thing.stop()


def test_an_operator_watches_a_webhook_arrive_and_replays_a_dead_delivery(
    start_server: Callable[..., Any],
    receiver: Callable[..., Receiver],
    chromium: Callable[[], Any],
) -> None:
    failing = {"on": False}
    r = receiver(lambda request, n: Reply(500, body=b"down") if failing["on"] else Reply(200))
    source = Source.objects.create(slug="shop")
    ci = Destination.objects.create(name="ci", url=r.url(), max_attempts=2)
    Route.objects.create(source=source, destination=ci)
    User.objects.create_user("ops", password=PASSWORD, is_staff=True)
    server = start_server(ENV)
    page = chromium().new_page()
    page.set_default_timeout(WAIT_MS)

    # Anonymous: the login page, which comes back to the page asked for.
    page.goto(f"{server.url}/events/")
    assert re.search(r"/login/\?next=/events/$", page.url)
    page.get_by_label("Username").fill("ops")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{server.url}/events/")

    # Live: a webhook appears on the page without a reload.
    page.get_by_label("Live", exact=True).check()
    page.get_by_text("live: new events appear at the top").wait_for()
    page.evaluate("window.notReloaded = true")
    posted = httpx.post(f"{server.url}/hooks/shop", json={"event_name": "order.paid", "n": 1})
    assert posted.status_code == 202
    first = posted.json()["id"]
    row = page.locator(f"#row-{first}")
    row.wait_for()
    assert "order.paid" in row.inner_text()
    row.locator(".st-delivered").wait_for()  # the delivery's outcome arrives live too
    assert page.evaluate("window.notReloaded") is True

    # Its page: the delivery's attempt.
    row.get_by_role("link", name="order.paid").click()
    page.wait_for_url(f"{server.url}/events/{first}/")
    attempt = page.locator(".attempt").first
    assert "HTTP 200" in attempt.inner_text()
    assert '"order.paid"' in page.locator('pre[aria-labelledby="payload-h"]').inner_text()

    # Replay it to ci: the new delivery and its attempt appear without a reload.
    page.evaluate("window.notReloaded = true")
    page.get_by_label("Replay to").select_option("ci")
    page.get_by_role("button", name="Replay", exact=True).click()
    page.get_by_text(re.compile(r"Replayed to ci as msg_")).wait_for()
    page.locator(".delivery").nth(1).locator(".attempt.out-success").wait_for()
    assert page.evaluate("window.notReloaded") is True
    assert len(r.received()) == 2

    # The receiver fails: the next webhook's delivery dies after its two attempts.
    failing["on"] = True
    second = httpx.post(f"{server.url}/hooks/shop", json={"event_name": "order.refunded"})
    assert second.status_code == 202
    page.goto(f"{server.url}/events/{second.json()['id']}/")
    page.locator(".delivery .st-dead").wait_for()
    assert page.locator(".attempt.out-failed").count() == 1
    assert "HTTP 500" in page.locator(".attempt").last.inner_text()

    # Replay from the dead letters, once the receiver is back.
    failing["on"] = False
    page.get_by_role("link", name="Dead letters").click()
    group = page.locator("tbody tr", has_text="ci")
    assert "HTTP 500" in group.inner_text()
    group.get_by_role("button", name=re.compile("Replay the 1 dead")).click()
    page.get_by_role("heading", name="Replay 1 dead delivery to ci?").wait_for()
    page.get_by_role("button", name="Replay 1 delivery").click()
    page.get_by_text("Replayed 1 dead delivery to ci.").wait_for()

    page.goto(f"{server.url}/events/{second.json()['id']}/")
    replayed = page.locator(".delivery").nth(1)
    replayed.locator(".attempt.out-success").wait_for()
    assert "replay of" in replayed.inner_text()
    assert "HTTP 200" in replayed.inner_text()

    # The session's write without its CSRF token: refused, nothing replayed.
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    forged = httpx.post(
        f"{server.url}/events/{first}/replay",
        cookies={"sessionid": cookies["sessionid"]},
        headers={"Origin": server.url},
    )
    assert forged.status_code == 403
    before = len(r.received())
    assert json.loads(httpx.get(f"{server.url}/healthz").text)  # the server is fine
    assert len(r.received()) == before
