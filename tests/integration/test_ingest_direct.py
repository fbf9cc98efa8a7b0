"""Ingest's direct path (hookway.ingest_direct) answers exactly as the Django path.

The same requests go, as raw ASGI messages, to Hookway's application with the direct
path and to one with ``direct_ingest=False`` (every webhook through Django's request,
the default ingest middleware, the view and Django's response). For each: the ASGI
messages sent back must be identical (status, every header in order, body), except the
values that differ by nature (the request id Hookway makes up, the timing figures, the
event id); the rows stored must be identical; the log records must be identical; the
request signals must reach their receivers the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from asgiref.sync import sync_to_async
from django.core.signals import got_request_exception, request_finished, request_started
from django.test import override_settings
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hookway import gate, ingest_direct
from hookway.asgi_handler import HookRouter, HookwayASGIHandler, IngestASGIHandler
from hookway.models import Delivery, Event
from tests.integration.test_ingest_fuzz import (
    DISABLED_SLUG,
    JSON_HEADERS,
    SOURCES,
    fuzz_sources,  # noqa: F401 - the fixture, used by name
    requests,
    signature_headers,
)

pytestmark = pytest.mark.django_db(transaction=True)

LOGGERS = ("hookway", "django.request", "django.security")
_HEX32 = re.compile(rb"^[0-9a-f]{32}$")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[_Records]:
    """Every record of Hookway's and Django's request loggers, whatever their level in
    the settings (django.request's 4xx warnings included)."""
    handler = _Records()
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    yield handler
    for logger, level in saved:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def apps() -> dict[str, HookwayASGIHandler]:
    direct = HookwayASGIHandler()
    django_path = HookwayASGIHandler(direct_ingest=False)
    assert direct.ingest.direct
    assert not django_path.ingest.direct
    return {"direct": direct, "django": django_path}


def scope_for(
    method: str,
    url: str,
    headers: list[tuple[bytes, bytes]],
    *,
    query: bytes = b"",
    server: tuple[str, int] | None = ("testserver", 80),
    client: tuple[str, int] = ("127.0.0.1", 50000),
    scheme: str = "http",
) -> dict[str, Any]:
    path = unquote(url)
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": scheme,
        "path": path,
        "raw_path": url.encode("latin-1", "replace"),
        "root_path": "",
        "query_string": query,
        "headers": headers,
        "server": server,
        "client": client,
    }


