"""``hookway events tail`` and ``hookway events show``: the event list and the stream,
one event with its deliveries and attempts."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from hookway.cli.client import Api, path
from hookway.cli.errors import Unreachable
from hookway.cli.output import Output, clock, local_time, state_style, status_text
from hookway.cli.stream import Interrupted, Message, Stream

# The most of a body ``events show`` prints (the API's /body has all of it).
SHOWN_BODY = 20_000


def _states(deliveries: Any) -> str:
    """``1 delivered, 1 failing`` from the stream's counts or a list of deliveries."""
    if isinstance(deliveries, dict):
        counts = {k: v for k, v in deliveries.items() if v}
    else:
        counts = {}
        for d in deliveries or []:
            counts[d["state"]] = counts.get(d["state"], 0) + 1
    return ", ".join(f"{n} {state}" for state, n in counts.items()) or "no deliveries"


def event_line(event: dict[str, Any], when: str) -> Text:
    return Text.assemble(
        (when, "dim"),
        "  ",
        (str(event["id"]), "dim"),
        "  ",
        (str(event["source"]), "cyan"),
        "  ",
        (str(event["event_name"]), "bold"),
        "  ",
        _states(event.get("deliveries")),
    )


def delivery_line(outcome: dict[str, Any]) -> Text:
    state = str(outcome.get("state", ""))
    line = Text.assemble(
        (clock(), "dim"),
        "  ",
        (str(outcome.get("event", "")), "dim"),
        "  ",
        (str(outcome.get("source", "")), "cyan"),
        "  ",
        (str(outcome.get("event_name", "")), "bold"),
        "  → ",
        str(outcome.get("destination", "")),
        " ",
        (state, state_style(state)),
        f" (attempt {outcome.get('attempt')}, ",
    )
    if outcome.get("status_code") is not None:
        line.append_text(status_text(outcome["status_code"]))
    else:
        line.append(str(outcome.get("error_kind") or "no answer"), "red")
    line.append(")")
    return line


def events_table(items: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("received", "id", "source", "event", "deliveries"):
        table.add_column(column, no_wrap=column != "deliveries")
    for e in items:
        table.add_row(
            local_time(e["received_at"]),
            e["id"],
            e["source"],
            e["event_name"],
            _states(e["deliveries"]),
        )
    return table


class _Tail:
    def __init__(self, api: Api, out: Output, filters: dict[str, str], lines: int) -> None:
        self.api = api
        self.out = out
        self.filters = filters
        self.lines = lines
        self.listed: set[str] = set()
        self.started = False

    def connected(self, *, again: bool, resumed_from: str | None) -> None:
        if again:
            self.out.notice("reconnected", "back: the stream is connected again", style="green")

    def lost(self, reason: str, *, retry_in: float, attempt: int) -> None:
        self.out.notice(
            "reconnecting",
            f"stream lost ({reason}): reconnecting in {retry_in:g} s (attempt {attempt})",
            reason=reason,
            retry_in=retry_in,
            attempt=attempt,
        )

    async def handle(self, message: Message) -> None:
        if not self.started:
            # The server has subscribed this client: what it lists now either is in the
            # list or comes on the stream (or both: listed ids are not printed twice).
            self.started = True
            if self.lines:
                try:
                    page = await self.api.get_json(
                        path("events"),
                        what="the event list",
                        params={**self.filters, "limit": str(self.lines)},
                    )
                except Unreachable as exc:
                    self.started = False  # list them after the reconnect
                    raise Interrupted(f"listing recent events: {exc.message}") from None
                for event in reversed(page["items"]):
                    self.listed.add(event["id"])
                    self._event(event, local_time(event["received_at"]))
        if message.event == "event":
            event = message.json()
            if event["id"] not in self.listed:
                self._event(event, clock())
        elif message.event == "delivery":
            outcome = message.json()
            if self.out.as_json:
                self.out.json({"type": "delivery", **outcome})
            else:
                self.out.print(delivery_line(outcome))
        elif message.event == "gap":
            self.out.notice("gap", str((message.json() or {}).get("detail", "")))

    def _event(self, event: dict[str, Any], when: str) -> None:
        if self.out.as_json:
            self.out.json({"type": "event", **event})
        else:
            self.out.print(event_line(event, when))


async def tail(
    api: Api,
    out: Output,
    *,
    filters: dict[str, str],
    lines: int,
    follow: bool,
    idle_timeout: float,
) -> None:
    """The last ``lines`` events, then (``follow``) new events and delivery outcomes as
    they happen, until Ctrl-C."""
    if not follow:
        page = await api.get_json(
            path("events"), what="the event list", params={**filters, "limit": str(lines)}
        )
        if out.as_json:
            out.json(page["items"])
        elif page["items"]:
            out.print(events_table(page["items"]))
        else:
            out.notice("empty", "no events match", style="dim")
        return
    watcher = _Tail(api, out, filters, lines)
    stream = Stream(api, filters, watcher, idle_timeout=idle_timeout)
    following = asyncio.create_task(stream.follow(watcher.handle), name="hookway-events-tail")
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, following.cancel)
    try:
        await following
    except asyncio.CancelledError:
        # Ctrl-C: the end of a tail, not a failure.
        if following.cancelled():
            return
        raise
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _body(detail: dict[str, Any]) -> Any:
    if detail.get("body_encoding") == "json":
        text = json.dumps(detail.get("payload"), indent=2, ensure_ascii=False)
        if len(text) > SHOWN_BODY:
            return Text(text[:SHOWN_BODY] + f"\n… ({len(text)} characters in all)")
        return Syntax(text, "json", theme="ansi_dark", background_color="default", word_wrap=True)
    size = detail.get("size", 0)
    return Text(
        f"{size} bytes of {detail.get('content_type') or 'unknown type'}, not JSON: "
        f"GET /api/v1/events/{detail['id']}/body has them",
        style="dim",
    )


