#!/usr/bin/env python3
"""Django's command-line utility for Hookway: ``./manage.py <command>``.

Run from a checkout, it uses the checkout's environment (``.venv``, made by ``make
install``) whichever Python started it, unless another virtual environment is active.
"""

import os
import sys
from pathlib import Path

VENV = Path(__file__).resolve().parent / ".venv"


def _use_the_checkouts_environment() -> None:
    python = VENV / "bin" / "python"
    if os.environ.get("VIRTUAL_ENV") or Path(sys.prefix).resolve() == VENV.resolve():
        return
    if python.exists():
        os.execv(python, [str(python), *sys.argv])  # noqa: S606 - this script, in its venv


def main() -> None:
    _use_the_checkouts_environment()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookway.standalone.settings")
    try:
        from django.core.management import execute_from_command_line
    except ImportError:
        sys.exit("Hookway's environment is not installed: run `make install` (or `make run`) first")
    from django.core.exceptions import ImproperlyConfigured

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A setting from the environment is wrong: the message names it; no traceback.
        sys.exit(f"Hookway can't start: {exc}")


if __name__ == "__main__":
    main()
