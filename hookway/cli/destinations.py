"""``hookway destinations`` (the list) and ``hookway destinations test NAME`` (a
``hookway.ping`` sent now, exactly as a delivery would go; nothing is stored)."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from hookway.cli.client import Api, error_fields, path
from hookway.cli.errors import CliError
from hookway.cli.output import Output, status_text

_STATE_STYLE = {"active": "green", "paused": "yellow"}


def _target(d: dict[str, Any]) -> str:
    return str(d.get("url") or d.get("handler") or d.get("celery_task") or "")


async def list_destinations(api: Api, out: Output) -> None:
    items = await api.get_json(path("destinations"), what="the destination list")
    if out.as_json:
        out.json(items)
        return
    if not items:
        out.notice("empty", "no destinations", style="dim")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("name", "kind", "state", "pending", "target", "from"):
        table.add_column(
            column, no_wrap=column != "target", justify="right" if column == "pending" else "left"
        )
    for d in items:
        state = str(d["state"])
        table.add_row(
            d["name"],
            d["kind"],
            Text(state, style=_STATE_STYLE.get(state, "red")),
            str(d["pending"]),
            _target(d),
            "config file" if d.get("managed") else "api/admin",
        )
    out.print(table)


async def test_destination(api: Api, out: Output, name: str) -> None:
    response = await api.request(
        "POST",
        path("destinations", name, "test"),
        what=f"testing {name}",
        expect=(409, 502, 503, 504),
    )
    if response.is_success:
        answer = response.json()
        if out.as_json:
            out.json(answer)
            return
        line = Text(f"✓ {name} answered ")
        line.append_text(status_text(answer["status"]))
        line.append(f" in {answer['latency_ms']:.0f} ms (webhook-id {answer['webhook_id']})")
        out.print(line)
        if answer.get("response_excerpt"):
            out.print(Text(answer["response_excerpt"][:500], style="dim"))
        return
    code, detail, data = error_fields(response)
    failure = CliError(f"{name}: {detail or code}", code=code, data=data)
    if not out.as_json:
        failure.shown = True
        line = Text(f"✗ {name}: ", style="red")
        if code == "destination_error" and data:
            line.append("answered ")
            line.append_text(status_text(data.get("status")))
            out.print(line)
            if data.get("response_excerpt"):
                out.print(Text(str(data["response_excerpt"])[:500], style="dim"))
        else:
            line.append(detail)
            out.print(line)
    raise failure
