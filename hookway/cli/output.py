"""How the command line speaks: rich text for people, one JSON document (or one JSON
object per line, for commands that follow a stream) with ``--json``. Results go to
stdout; errors and notices for people to stderr, or, with ``--json``, to stdout as
objects with a ``type`` (or ``error``) field so a script reads one stream."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from hookway.cli.client import dumps
from hookway.cli.errors import CliError


class Output:
    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        self.console = Console(highlight=False, soft_wrap=True)
        if not self.console.is_terminal:
            # Piped or captured: no terminal to fit, so tables keep their rows on one line.
            self.console.width = 200
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def json(self, data: Any) -> None:
        """One JSON document (or line) on stdout, flushed at once (scripts read it live)."""
        sys.stdout.write(dumps(data) + "\n")
        sys.stdout.flush()

    def print(self, *renderables: Any) -> None:
        self.console.print(*renderables)

    def notice(self, kind: str, message: str, style: str = "yellow", **fields: Any) -> None:
        """A line about the command itself (reconnecting, back, waiting): stderr for
        people, a ``{"type": kind, …}`` line for scripts."""
        if self.as_json:
            self.json({"type": kind, "time": now_iso(), "message": message, **fields})
        else:
            self.err.print(Text.assemble((clock(), "dim"), "  ", (message, style)))

    def error(self, exc: CliError) -> None:
        if self.as_json:
            self.json(exc.as_json())
            return
        if exc.shown:
            return
        self.err.print(f"[bold red]error:[/] {escape(exc.message)}")
        if exc.hint:
            self.err.print(f"[dim]{escape(exc.hint)}[/]")


def plural(count: int, word: str) -> str:
    """``1 event``, ``2 events``, ``1 delivery``, ``3 deliveries``."""
    if count == 1:
        return f"1 {word}"
    return f"{count} {word[:-1] + 'ies' if word.endswith('y') else word + 's'}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def clock() -> str:
    return datetime.now().strftime("%H:%M:%S")


def local_time(iso: str | None) -> str:
    """An API timestamp as the reader's local date and time, to the second."""
    if not iso:
        return ""
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def status_text(status: int | None, error: str | None = None) -> Text:
    """``200 OK`` in green, other statuses in yellow or red, ``error`` in red."""
    if status is None:
        return Text(error or "no answer", style="bold red")
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    style = "green" if 200 <= status < 300 else ("yellow" if status < 500 else "red")
    return Text(f"{status} {phrase}".strip(), style=style)


def state_style(state: str) -> str:
    return {"delivered": "green", "pending": "cyan", "failing": "yellow", "dead": "red"}.get(
        state, ""
    )