async def call(
    app: Any, scope: dict[str, Any], body: bytes, chunks: int = 1
) -> list[dict[str, Any]]:
    """Send one request to ``app`` as an ASGI server would (the body in ``chunks``
    messages); return the messages the app sent."""
    size = max(1, -(-len(body) // chunks))
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    incoming = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    sent: list[dict[str, Any]] = []
    answered = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        # After the body: a real server waits until the client leaves; it leaves once
        # it has its answer.
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            answered.set()

    await app(dict(scope, headers=list(scope["headers"])), receive, send)
    return sent


def normalise(messages: list[dict[str, Any]], sent_request_id: bytes | None) -> list[Any]:
    """The messages with what differs by nature replaced: the timing figures, a request
    id Hookway made up (a sane one the sender gave must come back as it was), event
    ids in the body."""
    out: list[Any] = []
    for message in messages:
        if message["type"] == "http.response.start":
            headers = []
            for name, value in message["headers"]:
                if name == b"Server-Timing":
                    assert re.fullmatch(rb"total;dur=\d+\.\d\d, db;dur=\d+\.\d\d", value), value
                    value = b"<timing>"
                elif name == b"X-Request-ID" and value != sent_request_id:
                    assert _HEX32.match(value), value
                    value = b"<new id>"
                headers.append((name, value))
            out.append(("start", message["status"], headers))
        else:
            body = re.sub(rb'"(id|conflict_with)": "[^"]*"', rb'"\1": "<event>"', message["body"])
            out.append(("body", body, message.get("more_body")))
    return out


def _event_rows() -> list[dict[str, Any]]:
    rows = []
    for event in Event.objects.select_related("source").order_by("received_at"):
        rows.append(
            {
                "source": event.source.slug,
                "event_name": event.event_name,
                "delivery_id": event.delivery_id,
                "content_type": event.content_type,
                "headers": event.headers,
                "body": bytes(event.body),
                "client_ip": event.client_ip,
                "deliveries": Delivery.objects.filter(event=event).count(),
            }
        )
    return rows


def _forget_events() -> None:
    Event.objects.all().delete()


def log_view(record: logging.LogRecord) -> tuple[Any, ...]:
    message = record.getMessage()
    if record.name == "hookway.request":
        line = json.loads(message)
        for varying in ("request_id", "duration_ms", "db_ms", "event_id"):
            line.pop(varying, None)
        message = json.dumps(line, sort_keys=True)
    request = getattr(record, "request", None)
    return (
        record.name,
        record.levelname,
        message,
        getattr(record, "status_code", None),
        type(request).__name__ if request is not None else None,
        getattr(request, "path", None),
        record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None,
    )


async def both(
    apps: dict[str, Any],
    records: _Records,
    scope: dict[str, Any],
    body: bytes,
    chunks: int = 1,
) -> dict[str, Any]:
    """The request through both paths, each from the same database state; asserts the
    direct path was taken by one and not the other; returns the direct path's view."""
    sent_id = next((v for n, v in scope["headers"] if n.lower() == b"x-request-id"), None)
    seen: dict[str, Any] = {}
    for name, app in apps.items():
        taken: list[bool] = []
        records.records.clear()
        with _spying_on_direct_answers(taken):
            messages = await call(app, scope, body, chunks)
        rows = await sync_to_async(_event_rows)()
        await sync_to_async(_forget_events)()
        seen[name] = {
            "messages": normalise(messages, sent_id),
            "rows": rows,
            "logs": [log_view(r) for r in records.records],
            "direct": bool(taken),
        }
    assert seen["django"]["direct"] is False
    assert seen["direct"]["messages"] == seen["django"]["messages"]
    assert seen["direct"]["rows"] == seen["django"]["rows"]
    assert seen["direct"]["logs"] == seen["django"]["logs"]
    return seen["direct"]


@contextlib.contextmanager
def _spying_on_direct_answers(taken: list[bool]) -> Iterator[None]:
    """Note in ``taken`` each answer the direct path gives."""
    original = ingest_direct.answer

    async def spy(*args: Any, **kwargs: Any) -> Any:
        taken.append(True)
        return await original(*args, **kwargs)

    ingest_direct.answer = spy  # type: ignore[assignment]
    try:
        yield
    finally:
        ingest_direct.answer = original  # type: ignore[assignment]


def _headers(pairs: dict[str, str | bytes]) -> list[tuple[bytes, bytes]]:
    return [
        (name.lower().encode("latin-1"), value if isinstance(value, bytes) else value.encode())
        for name, value in pairs.items()
    ]


HOSTS = [
    b"testserver",
    b"testserver:80",
    b"localhost:8000",
    b"[::1]",
    b"127.0.0.1:443",
    b"evil.example",
    b"evil.example:80",
    b"",
    b"bad host",
    b"testserver:notaport",
    b"xn--bcher-kva.example",
    None,  # no Host header: SERVER_NAME and the port rules
]
EXTRA = st.lists(
    st.tuples(
        st.sampled_from(
            [
                b"x-forwarded-host",
                b"x-forwarded-port",
                b"x-forwarded-proto",
                b"x-forwarded-for",
                b"x_forwarded_host",  # an underscore: Django drops it
                b"x-webhook-token",
                b"x-request-id",
                b"idempotency-key",
                b"x-custom",
                b"traceparent",
                b"content-type",  # a second one: Django joins them with a comma
            ]
        ),
        st.sampled_from(
            [
                b"testserver",
                b"evil.example",
                b"443",
                b"https",
                b"203.0.113.9",
                b"req-1234",
                b"not a sane id!",
                b"application/json",
                b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                b"\xe9t\xe9",
            ]
        ),
    ),
    max_size=4,
)


@example(
    request=("POST", "/hooks/none-lax", JSON_HEADERS, b'{"type": "push"}'),
    host=b"evil.example",
    extra=[],
    chunks=1,
    query=b"",
)
@example(
    request=("POST", "/hooks/none-lax", JSON_HEADERS, b'{"type": "push"}'),
    host=None,
    extra=[(b"x-forwarded-host", b"evil.example"), (b"x_forwarded_host", b"testserver")],
    chunks=3,
    query=b"a=\xff",
)
@example(
    request=("POST", "/hooks/token-lax", {**JSON_HEADERS, "X-Request-ID": "abc"}, b"{}"),
    host=b"testserver",
    extra=[(b"content-type", b"text/plain"), (b"x-webhook-token", b"nope")],
    chunks=2,
    query=b"x=1",
)
@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    request=requests(),
    host=st.sampled_from(HOSTS),
    extra=EXTRA,
    chunks=st.integers(min_value=1, max_value=3),
    query=st.sampled_from([b"", b"x=1", b"a=%FF", b"a=\xff"]),
)
async def test_every_request_gets_the_same_answer_rows_and_logs_on_both_paths(
    fuzz_sources: None,  # noqa: F811
    apps: dict[str, Any],
    records: _Records,
    request: tuple[str, str, dict[str, str | bytes], bytes],
    host: bytes | None,
    extra: list[tuple[bytes, bytes]],
    chunks: int,
    query: bytes,
) -> None:
    method, url, headers, body = request
    raw = _headers(headers)
    if host is not None:
        raw.insert(0, (b"host", host))
    raw.append((b"content-length", str(len(body)).encode()))
    raw.extend(extra)
    await both(apps, records, scope_for(method, url, raw, query=query), body, chunks)


@pytest.mark.parametrize(
    "overrides",
    [
        {"USE_X_FORWARDED_HOST": True},
        {
            "USE_X_FORWARDED_HOST": True,
            "USE_X_FORWARDED_PORT": True,
            "ALLOWED_HOSTS": ["a.example"],
        },
        {"DEBUG": True, "ALLOWED_HOSTS": []},
        {"ALLOWED_HOSTS": ["*"]},
        {"ALLOWED_HOSTS": [".example.com"]},
        {"SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"), "ALLOWED_HOSTS": ["h"]},
    ],
)
@pytest.mark.parametrize(
    "host_headers",
    [
        [(b"host", b"testserver")],
        [(b"host", b"a.example"), (b"x-forwarded-host", b"evil.example")],
        [(b"host", b"evil.example"), (b"x-forwarded-host", b"a.example")],
        [(b"x-forwarded-host", b"sub.example.com"), (b"x-forwarded-port", b"8443")],
        [(b"host", b"localhost:8000")],
        [(b"host", b"[::1]:80")],
        [(b"x-forwarded-proto", b"https")],
        [(b"x-forwarded-proto", b"https"), (b"x-forwarded-port", b"443")],
        [],
    ],
)
@pytest.mark.parametrize("server", [("h", 80), ("h", 443), ("h", 8000), None])
async def test_allowed_hosts_is_judged_the_same_under_every_host_setting(
    fuzz_sources: None,  # noqa: F811
    apps: dict[str, Any],
    records: _Records,
    overrides: dict[str, Any],
    host_headers: list[tuple[bytes, bytes]],
    server: tuple[str, int] | None,
) -> None:
    raw = [*host_headers, (b"content-type", b"application/json")]
    scope = scope_for("POST", "/hooks/none-lax", raw, server=server)
    with override_settings(**overrides):
        seen = await both(apps, records, scope, b'{"type": "push"}')
    assert seen["direct"]


