"""Following ``/api/v1/stream`` without ever stopping silently: every drop (the server
restarting, a proxy cutting the connection, a network that goes quiet) is reported,
retried with backoff, and resumed from the last message handled (``Last-Event-ID``), so
nothing is missed and nothing comes twice (docs/api.md, "Stream")."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from hookway.cli.client import Api, describe_transport_error, error_fields, raise_for_answer
from hookway.cli.errors import CliError, Unreachable

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 10.0
# The server sends a keepalive every 15 s (HOOKWAY_STREAM_HEARTBEAT); three missed mean
# the connection is dead even though no one closed it.
IDLE_TIMEOUT = 45.0


@dataclass(frozen=True)
class Message:
    """One Server-Sent Events message: ``event`` is ``event``, ``delivery``, ``gap``,
    ``overflow``, or empty for a block carrying only an ``id``."""

    event: str
    data: str
    id: str | None

    def json(self) -> Any:
        return json.loads(self.data) if self.data else None


class Interrupted(Exception):
    """Raised by a message handler that could not finish because the server went away
    (fetching the event failed): the stream reconnects and the message comes again."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Watcher(Protocol):
    """Told about the connection: ``connected`` each time the stream is (re)opened,
    ``lost`` each time it drops, before waiting ``retry_in`` seconds."""

    def connected(self, *, again: bool, resumed_from: str | None) -> None: ...

    def lost(self, reason: str, *, retry_in: float, attempt: int) -> None: ...


async def messages(response: httpx.Response) -> AsyncIterator[Message]:
    """The messages of an SSE response, as the HTML standard parses them (comments and
    ``retry:`` dropped; a block with only an ``id`` still given, for its id)."""
    event, msg_id = "", None
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data or event or msg_id is not None:
                yield Message(event, "\n".join(data), msg_id)
            event, data, msg_id = "", [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            msg_id = value


def backoff(attempt: int, first: float = FIRST_BACKOFF, most: float = MAX_BACKOFF) -> float:
    """Seconds to wait before reconnect ``attempt`` (1-based): doubling, capped, with
    ±20 % jitter so a crowd of listeners does not come back in step."""
    delay = min(most, first * 2 ** (attempt - 1))
    jittered: float = round(delay * random.uniform(0.8, 1.2), 2)  # noqa: S311 (not a secret)
    return jittered


class Stream:
    """The stream with ``params`` (the event filters), followed by ``follow``."""

    def __init__(
        self,
        api: Api,
        params: dict[str, str],
        watcher: Watcher,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self.api = api
        self.params = params
        self.watcher = watcher
        self.idle_timeout = idle_timeout
        self.max_backoff = max_backoff
        self.last_id: str | None = None
        self.connections = 0
        self.reconnects = 0

    async def follow(self, handle: Callable[[Message], Awaitable[None]]) -> None:
        """Hand every message to ``handle``, in order, forever (until cancelled).

        Raises Unreachable if the first connection fails (a wrong URL should not retry
        forever), and the API's error if the server refuses the key; every later failure
        is a reconnect."""
        failures = 0
        while True:
            try:
                async with aclosing(self._open()) as stream:
                    async for message in stream:
                        failures = 0
                        # Every message, the opening one (an id alone) too: it says the
                        # server has subscribed this client.
                        await handle(message)
                        if message.id is not None:
                            # Only once handled: a reconnect resumes after what was done.
                            self.last_id = message.id
                reason = "the server closed the stream"
            except (httpx.TransportError, TimeoutError) as exc:
                if not self.connections:
                    raise Unreachable(
                        f"can't reach Hookway at {self.api.url}: {describe_transport_error(exc)}",
                        code="unreachable",
                        hint="is the server running, and is --server / HOOKWAY_URL right?",
                    ) from None
                reason = describe_transport_error(exc)
                if isinstance(exc, httpx.ReadTimeout):
                    reason = f"nothing heard for {self.idle_timeout:g} s"
            except Interrupted as exc:
                reason = exc.reason
            except _Unavailable as exc:
                reason = exc.reason
            failures += 1
            self.reconnects += 1
            delay = backoff(failures, most=self.max_backoff)
            self.watcher.lost(reason, retry_in=delay, attempt=failures)
            await asyncio.sleep(delay)

    async def _open(self) -> AsyncGenerator[Message]:
        headers = {"Accept": "text/event-stream"}
        if self.last_id is not None:
            headers["Last-Event-ID"] = self.last_id
        timeout = httpx.Timeout(10.0, read=self.idle_timeout)
        async with self.api.client.stream(
            "GET", "/api/v1/stream", params=self.params, headers=headers, timeout=timeout
        ) as response:
            if response.status_code >= 500:
                await response.aread()
                code, detail, _ = error_fields(response)
                raise _Unavailable(f"the server answered {response.status_code} {code} {detail}")
            if not response.is_success:
                await response.aread()
                raise_for_answer(response, "the event stream")
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                raise CliError(
                    f"{self.api.url}/api/v1/stream is not an event stream: is --server a Hookway?"
                )
            self.connections += 1
            self.watcher.connected(again=self.connections > 1, resumed_from=self.last_id)
            async for message in messages(response):
                yield message


class _Unavailable(Exception):
    """The server answered the stream with a 5xx (starting, stopping, overloaded)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
