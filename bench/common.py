"""The shared benchmark harness.

Interface every benchmark follows:

- A module ``bench/<name>.py`` exposes ``run(quick: bool) -> Result``. ``quick`` means a
  smoke run (tiny durations, so CI can keep the code from rotting; its timings mean
  nothing). ``run`` must stop by itself within its time budget, start its servers with
  ``Server`` (always inside ``with`` / ``try/finally``) and only talk to 127.0.0.1.
- ``python -m bench`` (bench/__main__.py) calls ``run`` and then
  ``write_result(name, result)``, which writes ``bench/results/<name>.md`` (the table,
  targets, notes, machine, versions and the exact command) and ``bench/results/<name>.png``.

Building blocks:

- ``machine_info()`` / ``versions()``: what the numbers were measured on.
- ``free_port()``: a free TCP port on 127.0.0.1.
- ``Server``: a process with its log in a temp dir, ``wait_http(url)`` until it answers,
  ``stop()`` (SIGTERM, wait, then SIGKILL the whole process group), ``peak_rss()``.
- ``run_wrk(...)``: wrk with a Lua script (method, body, headers); returns a ``WrkResult``
  (req/s, p50/p99 latency, non-2xx, socket errors, the raw output).
- ``RssSampler``: peak RSS of a process tree (psutil), sampled in a thread.
- ``Result`` / ``Target`` / ``Chart``: what a benchmark returns; ``Result.chart`` holds
  grouped bar charts, or ``Result.plot`` a callback drawing on a matplotlib Figure.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shlex
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
PYTHON = sys.executable
HOST = "127.0.0.1"

# Set by bench/__main__.py to the command line that produced the results.
COMMAND = "python -m bench"

VERSIONED_PACKAGES = (
    "django",
    "asgiref",
    "uvicorn",
    "uvloop",
    "httptools",
    "gunicorn",
    "uvicorn-worker",
    "hypercorn",
    "daphne",
    "twisted",
    "granian",
    "httpx",
    "aiohttp",
    "celery",
    "redis",
    "kombu",
    "django-tasks",
    "django-tasks-db",
    "psutil",
)


# --------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        import psutil

        return psutil.virtual_memory().total / 2**30
    except ImportError:  # pragma: no cover - psutil is in the bench group
        return 0.0


def machine_info() -> dict[str, str]:
    """Cores, memory, CPU model, kernel and OS of this machine."""
    return {
        "cores": str(os.cpu_count()),
        "memory": f"{_memory_gib():.1f} GiB",
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "os": platform.platform(terse=True),
    }


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them: on a shared
    machine they say how much else was running while a figure was measured."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds of every thread of a server's process tree, and the machine's
    /proc/stat counters, at one moment (``cpu_snapshot``)."""

    threads: dict[tuple[int, int], float]  # (pid, tid): user + system seconds
    machine: tuple[int, ...]


@dataclass(frozen=True)
class CpuUsage:
    """What a server used between two snapshots (``cpu_usage``)."""

    us_per_request: float  # the process tree's CPU time over the requests answered
    cores: float  # the process tree's CPU time over the wall time: cores busy
    busiest: list[tuple[float, bool]]  # the busiest threads' cores, most first; True: a main thread
    machine_idle: float  # the share of the machine's cores idle, 0..1


def _thread_seconds(pid: int) -> dict[tuple[int, int], float]:
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        out[(pid, int(task.name))] = (int(fields[11]) + int(fields[12])) / tick
    return out


def cpu_snapshot(pid: int) -> CpuSnapshot:
    """CPU time of every thread of ``pid`` and its descendants so far (Linux /proc)."""
    import psutil

    threads: dict[tuple[int, int], float] = {}
    try:
        procs = [pid, *(p.pid for p in psutil.Process(pid).children(recursive=True))]
    except psutil.Error:
        procs = []
    for proc in procs:
        with contextlib.suppress(OSError):
            threads.update(_thread_seconds(proc))
    return CpuSnapshot(threads, machine_ticks())


