"""``make screenshots``: the console's pages, as a new operator sees them, in
docs/console/*.png (laptop and phone width), from a database seeded here with an
hour of realistic traffic: four sources, four destinations (one failing, one
disabled), deliveries in every state, dead letters to replay.

It seeds a fresh SQLite file under var/screenshots/, serves it with Hookway (one
uvicorn process, the dispatcher off so the seeded states stay put), logs in with a
throwaway staff user in Debian's headless Chromium (Playwright; tests/browser.py
finds or installs it) and captures each page.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "console"
WORK = ROOT / "var" / "screenshots"
DB = WORK / "console.sqlite3"
USER, PASSWORD = "ops", "screenshots-only-password"
WIDTHS = {"laptop": (1366, 860), "phone": (390, 844)}


def seed() -> dict[str, str]:
    """Fill the database; return ids the pages need."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.utils import timezone

    from hookway import ids
    from hookway.models import Attempt, Delivery, Destination, Event, Route, Source

    call_command("migrate", verbosity=0, interactive=False)
    User.objects.create_superuser(USER, f"{USER}@localhost", PASSWORD)
    now = timezone.now()
    rng = random.Random(11)
    sources = {
        "github": Source.objects.create(
            slug="github", verify="github", secrets=["env:GITHUB_WEBHOOK_SECRET"]
        ),
        "gitlab": Source.objects.create(
            slug="gitlab", verify="gitlab", secrets=["env:GITLAB_TOKEN"], require_event_name=True
        ),
        "stripe": Source.objects.create(
            slug="stripe", verify="stripe", secrets=["whsec_screenshots_not_a_real_secret"]
        ),
        "shop": Source.objects.create(slug="shop", verify="none"),
    }
    ci = Destination.objects.create(
        name="ci-bot", url="https://ci.example.com/hooks", last_success_at=now
    )
    billing = Destination.objects.create(
        name="billing",
        url="https://billing.internal.example.com/webhooks",
        signing_secret="whsec_c2NyZWVuc2hvdHMtb25seS1zaWduaW5nLWtleQ==",
        max_attempts=3,
        last_success_at=now - timedelta(minutes=14),
        failures_in_a_row=37,
    )
    chat = Destination.objects.create(
        name="chat-notify", handler="myapp.hooks:notify_chat", last_success_at=now
    )
    audit = Destination.objects.create(
        name="audit-log",
        url="https://audit.example.com/in",
        enabled=False,
        disabled_reason="HTTP 410 Gone: the receiver asked Hookway to stop",
        last_success_at=now - timedelta(days=2, hours=3),
    )
    routes = {
        "github": [ci, chat],
        "gitlab": [ci, chat],
        "stripe": [billing, audit],
        "shop": [billing, chat],
    }
    for slug, targets in routes.items():
        for destination in targets:
            Route.objects.create(source=sources[slug], destination=destination)
    names = {
        "github": ["push", "pull_request", "workflow_run", "issues"],
        "gitlab": ["push", "merge_request", "pipeline"],
        "stripe": ["invoice.paid", "charge.succeeded", "customer.created"],
        "shop": ["order.created", "order.paid", "order.shipped"],
    }
    events, deliveries, attempts = [], [], []
    sample: dict[str, str] = {}
    for minute in range(60, 0, -1):
        busy = 5 + int(4 * math.sin(minute / 7)) + rng.randrange(0, 4)
        for _ in range(busy):
            at = now - timedelta(minutes=minute, seconds=rng.uniform(0, 59))
            slug = rng.choice(["github", "github", "gitlab", "stripe", "shop", "shop"])
            name = rng.choice(names[slug])
            body = _body(slug, name, rng)
            event = Event(
                id=ids.event_id(),
                source=sources[slug],
                event_name=name,
                delivery_id=f"{slug}-{rng.getrandbits(48):012x}",
                content_type="application/json",
                headers=_headers(slug, name),
                body=body.encode(),
                received_at=at,
            )
            events.append(event)
            for destination in routes[slug]:
                state, outcomes = _fate(destination.name, minute, rng)
                delivery = Delivery(
                    id=ids.delivery_id(),
                    event=event,
                    destination=destination,
                    state=state,
                    attempts=len(outcomes),
                    next_attempt_at=at + timedelta(minutes=5),
                    created_at=at,
                    completed_at=None if state == "pending" else at + timedelta(seconds=2),
                    last_status_code=outcomes[-1][1] if outcomes else None,
                    last_error=outcomes[-1][2] if outcomes else "",
                )
                deliveries.append(delivery)
                for n, (outcome, status, error) in enumerate(outcomes, start=1):
                    attempts.append(
                        Attempt(
                            delivery=delivery,
                            number=n,
                            worker="web-1",
                            started_at=at + timedelta(seconds=0.05 + 6 * (n - 1)),
                            duration_ms=rng.uniform(18, 240) if status else 15_000.0,
                            outcome=outcome,
                            status_code=status,
                            error_kind=""
                            if outcome == "success"
                            else ("timeout" if not status else "http_status"),
                            error=error,
                            response_body='{"ok": true}'
                            if outcome == "success"
                            else "upstream unavailable",
                        )
                    )
                if destination is billing and state == "dead":
                    sample.setdefault("dead_event", event.id)
                if destination is billing and state == "pending" and outcomes:
                    sample["failing_event"] = event.id
            if slug == "github" and name == "push":
                sample["push_event"] = event.id
    Event.objects.bulk_create(events)
    Delivery.objects.bulk_create(deliveries)
    Attempt.objects.bulk_create(attempts)
    return sample


