"""``hookway listen``: every new event on the stream, POSTed to a local app as its sender
sent it, in order, one line each; until Ctrl-C, which prints a summary.

Each event is fetched over the API (its headers, and its body byte for byte) and sent
with its original content type and the headers Hookway kept (never a credential or a
signature: docs/ingest.md, "What is stored"), plus ``X-Hookway-Event-Id``,
``X-Hookway-Event`` and ``X-Hookway-Source``. An app that can't be reached (connection
refused or reset, no answer in time) gets a line per event saying so; with
``--replay-missed`` those events wait, in order, and are resent as soon as the app
answers again, before any newer one."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import httpx
from rich.text import Text

from hookway.cli.client import Api, describe_transport_error, path
from hookway.cli.errors import CliError, NotFound, Unreachable
from hookway.cli.output import Output, clock, now_iso, plural, status_text
from hookway.cli.stream import Interrupted, Message, Stream
from hookway.headers import is_hop_by_hop

# Stored headers that describe Hookway's own connection and body, not the event: the
# forwarded request has its own.
_NOT_PASSED_ON = {"host", "content-length", "content-type", "expect", "accept-encoding"}
_PROBE_FIRST = 1.0
_PROBE_MOST = 10.0
# A listener that runs for days must not grow without bound: remember this many ids.
_SEEN_MAX = 100_000


@dataclass(frozen=True)
class Forward:
    """One event as it is sent to the local app."""

    event_id: str
    source: str
    event_name: str
    body: bytes
    headers: list[tuple[str, str]]


@dataclass(frozen=True)
class Outcome:
    status: int | None
    latency_ms: float
    error: str | None = None

    @property
    def unreachable(self) -> bool:
        return self.status is None


def forward_headers(
    stored: dict[str, Any], content_type: str, event: dict[str, Any]
) -> list[tuple[str, str]]:
    """The headers the local app gets: what the sender sent (as kept), then Hookway's."""
    out = [
        (name, value)
        for name, value in stored.items()
        if isinstance(value, str)
        and not is_hop_by_hop(name)
        and name.lower() not in _NOT_PASSED_ON
        and not name.lower().startswith("x-hookway-")
    ]
    if content_type:
        out.append(("Content-Type", content_type))
    out += [
        ("X-Hookway-Event-Id", event["id"]),
        ("X-Hookway-Event", event["event_name"]),
        ("X-Hookway-Source", event["source"]),
    ]
    return out


