"""What a Hookway process imports to start: every server, dispatcher and management
command pays it in CPU before doing anything (and the test suite pays it hundreds of
times), so a heavy module nobody needs at start stays out."""

from __future__ import annotations

import os
import subprocess
import sys

STARTUP = (
    "import sys, django\n"
    "django.setup()\n"
    "from hookway import runtime\n"
    "runtime.load_urlconf()\n"
    "import hookway.asgi, hookway.gate, hookway.dispatch.dispatcher\n"
    "print('cel at start', 'cel' in sys.modules)\n"
    "from hookway.routing import expr\n"
    "rule = expr.compile_expression('payload.amount >= 100')\n"
    "print('cel after a rule', 'cel' in sys.modules)\n"
    "print('evaluates', expr.evaluate(rule, {'payload': {'amount': 150}}))\n"
)


def _run(code: str) -> str:
    """Run ``code`` in a fresh Hookway process; its standard output."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hookway.standalone.settings",
        "HOOKWAY_DEMO": "true",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_server_starts_without_cel_and_loads_it_for_the_first_rule() -> None:
    out = _run(STARTUP)

    # The package's __init__ imports its command line (prompt_toolkit): ~0.12 s of CPU.
    assert "cel at start False" in out, out
    assert "cel after a rule True" in out, out
    assert "evaluates True" in out, out


CLIENT = (
    "import sys, django\n"
    "django.setup()\n"
    "from hookway.send.client import make_client\n"
    "print('aiohttp before the client', 'aiohttp' in sys.modules)\n"
    "make_client(kind='aiohttp')\n"
    "print('aiohttp with the client', 'aiohttp' in sys.modules)\n"
)


def test_the_http_client_imports_aiohttp_when_made_not_at_its_first_send() -> None:
    # Importing aiohttp takes ~0.2 s. At the first send it held the event loop, and the
    # first rate-limited deliveries of a dispatcher left late and together
    # (tests/e2e/test_delivery_policies_processes.py saw 171 in a 3 s window of 50/s).
    out = _run(CLIENT)

    assert "aiohttp before the client False" in out, out
    assert "aiohttp with the client True" in out, out