def _fate(
    name: str, minute: int, rng: random.Random
) -> tuple[str, list[tuple[str, int | None, str]]]:
    """A delivery's state and attempts: billing broke 14 minutes ago."""
    ok = ("success", 200, "")
    if name == "billing" and minute <= 14:
        fail = ("retry", 503, "HTTP 503 from the receiver: Service Unavailable")
        if minute > 4:
            return "dead", [fail, fail, ("failed", 503, fail[2])]
        return "pending", [fail] * rng.randint(1, 2)
    if name == "billing" and minute == 31:
        slow = ("retry", None, "timed out after 15 s (no answer)")
        return "dead", [slow, slow, ("failed", None, slow[2])]
    if name == "audit-log":
        return ("pending", []) if minute < 50 else ("succeeded", [ok])
    if rng.random() < 0.03:
        return "succeeded", [("retry", 502, "HTTP 502 from the receiver: Bad Gateway"), ok]
    return "succeeded", [ok]


def _headers(slug: str, name: str) -> dict[str, str]:
    common = {"Content-Type": "application/json", "Accept": "*/*"}
    if slug == "github":
        return {
            **common,
            "User-Agent": "GitHub-Hookshot/2b1c8f4",
            "X-GitHub-Event": name,
            "X-GitHub-Hook-ID": "491123311",
        }
    if slug == "gitlab":
        return {
            **common,
            "User-Agent": "GitLab/17.6.1",
            "X-Gitlab-Event": "Push Hook",
            "X-Gitlab-Instance": "https://gitlab.example.com",
        }
    if slug == "stripe":
        return {**common, "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"}
    return {**common, "User-Agent": "shop-backend/3.2"}


def _body(slug: str, name: str, rng: random.Random) -> str:
    if slug == "github":
        return json.dumps(
            {
                "ref": "refs/heads/main",
                "before": f"{rng.getrandbits(160):040x}",
                "after": f"{rng.getrandbits(160):040x}",
                "repository": {"id": 684213, "full_name": "acme/storefront", "private": True},
                "pusher": {"name": "mira", "email": "mira@acme.example"},
                "commits": [
                    {
                        "id": f"{rng.getrandbits(160):040x}",
                        "message": "Fix the tax rounding on refunds",
                        "added": [],
                        "modified": ["billing/tax.py"],
                    }
                ],
                "forced": False,
            }
        )
    if slug == "gitlab":
        return json.dumps(
            {
                "object_kind": name,
                "project": {"id": 42, "path_with_namespace": "acme/api"},
                "user_username": "devon",
                "ref": "main",
                "total_commits_count": rng.randint(1, 5),
            }
        )
    if slug == "stripe":
        return json.dumps(
            {
                "id": f"evt_1Q{rng.getrandbits(40):010x}",
                "object": "event",
                "type": name,
                "data": {
                    "object": {
                        "id": f"in_{rng.getrandbits(40):010x}",
                        "amount_paid": rng.randint(900, 49000),
                        "currency": "eur",
                    }
                },
                "livemode": False,
            }
        )
    return json.dumps(
        {
            "event": name,
            "order": {
                "id": rng.randint(10000, 99999),
                "total": round(rng.uniform(9, 240), 2),
                "currency": "EUR",
                "items": rng.randint(1, 6),
            },
        }
    )


def serve(port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{DB}",
        "HOOKWAY_EMBEDDED_DISPATCHER": "false",
        "HOOKWAY_LOG_LEVEL": "WARNING",
        "HOOKWAY_CONFIG": "",
    }
    env.setdefault("HOOKWAY_DEMO", "true")
    log = (WORK / "server.log").open("wb")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "hookway.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "on",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def capture(base: str, sample: dict[str, str]) -> list[Path]:
    from playwright.sync_api import sync_playwright

    from tests.browser import find_chromium

    chromium, why = find_chromium()
    if chromium is None:
        raise SystemExit(f"no Chromium: {why}")
    pages = [
        ("overview", "/"),
        ("events", "/events/"),
        ("event", f"/events/{sample['dead_event']}/"),
        ("destinations", "/destinations/"),
        ("dead", "/dead/"),
        ("dead-confirm", None),
        ("sources", "/sources/"),
    ]
    written = []
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True)
        for width_name, (width, height) in WIDTHS.items():
            context = browser.new_context(
                viewport={"width": width, "height": height},
                device_scale_factor=1,
                color_scheme="light",
                is_mobile=width_name == "phone",
            )
            page = context.new_page()
            page.goto(f"{base}/login/")
            if width_name == "laptop":
                path = OUT / "login-laptop.png"
                page.screenshot(path=path)
                written.append(path)
            page.get_by_label("Username").fill(USER)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(f"{base}/")
            for name, url in pages:
                if url is None:  # the bulk replay's confirmation, reached as a user does
                    page.goto(f"{base}/dead/")
                    page.locator("tbody tr").first.get_by_role("button").click()
                    page.wait_for_load_state()
                else:
                    page.goto(base + url)
                path = OUT / f"{name}-{width_name}.png"
                # The event list is long: its first screen says what it is.
                page.screenshot(path=path, full_page=name != "events")
                written.append(path)
            context.close()
        browser.close()
    return written


def main() -> None:
    if DB.parent.exists():
        shutil.rmtree(DB.parent)
    WORK.mkdir(parents=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{DB}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookway.standalone.settings")
    os.environ.setdefault("HOOKWAY_DEMO", "true")
    os.environ["HOOKWAY_CONFIG"] = ""
    sample = seed()
    from django.db import connections

    connections.close_all()
    from tests.conftest import free_port

    port = free_port()
    server = serve(port)
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        for _ in range(150):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise SystemExit("the server did not start: " + (WORK / "server.log").read_text())
        for path in capture(base, sample):
            print(f"wrote {path.relative_to(ROOT)}")
    finally:
        server.terminate()
        server.wait(20)


if __name__ == "__main__":
    main()