def machine_ticks() -> tuple[int, ...]:
    """The machine's CPU time counters, all cores (the first line of /proc/stat: user,
    nice, system, idle, iowait, ...)."""
    with open("/proc/stat") as stat:
        return tuple(int(x) for x in stat.readline().split()[1:])


def cpu_usage(before: CpuSnapshot, after: CpuSnapshot, seconds: float, requests: int) -> CpuUsage:
    """What the server used from ``before`` to ``after`` (``seconds`` apart, ``requests``
    answered). A thread that ended in between (a gunicorn worker recycled) is not
    counted, so the figures are a floor."""
    used = {
        key: max(0.0, total - before.threads.get(key, 0.0)) for key, total in after.threads.items()
    }
    total = sum(used.values())
    ticks = [b - a for a, b in zip(before.machine, after.machine, strict=True)]
    busiest = sorted(((v / seconds, pid == tid) for (pid, tid), v in used.items()), reverse=True)
    return CpuUsage(
        us_per_request=1e6 * total / max(1, requests),
        cores=total / seconds,
        busiest=busiest[:3],
        machine_idle=(ticks[3] + ticks[4]) / max(1, sum(ticks)),  # idle + iowait
    )


def _wrk_version() -> str:
    try:
        out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0].split(" [")[0] if text else "unknown"


def versions() -> dict[str, str]:
    """Versions of Python, SQLite, wrk and every package a benchmark uses."""
    found = {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "wrk": _wrk_version(),
    }
    for name in VERSIONED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


# --------------------------------------------------------------------------- processes


def hookway_uvicorn(port: int, *extra: str) -> list[str]:
    """The command that serves Hookway as ``make run`` does (one uvicorn process, the
    lifespan on, no access log), on ``port``, with ``extra`` uvicorn options."""
    return [
        PYTHON, "-m", "uvicorn", "hookway.asgi:application", "--host", HOST,
        "--port", str(port), "--lifespan", "on", "--no-access-log", *extra,
    ]  # fmt: skip


@dataclass(frozen=True)
class AsgiServer:
    """An ASGI server Django documents, as docs/operations.md runs Hookway on it.

    ``lifespan``: whether it runs the ASGI lifespan, and so applies HOOKWAY_CONFIG and
    starts the embedded dispatcher (found by tests/e2e/test_servers.py, which fails if
    this says otherwise). ``workers``: whether it can fork several worker processes."""

    name: str
    lifespan: bool
    workers: bool

    def command(self, port: int, workers: int = 1) -> list[str]:
        """The argv serving Hookway on HOST:``port`` with ``workers`` processes, no
        access log (Hookway logs every request itself)."""
        if workers > 1 and not self.workers:
            raise ValueError(f"{self.name} runs one process")
        app = "hookway.asgi:application"
        bind = f"{HOST}:{port}"
        argv = {
            "uvicorn": [
                "uvicorn", app, "--host", HOST, "--port", str(port), "--lifespan", "on",
                "--no-access-log", "--workers", str(workers),
            ],
            "gunicorn": [
                "gunicorn", app, "-k", "hookway.server.UvicornWorker", "-w", str(workers),
                "-b", bind,
            ],
            # hypercorn evaluates the name in the module's namespace (hookway/standalone/asgi.py).
            "hypercorn": [
                "hypercorn", "hookway.standalone.asgi:application", "-b", bind,
                "-w", str(workers), "-k", "uvloop",
            ],
            "daphne": ["daphne", "-b", HOST, "-p", str(port), "--access-log", os.devnull, app],
            "granian": [
                "granian", "--interface", "asgi", "--host", HOST, "--port", str(port),
                "--workers", str(workers), "--workers-kill-timeout", "35", app,
            ],
        }[self.name]  # fmt: skip
        return [PYTHON, "-m", *argv]


