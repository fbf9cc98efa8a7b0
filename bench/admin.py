"""The Django admin at a million events: how long each list, filter, search and page takes.

A database is filled with 1,000,000 events (three sources, a dozen event names, 90 days),
one delivery each (to four destinations; 1 % dead, 1 % pending) and one attempt each, on
SQLite and on PostgreSQL (database ``hookway_bench_admin``). A Hookway server (one
uvicorn process, no dispatcher) serves the admin; a logged-in client asks for every list,
each of its filter choices, searches and pages, one request at a time, and the p50 and
p95 of each page's response time are reported per database.

The filled databases are kept (SQLite under var/bench-admin/, PostgreSQL marked with the
fill's key) and reused while the schema and the fill stay the same: filling takes a few
minutes, measuring about two.

``python -m bench.admin prepare DATABASE_URL N OUT`` is the fill step, run in its own
process with Django set up (the harness process has no Django).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.cookiejar
import json
import os
import re
import shutil
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import common

EVENTS = 1_000_000
QUICK_EVENTS = 5_000
PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "hookway_bench_admin"
# Bump when the fill below changes: a cached database with another key is refilled.
FILL_VERSION = "1"
GOAL_MS = 300.0
USER, PASSWORD = "bench-admin", "bench-admin-password-not-secret"

SOURCES = {  # slug: (verify, share of the events in tenths, event names)
    "github": ("github", 6, ["push", "pull_request", "issues", "release", "workflow_run"]),
    "stripe": ("stripe", 3, ["charge.succeeded", "invoice.paid", "customer.created"]),
    "gitlab": ("gitlab", 1, ["push", "merge_request", "pipeline", "note"]),
}
DESTINATIONS = ["ci-bot", "billing", "audit-log", "chat-notify"]
SPAN = timedelta(days=90)
BODY = json.dumps({"event_name": "push", "padding": "x" * 900}).encode()
BATCH = 10_000


# --------------------------------------------------------------------------- the fill


def _fill_key(events: int) -> str:
    """What the filled database depends on: the migrations, this fill, and its size."""
    digest = hashlib.sha256(f"{FILL_VERSION}:{events}".encode())
    for path in sorted((common.ROOT / "hookway" / "migrations").glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _id(prefix: str, at: datetime, n: int) -> str:
    """An id like hookway.ids makes (time-ordered), deterministic for the fill."""
    value = (int(at.timestamp() * 1000) << 80) | n
    return prefix + "_" + "".join(_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def _prepare(url: str, events: int, out: Path) -> None:
    """Fill the database at ``url`` unless it holds this fill already; make sure the
    bench's superuser exists; write what the pages need (ids, names) to ``out``."""
    import django

    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookway.standalone.settings")
    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection, transaction

    from hookway.models import Attempt, Delivery, Destination, Event, Route, Source

    key = _fill_key(events)
    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_admin_fill (fill_key varchar(64))")
        cursor.execute("SELECT fill_key FROM bench_admin_fill")
        filled = [row[0] for row in cursor.fetchall()]
    if filled != [key]:
        if Event.objects.exists():
            raise SystemExit(f"{url} holds another fill: remove it first")
        started = time.monotonic()
        _fill(events)
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM bench_admin_fill")
            cursor.execute("INSERT INTO bench_admin_fill VALUES (%s)", [key])
            if connection.vendor == "postgresql":
                # What autovacuum would have done by now on a live database.
                cursor.execute("SET statement_timeout = 0")
                cursor.execute("VACUUM ANALYZE")
        print(f"filled {events:,} events in {time.monotonic() - started:.0f} s", flush=True)
    if not User.objects.filter(username=USER).exists():
        User.objects.create_superuser(USER, f"{USER}@localhost", PASSWORD)
    newest = Event.objects.order_by("-received_at").values_list("pk", "delivery_id")[:50]
    sample_event, sample_sender_id = next((pk, d) for pk, d in newest if d)
    with transaction.atomic():
        info = {
            "event": sample_event,
            "sender_delivery_id": sample_sender_id,
            "old_event": Event.objects.order_by("received_at").values_list("pk", flat=True)[0],
            "delivery": Delivery.objects.filter(event_id=sample_event).values_list("pk", flat=True)[
                0
            ],
            "sources": dict(Source.objects.values_list("slug", "pk")),
            "destinations": dict(Destination.objects.values_list("name", "pk")),
            "routes": Route.objects.count(),
            "attempts": Attempt.objects.filter(delivery__event_id=sample_event).count(),
        }
    out.write_text(json.dumps(info))


