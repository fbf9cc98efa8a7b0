"""``python -m bench [--quick] [--only NAME ...]``: run the benchmarks, write bench/results/.

Each benchmark module's ``run(quick)`` returns a Result; this writes
``bench/results/<name>.md`` and ``.png`` for each, then ``bench/results/summary.md`` (one
row per target) and prints it. Targets are goals, not assertions: the exit code is 0
whether they are met or not (a benchmark that crashes makes it 1).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import shlex
import sys
import time
import traceback

from bench import common

# In the order they run; modules not present (yet) are skipped.
BENCHMARKS = (
    "ingest",
    "servers",
    "loop_lag",
    "pg_scaleout",
    "sender_timeout",
    "delivery",
    "gc_pauses",
    "fanout",
    "http_client",
    "admin",
    "api_lists",
    "api_stream",
    "console",
    "prune",
    "gitlab_example",
    "flap_soak",
    "observability",
)


def _available(name: str) -> bool:
    return importlib.util.find_spec(f"bench.{name}") is not None


def _summary(results: dict[str, common.Result], failed: dict[str, str], quick: bool) -> str:
    lines = ["# Benchmark summary", ""]
    if quick:
        lines += ["> **Quick (smoke) run**: the numbers below mean nothing.", ""]
    lines += [
        "Targets are the goals of issue 4, not assertions. Each benchmark's page holds the",
        "full table, the notes on where the time goes, the machine and the versions.",
        "",
        "| benchmark | goal | measured | met? |",
        "|---|---|---|---|",
    ]
    for name in BENCHMARKS:
        link = f"[{name}]({name}.md)"
        if name in failed:
            lines.append(f"| {name} | benchmark failed | {failed[name]} | **no** |")
            continue
        saved = common.RESULTS_DIR / f"{name}.json"
        if not saved.is_file():
            continue
        data = json.loads(saved.read_text())
        when = "" if name in results else f" (from an earlier run, {data.get('generated', '?')})"
        if data.get("quick"):
            when += " (quick)"
        if not data["targets"]:
            lines.append(f"| {link}{when} | (no targets) | | |")
        for target in data["targets"]:
            met = {True: "yes", False: "**no**", None: "n/a"}[target["met"]]
            lines.append(f"| {link}{when} | {target['goal']} | {target['measured']} | {met} |")
    machine = common.machine_info()
    lines += [
        "",
        f"Machine: {machine['cores']} cores, {machine['memory']}, {machine['cpu']}, "
        f"kernel {machine['kernel']}.",
        "",
        f"Command: `{common.COMMAND}`",
        "",
    ]
    return "\n".join(lines)


README_START = "<!-- bench-summary:start (written by python -m bench) -->"
README_END = "<!-- bench-summary:end -->"


def _update_readme() -> None:
    """Rewrite the README's benchmark table from bench/results/*.json (full runs only),
    so the figures there always come from the latest published run."""
    readme = common.ROOT / "README.md"
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return
    rows = ["| benchmark | goal | measured | met? |", "|---|---|---|---|"]
    for name in BENCHMARKS:
        saved = common.RESULTS_DIR / f"{name}.json"
        if not saved.is_file():
            continue
        data = json.loads(saved.read_text())
        if data.get("quick"):
            continue
        for target in data["targets"]:
            met = {True: "yes", False: "**no**", None: "n/a"}[target["met"]]
            rows.append(
                f"| [{name}](bench/results/{name}.md) | {target['goal']} | "
                f"{target['measured']} | {met} |"
            )
    head, _, rest = text.partition(README_START)
    _, _, tail = rest.partition(README_END)
    block = "\n".join([README_START, *rows, README_END])
    readme.write_text(head + block + tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny durations")
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", choices=BENCHMARKS, help="run only these"
    )
    args = parser.parse_args(argv)
    common.COMMAND = shlex.join(["python", "-m", "bench", *(argv or sys.argv[1:])])

    if args.quick:
        # A smoke run proves the code runs; it must not overwrite the published results.
        common.RESULTS_DIR = common.ROOT / "var" / "bench-smoke"
        print(f"quick run: results go to {common.RESULTS_DIR.relative_to(common.ROOT)}/")

    names = [n for n in (args.only or BENCHMARKS) if _available(n)]
    missing = [n for n in (args.only or BENCHMARKS) if not _available(n)]
    if missing:
        print(f"skipping (no module yet): {', '.join(missing)}", flush=True)

    results: dict[str, common.Result] = {}
    failed: dict[str, str] = {}
    started_all = time.monotonic()
    for name in names:
        print(f"== {name} {'(quick)' if args.quick else ''}", flush=True)
        started = time.monotonic()
        load_before = common.load_average()
        print(f"   load average {load_before}", flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
            result = module.run(quick=args.quick)
            result.quick = args.quick
            result.seconds = time.monotonic() - started
            result.load = (load_before, common.load_average())
            md, png = common.write_result(name, result)
        except Exception as exc:  # noqa: BLE001 - one benchmark failing is reported; the rest run
            traceback.print_exc()
            failed[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            continue
        results[name] = result
        print(
            f"   wrote {md.relative_to(common.ROOT)}"
            + (f" and {png.relative_to(common.ROOT)}" if png else "")
            + f" in {time.monotonic() - started:.0f} s",
            flush=True,
        )

    summary = _summary(results, failed, args.quick)
    common.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (common.RESULTS_DIR / "summary.md").write_text(summary)
    if not args.quick:
        _update_readme()
    print()
    print(summary)
    print(f"total {time.monotonic() - started_all:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