ASGI_SERVERS = {
    s.name: s
    for s in (
        AsgiServer("uvicorn", lifespan=True, workers=True),
        AsgiServer("gunicorn", lifespan=True, workers=True),
        AsgiServer("hypercorn", lifespan=True, workers=True),
        AsgiServer("daphne", lifespan=False, workers=False),
        AsgiServer("granian", lifespan=True, workers=True),
    )
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def tempdir(prefix: str) -> Path:
    """A fresh temporary directory (the caller removes it, e.g. with shutil.rmtree)."""
    return Path(tempfile.mkdtemp(prefix=f"hookway-bench-{prefix}-"))


class ServerError(RuntimeError):
    """A server process died or never answered; the message holds its log's tail."""


def http_answers(url: str, timeout: float = 1.0) -> bool:
    """True when something answers HTTP at url (any status counts)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


class Server:
    """A server (or worker) process started for one benchmark.

    Its stdout and stderr go to ``<logdir>/<name>.log``. It runs in its own process group,
    so ``stop()`` can kill the workers it forked even if the master hangs. Use it as a
    context manager (or call ``stop()`` in ``finally``).
    """

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path = ROOT,
        logdir: Path | None = None,
    ) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.logdir = logdir or tempdir("logs")
        self.log_path = self.logdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, "server not started"
        return self.proc.pid

    def start(self) -> Server:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_http(self, url: str, timeout: float = 30.0) -> None:
        """Wait until url answers HTTP; raise ServerError if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServerError(f"{self.name} exited early:\n{self.log_tail()}")
            if http_answers(url):
                return
            time.sleep(0.1)
        raise ServerError(f"{self.name} did not answer {url} within {timeout}s:\n{self.log_tail()}")

    def wait_log(self, text: str, timeout: float = 30.0) -> None:
        """Wait until the log contains text (for processes that serve no HTTP)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_tail(200):
                return
            if not self.alive():
                raise ServerError(f"{self.name} exited early:\n{self.log_tail()}")
            time.sleep(0.1)
        raise ServerError(f"{self.name} never logged {text!r}:\n{self.log_tail()}")

    def stop(self, timeout: float = 20.0, sig: int = signal.SIGTERM) -> int | None:
        """Stop gracefully (sig to the main process, wait up to timeout), then SIGKILL the
        process group. Returns the exit code (None if it had to be killed)."""
        if self.proc is None:
            return None
        code: int | None = None
        try:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(sig)
                try:
                    code = self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    code = None
            else:
                code = self.proc.returncode
        finally:
            # Workers left behind by a master that died or hung.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
            if self._log is not None:
                self._log.close()
                self._log = None
        return code

    def __enter__(self) -> Server:
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_checked(
    cmd: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 120.0
) -> str:
    """Run a short command (e.g. migrate) to completion; raise with its output if it fails."""
    out = subprocess.run(
        list(cmd),
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(cmd)} failed ({out.returncode}):\n{out.stdout}{out.stderr}"
        )
    return out.stdout


# --------------------------------------------------------------------------- memory


def tree_rss(pid: int) -> int:
    """Resident memory (bytes) of a process and all its descendants right now."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


class RssSampler:
    """Samples the RSS of process trees in a thread; ``peak`` is the highest sum seen.

    ``with RssSampler([server.pid]) as rss: ...; rss.peak_mb``
    """

    def __init__(self, pids: Iterable[int], interval: float = 0.2) -> None:
        self.pids = list(pids)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, sum(tree_rss(pid) for pid in self.pids))
            self._stop.wait(self.interval)

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# --------------------------------------------------------------------------- wrk

