"""examples/gitlab_system_hooks, both ways, under gunicorn with the uvicorn worker: 20
GitLab system hooks at once, senders with GitLab's 10 s timeout. Part of ``make bench``
(``python -m bench --only gitlab_example``; ``python -m bench.gitlab_example`` too).

Goal (issue 10): after Hookway, 0 timeouts and an ack p99 <= 50 ms. Each run is 20
requests, so its p99 is its slowest ack; several runs show the spread.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import Any

from bench import common

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5  # of "after"


def _scenario() -> Any:
    path = ROOT / "examples" / "gitlab_system_hooks" / "scenario.py"
    spec = importlib.util.spec_from_file_location("gitlab_example_scenario", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(quick: bool) -> common.Result:
    """The example "before" once and "after" ``RUNS`` times (once when ``quick``)."""
    scenario = _scenario()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        runs.append(scenario.run("before", Path(tmp) / "before"))
        for i in range(1 if quick else RUNS):
            runs.append(scenario.run("after", Path(tmp) / f"after-{i}"))
    rows = []
    for r in runs:
        p50 = "-" if r["ack_ms_p50"] is None else f"{r['ack_ms_p50']:.1f}"
        p99 = "-" if r["ack_ms_p99"] is None else f"{r['ack_ms_p99']:.1f}"
        rows.append(
            [
                r["variant"],
                f"{r['timeouts']}/20",
                ", ".join(r["statuses"]) or "-",
                p50,
                p99,
                r["nameless_status"],
                len(r["handled_project_ids"]),
            ]
        )
    after = [r for r in runs if r["variant"] == "after"]
    worst = max(r["ack_ms_p99"] for r in after)
    timeouts = sum(r["timeouts"] for r in after)
    handled_once = all(len(r["handled_project_ids"]) == 20 for r in after)
    before = runs[0]
    return common.Result(
        title="examples/gitlab_system_hooks: before and after Hookway",
        columns=[
            "run",
            "timeouts",
            "answers",
            "ack p50 ms",
            "ack p99 ms",
            "no event_name",
            "handled",
        ],
        rows=rows,
        notes=[
            "20 GitLab system hooks at once (client timeout 10 s), gunicorn + uvicorn "
            "worker, 1 worker, SQLite; the work is 15 s of simulated I/O.",
            "Each run is 20 requests, so its p99 is its slowest ack; several runs show the spread.",
            "Before, Django cancels the view when the sender hangs up, so the work is "
            "lost too. After, the handler runs each hook once, in the background.",
        ],
        targets=[
            common.Target(
                "before: GitLab's senders time out (the problem)",
                f"{before['timeouts']}/20 timed out",
                before["timeouts"] == 20,
            ),
            common.Target(
                "after: 0 timeouts, every hook handled once",
                f"{timeouts} timeouts over {len(after)} runs; handled once: "
                + ("yes" if handled_once else "no"),
                timeouts == 0 and handled_once,
            ),
            common.Target("after: ack p99 <= 50 ms (worst run)", f"{worst:.1f} ms", worst <= 50),
        ],
    )


def main() -> None:
    from bench.__main__ import main as run_benchmarks

    raise SystemExit(run_benchmarks(["--only", "gitlab_example"]))


if __name__ == "__main__":
    main()
