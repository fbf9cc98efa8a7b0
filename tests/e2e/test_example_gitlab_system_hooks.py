"""examples/gitlab_system_hooks, both ways, under gunicorn with the uvicorn worker: 20
GitLab system hooks at once from senders that give up after 10 s, and one without
``event_name``.

Before: the view does its 15 s of I/O inline and every sender times out. After: Hookway
acknowledges at once and a handler does the I/O; no sender times out, each hook is
handled exactly once, and the nameless one is answered 400 and stored nowhere. The ack
times are printed (and measured by bench/gitlab_example.py), not asserted: this is a
noisy, shared 2-core machine.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.sqlite_only]


def scenario() -> ModuleType:
    path = ROOT / "examples" / "gitlab_system_hooks" / "scenario.py"
    spec = importlib.util.spec_from_file_location("gitlab_example_scenario", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_before_every_sender_times_out(tmp_path: Path) -> None:
    result = scenario().run("before", tmp_path)
    print(json.dumps(result))

    assert result["timeouts"] == 20
    assert result["nameless_status"] == 400


def test_after_no_sender_times_out_and_the_handler_runs_each_hook_once(tmp_path: Path) -> None:
    result = scenario().run("after", tmp_path)
    print(json.dumps(result))
    print(f"after: ack p50 {result['ack_ms_p50']:.1f} ms, p99 {result['ack_ms_p99']:.1f} ms")

    assert result["timeouts"] == 0
    assert result["statuses"] == ["202"]
    assert result["handled_project_ids"] == list(range(20))
    assert result["nameless_status"] == 400
    assert result["stored_events"] == 20
    assert result["stored_nameless"] == 0