# wrk's done() hook prints exact counts and percentiles as one JSON line, so nothing has
# to be parsed from its human-readable summary (which rounds).
_WRK_LUA = """
wrk.method = {method}
wrk.body = {body}
{headers}
done = function(summary, latency, requests)
  io.write(string.format(
    'WRK_JSON {{"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, '
    .. '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, '
    .. '"p99_us": %d, "max_us": %d, "mean_us": %f}}\\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""


def _lua_string(value: str | bytes) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return (
        '"'
        + "".join(f"\\{b:03d}" if b < 32 or b > 126 or b in b'"\\' else chr(b) for b in raw)
        + '"'
    )


@dataclass
class WrkResult:
    """One wrk run. ``non_2xx`` counts non-2xx/3xx answers (wrk's "status" errors)."""

    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    connect_errors: int
    read_errors: int
    write_errors: int
    timeouts: int
    output: str

    @property
    def socket_errors(self) -> int:
        return self.connect_errors + self.read_errors + self.write_errors + self.timeouts

    @property
    def ok(self) -> int:
        """Answers with a 2xx/3xx status (the benchmarked servers send no 3xx)."""
        return self.requests - self.non_2xx


def run_wrk(
    url: str,
    *,
    duration: float,
    connections: int = 64,
    threads: int = 2,
    method: str = "POST",
    body: bytes | str = b"",
    headers: dict[str, str] | None = None,
    timeout_s: float = 5.0,
    logdir: Path | None = None,
    lua_prelude: str = "",
) -> WrkResult:
    """Run wrk against url for ``duration`` seconds and return its numbers.

    The request is fixed (same body and headers every time). ``timeout_s`` is wrk's
    per-request timeout: slower answers count as timeouts, not latency samples.
    ``lua_prelude`` is more Lua for the script (e.g. a ``delay`` hook pacing requests).
    """
    header_lines = "\n".join(
        f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in (headers or {}).items()
    )
    script = lua_prelude + _WRK_LUA.format(
        method=_lua_string(method), body=_lua_string(body), headers=header_lines
    )
    folder = logdir or tempdir("wrk")
    script_path = folder / f"wrk-{os.getpid()}-{time.monotonic_ns()}.lua"
    script_path.write_text(script)
    seconds = max(1, round(duration))
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={max(1, round(timeout_s))}s",
        "--latency",
        "-s",
        str(script_path),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + timeout_s + 30)
    text = out.stdout + out.stderr
    line = next((ln for ln in text.splitlines() if ln.startswith("WRK_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{text}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    duration_s = data["duration_us"] / 1e6
    return WrkResult(
        requests=data["requests"],
        duration_s=duration_s,
        rps=data["requests"] / duration_s if duration_s else 0.0,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        non_2xx=data["status"],
        connect_errors=data["connect"],
        read_errors=data["read"],
        write_errors=data["write"],
        timeouts=data["timeout"],
        output=text,
    )


# --------------------------------------------------------------------------- stats


def median(values: Iterable[float]) -> float:
    items = list(values)
    return statistics.median(items) if items else float("nan")


def percentile(values: Iterable[float], p: float) -> float:
    """The p-th percentile (0-100, nearest rank) of values; nan if empty."""
    items = sorted(values)
    if not items:
        return float("nan")
    rank = min(len(items) - 1, max(0, round(p / 100 * len(items) + 0.5) - 1))
    return items[rank]


def ratio(a: float, b: float) -> str:
    """a / b formatted as '3.20x' ('n/a' when b is zero)."""
    if not b or b != b or a != a:
        return "n/a"
    return f"{a / b:.2f}x"


def fmt(value: Any, digits: int = 1) -> str:
    if isinstance(value, float):
        if value != value:
            return "n/a"
        return f"{value:,.{digits}f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


# --------------------------------------------------------------------------- results


@dataclass
class Target:
    """A goal from issue 4, what was measured, and whether it was met (None: not judged)."""

    goal: str
    measured: str
    met: bool | None


@dataclass
class Chart:
    """Grouped bars: one group per label, one bar per series (same length as labels)."""

    title: str
    ylabel: str
    labels: list[str]
    series: dict[str, list[float]]
    log: bool = False


@dataclass
class Result:
    title: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    plot: Callable[[Any], None] | None = None  # draws on a matplotlib Figure instead
    extra_tables: list[tuple[str, list[str], list[list[Any]]]] = field(default_factory=list)
    figsize: tuple[float, float] | None = None  # inches; default fits the charts
    quick: bool = False
    seconds: float = 0.0  # wall time of run(), filled in by bench/__main__.py
    # Load averages before and after run(), filled in by bench/__main__.py.
    load: tuple[str, str] = ("", "")
    script: str = ""  # the module that wrote the page, when it is not bench/<name>.py


def _md_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    def cell(v: Any) -> str:
        return fmt(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def _met(value: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "n/a"}[value]


def render_markdown(name: str, result: Result) -> str:
    lines = [f"# {result.title}", ""]
    if result.quick:
        lines += [
            "> **Quick (smoke) run**: tiny durations, only proves the code runs. "
            "Do not read anything into these numbers.",
            "",
        ]
    if result.charts or result.plot:  # write_result draws <name>.png only then
        lines += [f"![{name}]({name}.png)", ""]
    if result.rows:
        lines += [*_md_table(result.columns, result.rows), ""]
    for caption, columns, rows in result.extra_tables:
        lines += [f"**{caption}**", "", *_md_table(columns, rows), ""]
    if result.targets:
        lines += ["## Targets (goals from issue 4, not assertions)", ""]
        lines += _md_table(
            ["goal", "measured", "met?"],
            [[t.goal, t.measured, _met(t.met)] for t in result.targets],
        )
        lines.append("")
    if result.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in result.notes] + [""]
    lines += ["## Machine and versions", ""]
    lines += [f"- {k}: {v}" for k, v in machine_info().items()]
    if result.load[0]:
        lines.append(
            f"- load average (1, 5, 15 min): {result.load[0]} before the run, "
            f"{result.load[1]} after"
        )
    lines.append("- " + ", ".join(f"{k} {v}" for k, v in versions().items()))
    lines += [
        "",
        "## Command",
        "",
        "```",
        COMMAND,
        "```",
        "",
        f"Generated by `{result.script or f'bench/{name}.py'}` in {result.seconds:.0f} s "
        f"on {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; do not edit by hand.",
        "",
    ]
    return "\n".join(lines)


def _draw_charts(fig: Any, charts: Sequence[Chart]) -> None:
    axes = fig.subplots(1, len(charts), squeeze=False)[0]
    for ax, chart in zip(axes, charts, strict=True):
        n = max(1, len(chart.series))
        width = 0.8 / n
        xs = range(len(chart.labels))
        for i, (series, values) in enumerate(chart.series.items()):
            positions = [x - 0.4 + width * (i + 0.5) for x in xs]
            bars = ax.bar(positions, values, width, label=series if n > 1 else None)
            for bar, value in zip(bars, values, strict=True):
                if value == value:  # not nan
                    ax.annotate(
                        fmt(float(value), 0 if value >= 100 else 1),
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center",
                        va="bottom",
                        fontsize=7,
                    )
        ax.set_xticks(list(xs))
        ax.set_xticklabels(chart.labels, rotation=20, ha="right", fontsize=8)
        ax.set_title(chart.title, fontsize=10)
        ax.set_ylabel(chart.ylabel)
        if chart.log:
            ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
        if n > 1:
            ax.legend(fontsize=7)


def write_result(name: str, result: Result) -> tuple[Path, Path | None]:
    """Write bench/results/<name>.md and <name>.png; return their paths."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    md_path = RESULTS_DIR / f"{name}.md"
    png_path: Path | None = RESULTS_DIR / f"{name}.png"
    if result.charts or result.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        width = max(7.0, 5.5 * max(1, len(result.charts)))
        fig = plt.figure(figsize=result.figsize or (width, 4.8), dpi=110)
        if result.plot is not None:
            result.plot(fig)
        else:
            _draw_charts(fig, result.charts)
        title = result.title + ("  (QUICK RUN: numbers meaningless)" if result.quick else "")
        fig.suptitle(title, fontsize=11)
        fig.tight_layout()
        fig.savefig(png_path)
        plt.close(fig)
    else:
        png_path = None
    md_path.write_text(render_markdown(name, result))
    # Machine-readable targets: summary.md is rebuilt from these, so `--only` keeps the rest.
    (RESULTS_DIR / f"{name}.json").write_text(
        json.dumps(
            {
                "title": result.title,
                "quick": result.quick,
                "command": COMMAND,
                "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "load_average": {"before": result.load[0], "after": result.load[1]},
                "targets": [vars(t) for t in result.targets],
                "columns": result.columns,
                "rows": [[fmt(v) for v in row] for row in result.rows],
            },
            indent=2,
        )
        + "\n"
    )
    return md_path, png_path