def _case(expr: str, values: list[str] | list[int]) -> str:
    """SQL picking ``values[expr]`` (expr an integer 0..len-1)."""
    whens = " ".join(
        f"WHEN {n} THEN {v if isinstance(v, int) else repr(v)}" for n, v in enumerate(values)
    )
    return f"CASE {expr} {whens} END"


def _fill(events: int) -> None:
    """Insert the rows with INSERT … SELECT over a series of numbers, in the database
    itself: building a million model instances in Python takes ten times longer."""
    from django.db import connection, transaction

    from hookway.models import Attempt, Delivery, Destination, Event, Route, Source

    sources = {
        slug: Source.objects.create(slug=slug, verify=verify, secrets=["env:BENCH_SECRET"])
        for slug, (verify, _, _) in SOURCES.items()
    }
    destinations = [
        Destination.objects.create(name=name, url=f"https://{name}.example.com/hooks")
        for name in DESTINATIONS
    ]
    for source in sources.values():
        for destination in destinations:
            Route.objects.create(source=source, destination=destination)
    pg = connection.vendor == "postgresql"
    if pg:
        series = f"generate_series(0, {events - 1}) AS g(i)"

        def pad(expr: str, width: int) -> str:
            return f"lpad(({expr})::text, {width}, '0')"

        def at(seconds: str) -> str:
            return f"to_timestamp({seconds})"

    else:
        series = (
            f"(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s "
            f"WHERE i < {events - 1}) SELECT i FROM s)"
        )

        def pad(expr: str, width: int) -> str:
            return f"printf('%0{width}d', {expr})"

        def at(seconds: str) -> str:
            return f"strftime('%Y-%m-%d %H:%M:%f', {seconds}, 'unixepoch')"

    start = (datetime.now(UTC) - SPAN).timestamp()
    when = at(f"{start} + i * {SPAN.total_seconds() / events}")
    slug_of = _case("i % 10", [slug for slug, (_, n, _) in SOURCES.items() for _ in range(n)])
    source_id = _case(
        "i % 10", [sources[s].pk for s, (_, n, _) in SOURCES.items() for _ in range(n)]
    )
    name = (
        "CASE "
        + " ".join(
            f"WHEN ({slug_of}) = '{slug}' THEN {_case(f'(i / 10) % {len(names)}', names)}"
            for slug, (_, _, names) in SOURCES.items()
        )
        + " END"
    )
    dest_id = _case(f"i % {len(destinations)}", [d.pk for d in destinations])
    state = "CASE i % 100 WHEN 0 THEN 'dead' WHEN 1 THEN 'pending' ELSE 'succeeded' END"
    error = "CASE i % 100 WHEN 0 THEN 'HTTP 503 from the receiver: try later' WHEN 1 THEN 'HTTP 503 from the receiver: try later' ELSE '' END"
    code = "CASE WHEN i % 100 < 2 THEN 503 ELSE 200 END"
    q = connection.ops.quote_name
    event_id, delivery_id = f"'evt_' || {pad('i', 26)}", f"'msg_' || {pad('i', 26)}"
    statements = [
        (
            Event,
            "id, source_id, event_name, delivery_id, content_type, headers, body, "
            "body_sha256, conflict_with, received_at",
            f"{event_id}, {source_id}, {name}, "
            f"CASE WHEN ({slug_of}) = 'gitlab' THEN NULL ELSE ({slug_of}) || '-' || {pad('i', 9)} END, "
            f"'application/json', '{{\"User-Agent\": \"bench\"}}', %s, {pad('i', 64)}, '', {when}",
        ),
        (
            Delivery,
            "id, event_id, destination_id, state, attempts, next_attempt_at, lease_owner, "
            "lease_expires_at, last_status_code, last_error, created_at, completed_at, replay_of_id",
            f"{delivery_id}, {event_id}, {dest_id}, {state}, 1, {when}, '', NULL, {code}, "
            f"{error}, {when}, CASE WHEN i % 100 = 1 THEN NULL ELSE {when} END, NULL",
        ),
        (
            Attempt,
            "delivery_id, number, worker, started_at, duration_ms, outcome, status_code, "
            "error_kind, error, response_body",
            f"{delivery_id}, 1, 'bench', {when}, 12.5 + i % 200, "
            "CASE i % 100 WHEN 0 THEN 'failed' WHEN 1 THEN 'retry' ELSE 'success' END, "
            f"{code}, CASE WHEN i % 100 < 2 THEN 'http_status' ELSE '' END, {error}, ''",
        ),
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        if pg:  # Hookway's statement timeout is for requests, not a million-row insert
            cursor.execute("SET LOCAL statement_timeout = 0")
        for model, columns, values in statements:
            sql = f"INSERT INTO {q(model._meta.db_table)} ({columns}) SELECT {values} FROM {series}"
            if pg and model is Event:
                sql = sql.replace("'{", "('{").replace("}'", "}')::jsonb", 1)
            # Placeholders are %s: a literal % (the modulo operator) is written %%.
            sql = sql.replace("%", "%%").replace("%%s", "%s")
            cursor.execute(sql, [BODY] if model is Event else [])
            print(f"  {model._meta.verbose_name_plural}: {events:,} rows", flush=True)


# --------------------------------------------------------------------------- the pages


def _pages(info: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, path) of every page measured: each list, each filter choice, searches,
    pages 2 and 100 (the last the lists link to), and the record pages."""
    admin = "/admin/hookway"
    today = datetime.now(UTC).date()
    days = {
        "today": (today, today + timedelta(days=1)),
        "past 7 days": (today - timedelta(days=7), today + timedelta(days=1)),
        "this month": (today.replace(day=1), (today.replace(day=28) + timedelta(days=4))),
        "this year": (
            today.replace(month=1, day=1),
            today.replace(year=today.year + 1, month=1, day=1),
        ),
    }
    pages = [
        ("events", f"{admin}/event/"),
        ("events, page 2", f"{admin}/event/?p=2"),
        ("events, page 100", f"{admin}/event/?p=100"),
    ]
    pages += [
        (f"events, source {slug}", f"{admin}/event/?source__id__exact={pk}")
        for slug, pk in info["sources"].items()
    ]
    names = sorted({name for _, _, names in SOURCES.values() for name in names})
    pages += [
        (f"events, name {name}", f"{admin}/event/?event_name={urllib.parse.quote(name)}")
        for name in names
    ]
    pages += [
        (
            f"events, received {label}",
            f"{admin}/event/?received_at__gte={start}+00:00:00%2B00:00"
            f"&received_at__lt={end}+00:00:00%2B00:00",
        )
        for label, (start, end) in days.items()
    ]
    pages += [
        ("events, search event id", f"{admin}/event/?q={info['event']}"),
        ("events, search old event id", f"{admin}/event/?q={info['old_event']}"),
        ("events, search sender's delivery id", f"{admin}/event/?q={info['sender_delivery_id']}"),
        ("events, search name prefix 'pu'", f"{admin}/event/?q=pu"),
        ("events, search name prefix 'charge.'", f"{admin}/event/?q=charge."),
        ("events, search no match", f"{admin}/event/?q=no-such-thing"),
        (
            "events, source + name + page 2",
            f"{admin}/event/?source__id__exact={info['sources']['gitlab']}&event_name=note&p=2",
        ),
        ("event page", f"{admin}/event/{info['event']}/change/"),
        ("deliveries", f"{admin}/delivery/"),
        ("deliveries, page 2", f"{admin}/delivery/?p=2"),
        ("deliveries, page 100", f"{admin}/delivery/?p=100"),
    ]
    pages += [
        (f"deliveries, state {state}", f"{admin}/delivery/?state__exact={state}")
        for state in ("pending", "succeeded", "dead")
    ]
    pages += [
        (f"deliveries, destination {name}", f"{admin}/delivery/?destination__id__exact={pk}")
        for name, pk in info["destinations"].items()
    ]
    pages += [
        (
            "deliveries, dead + destination",
            f"{admin}/delivery/?state__exact=dead"
            f"&destination__id__exact={info['destinations']['audit-log']}",
        ),
        ("deliveries, search delivery id", f"{admin}/delivery/?q={info['delivery']}"),
        ("deliveries, search event id", f"{admin}/delivery/?q={info['event']}"),
        ("deliveries, search no match", f"{admin}/delivery/?q=msg_nothing"),
        ("delivery page (its attempts)", f"{admin}/delivery/{info['delivery']}/change/"),
        ("destinations", f"{admin}/destination/"),
        ("destinations, enabled", f"{admin}/destination/?enabled__exact=1"),
        ("destinations, paused", f"{admin}/destination/?paused__exact=0"),
        ("destinations, managed", f"{admin}/destination/?managed__exact=0"),
        ("destinations, search", f"{admin}/destination/?q=ci"),
        ("sources", f"{admin}/source/"),
        ("sources, verify github", f"{admin}/source/?verify__exact=github"),
        ("sources, enabled", f"{admin}/source/?enabled__exact=1"),
        ("sources, search", f"{admin}/source/?q=git"),
        ("routes", f"{admin}/route/"),
        ("routes, source", f"{admin}/route/?source__id__exact={info['sources']['github']}"),
        (
            "routes, destination",
            f"{admin}/route/?destination__id__exact={info['destinations']['ci-bot']}",
        ),
        ("admin index", "/admin/"),
    ]
    return pages


class AdminClient:
    """A logged-in admin session (cookies, CSRF) over urllib."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> tuple[int, bytes]:
        with self.opener.open(self.base + path, timeout=60) as response:
            return response.status, response.read()

    def login(self) -> None:
        _, page = self.get("/admin/login/")
        found = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert found, "no CSRF token on the login page"
        form = urllib.parse.urlencode(
            {
                "csrfmiddlewaretoken": found.group(1).decode(),
                "username": USER,
                "password": PASSWORD,
                "next": "/admin/",
            }
        ).encode()
        request = urllib.request.Request(
            self.base + "/admin/login/", data=form, headers={"Origin": self.base}
        )
        with self.opener.open(request, timeout=60) as response:
            body = response.read()
        if b"Log out" not in body and b"logout" not in body:
            raise RuntimeError("could not log in to the admin")


def _measure(base: str, pages: list[tuple[str, str]], rounds: int) -> dict[str, list[float]]:
    client = AdminClient(base)
    client.login()
    times: dict[str, list[float]] = {label: [] for label, _ in pages}
    for label, path in pages:  # one unmeasured request each: templates, caches
        status, _ = client.get(path)
        if status != 200:
            raise RuntimeError(f"{label}: {path} answered {status}")
    for _ in range(rounds):
        for label, path in pages:
            started = time.perf_counter()
            client.get(path)
            times[label].append((time.perf_counter() - started) * 1000)
    return times


@contextlib.contextmanager
def _server(url: str, work: Path) -> Iterator[str]:
    port = common.free_port()
    env = {
        "DJANGO_SETTINGS_MODULE": "hookway.standalone.settings",
        "DATABASE_URL": url,
        "HOOKWAY_EMBEDDED_DISPATCHER": "false",
        "HOOKWAY_LOG_LEVEL": "WARNING",
        "HOOKWAY_DEMO": os.environ.get("HOOKWAY_DEMO", "true"),
    }
    env.pop("HOOKWAY_CONFIG", None)
    cmd = common.hookway_uvicorn(port, "--log-level", "warning")
    with common.Server("admin-server", cmd, env=env, logdir=work) as server:
        base = f"http://{common.HOST}:{port}"
        server.wait_http(base + "/healthz", timeout=60)
        yield base


def _run_step(url: str, events: int, work: Path) -> dict[str, Any]:
    out = work / "info.json"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hookway.standalone.settings",
        "HOOKWAY_DEMO": os.environ.get("HOOKWAY_DEMO", "true"),
    }
    env.pop("HOOKWAY_CONFIG", None)
    import subprocess

    subprocess.run(
        [common.PYTHON, "-m", "bench.admin", "prepare", url, str(events), str(out)],
        cwd=common.ROOT,
        env=env,
        check=True,
        timeout=1800,
    )
    return dict(json.loads(out.read_text()))


