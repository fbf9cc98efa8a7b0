"""Building blocks shared by the delivery-side benchmarks (delivery, fanout, http_client):
the webhook receiver process, throwaway Hookway databases and configs, the producers that
fill the queue, and per-process sampling (peak RSS, CPU time).

The generic harness (Server, Result, write_result, ...) is bench.common; this module only
adds what is specific to measuring deliveries.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import HOST, PYTHON, Server, free_port, percentile, run_checked

# --------------------------------------------------------------------------- receiver


class Receiver:
    """The benchmark receiver (bench.peers.receiver) in its own process.

    ``with Receiver(logdir) as rx: url = rx.url(100)``; ``rx.reset()`` between runs,
    ``rx.wait_for(n, timeout)`` until n webhooks arrived, ``rx.arrivals()`` for the times.
    """

    def __init__(self, logdir: Path, delay_ms: float = 100.0) -> None:
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.server = Server(
            "receiver",
            [
                PYTHON,
                "-m",
                "bench.peers.receiver",
                "--port",
                str(self.port),
                "--delay-ms",
                str(delay_ms),
            ],
            logdir=logdir,
        )

    def __enter__(self) -> Receiver:
        self.server.start()
        try:
            self.server.wait_http(self.base + "/_stats", timeout=15)
        except BaseException:  # re-raised: don't leave the receiver running
            self.server.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(timeout=5)

    @property
    def pid(self) -> int:
        return self.server.pid

    def url(self, delay_ms: float, tag: str = "hook") -> str:
        """The URL of a destination that answers after ``delay_ms``."""
        return f"{self.base}/delay/{round(delay_ms)}/{tag}"

    def _call(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(
            self.base + path, method=method, data=b"" if method == "POST" else None
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        return dict(self._call("/_stats"))

    def arrivals(self) -> list[tuple[str, float, str]]:
        return [(a[0], a[1], a[2]) for a in self._call("/_arrivals")]

    def reset(self) -> None:
        self._call("/_reset", method="POST")

    def wait_for(
        self,
        count: int,
        timeout: float,
        *,
        alive: Server | None = None,
        stall: float | None = None,
    ) -> dict[str, Any]:
        """Poll until ``count`` webhooks arrived, ``timeout`` passed, ``alive`` (a worker)
        exited, or nothing new arrived for ``stall`` seconds. Returns the last stats."""
        deadline = time.monotonic() + timeout
        last_count, last_change = -1, time.monotonic()
        while True:
            stats = self.stats()
            now = time.monotonic()
            if stats["count"] != last_count:
                last_count, last_change = stats["count"], now
            if stats["count"] >= count or now >= deadline:
                return stats
            if alive is not None and not alive.alive():
                return stats
            if stall is not None and now - last_change > stall:
                return stats
            time.sleep(0.05)


def first_arrivals(arrivals: Iterable[tuple[str, float, str]]) -> dict[str, float]:
    """bench_id -> time of its first arrival (later ones are at-least-once duplicates)."""
    first: dict[str, float] = {}
    for bench_id, at, _ in arrivals:
        if bench_id and bench_id not in first:
            first[bench_id] = at
    return first


def latencies_ms(acks: dict[str, float], arrivals: Iterable[tuple[str, float, str]]) -> list[float]:
    """Ack-to-delivered for every acked event that arrived, in milliseconds."""
    first = first_arrivals(arrivals)
    return [(first[k] - t) * 1000 for k, t in acks.items() if k in first]


def delivery_rate(times: Sequence[float], answer_s: float) -> float:
    """Deliveries per second: n / (last arrival - first arrival + the receiver's answer
    time), i.e. from the first request's arrival to the last one's answer. Right for a
    worker that sends one at a time and for one that sends all n at once."""
    if not times:
        return float("nan")
    return len(times) / (max(times) - min(times) + answer_s)


def p50_p99(values: Sequence[float]) -> tuple[float, float]:
    return percentile(values, 50), percentile(values, 99)


# --------------------------------------------------------------------------- sampling


class Phases:
    """Prints how long each phase of a benchmark took (progress for the person waiting)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = time.monotonic()

    @contextlib.contextmanager
    def __call__(self, what: str) -> Iterator[None]:
        began = time.monotonic()
        try:
            yield
        finally:
            now = time.monotonic()
            print(
                f"   {self.name}: {what} {now - began:.1f} s (total {now - self.started:.0f} s)",
                flush=True,
            )