def show_event(detail: dict[str, Any]) -> Group:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("id", detail["id"])
    facts.add_row("source", detail["source"])
    facts.add_row("event", detail["event_name"])
    facts.add_row("received", local_time(detail["received_at"]))
    facts.add_row("delivery id", detail.get("delivery_id") or "—")
    facts.add_row("content type", detail.get("content_type") or "—")
    facts.add_row("size", f"{detail.get('size', 0)} bytes")
    if detail.get("conflict_with"):
        facts.add_row("conflicts with", detail["conflict_with"])
    parts: list[Any] = [facts]
    headers = detail.get("headers") or {}
    if headers:
        table = Table(title="headers", title_justify="left", box=None, pad_edge=False)
        table.add_column("name", style="cyan", no_wrap=True)
        table.add_column("value")
        for name, value in headers.items():
            table.add_row(name, str(value))
        parts += [Text(""), table]
    parts += [Text(""), Panel(_body(detail), title="body", title_align="left", expand=False)]
    deliveries = Table(title="deliveries", title_justify="left", box=None, pad_edge=False)
    for column in ("delivery", "destination", "state", "attempt", "at", "answer", "latency"):
        deliveries.add_column(column, no_wrap=column != "answer")
    for d in detail.get("deliveries", []):
        state = Text(d["state"], style=state_style(d["state"]))
        log = d.get("attempt_log") or []
        if not log:
            deliveries.add_row(d["id"], d["destination"], state, "—", "", "not tried yet", "")
        for i, a in enumerate(log):
            answer = (
                status_text(a["status_code"])
                if a.get("status_code") is not None
                else Text(a.get("error_kind") or a.get("outcome", ""), style="red")
            )
            if a.get("error_detail"):
                answer.append(f" {a['error_detail']}", style="dim")
            latency = f"{a['latency_ms']:.0f} ms" if a.get("latency_ms") is not None else ""
            deliveries.add_row(
                d["id"] if i == 0 else "",
                d["destination"] if i == 0 else "",
                state if i == 0 else "",
                str(a["number"]),
                local_time(a["started_at"]),
                answer,
                latency,
            )
        if d.get("replay_of"):
            deliveries.add_row(
                "", Text(f"replays {d['replay_of']}", style="dim"), "", "", "", "", ""
            )
    if detail.get("deliveries"):
        parts += [Text(""), deliveries]
    else:
        parts += [Text(""), Text("no deliveries (no route takes this event anywhere)", style="dim")]
    return Group(*parts)


async def show(api: Api, out: Output, event_id: str) -> None:
    detail = await api.get_json(path("events", event_id), what=f"event {event_id}")
    if out.as_json:
        out.json(detail)
    else:
        out.print(show_event(detail))
