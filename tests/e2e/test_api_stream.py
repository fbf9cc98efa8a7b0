"""The event stream against a real server (uvicorn): auth, live events, heartbeats, and
a reconnect with Last-Event-ID that misses nothing and repeats nothing while events keep
arriving."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from hookway.models import Source
from hookway.store import apikeys

pytestmark = pytest.mark.django_db(transaction=True)

ENV = {"HOOKWAY_STREAM_HEARTBEAT": "0.3", "HOOKWAY_STREAM_POLL_INTERVAL": "0.1"}


def messages(response: httpx.Response) -> Iterator[dict[str, str]]:
    """Each SSE block as {"id", "event", "data"} (a comment as {"comment": ...})."""
    block: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if block:
                yield block
            block = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(":")
            block[name] = value.removeprefix(" ")


def post(url: str) -> str:
    response = httpx.post(f"{url}/hooks/demo", json={"event_name": "push"}, timeout=15)
    assert response.status_code == 202
    return str(response.json()["id"])


def next_event(stream: Iterator[dict[str, str]]) -> dict[str, str]:
    for message in stream:
        if message.get("event") == "event":
            return message
    raise AssertionError("the stream ended")


def test_the_stream_needs_a_key(start_server: Callable[..., Any]) -> None:
    server = start_server(ENV)

    response = httpx.get(f"{server.url}/api/v1/stream", timeout=15)

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_live_events_heartbeats_and_an_exact_resume(start_server: Callable[..., Any]) -> None:
    Source.objects.create(slug="demo")
    _, key = apikeys.create("tail", "read")
    server = start_server(ENV)
    headers = {"Authorization": f"Bearer {key}"}
    url = f"{server.url}/api/v1/stream"
    timeout = httpx.Timeout(30)

    with httpx.Client(timeout=timeout) as client:
        with client.stream("GET", url, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = messages(response)
            assert {"comment": "keepalive"} in (next(stream) for _ in range(3))
            first = [post(server.url) for _ in range(3)]
            got = [next_event(stream) for _ in range(3)]
        last_id = got[-1]["id"]
        missed = [post(server.url) for _ in range(3)]

        with client.stream("GET", url, headers={**headers, "Last-Event-ID": last_id}) as response:
            stream = messages(response)
            resumed = [next_event(stream) for _ in range(3)]
            later = [post(server.url) for _ in range(2)]
            resumed += [next_event(stream) for _ in range(2)]

    ids = [m["id"].split(".")[0] for m in got + resumed]
    assert ids == first + missed + later  # every event, once, in order


def test_the_opening_block_carries_an_id_to_resume_from_before_any_message(
    start_server: Callable[..., Any],
) -> None:
    # A client cut off before its first message reconnects from the id the stream opened
    # with, and gets what was posted meanwhile: nothing is missed even then.
    Source.objects.create(slug="demo")
    _, key = apikeys.create("opening", "read")
    server = start_server(ENV)
    headers = {"Authorization": f"Bearer {key}"}
    url = f"{server.url}/api/v1/stream"

    with httpx.Client(timeout=httpx.Timeout(30)) as client:
        with client.stream("GET", url, headers=headers) as response:
            opening = next(m for m in messages(response) if "comment" not in m)
        assert opening["retry"] == "2000"
        assert "data" not in opening  # an id alone: no message for EventSource to dispatch
        missed = [post(server.url) for _ in range(2)]

        with client.stream("GET", url, headers={**headers, "Last-Event-ID": opening["id"]}) as r:
            stream = messages(r)
            resumed = [next_event(stream) for _ in range(2)]

    assert [m["id"].split(".")[0] for m in resumed] == missed