class ProcSampler:
    """Peak RSS and CPU seconds of a process tree, sampled in a thread every ``interval``.

    CPU time is the sum over the tree at the last sample before the process exited (so it
    can miss the final ``interval``).
    """

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_rss = 0
        self.cpu_seconds = 0.0
        self._cpu_by_pid: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="proc-sampler", daemon=True)

    def _sample(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        rss = 0
        for proc in procs:
            with contextlib.suppress(psutil.Error), proc.oneshot():
                rss += proc.memory_info().rss
                times = proc.cpu_times()
                self._cpu_by_pid[proc.pid] = times.user + times.system
        self.peak_rss = max(self.peak_rss, rss)
        self.cpu_seconds = sum(self._cpu_by_pid.values())

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    @property
    def peak_rss_mb(self) -> float:
        return self.peak_rss / 2**20

    def __enter__(self) -> ProcSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def read_lag(path: Path) -> dict[str, float]:
    """The loop-lag summary a Hookway process wrote at exit ({} if it wrote none)."""
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


# --------------------------------------------------------------------------- hookway


@dataclass(frozen=True)
class Dest:
    name: str
    url: str
    concurrency: int = 20
    timeout: float = 30.0


def write_config(path: Path, destinations: Sequence[Dest], source: str = "bench") -> Path:
    """A hookway.toml: one unverified source routed to every destination."""
    lines = ["[[sources]]", f'slug = "{source}"', 'verify = "none"', ""]
    for d in destinations:
        lines += [
            "[[destinations]]",
            f'name = "{d.name}"',
            f'url = "{d.url}"',
            f"timeout_seconds = {d.timeout}",
            "max_attempts = 3",
            f"concurrency = {d.concurrency}",
            "",
        ]
    for d in destinations:
        lines += ["[[routes]]", f'source = "{source}"', f'destination = "{d.name}"', ""]
    path.write_text("\n".join(lines))
    return path


def hookway_env(db: Path, config: Path, **extra: str) -> dict[str, str]:
    """Environment for a Hookway process on this SQLite file and config."""
    return {
        "DJANGO_SETTINGS_MODULE": "hookway.standalone.settings",
        "DATABASE_URL": f"sqlite:///{db}",
        "HOOKWAY_CONFIG": str(config),
        "HOOKWAY_ALLOW_PRIVATE_DESTINATIONS": "true",
        "HOOKWAY_LOG_LEVEL": "WARNING",
        # Runs are stopped with SIGTERM once measured; don't wait the default 10 s for
        # deliveries nobody is counting any more.
        "HOOKWAY_SHUTDOWN_GRACE": "2",
        **extra,
    }


def migrate_hookway(env: dict[str, str]) -> None:
    run_checked([PYTHON, "manage.py", "migrate", "--no-input", "-v0"], env=env)


def produce_hookway(
    env: dict[str, str],
    n: int,
    *,
    prefix: str = "ev",
    rate: float = 0.0,
    out: Path | None = None,
    timeout: float = 120.0,
) -> dict[str, float]:
    """Store n events (burst, or ``rate`` per second); return their ack times if ``out``."""
    cmd = [PYTHON, "-m", "bench.peers.hookway_produce", "--n", str(n), "--prefix", prefix]
    cmd += ["--rate", str(rate)]
    if out is not None:
        cmd += ["--out", str(out)]
    run_checked(cmd, env=env, timeout=timeout)
    return dict(json.loads(out.read_text())) if out is not None else {}


def copy_db(src: Path, dst: Path) -> Path:
    """Copy a closed, checkpointed SQLite file (a template) to a fresh path."""
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            Path(str(dst) + suffix).unlink()
    shutil.copyfile(src, dst)
    return dst


def dispatch_cmd(concurrency: int, *, until_empty: bool = True) -> list[str]:
    cmd = [PYTHON, "manage.py", "dispatch", "--concurrency", str(concurrency)]
    return cmd + (["--until-empty"] if until_empty else [])


def uvicorn_cmd(port: int) -> list[str]:
    return [
        PYTHON,
        "-m",
        "uvicorn",
        "hookway.asgi:application",
        "--host",
        HOST,
        "--port",
        str(port),
        "--lifespan",
        "on",
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "10",
    ]


def wait_exit(server: Server, timeout: float) -> bool:
    """Wait up to ``timeout`` for a process that stops by itself; True if it did."""
    assert server.proc is not None
    try:
        server.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return True
