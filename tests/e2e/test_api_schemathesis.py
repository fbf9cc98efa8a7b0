"""schemathesis against a real server's live OpenAPI schema, with a write key: no
operation answers 5xx, and every answer matches the schema the API publishes. Bounded
(a few examples per operation) so it stays near a minute on two cores. The stream
(Server-Sent Events, endless) and the destination test (which sends a real request to
whatever URL the fuzzer gave the destination) are left out; their own tests cover them.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookway.store import apikeys
from tests.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_live_schema_holds_under_schemathesis(
    start_server: Callable[..., Any], tmp_path: Path
) -> None:
    _, key = apikeys.create("schemathesis", "write")
    server = start_server()
    auth = {"Authorization": f"Bearer {key}"}
    api = f"{server.url}/api/v1"
    # Something for the operations on one entry to find (the fuzzer's own names would
    # mostly be 404s): a source, a destination, a route between them, and an event.
    with httpx.Client(headers=auth, timeout=10) as http:
        assert http.post(f"{api}/sources", json={"slug": "gh"}).status_code == 201
        made = http.post(f"{api}/destinations", json={"name": "ci", "url": f"{server.url}/echo"})
        assert made.status_code == 201, made.text
        route = http.post(f"{api}/routes", json={"source": "gh", "destination": "ci"}).json()
        webhook = http.post(f"{server.url}/hooks/gh", json={"event_name": "push"})
        assert webhook.status_code == 202, webhook.text
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[parameters]\n"
        f'"path.event_id" = "{webhook.json()["id"]}"\n'
        '"path.slug" = "gh"\n'
        '"path.name" = "ci"\n'
        f'"path.route_id" = {route["id"]}\n'
    )

    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(config),
            "run",
            f"{api}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--exclude-path-regex",
            r"/stream|/test$",
            "--max-examples",
            "10",
            "--generation-database",
            "none",
            "--request-timeout",
            "20",
            "--no-color",
        ],
        cwd=tmp_path,  # its caches and reports stay out of the checkout
        capture_output=True,
        text=True,
        timeout=240,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output + server.log()[-5000:]
    assert "Operations:" in output
    assert " passed" in output
    assert not list(ROOT.glob(".schemathesis*"))
