"""Hookway's ingest at two git revisions, paired: ``python -m bench.ingest_ab REV_A REV_B``.

``--app-a`` / ``--app-b`` serve another ASGI app of a side's tree instead of
``hookway.asgi:application`` (e.g. bench/peers/hookway_core.py, Hookway's ingest work
without Django's request and response).

For finding what made ingest slower (or checking that a change made it faster). Each
revision is exported (``git archive``) to a temporary folder and served from there by
this checkout's virtualenv, exactly as bench/ingest.py serves Hookway: one uvicorn
process (``--processes`` for more), the embedded dispatcher off, SQLite with WAL and
``synchronous=FULL``, ``POST /hooks/bench`` signed with HMAC-SHA256, wrk with 64
connections. Every run starts from a fresh copy of that revision's migrated database.

Rounds run in ABBA order (A B B A A B B A ...), so a drift in the machine's load weighs
on both revisions alike; the result is the median of each side and of the per-pair
ratios B/A, with every run listed. Writes ``bench/results/ingest_ab.md`` (and .json).

Older revisions need nothing of the newer ones: their settings module is found
(``hookway.standalone.settings``, else ``hookway.settings``), and the config file and
environment variables used exist since before 50c3fd5.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import common, ingest


@dataclass
class Side:
    rev: str
    label: str
    tree: Path
    template_db: Path
    env: dict[str, str]
    app: str = "hookway.asgi:application"


def _commit(rev: str) -> str:
    return subprocess.run(
        ["git", "-C", str(common.ROOT), "log", "-1", "--format=%h %s", rev],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def prepare(rev: str, work: Path, name: str) -> Side:
    """Export ``rev`` (or the working tree, for ``WORKTREE``) and migrate a template DB."""
    tree = work / name
    if rev == "WORKTREE":
        # The checkout as it is on disk, uncommitted changes included.
        shutil.copytree(
            common.ROOT,
            tree,
            ignore=shutil.ignore_patterns(".git", ".venv", "var", "node_modules", "__pycache__"),
        )
        label = "working tree"
    else:
        tree.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(common.ROOT), "archive", rev], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        label = _commit(rev)
    settings = (
        "hookway.standalone.settings"
        if (tree / "hookway" / "standalone" / "settings.py").is_file()
        else "hookway.settings"
    )
    config = work / f"{name}.toml"
    config.write_text(ingest.HOOKWAY_CONFIG)
    template = work / f"{name}-template.sqlite3"
    env = {
        "DJANGO_SETTINGS_MODULE": settings,
        "HOOKWAY_CONFIG": str(config),
        "HOOKWAY_EMBEDDED_DISPATCHER": "false",
        "HOOKWAY_LOG_LEVEL": "WARNING",
        "HOOKWAY_DEMO": "true",
        # The exported tree first: this checkout is on sys.path too (editable install).
        "PYTHONPATH": str(tree),
    }
    out = subprocess.run(
        [common.PYTHON, "manage.py", "migrate", "--no-input", "-v0"],
        cwd=tree,
        env={**os.environ, **env, "DATABASE_URL": f"sqlite:///{template}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if out.returncode:
        raise RuntimeError(f"migrate at {rev} failed:\n{out.stdout}{out.stderr}")
    return Side(rev, label, tree, template, env)


@dataclass
class Measured:
    wrk: common.WrkResult
    cpu_us_per_request: float  # the server's CPU time over the requests answered

    @property
    def rps(self) -> float:
        return self.wrk.rps


def measure(
    side: Side, work: Path, processes: int, warmup: float, duration: float, run_no: int
) -> Measured:
    db = work / f"run-{run_no}.sqlite3"
    shutil.copy(side.template_db, db)
    port = common.free_port()
    url = f"http://{common.HOST}:{port}/hooks/bench"
    cmd = common.hookway_uvicorn(port, "--workers", str(processes), "--log-level", "warning")
    cmd[cmd.index("hookway.asgi:application")] = side.app
    env = {**side.env, "DATABASE_URL": f"sqlite:///{db}"}
    server = common.Server(f"run-{run_no}", cmd, env=env, cwd=side.tree, logdir=work)
    with server:
        server.wait_http(url, timeout=60)
        common.run_wrk(url, duration=warmup, body=ingest.BODY, headers=ingest.HEADERS, logdir=work)
        cpu_before = common.cpu_snapshot(server.pid)
        started = time.monotonic()
        result = common.run_wrk(
            url, duration=duration, body=ingest.BODY, headers=ingest.HEADERS, logdir=work
        )
        cpu = common.cpu_usage(
            cpu_before, common.cpu_snapshot(server.pid), time.monotonic() - started, result.requests
        )
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return Measured(result, cpu.us_per_request)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_ab", description=__doc__)
    parser.add_argument("rev_a", help="a git revision, or WORKTREE for the files on disk")
    parser.add_argument("rev_b", help="a git revision, or WORKTREE for the files on disk")
    parser.add_argument("--pairs", type=int, default=4, help="ABBA blocks (4 runs each)")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--name", default="ingest_ab", help="bench/results/<name>.md")
    parser.add_argument("--app-a", default="hookway.asgi:application", help="A's ASGI app")
    parser.add_argument("--app-b", default="hookway.asgi:application", help="B's ASGI app")
    args = parser.parse_args(argv)
    common.COMMAND = shlex.join(
        ["python", "-m", "bench.ingest_ab", *(argv if argv is not None else sys.argv[1:])]
    )
    started = time.monotonic()
    load_before = common.load_average()
    work = common.tempdir("ingest-ab")
    try:
        a = prepare(args.rev_a, work, "a")
        b = prepare(args.rev_b, work, "b")
        a.app, b.app = args.app_a, args.app_b
        if a.app != "hookway.asgi:application":
            a.label += f" ({a.app})"
        if b.app != "hookway.asgi:application":
            b.label += f" ({b.app})"
        runs: dict[str, list[Measured]] = {"A": [], "B": []}
        order = "ABBA" * args.pairs
        for i, key in enumerate(order):
            side = a if key == "A" else b
            r = measure(side, work, args.processes, args.warmup, args.duration, i)
            runs[key].append(r)
            print(
                f"   {key} {side.rev[:12]:12} run {i + 1:2}/{len(order)}: {r.rps:7.0f} req/s"
                f"  {r.cpu_us_per_request:5.0f} CPU us/req  p50 {r.wrk.p50_ms:6.1f} ms"
                f"  p99 {r.wrk.p99_ms:6.1f} ms  non-2xx {r.wrk.non_2xx}"
                f"  load {common.load_average()}",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # Pairs: each A with the B next to it in ABBA order (runs 0-1, 2-3 of each block).
    ratios = []
    cpu_ratios = []
    seq_a, seq_b = iter(runs["A"]), iter(runs["B"])
    for _ in range(len(order) // 2):
        ra, rb = next(seq_a), next(seq_b)
        ratios.append(rb.rps / ra.rps)
        cpu_ratios.append(rb.cpu_us_per_request / ra.cpu_us_per_request)
    med = common.median
    rows = [
        [
            key,
            side.label,
            med(r.rps for r in runs[key]),
            " / ".join(f"{r.rps:,.0f}" for r in runs[key]),
            med(r.cpu_us_per_request for r in runs[key]),
            " / ".join(f"{r.cpu_us_per_request:,.0f}" for r in runs[key]),
            med(r.wrk.p99_ms for r in runs[key]),
            sum(r.wrk.non_2xx + r.wrk.socket_errors for r in runs[key]),
        ]
        for key, side in (("A", a), ("B", b))
    ]
    change = med(ratios)
    cpu_change = med(cpu_ratios)
    result = common.Result(
        title=f"Ingest A/B: {args.rev_a} vs {args.rev_b}, {args.processes} process(es)",
        columns=[
            "side",
            "revision",
            "req/s (median)",
            "req/s per run",
            "server CPU µs per request (median)",
            "CPU µs per run",
            "p99 ms",
            "errors",
        ],
        rows=rows,
        notes=[
            f"B/A per pair (ABBA order): {', '.join(f'{x:.3f}' for x in ratios)}; median "
            f"{change:.3f} ({100 * (change - 1):+.1f} %), min {min(ratios):.3f}, "
            f"max {max(ratios):.3f}.",
            f"Server CPU per request, B/A per pair: {', '.join(f'{x:.3f}' for x in cpu_ratios)};"
            f" median {cpu_change:.3f} ({100 * (cpu_change - 1):+.1f} %). CPU time per "
            "request moves much less than req/s with the machine's other load (a process "
            "waiting for a core spends no CPU), so on a shared machine it is the steadier "
            "figure; req/s is what a sender sees.",
            f"Each run: a fresh copy of the revision's migrated SQLite database, uvicorn "
            f"--workers {args.processes}, embedded dispatcher off, {args.warmup:.0f} s "
            f"warm-up then {args.duration:.0f} s of wrk (64 connections, 2 threads, the "
            "1 KB signed body of bench/ingest.py).",
        ],
        seconds=time.monotonic() - started,
        load=(load_before, common.load_average()),
        script="bench/ingest_ab.py",
    )
    md, _ = common.write_result(args.name, result)
    print(common.render_markdown(args.name, result))
    print(f"wrote {md.relative_to(common.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
