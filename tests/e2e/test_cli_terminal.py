"""``hookway listen`` in a real terminal (a pty): one readable, coloured line per event,
a clear line when the app is down, and Ctrl-C (SIGINT from the terminal) ending it
cleanly with a summary and exit code 0."""

from __future__ import annotations

import io
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pexpect
import pytest

from hookway.models import Source
from hookway.store import apikeys
from tests.e2e.cli_helpers import HOOKWAY, STREAM_ENV, cli_env, post, wait_for

# Once, in the SQLite run: a terminal's view of the command line, above the database.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.sqlite_only]

ANSI = re.compile(r"\x1b\[[0-9;]*m")
COLUMNS = 120
EVENT_LINE = re.compile(r"^\d\d:\d\d:\d\d  demo +(\S+) +→ 200 OK  \d+ ms  (evt_[0-9a-z]{26})$")


def test_listen_in_a_terminal_is_readable_and_ctrl_c_ends_it_with_a_summary(
    start_server: Callable[..., Any], receiver: Callable[..., Any], tmp_path: Path
) -> None:
    Source.objects.create(slug="demo")
    key = apikeys.create("terminal", "read")[1]
    server = start_server(STREAM_ENV)
    app = receiver()
    env = {**cli_env(tmp_path), "TERM": "xterm-256color", "COLUMNS": str(COLUMNS)}
    env.pop("NO_COLOR", None)
    term = pexpect.spawn(
        HOOKWAY,
        ["listen", "--server", server.url, "--key", key, "--forward-to", app.url()],
        env=env,
        dimensions=(40, COLUMNS),
        timeout=40,
        encoding="utf-8",
    )
    term.logfile_read = transcript = io.StringIO()
    try:
        term.expect("Ctrl-C to stop")
        ids = [post(server.url, "demo", {"type": name}) for name in ("push", "merge_request")]
        wait_for(lambda: len(app.received()) == 2, "two forwarded events")
        term.expect(ids[1])
        app.stop()
        down = post(server.url, "demo", {"type": "tag_push"})
        term.expect(down)
        term.sendintr()  # Ctrl-C, as the terminal sends it: SIGINT to the foreground job
        term.expect(pexpect.EOF)
    finally:
        term.close()

    output = transcript.getvalue()
    assert term.exitstatus == 0, output
    lines = [line.rstrip() for line in ANSI.sub("", output).replace("\r", "").split("\n")]
    events = [m.groups() for m in map(EVENT_LINE.match, lines) if m]
    assert events == [("push", ids[0]), ("merge_request", ids[1])], lines
    # In columns: the statuses of the two lines start at the same place.
    arrows = {line.index("→") for line in lines if EVENT_LINE.match(line)}
    assert len(arrows) == 1, lines
    assert any(
        "tag_push" in line and "✗ app: connection refused, not delivered" in line for line in lines
    ), lines
    # Nothing wraps in a 120-column terminal.
    assert all(len(line) <= COLUMNS for line in lines), [
        line for line in lines if len(line) > COLUMNS
    ]
    assert re.search(r"Stopped after 0m\d\ds\.", output)
    assert (
        "3 events: 2 delivered (2xx), 0 answered another status; "
        "1 found your app down (not delivered); 0 reconnects."
    ) in ANSI.sub("", output)
    assert f"Not delivered: {down}" in ANSI.sub("", output)
    assert "Traceback" not in output
    assert "\x1b[" in output  # a terminal gets colour


def test_ctrl_c_during_a_one_shot_command_exits_130_without_a_traceback(tmp_path: Path) -> None:
    # A server that accepts the connection and never answers: the command is waiting on
    # it (well within its deadline) when Ctrl-C arrives.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        silent.settimeout(20)
        port = silent.getsockname()[1]
        term = pexpect.spawn(
            HOOKWAY,
            ["events", "show", "evt_x", "--server", f"http://127.0.0.1:{port}", "--key", "k"],
            env=cli_env(tmp_path),
            timeout=20,
            encoding="utf-8",
        )
        term.logfile_read = transcript = io.StringIO()
        try:
            conn, _ = silent.accept()  # the command's request has gone out
            term.sendintr()
            term.expect(pexpect.EOF)
            conn.close()
        finally:
            term.close()

    assert term.exitstatus == 130, transcript.getvalue()
    assert "Traceback" not in transcript.getvalue()
