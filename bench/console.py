"""The console's overview and event list over 1,000,000 stored events (SQLite).

The data set is the operator API benchmark's (bench/api_lists.py: a million events over
~116 days, 1 to 3 deliveries each, 93 % delivered, 3 % dead, 2 % failing, 2 % waiting),
copied, plus the last hour of a busy gateway on top (10 events a second, 36,000 events
with their deliveries and attempts, 5 % of the attempts failing), so the overview's
hour-long charts and rates have real rows to count. One uvicorn process (no dispatcher)
serves it; one logged-in client asks for each page, one request at a time.

Measured: the server's own time for each page (its ``Server-Timing: total``, from the
first middleware to the last byte of the rendered page) and the client's latency.

Target (issue 11): the events page and the overview render in <= 300 ms server-side at
1,000,000 events (p95).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import api_lists, common

GOAL_MS = 300.0
USER, PASSWORD = "bench-console", "bench-console-password-not-secret"
RECENT_PER_SECOND = 10


def add_last_hour(path: Path, per_second: int) -> int:
    """Store an hour of traffic ending now (``per_second`` events a second, each with
    one to three deliveries and their attempts); returns the events added."""
    db = sqlite3.connect(path)
    source_ids = [r[0] for r in db.execute("SELECT id FROM hookway_source ORDER BY slug")]
    dest_ids = [r[0] for r in db.execute("SELECT id FROM hookway_destination ORDER BY name")]
    rng = random.Random(5)
    now = datetime.now(UTC)
    count = 3600 * per_second
    body = api_lists.BODY.encode()
    events, deliveries, attempts = [], [], []
    for k in range(count):
        when = now - timedelta(seconds=3600 - k / per_second)
        n = 50_000_000 + k
        event_id = api_lists._id("evt", n, when)
        events.append(
            (
                event_id,
                rng.choice(source_ids),
                rng.choice(api_lists.NAMES),
                f"recent-{k}",
                "application/json",
                "{}",
                body,
                "",
                "",
                api_lists._ts(when),
            )
        )
        for j, dest in enumerate(rng.sample(dest_ids, rng.randint(1, 3))):
            delivery_id = api_lists._id("msg", n * 4 + j, when)
            ok = rng.random() >= 0.05
            deliveries.append(
                (
                    delivery_id,
                    event_id,
                    dest,
                    "succeeded" if ok else "pending",
                    1,
                    api_lists._ts(when + timedelta(seconds=5)),
                    "",
                    200 if ok else 503,
                    "" if ok else "HTTP 503",
                    api_lists._ts(when),
                    api_lists._ts(when) if ok else None,
                )
            )
            attempts.append(
                (
                    delivery_id,
                    1,
                    "bench",
                    api_lists._ts(when),
                    20.0,
                    "success" if ok else "retry",
                    200 if ok else 503,
                    "" if ok else "http_status",
                    "" if ok else "HTTP 503",
                    "",
                )
            )
    db.executemany(
        "INSERT INTO hookway_event (id, source_id, event_name, delivery_id, content_type, "
        "headers, body, body_sha256, conflict_with, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        events,
    )
    db.executemany(
        "INSERT INTO hookway_delivery (id, event_id, destination_id, state, attempts, "
        "next_attempt_at, lease_owner, last_status_code, last_error, created_at, completed_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        deliveries,
    )
    db.executemany(
        "INSERT INTO hookway_attempt (delivery_id, number, worker, started_at, duration_ms, "
        "outcome, status_code, error_kind, error, response_body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        attempts,
    )
    db.commit()
    db.close()
    return count


def login(client: httpx.Client) -> None:
    page = client.get("/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, "no CSRF token on the login page"
    done = client.post(
        "/login/",
        data={"csrfmiddlewaretoken": token.group(1), "username": USER, "password": PASSWORD},
        headers={"Origin": str(client.base_url).rstrip("/")},
    )
    if done.status_code != 302:
        raise RuntimeError(f"could not log in to the console: {done.status_code}")


def server_ms(response: httpx.Response) -> float:
    found = re.search(r"total;dur=([0-9.]+)", response.headers.get("Server-Timing", ""))
    assert found, "no Server-Timing header"
    return float(found.group(1))


def pages(client: httpx.Client) -> list[tuple[str, str]]:
    first = client.get("/events/")
    older = re.search(r'href="\?([^"]+)" rel="next"', first.text)
    assert older, "the event list has no next page"
    deep_cursor = client.get("/api/v1/events?limit=1&until=2026-03-01T00:00:00Z").json()["next"]
    return [
        ("overview", "/"),
        ("events, newest 50", "/events/"),
        ("events, page 2", "/events/?" + older.group(1).replace("&amp;", "&")),
        ("events, a page deep in history", f"/events/?cursor={deep_cursor}"),
        ("events, source + name", "/events/?source=github&event=push"),
        ("events, state dead", "/events/?state=dead"),
        ("events, state failing", "/events/?state=failing"),
        ("events, last hour", "/events/?range=1h"),
        ("events, sender's delivery id", "/events/?q=dlv-500001"),
    ]


def run(quick: bool) -> common.Result:
    events, n = (20_000, 10) if quick else (1_000_000, 60)
    if quick:
        api_lists.CACHE = common.ROOT / "var" / "bench-smoke" / "api"
    path, filled_in = api_lists.database(events)
    work = common.tempdir("console")
    db = work / "db.sqlite3"
    shutil.copy(path, db)
    env = {
        "DATABASE_URL": f"sqlite:///{db}",
        "HOOKWAY_DEMO": "true",
        "HOOKWAY_EMBEDDED_DISPATCHER": "false",
        "HOOKWAY_CONFIG": "",
    }
    started = time.monotonic()
    recent = add_last_hour(db, 1 if quick else RECENT_PER_SECOND)
    added_in = time.monotonic() - started
    common.run_checked(
        [common.PYTHON, "manage.py", "createsuperuser", "--no-input"],
        env={
            **env,
            "DJANGO_SUPERUSER_USERNAME": USER,
            "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
            "DJANGO_SUPERUSER_EMAIL": f"{USER}@localhost",
        },
    )
    port = common.free_port()
    rows: list[list[Any]] = []
    targets: list[common.Target] = []
    load = os.getloadavg()
    cmd = common.hookway_uvicorn(port, "--log-level", "warning")
    try:
        with common.Server("hookway-console", cmd, env=env, logdir=work) as server:
            base = f"http://{common.HOST}:{port}"
            server.wait_http(base + "/healthz", timeout=60)
            with httpx.Client(base_url=base, timeout=60) as client:
                login(client)
                for label, url in pages(client):
                    for _ in range(max(3, n // 10)):  # warm-up: templates, page cache
                        client.get(url)
                    server_times, client_times = [], []
                    for _ in range(n):
                        began = time.perf_counter()
                        response = client.get(url)
                        client_times.append((time.perf_counter() - began) * 1000)
                        if response.status_code != 200:
                            raise RuntimeError(f"GET {url}: {response.status_code}")
                        server_times.append(server_ms(response))
                    p50, p95 = (common.percentile(server_times, p) for p in (50, 95))
                    c95 = common.percentile(client_times, 95)
                    rows.append([label, n, p50, p95, max(server_times), c95])
                    print(f"   {label}: server p50 {p50:.1f} p95 {p95:.1f} ms", flush=True)
                    if label == "overview" or label.startswith("events"):
                        targets.append(
                            common.Target(
                                f"console {label}: server p95 <= {GOAL_MS:.0f} ms",
                                f"p95 {p95:.1f} ms",
                                p95 <= GOAL_MS,
                            )
                        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    notes = [
        f"The operator API benchmark's {events:,} events (bench/api_lists.py; "
        + (f"filled in {filled_in:.0f} s" if filled_in else "from its cache under var/bench-api/")
        + f"), plus {recent:,} events received in the last hour (added in {added_in:.0f} s) "
        "with their deliveries and attempts, 5 % failing.",
        f"One uvicorn process (no dispatcher), one logged-in client, {n} requests per page "
        "one after another after a warm-up; 'server' is the page's Server-Timing total "
        "(rendering included), 'client' the latency the client saw.",
        f"Load average when it started: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        f"({os.cpu_count()} cores; the machine was shared with other work).",
    ]
    if not quick:
        update_docs(rows, load)
    return common.Result(
        title=f"The console over {events + recent:,} events (SQLite, one process)",
        columns=["page", "n", "server p50 ms", "server p95 ms", "server max ms", "client p95 ms"],
        rows=rows,
        notes=notes,
        targets=targets,
        charts=[
            common.Chart(
                title="Server time per page",
                ylabel="ms",
                labels=[r[0] for r in rows],
                series={"p50": [r[2] for r in rows], "p95": [r[3] for r in rows]},
            )
        ],
    )


DOCS = common.ROOT / "docs" / "console.md"
DOCS_START = "<!-- bench-console:start -->"
DOCS_END = "<!-- bench-console:end -->"


def update_docs(rows: list[list[Any]], load: tuple[float, float, float]) -> None:
    """Rewrite the figures in docs/console.md ("At scale") from this run."""
    text = DOCS.read_text()
    if DOCS_START not in text or DOCS_END not in text:
        return
    table = ["| page | server p50 | server p95 |", "|---|---|---|"]
    table += [f"| {r[0]} | {float(r[2]):.0f} ms | {float(r[3]):.0f} ms |" for r in rows]
    intro = (
        f"Measured with the machine's load average at {load[0]:.1f} on {os.cpu_count()} "
        "cores (shared with other work): [bench/results/console.md]"
        "(../bench/results/console.md)."
    )
    head, _, rest = text.partition(DOCS_START)
    _, _, tail = rest.partition(DOCS_END)
    DOCS.write_text(head + "\n".join([DOCS_START, intro, "", *table, DOCS_END]) + tail)


if __name__ == "__main__":
    # Rewrite the docs' figures from the last saved run (bench/results/console.json).
    import json
    import sys

    saved = json.loads((common.RESULTS_DIR / "console.json").read_text())
    if saved.get("quick"):
        sys.exit("the last run was a quick one: its figures mean nothing")
    found = re.search(
        r"Load average when it started: ([0-9.]+) ([0-9.]+) ([0-9.]+)",
        (common.RESULTS_DIR / "console.md").read_text(),
    )
    figures = (
        (float(found.group(1)), float(found.group(2)), float(found.group(3)))
        if found
        else (0.0, 0.0, 0.0)
    )
    update_docs(saved["rows"], figures)
