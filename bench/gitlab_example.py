"""``python -m bench.gitlab_example [--runs N]``: examples/gitlab_system_hooks, both
ways, under gunicorn with the uvicorn worker: 20 GitLab system hooks at once, senders
with GitLab's 10 s timeout. Writes bench/results/gitlab_example.json and .md.

Goal (issue 10): after Hookway, 0 timeouts and an ack p99 <= 50 ms. Each run is 20
requests, so its p99 is its slowest ack; several runs show the spread.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import common

ROOT = Path(__file__).resolve().parent.parent


def _scenario() -> Any:
    path = ROOT / "examples" / "gitlab_system_hooks" / "scenario.py"
    spec = importlib.util.spec_from_file_location("gitlab_example_scenario", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs of 'after' (default 3)")
    args = parser.parse_args()
    scenario = _scenario()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        runs.append(scenario.run("before", Path(tmp) / "before"))
        for i in range(args.runs):
            runs.append(scenario.run("after", Path(tmp) / f"after-{i}"))
    p99s = [r["ack_ms_p99"] for r in runs if r["variant"] == "after"]
    data = {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": common.machine_info(),
        "runs": runs,
        "after_p99_ms_worst": max(p99s),
    }
    out = common.RESULTS_DIR / "gitlab_example.json"
    out.write_text(json.dumps(data, indent=2))
    lines = [
        "# examples/gitlab_system_hooks: before and after Hookway",
        "",
        f"Generated {data['generated']} by `python -m bench.gitlab_example`: 20 GitLab system",
        "hooks at once (client timeout 10 s), gunicorn + uvicorn worker, 1 worker, SQLite;",
        "the work is 15 s of simulated I/O. Goal after Hookway: 0 timeouts, ack p99 <= 50 ms.",
        "",
        "| run | timeouts | answers | ack p50 ms | ack p99 ms | no event_name | handled |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        p50 = "-" if r["ack_ms_p50"] is None else f"{r['ack_ms_p50']:.1f}"
        p99 = "-" if r["ack_ms_p99"] is None else f"{r['ack_ms_p99']:.1f}"
        lines.append(
            f"| {r['variant']} | {r['timeouts']}/20 | {', '.join(r['statuses'])} | {p50} | "
            f"{p99} | {r['nameless_status']} | {len(r['handled_project_ids'])} |"
        )
    worst = data["after_p99_ms_worst"]
    met = "met" if worst <= 50 else "not met"
    lines += [
        "",
        f"Worst 'after' p99: {worst:.1f} ms (goal 50 ms: {met} in every run)"
        if met == "met"
        else f"Worst 'after' p99: {worst:.1f} ms (goal 50 ms: not met in every run; this",
    ]
    if met != "met":
        lines.append("machine's 2 cores are shared, and one slow moment is the p99 of 20 acks).")
    lines += [
        "",
        "Before, Django cancels the view when the sender hangs up, so the work is lost too",
        "(handled 0). After, the handler runs each hook once, in the background.",
        "",
        f"Machine: {json.dumps(data['machine'])}",
        "",
    ]
    (common.RESULTS_DIR / "gitlab_example.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
