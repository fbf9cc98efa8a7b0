"""The command line runs on a laptop against a Hookway elsewhere: importing it (every
command's module) must not import Django (conventions.md, the map of the house)."""

from __future__ import annotations

import subprocess
import sys


def test_the_command_line_imports_no_django() -> None:
    code = (
        "import sys, pkgutil, importlib, hookway.cli\n"
        "names = [m.name for m in pkgutil.iter_modules(hookway.cli.__path__) if m.name != '__main__']\n"
        "for name in names: importlib.import_module('hookway.cli.' + name)\n"
        "from hookway.cli.app import app\n"
        "for args in (['send', '--help'], ['listen', '--help'], ['replay', '--help']):\n"
        "    app(args, standalone_mode=False)\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'ninja'))\n"
        "print('modules', len(names), 'leaked', leaked)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert "leaked []" in done.stdout, done.stdout
    assert "modules 11 " in done.stdout  # every module of the package was imported


def test_python_dash_m_runs_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hookway.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hookway 0.1.0"


def test_the_console_script_is_installed_and_answers() -> None:
    from pathlib import Path

    script = Path(sys.executable).with_name("hookway")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for command in ("listen", "send", "replay", "events", "destinations"):
        assert command in done.stdout
