"""``hookway replay``: one event again, or every dead delivery (to a destination) again,
with a progress bar; ``--dry-run`` counts what would be replayed and changes nothing.

A bulk replay is the API's (``POST /api/v1/deliveries/replay``, idempotent: what was
replayed already is skipped, with the reason) done event by event: first a dry run says
which deliveries of which events match, then each event's are replayed with the same
filters, so the bar moves as the work is done and an interrupted replay can simply be
run again."""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from hookway.cli.client import Api, path
from hookway.cli.errors import CliError, UsageProblem
from hookway.cli.output import Output, plural


def _skipped_lines(out: Output, skipped: list[dict[str, Any]]) -> None:
    if not skipped:
        return
    table = Table(title=f"skipped ({len(skipped)})", title_justify="left", box=None, pad_edge=False)
    for column in ("subject", "why"):
        table.add_column(column, no_wrap=column == "subject")
    for s in skipped[:50]:
        table.add_row(
            s["subject"], s["reason"] + (" (--force replays it)" if s.get("forceable") else "")
        )
    out.print(table)
    if len(skipped) > 50:
        out.print(Text(f"… and {len(skipped) - 50} more (--json lists them all)", style="dim"))


def _created_lines(out: Output, created: list[dict[str, Any]], *, dry_run: bool) -> None:
    if not created:
        return
    verb = "would replay" if dry_run else "replayed"
    table = Table(title=f"{verb} ({len(created)})", title_justify="left", box=None, pad_edge=False)
    columns = (
        ("event", "destination", "replays")
        if dry_run
        else ("new delivery", "event", "destination", "replays", "note")
    )
    for column in columns:
        table.add_column(column, no_wrap=True)
    for c in created[:50]:
        row = [c["event_id"], c["destination"], c.get("replay_of") or "—"]
        if not dry_run:
            row = [c["delivery_id"], *row, c.get("waits") or ""]
        table.add_row(*row)
    out.print(table)
    if len(created) > 50:
        out.print(Text(f"… and {len(created) - 50} more (--json lists them all)", style="dim"))


async def replay_event(
    api: Api, out: Output, event_id: str, *, destinations: list[str], force: bool
) -> None:
    body: dict[str, Any] = {"force": force}
    if destinations:
        body["destinations"] = destinations
    response = await api.request(
        "POST",
        path("events", event_id, "replay"),
        what=f"replaying {event_id}",
        json=body,
        expect=(409,),
    )
    answer = response.json()
    if response.status_code == 409:
        if not out.as_json:
            _skipped_lines(out, answer.get("skipped", []))
        raise CliError(
            f"nothing replayed: {answer.get('detail', '')}", code="not_replayed", data=answer
        )
    if out.as_json:
        out.json(answer)
        return
    out.print(
        Text(f"✓ replayed {plural(answer['replayed'], 'delivery')} of {event_id}", style="green")
    )
    _created_lines(out, answer["created"], dry_run=False)
    _skipped_lines(out, answer["skipped"])


async def replay_bulk(
    api: Api,
    out: Output,
    *,
    filters: dict[str, Any],
    force: bool,
    dry_run: bool,
) -> None:
    """Replay every delivery matching ``filters`` (or, ``dry_run``, count them)."""
    if not filters.get("state"):
        raise UsageProblem("name what to replay: an event id, or --dead")
    planned = await api.post_json(
        path("deliveries", "replay"),
        what="the replay",
        json={**filters, "force": force, "dry_run": True},
    )
    events = list(dict.fromkeys(c["event_id"] for c in planned["created"]))
    where = f" to {filters['destination']}" if filters.get("destination") else ""
    if dry_run:
        if out.as_json:
            out.json({**planned, "events": len(events)})
            return
        out.print(
            Text(
                f"would replay {plural(planned['replayed'], filters['state'] + ' delivery')}"
                f"{where} of {plural(len(events), 'event')}; {len(planned['skipped'])} skipped "
                "(dry run: nothing was changed)",
                style="bold",
            )
        )
        _created_lines(out, planned["created"], dry_run=True)
        _skipped_lines(out, planned["skipped"])
        return
    created: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = list(planned["skipped"])
    with Progress(
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("deliveries"),
        TimeElapsedColumn(),
        console=out.err,
        disable=out.as_json,
        transient=False,
    ) as progress:
        bar = progress.add_task("replay", total=planned["replayed"])
        for event_id in events:
            answer = await api.post_json(
                path("deliveries", "replay"),
                what=f"replaying {event_id}",
                json={**filters, "event": event_id, "force": force},
            )
            created += answer["created"]
            # What the dry run skipped is skipped again: list each skip once.
            seen = {(s["subject"], s["kind"]) for s in skipped}
            skipped += [s for s in answer["skipped"] if (s["subject"], s["kind"]) not in seen]
            progress.advance(bar, len(answer["created"]))
    result = {
        "dry_run": False,
        "replayed": len(created),
        "planned": planned["replayed"],
        "events": len(events),
        "created": created,
        "skipped": skipped,
    }
    if out.as_json:
        out.json(result)
        return
    out.print(
        Text(
            f"✓ replayed {plural(len(created), filters['state'] + ' delivery')}{where} of "
            f"{plural(len(events), 'event')}"
            + (f" ({planned['replayed']} planned)" if len(created) != planned["replayed"] else ""),
            style="green",
        )
    )
    _created_lines(out, created, dry_run=False)
    _skipped_lines(out, skipped)
