"""hookway.cli.stream with an injected transport: the SSE parsing, and that every
reconnect sends back the id of the last message handled (nothing missed, nothing twice),
says so, and backs off."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from hookway.cli import stream as stream_module
from hookway.cli.client import Api
from hookway.cli.errors import Refused, Unreachable
from hookway.cli.stream import Interrupted, Message, Stream, backoff, messages

OPENING = "retry: 2000\nid: .0\n: hookway event stream\n\n"


def sse(*blocks: str) -> bytes:
    return "".join(blocks).encode()


class Watcher:
    def __init__(self) -> None:
        self.said: list[tuple[str, Any]] = []

    def connected(self, *, again: bool, resumed_from: str | None) -> None:
        self.said.append(("connected", (again, resumed_from)))

    def lost(self, reason: str, *, retry_in: float, attempt: int) -> None:
        self.said.append(("lost", (reason, attempt)))


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_module, "backoff", lambda attempt, most=0: 0.0)


async def test_messages_are_parsed_as_the_standard_says() -> None:
    body = sse(
        OPENING,
        'id: evt_1.0\nevent: event\ndata: {"a":\n',
        "data: 1}\n\n",
        ": keepalive\n\n",
        "event: overflow\ndata: {}\r\n\r\n",
        "id: bad\0id\nevent: x\ndata:no-space\n\n",
    )
    response = httpx.Response(200, content=body)

    got = [m async for m in messages(response)]

    assert got == [
        Message("", "", ".0"),
        Message("event", '{"a":\n1}', "evt_1.0"),
        Message("overflow", "{}", None),
        Message("x", "no-space", None),
    ]


async def test_a_reconnect_resumes_after_the_last_message_handled() -> None:
    seen_ids: list[str | None] = []
    ids = ["evt_1.0", "evt_2.0", "evt_3.0"]
    # A server that replays from Last-Event-ID, closing the first connection after one message.
    per_connection = iter([1, 3, 3])

    def handler(request: httpx.Request) -> httpx.Response:
        last = request.headers.get("Last-Event-ID")
        seen_ids.append(last)
        start = ids.index(last) + 1 if last else 0
        blocks = [OPENING if last is None else f"id: {last}\n\n"]
        for n, event_id in enumerate(ids[start : start + next(per_connection)], start + 1):
            blocks.append(f'id: {event_id}\nevent: event\ndata: {{"id": {n}}}\n\n')
        return httpx.Response(
            200, content=sse(*blocks), headers={"Content-Type": "text/event-stream"}
        )

    handled: list[Any] = []
    fail_once = {2}

    async def handle(message: Message) -> None:
        if message.event != "event":
            return
        data = message.json()
        if data["id"] in fail_once:
            fail_once.clear()
            raise Interrupted("the server went away while fetching it")
        handled.append(data["id"])
        if data["id"] == 3:
            raise asyncio.CancelledError

    watcher = Watcher()
    async with Api("http://hookway", "k", transport=httpx.MockTransport(handler)) as api:
        with pytest.raises(asyncio.CancelledError):
            await Stream(api, {}, watcher).follow(handle)

    assert handled == [1, 2, 3]
    # Connection 3 resumed from evt_1.0, not evt_2.0: message 2 was not handled then.
    assert seen_ids == [None, "evt_1.0", "evt_1.0"]
    assert [kind for kind, _ in watcher.said] == [
        "connected", "lost", "connected", "lost", "connected",
    ]  # fmt: skip
    assert watcher.said[3] == ("lost", ("the server went away while fetching it", 1))


async def test_the_first_connection_failing_is_unreachable_not_retried() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    async with Api("http://hookway", "k", transport=httpx.MockTransport(refuse)) as api:
        with pytest.raises(Unreachable, match="connection refused"):
            await Stream(api, {}, Watcher()).follow(lambda m: asyncio.sleep(0))


async def test_a_refused_key_ends_the_stream_with_exit_code_4() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "unauthorized", "detail": "unknown key"})

    async with Api("http://hookway", "k", transport=httpx.MockTransport(refuse)) as api:
        with pytest.raises(Refused, match="unknown key") as caught:
            await Stream(api, {}, Watcher()).follow(lambda m: asyncio.sleep(0))
    assert caught.value.exit_code == 4


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    for attempt, base in [(1, 0.5), (2, 1.0), (3, 2.0), (5, 8.0), (9, 10.0)]:
        delay = backoff(attempt)
        assert base * 0.8 <= delay <= base * 1.2