class Listener:
    def __init__(
        self,
        api: Api,
        forward_to: str,
        out: Output,
        *,
        replay_missed: bool,
        timeout: float,
        filters: dict[str, str],
    ) -> None:
        self.api = api
        self.forward_to = forward_to
        self.out = out
        self.replay_missed = replay_missed
        self.filters = filters
        self.local = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self.deadline = timeout
        self.missed: deque[Forward] = deque()
        self.not_delivered: list[str] = []
        self.down_reason = ""
        self.app_down = asyncio.Event()
        self.lock = asyncio.Lock()
        self.seen: dict[str, None] = {}
        # Per event: each is counted once as delivered (2xx, resent ones too) or as
        # answered with another status, or is still waiting or not delivered; app_down
        # counts those that found the app down at first, resent those of them it got later.
        self.counts = {"events": 0, "delivered": 0, "other_status": 0, "app_down": 0, "resent": 0}
        self.started = time.monotonic()
        self.stream: Stream | None = None

    # -- the stream ------------------------------------------------------------------------

    def connected(self, *, again: bool, resumed_from: str | None) -> None:
        if again:
            self.out.notice(
                "reconnected",
                "back: the stream is connected again; missed events follow",
                style="green",
                resumed_from=resumed_from,
            )
        else:
            self.out.notice(
                "connected",
                f"connected to {self.api.url}: forwarding to {self.forward_to} (Ctrl-C to stop)",
                style="green",
            )

    def lost(self, reason: str, *, retry_in: float, attempt: int) -> None:
        self.out.notice(
            "reconnecting",
            f"stream lost ({reason}): reconnecting in {retry_in:g} s (attempt {attempt})",
            reason=reason,
            retry_in=retry_in,
            attempt=attempt,
        )

    async def on_message(self, message: Message) -> None:
        if message.event == "event":
            await self._event(message.json())
        elif message.event == "gap":
            await self._fill_gap(message)
        elif message.event == "overflow":
            self.out.notice("behind", "this listener fell behind the stream; resuming")

    async def _event(self, event: dict[str, Any]) -> None:
        event_id = str(event["id"])
        if event_id in self.seen:
            return
        forward = await self._fetch(event)
        self._remember(event_id)
        if forward is not None:
            await self.deliver(forward)

    def _remember(self, event_id: str) -> None:
        self.seen[event_id] = None
        if len(self.seen) > _SEEN_MAX:
            del self.seen[next(iter(self.seen))]

    async def _fetch(self, event: dict[str, Any]) -> Forward | None:
        """The event as it goes to the app; None if it is gone from Hookway (said so).
        Raises Interrupted when the server can't be reached: the stream resumes before it."""
        event_id = str(event["id"])
        try:
            # One after the other: gather would leave the second running when the first fails.
            detail = await self.api.get_json(path("events", event_id), what=f"event {event_id}")
            body = await self.api.request(
                "GET", path("events", event_id, "body"), what=f"event {event_id}"
            )
        except Unreachable as exc:
            raise Interrupted(f"fetching {event_id}: {exc.message}") from None
        except NotFound:
            self.out.notice("gone", f"{event_id} is no longer stored in Hookway: skipped")
            return None
        except CliError as exc:
            if exc.status is None or exc.status < 500:
                raise
            # A server starting, stopping or overloaded: the stream resumes before it.
            raise Interrupted(f"fetching {event_id}: {exc.message}") from None
        headers = detail.get("headers") if isinstance(detail.get("headers"), dict) else {}
        return Forward(
            event_id=event_id,
            source=str(detail.get("source", event.get("source", ""))),
            event_name=str(detail.get("event_name", event.get("event_name", ""))),
            body=body.content,
            headers=forward_headers(headers, str(detail.get("content_type") or ""), detail),
        )

    async def _fill_gap(self, message: Message) -> None:
        """The stream skipped ahead (this listener was too far behind for it to replay):
        list the events in between over the API and forward them, oldest first."""
        after = (self.stream.last_id if self.stream else None) or ""
        after_event = after.split(".", 1)[0]
        upto = (message.id or "").split(".", 1)[0]
        self.out.notice(
            "gap", "too far behind the stream: fetching the missed events from the list"
        )
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        try:
            while True:
                params = {**self.filters, "limit": "200"}
                if cursor:
                    params["cursor"] = cursor
                page = await self.api.get_json(path("events"), what="the event list", params=params)
                items = page.get("items", [])
                found += [e for e in items if after_event < e["id"] <= upto]
                cursor = page.get("next")
                if not cursor or any(e["id"] <= after_event for e in items):
                    break
        except Unreachable as exc:
            raise Interrupted(f"listing missed events: {exc.message}") from None
        except CliError as exc:
            if exc.status is None or exc.status < 500:
                raise
            raise Interrupted(f"listing missed events: {exc.message}") from None
        for event in sorted(found, key=lambda e: str(e["id"])):
            await self._event(event)

    # -- the local app ---------------------------------------------------------------------

    async def send(self, forward: Forward) -> Outcome:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.deadline):
                response = await self.local.post(
                    self.forward_to, content=forward.body, headers=forward.headers
                )
        except (httpx.TransportError, TimeoutError) as exc:
            latency = (time.monotonic() - started) * 1000
            return Outcome(None, latency, describe_transport_error(exc))
        except httpx.InvalidURL as exc:
            raise CliError(f"--forward-to: {exc}") from None
        return Outcome(response.status_code, (time.monotonic() - started) * 1000)

    async def deliver(self, forward: Forward) -> None:
        """Send ``forward`` now, or (``--replay-missed``, app down) queue it behind the
        events already waiting, so the app gets them in order."""
        async with self.lock:
            self.counts["events"] += 1
            if self.replay_missed and self.missed:
                await self._drain()
            if self.replay_missed and self.missed:
                self.missed.append(forward)
                self.counts["app_down"] += 1
                self._line(forward, None, queued=True)
                return
            outcome = await self.send(forward)
            self._count(outcome)
            if outcome.unreachable:
                self.down_reason = outcome.error or ""
                self.counts["app_down"] += 1
                if self.replay_missed:
                    self.missed.append(forward)
                    self.app_down.set()
                else:
                    self.not_delivered.append(forward.event_id)
            self._line(forward, outcome)

    async def _drain(self) -> None:
        """Resend waiting events, oldest first, until one fails. (Holds the lock.)"""
        back = False
        while self.missed:
            forward = self.missed[0]
            outcome = await self.send(forward)
            if outcome.unreachable:
                self.down_reason = outcome.error or ""
                return
            if not back:
                back = True
                self.out.notice(
                    "app_back",
                    f"your app answers again: resending {plural(len(self.missed), 'missed event')}",
                    style="green",
                    waiting=len(self.missed),
                )
            self.missed.popleft()
            self.counts["resent"] += 1
            self._count(outcome)
            self._line(forward, outcome, resent=True)

    async def retry_missed(self) -> None:
        """While events wait for the app, try the oldest again, backing off to every
        ``_PROBE_MOST`` seconds; runs for the whole session (``--replay-missed``)."""
        delay = _PROBE_FIRST
        while True:
            await self.app_down.wait()
            await asyncio.sleep(delay)
            async with self.lock:
                if self.missed:
                    await self._drain()
                if not self.missed:
                    self.app_down.clear()
                    delay = _PROBE_FIRST
                    continue
            delay = min(_PROBE_MOST, delay * 2)

    def _count(self, outcome: Outcome) -> None:
        if outcome.unreachable:
            return  # the event waits or is not delivered: counted as app_down
        if 200 <= (outcome.status or 0) < 300:
            self.counts["delivered"] += 1
        else:
            self.counts["other_status"] += 1

    def _line(
        self,
        forward: Forward,
        outcome: Outcome | None,
        *,
        queued: bool = False,
        resent: bool = False,
    ) -> None:
        if self.out.as_json:
            self.out.json(
                {
                    "type": "queued" if queued else "forwarded",
                    "time": now_iso(),
                    "event_id": forward.event_id,
                    "source": forward.source,
                    "event_name": forward.event_name,
                    "status": outcome.status if outcome else None,
                    "latency_ms": round(outcome.latency_ms, 1) if outcome else None,
                    "error": (outcome.error if outcome else self.down_reason) or None,
                    "resent": resent,
                    "waiting": len(self.missed),
                }
            )
            return
        line = Text.assemble(
            (clock(), "dim"),
            "  ",
            # Padded so that, event after event, the statuses line up.
            (forward.source.ljust(10), "cyan"),
            "  ",
            (forward.event_name.ljust(18), "bold"),
            "  ",
        )
        if queued or (outcome is not None and outcome.unreachable):
            # "app:" names whose problem it is (the local app's, not Hookway's).
            reason = self.down_reason if outcome is None else outcome.error
            line.append(f"✗ app: {reason}", "bold red")
            line.append(
                f", queued ({len(self.missed)} waiting)"
                if self.replay_missed
                else ", not delivered",
                "red",
            )
        elif outcome is not None:
            line.append("→ ")
            line.append_text(status_text(outcome.status))
            line.append(f"  {outcome.latency_ms:.0f} ms", "dim")
        if resent:
            line.append("  (resent)", "magenta")
        line.append(f"  {forward.event_id}", "dim")
        self.out.print(line)

    # -- the end ---------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        return {
            "type": "summary",
            **self.counts,
            "waiting": [f.event_id for f in self.missed],
            "not_delivered": self.not_delivered,
            "reconnects": self.stream.reconnects if self.stream else 0,
            "seconds": round(time.monotonic() - self.started, 1),
        }

    def print_summary(self) -> None:
        s = self.summary()
        if self.out.as_json:
            self.out.json(s)
            return
        minutes, seconds = divmod(int(s["seconds"]), 60)
        self.out.print(Text(f"\nStopped after {minutes}m{seconds:02d}s.", style="bold"))
        line = (
            f"{plural(s['events'], 'event')}: {s['delivered']} delivered (2xx), "
            f"{s['other_status']} answered another status"
        )
        if s["app_down"]:
            line += f"; {s['app_down']} found your app down"
            if self.replay_missed:
                line += f" ({s['resent']} resent, {len(s['waiting'])} still waiting)"
            else:
                line += " (not delivered)"
        self.out.print(line + f"; {plural(s['reconnects'], 'reconnect')}.")
        if s["waiting"]:
            self.out.print(
                Text(f"Still waiting for your app (not sent): {', '.join(s['waiting'])}", "yellow")
            )
        if s["not_delivered"]:
            self.out.print(
                Text(
                    f"Not delivered: {', '.join(s['not_delivered'])} "
                    "(--replay-missed resends such events when your app is back)",
                    "yellow",
                )
            )

    async def aclose(self) -> None:
        await self.local.aclose()


async def run(
    api: Api,
    out: Output,
    *,
    forward_to: str,
    filters: dict[str, str],
    replay_missed: bool,
    answer_within: float,
    idle_timeout: float,
) -> None:
    """Listen until SIGINT or SIGTERM (then print the summary and return), or until the
    stream fails for good (the CliError is raised)."""
    listener = Listener(
        api, forward_to, out, replay_missed=replay_missed, timeout=answer_within, filters=filters
    )
    stream = Stream(api, filters, listener, idle_timeout=idle_timeout)
    listener.stream = stream
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    tasks = {
        asyncio.create_task(stream.follow(listener.on_message), name="hookway-listen-stream"),
        asyncio.create_task(listener.retry_missed(), name="hookway-listen-replay-missed"),
        asyncio.create_task(stop.wait(), name="hookway-listen-stop"),
    }
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        listener.print_summary()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await listener.aclose()
