"""The command the console's sources page gives for each verification scheme, run as
printed (bash, curl, openssl) against a real server: each one's webhook is accepted.
The secret comes from the shell variable the command names, as an operator would set
it."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from hookway.console.examples import example_command, secret_variable
from hookway.models import Source

# Once, in the SQLite run: the printed commands against ingest, tested on both databases.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.sqlite_only]

SECRETS = {
    "none": None,
    "token": "tok-example-1",
    "hmac-sha256": "hmac-example-2",
    "github": "gh-example-3",
    "gitlab": "gl-example-4",
    "stripe": "whsec_stripe_example_5",
    "standard-webhooks": "whsec_" + base64.b64encode(b"console-example-key-32-bytes-ok!").decode(),
}


@pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("openssl")), reason="needs curl and openssl"
)
def test_every_schemes_example_command_is_accepted(start_server: Callable[..., Any]) -> None:
    env: dict[str, str] = {}
    for scheme, secret in SECRETS.items():
        slug = f"ex-{scheme}"
        # Half by env: reference (the command names that variable), half literal.
        refs = []
        if secret is not None:
            refs = [f"env:EX_{len(env)}"] if scheme in ("token", "github", "stripe") else [secret]
            env[secret_variable(slug, refs)] = secret
        Source.objects.create(slug=slug, verify=scheme, secrets=refs)
    server = start_server(env)

    for scheme in SECRETS:
        slug = f"ex-{scheme}"
        source = Source.objects.get(slug=slug)
        command = example_command(f"{server.url}/hooks/{slug}", slug, scheme, source.secrets)
        done = subprocess.run(
            ["bash", "-c", command],
            env={"PATH": "/usr/bin:/bin", **env},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "HTTP/1.1 202" in done.stdout, f"{scheme}:\n{command}\n{done.stdout}{done.stderr}"