async def test_a_disallowed_host_is_the_json_400_with_djangos_security_log_line(
    fuzz_sources: None,  # noqa: F811
    apps: dict[str, Any],
    records: _Records,
) -> None:
    scope = scope_for("POST", "/hooks/none-lax", [(b"host", b"evil.example")])
    seen = await both(apps, records, scope, b'{"type": "push"}')
    assert seen["messages"][0][1] == 400
    assert json.loads(seen["messages"][1][1]) == {
        "error": "bad_request",
        "detail": "the Host header names a host not served here",
    }
    assert seen["rows"] == []
    names = [(log[0], log[1], log[4]) for log in seen["logs"]]
    assert ("django.security.DisallowedHost", "ERROR", "ASGIRequest") in names
    assert ("django.request", "WARNING", "ASGIRequest") in names  # "Bad Request: /hooks/…"


async def test_an_unexpected_exception_is_a_500_logged_with_its_traceback_and_signalled(
    fuzz_sources: None,  # noqa: F811
    apps: dict[str, Any],
    records: _Records,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(incoming: Any, deadline: float) -> Any:
        raise RuntimeError("a bug in the store")

    monkeypatch.setattr(gate, "astore_event", broken)
    signalled: list[Any] = []

    def on_exception(sender: Any, request: Any, **kwargs: Any) -> None:
        signalled.append(type(request).__name__)

    got_request_exception.connect(on_exception)
    try:
        scope = scope_for("POST", "/hooks/none-lax", [(b"content-type", b"application/json")])
        seen = await both(apps, records, scope, b'{"type": "push"}')
    finally:
        got_request_exception.disconnect(on_exception)
    assert seen["messages"][0][1] == 500
    assert signalled == ["ASGIRequest", "ASGIRequest"]  # once per path
    errors = [log for log in seen["logs"] if log[0] == "django.request"]
    assert errors == [
        (
            "django.request",
            "ERROR",
            "Internal Server Error: /hooks/none-lax",
            500,
            "ASGIRequest",
            "/hooks/none-lax",
            "RuntimeError",
        )
    ]
    assert seen["rows"] == []


async def test_the_request_signals_reach_their_receivers_once_each_on_both_paths(
    fuzz_sources: None,  # noqa: F811
    apps: dict[str, Any],
    records: _Records,
) -> None:
    calls: list[tuple[str, Any]] = []

    def on_started(sender: Any, **kwargs: Any) -> None:
        calls.append(("started", sender))

    async def on_finished(sender: Any, **kwargs: Any) -> None:
        calls.append(("finished", sender))

    request_started.connect(on_started)
    request_finished.connect(on_finished)
    try:
        for app in apps.values():
            calls.clear()
            scope = scope_for("POST", "/hooks/none-lax", [(b"content-type", b"application/json")])
            messages = await call(app, scope, b'{"type": "push"}')
            assert messages[0]["status"] == 202
            assert calls == [("started", IngestASGIHandler), ("finished", IngestASGIHandler)]
    finally:
        request_started.disconnect(on_started)
        request_finished.disconnect(on_finished)


async def test_a_client_that_leaves_before_the_answer_cancels_the_direct_path_and_stores_nothing(
    fuzz_sources: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def slow_store(incoming: Any, deadline: float) -> Any:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    monkeypatch.setattr(gate, "astore_event", slow_store)
    app = HookwayASGIHandler()
    messages = [{"type": "http.request", "body": b'{"type": "push"}', "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await started.wait()
        return {"type": "http.disconnect"}

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    scope = scope_for("POST", "/hooks/none-lax", [(b"content-type", b"application/json")])
    await asyncio.wait_for(app(scope, receive, send), 10)
    assert cancelled == [True]
    assert sent == []
    assert await Event.objects.acount() == 0


async def test_a_customised_ingest_chain_keeps_every_webhook_on_the_django_path() -> None:
    chain = ["hookway.middleware.RequestTimingMiddleware"]
    with override_settings(HOOKWAY_INGEST_MIDDLEWARE=chain):
        assert not IngestASGIHandler().direct
        assert not HookRouter(HookwayASGIHandler(), "/hooks/").ingest.direct
    default = [
        "hookway.middleware.RequestTimingMiddleware",
        "hookway.middleware.AllowedHostsMiddleware",
    ]
    with override_settings(HOOKWAY_INGEST_MIDDLEWARE=default):
        assert IngestASGIHandler().direct
        assert HookRouter(HookwayASGIHandler(), "/hooks/").ingest.direct


async def test_a_script_prefix_keeps_the_webhook_on_the_django_path(
    fuzz_sources: None,  # noqa: F811
    apps: dict[str, Any],
    records: _Records,
) -> None:
    with override_settings(FORCE_SCRIPT_NAME="/gateway"):
        scope = scope_for("POST", "/hooks/none-lax", [(b"content-type", b"application/json")])
        seen = await both(apps, records, scope, b'{"type": "push"}')
    assert not seen["direct"]
    assert seen["messages"][0][1] == 202


@pytest.mark.parametrize("scheme", ["token", "github", "stripe", "standard-webhooks"])
async def test_signed_webhooks_are_stored_identically_on_both_paths(
    fuzz_sources: None,  # noqa: F811
    apps: dict[str, Any],
    records: _Records,
    scheme: str,
) -> None:
    body = b'{"type": "invoice.paid", "event_name": "push", "id": "evt_1"}'
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "X-Custom": "kept",
        "Authorization": "Bearer not-kept",
        **signature_headers(scheme, body, "msg_1", 0),
    }
    raw = [(b"host", b"testserver"), *_headers(headers)]
    seen = await both(apps, records, scope_for("POST", f"/hooks/{scheme}-lax", raw), body)
    assert seen["direct"]
    assert seen["messages"][0][1] == 202
    assert len(seen["rows"]) == 1
    assert seen["rows"][0]["headers"]["X-Custom"] == "kept"
    assert "Authorization" not in seen["rows"][0]["headers"]


async def test_an_unknown_or_disabled_source_is_the_same_404(
    fuzz_sources: None,  # noqa: F811
    apps: dict[str, Any],
    records: _Records,
) -> None:
    for slug in ("nope", DISABLED_SLUG, "a" * 65):
        scope = scope_for("POST", f"/hooks/{slug}", [(b"content-type", b"application/json")])
        seen = await both(apps, records, scope, b"{}")
        assert seen["messages"][0][1] == 404
    assert SOURCES  # the fixture made the enabled ones


@pytest.mark.parametrize(
    "content_type",
    [b"application/json; charset*=bogus''x", b"application/json; a*=no-such-codec''1"],
)
async def test_a_content_type_django_cannot_parse_is_415_not_a_crash_on_both_paths(
    fuzz_sources: None,  # noqa: F811
    apps: dict[str, Any],
    records: _Records,
    content_type: bytes,
) -> None:
    # Django's ASGIRequest raises ValueError on it, before any view could answer.
    scope = scope_for("POST", "/hooks/none-lax", [(b"content-type", content_type)])
    seen = await both(apps, records, scope, b'{"type": "push"}')
    assert seen["messages"][0][1] == 415
    assert json.loads(seen["messages"][1][1])["error"] == "unsupported_media_type"
    assert seen["rows"] == []
