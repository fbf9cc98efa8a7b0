"""``hookway listen`` against a real server and a real local app: events arrive in order
as their senders sent them; a cut stream, a server killed and restarted, or a stream too
far behind to replay loses nothing; an app that is down gets a line per event, and with
--replay-missed the events it missed once it is back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookway.models import Source
from hookway.store import apikeys
from tests.e2e.cli_helpers import STREAM_ENV, Listening, post, wait_for
from tests.tcpproxy import StallingProxy

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def key(transactional_db: None) -> str:
    Source.objects.create(slug="demo")
    Source.objects.create(slug="other")
    return apikeys.create("cli-listen", "read")[1]


@pytest.fixture
def listening(tmp_path: Path) -> Iterator[Callable[..., Listening]]:
    started: list[Listening] = []

    def start(*args: str) -> Listening:
        listener = Listening(tmp_path, *args)
        started.append(listener)
        return listener

    yield start
    for listener in started:
        listener.stop()


def hook_ids(requests: list[Any]) -> list[str]:
    return [r.headers["x-hookway-event-id"] for r in requests]


def test_events_reach_the_local_app_in_order_as_their_senders_sent_them(
    start_server: Callable[..., Any],
    receiver: Callable[..., Any],
    listening: Callable[..., Listening],
    key: str,
) -> None:
    server = start_server(STREAM_ENV)
    app = receiver()
    listener = listening(
        "--server", server.url, "--key", key, "--forward-to", app.url("/hooks/local"),
        "--source", "demo", "--events", "order.*",
    )  # fmt: skip
    listener.wait_for("connected")

    sent = []
    for i, name in enumerate(["order.created", "refund.made", "order.paid", "order.shipped"]):
        body = f'{{"type": "{name}",  "n": {i}, "note": "caf\\u00e9 ☕"}}'.encode()
        response = httpx.post(
            f"{server.url}/hooks/demo",
            content=body,
            headers={"Content-Type": "application/json; charset=utf-8", "X-Shop-Region": f"eu-{i}"},
            timeout=15,
        )
        assert response.status_code == 202
        if name.startswith("order."):
            sent.append((response.json()["id"], name, body, f"eu-{i}"))
    post(server.url, "other", {"type": "order.elsewhere"})

    wait_for(lambda: len(app.received()) >= 3, "three forwarded events")
    got = app.received()
    assert hook_ids(got) == [event_id for event_id, *_ in sent]
    for request, (_, name, body, region) in zip(got, sent, strict=True):
        assert request.path == "/hooks/local"
        assert request.body == body  # byte for byte: spacing and escapes as sent
        assert request.headers["content-type"] == "application/json; charset=utf-8"
        assert request.headers["x-shop-region"] == region
        assert request.headers["x-hookway-event"] == name
        assert request.headers["x-hookway-source"] == "demo"
    lines = listener.wait_for("forwarded", 3)
    assert [(line["event_id"], line["status"]) for line in lines] == [
        (event_id, 200) for event_id, *_ in sent
    ]
    assert all(line["latency_ms"] >= 0 for line in lines)

    assert listener.interrupt() == 0
    summary = listener.wait_for("summary")[0]
    assert (summary["events"], summary["delivered"], summary["app_down"]) == (3, 3, 0)
    assert len(app.received()) == 3  # the other source's event and refund.made never came


def test_a_cut_stream_is_said_resumed_and_loses_nothing(
    start_server: Callable[..., Any],
    receiver: Callable[..., Any],
    listening: Callable[..., Listening],
    key: str,
) -> None:
    server = start_server(STREAM_ENV)
    proxy = StallingProxy("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
    app = receiver()
    try:
        listener = listening(
            "--server", f"http://127.0.0.1:{proxy.port}", "--key", key, "--forward-to", app.url()
        )
        listener.wait_for("connected")
        ids = [post(server.url, "demo", {"type": "a", "n": n}) for n in range(3)]
        wait_for(lambda: len(app.received()) == 3, "the first three")
        for round_ in range(3):
            proxy.cut()
            # Posted straight to the server while the listener is cut off.
            ids += [post(server.url, "demo", {"type": "b", "n": round_, "i": i}) for i in range(3)]
            listener.wait_for("reconnected", round_ + 1)
        wait_for(lambda: len(app.received()) >= len(ids), "every event")
    finally:
        proxy.close()

    assert hook_ids(app.received()) == ids  # every one, once, in order
    assert len(listener.of("reconnecting")) >= 3
    assert listener.interrupt() == 0


def test_a_server_killed_and_restarted_loses_nothing(
    start_server: Callable[..., Any],
    receiver: Callable[..., Any],
    listening: Callable[..., Listening],
    key: str,
) -> None:
    server = start_server(STREAM_ENV)
    port = int(server.url.rsplit(":", 1)[1])
    app = receiver()
    listener = listening("--server", server.url, "--key", key, "--forward-to", app.url())
    listener.wait_for("connected")
    ids = [post(server.url, "demo", {"type": "before"}) for _ in range(2)]
    wait_for(lambda: len(app.received()) == 2, "the first two")

    # Acknowledged, then the server dies at once: the listener may not have fetched them.
    ids += [post(server.url, "demo", {"type": "unseen", "n": n}) for n in range(3)]
    server.process.kill()
    server.process.wait()
    listener.wait_for("reconnecting")
    restarted = start_server(STREAM_ENV, port=port)
    ids += [post(restarted.url, "demo", {"type": "after", "n": n}) for n in range(2)]

    wait_for(lambda: len(app.received()) >= len(ids), "every event")
    listener.wait_for("reconnected")
    assert hook_ids(app.received()) == ids
    listener.wait_for("forwarded", len(ids))
    assert listener.interrupt() == 0
    summary = listener.wait_for("summary")[0]
    assert summary["delivered"] == len(ids)
    assert summary["reconnects"] >= 1


def test_a_listener_too_far_behind_for_the_stream_gets_the_rest_from_the_list(
    start_server: Callable[..., Any],
    receiver: Callable[..., Any],
    listening: Callable[..., Listening],
    key: str,
) -> None:
    # The stream replays at most 2 missed messages; the listener misses 7.
    server = start_server({**STREAM_ENV, "HOOKWAY_STREAM_BACKFILL": "2"})
    proxy = StallingProxy("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
    app = receiver()
    try:
        listener = listening(
            "--server", f"http://127.0.0.1:{proxy.port}", "--key", key, "--forward-to", app.url()
        )
        listener.wait_for("connected")
        ids = [post(server.url, "demo", {"type": "first"})]
        wait_for(lambda: len(app.received()) == 1, "the first event")
        proxy.stall()
        ids += [post(server.url, "demo", {"type": "missed", "n": n}) for n in range(7)]
        proxy.cut()
        proxy.resume()
        wait_for(lambda: len(app.received()) >= len(ids), "every event")
    finally:
        proxy.close()

    assert hook_ids(app.received()) == ids
    assert listener.of("gap")
    assert listener.interrupt() == 0


def test_an_app_that_is_down_gets_the_missed_events_in_order_when_it_is_back(
    start_server: Callable[..., Any],
    receiver: Callable[..., Any],
    listening: Callable[..., Listening],
    key: str,
) -> None:
    server = start_server(STREAM_ENV)
    app = receiver()
    port = app.port
    listener = listening(
        "--server", server.url, "--key", key, "--forward-to", app.url(), "--replay-missed"
    )
    listener.wait_for("connected")
    first = post(server.url, "demo", {"type": "up"})
    wait_for(lambda: hook_ids(app.received()) == [first], "the first event")

    app.stop()
    missed = [post(server.url, "demo", {"type": "down", "n": n}) for n in range(3)]
    # A line for each: the first tried and refused, the others queued behind it (or tried,
    # if the retry found the app down in between).
    wait_for(lambda: len(listener.of("forwarded")) + len(listener.of("queued")) >= 4, "a line each")
    down = listener.of("forwarded")[1:] + listener.of("queued")
    assert sorted(line["event_id"] for line in down) == sorted(missed)
    assert all(line["status"] is None and "refused" in line["error"] for line in down), down

    back = receiver(port=port)
    later = post(server.url, "demo", {"type": "later"})
    wait_for(lambda: len(back.received()) >= 4, "the missed events and the later one")
    assert hook_ids(back.received()) == [*missed, later]  # the missed first, in order
    resent = [line for line in listener.of("forwarded") if line["resent"]]
    assert [line["event_id"] for line in resent] == missed
    assert listener.of("app_back")
    wait_for(
        lambda: len([f for f in listener.of("forwarded") if f["status"] == 200]) == 5,
        "the listener to hear back about all five",
    )

    assert listener.interrupt() == 0
    summary = listener.wait_for("summary")[0]
    assert (summary["events"], summary["delivered"], summary["app_down"]) == (5, 5, 3)
    assert summary["resent"] == 3
    assert summary["waiting"] == []


def test_without_replay_missed_an_app_that_is_down_is_said_and_summed_up(
    start_server: Callable[..., Any],
    receiver: Callable[..., Any],
    listening: Callable[..., Listening],
    key: str,
) -> None:
    server = start_server(STREAM_ENV)
    app = receiver()
    app.stop()
    listener = listening("--server", server.url, "--key", key, "--forward-to", app.url())
    listener.wait_for("connected")
    ids = [post(server.url, "demo", {"type": "lost", "n": n}) for n in range(2)]

    lines = listener.wait_for("forwarded", 2)
    assert [(line["event_id"], line["status"]) for line in lines] == [(i, None) for i in ids]
    assert listener.interrupt() == 0
    summary = listener.wait_for("summary")[0]
    assert summary["not_delivered"] == ids
    assert summary["app_down"] == 2