def _pg_url(events: int) -> str | None:
    """The PostgreSQL bench database, recreated when it holds another fill; None if
    PostgreSQL is not reachable."""
    try:
        import psycopg
    except ImportError:
        return None
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        return None
    url = f"postgres://postgres@127.0.0.1:5432/{PG_BENCH_DB}"
    with admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [PG_BENCH_DB]
        ).fetchone()
        fresh = False
        if exists:
            with psycopg.connect(url) as conn:
                try:
                    row = conn.execute("SELECT fill_key FROM bench_admin_fill").fetchone()
                except psycopg.errors.UndefinedTable:
                    row = None
            fresh = row is not None and row[0] == _fill_key(events)
            if not fresh:
                admin.execute(f'DROP DATABASE "{PG_BENCH_DB}" WITH (FORCE)')
        if not fresh:
            admin.execute(f'CREATE DATABASE "{PG_BENCH_DB}"')
    return url


def _sqlite_url(events: int) -> str:
    folder = common.ROOT / "var" / "bench-admin"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"admin-{events}-{_fill_key(events)}.sqlite3"
    for old in folder.glob(f"admin-{events}-*.sqlite3*"):
        if not old.name.startswith(path.name):
            old.unlink()
    return f"sqlite:///{path}"


def run(quick: bool) -> common.Result:
    events = QUICK_EVENTS if quick else EVENTS
    rounds = 3 if quick else 15
    work = common.tempdir("admin")
    dbs = {"SQLite": _sqlite_url(events)}
    pg = _pg_url(events)
    if pg is not None:
        dbs["PostgreSQL"] = pg
    measured: dict[str, dict[str, list[float]]] = {}
    pages: list[tuple[str, str]] = []
    try:
        for db, url in dbs.items():
            print(f"   {db}: preparing {events:,} events", flush=True)
            info = _run_step(url, events, work)
            pages = _pages(info)
            with _server(url, work) as base:
                print(f"   {db}: measuring {len(pages)} pages x {rounds}", flush=True)
                measured[db] = _measure(base, pages, rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not quick:
        _update_docs(events, measured)
    return _result(events, rounds, pages, measured)


DOCS = common.ROOT / "docs" / "operations.md"
DOCS_START = "<!-- bench-admin:start (written by python -m bench --only admin) -->"
DOCS_END = "<!-- bench-admin:end -->"


def _update_docs(events: int, measured: dict[str, dict[str, list[float]]]) -> None:
    """Rewrite the figure in docs/operations.md ("The admin at scale") from this run."""
    text = DOCS.read_text()
    if DOCS_START not in text or DOCS_END not in text:
        return
    rows = ["| database | pages | median p50 | slowest page (p95) |", "|---|---|---|---|"]
    for db, times in measured.items():
        p50s = [common.percentile(t, 50) for t in times.values()]
        worst = max(times, key=lambda label: common.percentile(times[label], 95))
        rows.append(
            f"| {db} | {len(times)} | {common.median(p50s):.0f} ms | "
            f"{worst}: {common.percentile(times[worst], 95):.0f} ms |"
        )
    head, _, rest = text.partition(DOCS_START)
    _, _, tail = rest.partition(DOCS_END)
    intro = f"At {events:,} events ([bench/results/admin.md](../bench/results/admin.md)):"
    DOCS.write_text(head + "\n".join([DOCS_START, intro, "", *rows, DOCS_END]) + tail)


def _result(
    events: int,
    rounds: int,
    pages: list[tuple[str, str]],
    measured: dict[str, dict[str, list[float]]],
) -> common.Result:
    columns = ["page"]
    for db in measured:
        columns += [f"{db} p50 ms", f"{db} p95 ms"]
    rows: list[list[Any]] = []
    for label, _ in pages:
        row: list[Any] = [label]
        for times in measured.values():
            row += [common.percentile(times[label], 50), common.percentile(times[label], 95)]
        rows.append(row)
    targets = []
    for db, times in measured.items():
        worst_label = max(times, key=lambda label: common.percentile(times[label], 95))
        worst = common.percentile(times[worst_label], 95)
        targets.append(
            common.Target(
                f"every admin page <= {GOAL_MS:.0f} ms at {events:,} events ({db}, p95)",
                f"slowest: {worst_label}, p95 {worst:.0f} ms",
                worst <= GOAL_MS,
            )
        )
    table = common._md_table(columns, rows)
    print("\n".join(table), flush=True)
    labels = [label for label, _ in pages]

    def plot(fig: Any) -> None:
        ax = fig.subplots()
        n = len(measured)
        width = 0.8 / max(1, n)
        for i, (db, times) in enumerate(measured.items()):
            ys = [y - 0.4 + width * (i + 0.5) for y in range(len(labels))]
            ax.barh(ys, [common.percentile(times[label], 95) for label in labels], width, label=db)
        ax.axvline(GOAL_MS, color="red", linestyle="--", label=f"goal {GOAL_MS:.0f} ms")
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("p95 response time (ms), one request at a time")
        ax.set_title(f"The admin at {events:,} events")
        ax.legend()

    return common.Result(
        title=f"The Django admin at {events:,} events",
        columns=columns,
        rows=rows,
        targets=targets,
        plot=plot,
        figsize=(10, max(6, len(labels) * 0.22)),
        notes=[
            f"{events:,} events over 90 days (sources github 60 %, stripe 30 %, gitlab 10 %; "
            "12 event names), one delivery each to one of 4 destinations (1 % dead, 1 % "
            "pending), one attempt each. PostgreSQL after VACUUM ANALYZE (what autovacuum "
            "does on a live database); SQLite as Hookway leaves it (no ANALYZE).",
            f"One uvicorn process, no dispatcher; one logged-in client, one request at a "
            f"time: each page once unmeasured, then {rounds} rounds over all pages. Times are "
            "whole HTTP responses (rendering included), as a browser would wait for them.",
            "Lists count up to 10,000 rows (an unfiltered list shows the database's "
            "estimate) and link to 100 pages at most: older rows are reached with the "
            "filters and search (docs/operations.md, 'The admin at scale').",
        ],
    )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "prepare":
        _prepare(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
    else:
        sys.exit("usage: python -m bench.admin prepare DATABASE_URL EVENTS OUT")
