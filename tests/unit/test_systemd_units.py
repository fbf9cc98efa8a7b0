"""deploy/systemd/: the units systemd itself accepts (``systemd-analyze verify``, when
this machine has it), and stop settings that leave room for the dispatcher's grace
period as the code defines it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hookway import conf
from hookway.dispatch.dispatcher import BACKOFF_MAX, WRITE_GRACE
from tests.conftest import ROOT

UNITS = ROOT / "deploy" / "systemd"
WEB = UNITS / "hookway-web.service"
DISPATCHER = UNITS / "hookway-dispatcher.service"
ENV_EXAMPLE = UNITS / "hookway.env.example"

# The longest a dispatcher takes to stop by itself at the default grace: in-flight
# deliveries get the grace, then writing their results may wait out a failing database.
STOP_BUDGET = conf.load({"SECRET_KEY": "x"}).shutdown_grace + WRITE_GRACE + BACKOFF_MAX


def keys(unit: Path) -> dict[str, dict[str, str]]:
    """The unit's sections and keys (continuation lines joined; a repeated key keeps
    its last value), read as systemd reads them."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    pending = ""
    for raw in unit.read_text().splitlines():
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{unit.name}: {line!r} outside a section"
        name, sep, value = line.partition("=")
        assert sep, f"{unit.name}: {line!r} is not key=value"
        current[name.strip()] = value.strip()
    return sections


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|min)?", value)
    assert match, f"not a time span this test reads: {value!r}"
    return float(match[1]) * (60 if match[2] == "min" else 1)


def option(command: str, name: str) -> str:
    match = re.search(rf"{name}[ =](\S+)", command)
    assert match, f"{name} not in {command!r}"
    return match[1]


@pytest.mark.parametrize("unit", [WEB, DISPATCHER], ids=lambda p: p.name)
def test_a_unit_stops_its_process_with_sigterm_and_waits_past_the_grace_period(unit: Path) -> None:
    service = keys(unit)["Service"]
    assert service["KillSignal"] == "SIGTERM"
    # SIGTERM to the main process only (gunicorn signals its workers itself); SIGKILL
    # to the whole group once TimeoutStopSec has passed.
    assert service["KillMode"] == "mixed"
    assert seconds(service["TimeoutStopSec"]) > STOP_BUDGET
    assert service["Restart"] == "on-failure"
    assert keys(unit)["Install"]["WantedBy"] == "multi-user.target"


def test_gunicorn_waits_for_its_workers_past_the_grace_period_and_systemd_waits_for_gunicorn() -> (
    None
):
    service = keys(WEB)["Service"]
    start = service["ExecStart"]
    assert "hookway.asgi:application" in start
    assert option(start, "--worker-class") == "hookway.server.UvicornWorker"
    graceful = float(option(start, "--graceful-timeout"))
    assert graceful > STOP_BUDGET
    assert seconds(service["TimeoutStopSec"]) > graceful


def test_the_dispatcher_unit_runs_the_standalone_dispatcher_and_the_web_unit_does_not() -> None:
    assert keys(DISPATCHER)["Service"]["ExecStart"].endswith("manage.py dispatch")
    assert keys(WEB)["Service"]["Environment"] == "HOOKWAY_EMBEDDED_DISPATCHER=false"


def test_the_example_environment_is_a_valid_hookway_configuration() -> None:
    env = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    env.pop("HOOKWAY_CONFIG")  # names the operator's file, which this checkout lacks
    settings = conf.load(env)
    assert settings.shutdown_grace + WRITE_GRACE + BACKOFF_MAX <= STOP_BUDGET


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip(
            "systemd-analyze is not installed: the units are checked by the tests above only"
        )
    for unit in (WEB, DISPATCHER):
        # The checkout stands in for /opt/hookway (verify checks that programs exist).
        text = unit.read_text().replace("/opt/hookway", str(ROOT))
        text = text.replace("/etc/hookway/hookway.env", str(ENV_EXAMPLE))
        (tmp_path / unit.name).write_text(text)
    result = subprocess.run(
        [analyze, "verify", *(str(tmp_path / u.name) for u in (WEB, DISPATCHER))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify exits 0 on an unknown key or a value it can't parse, but says so.
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == "", result.stdout + result.stderr
