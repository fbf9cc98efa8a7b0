"""The sender-timeout scenario, the user problem Hookway exists for.

20 senders post one webhook each, at once, with a 10 s client timeout (GitHub's); every
webhook needs 15 s of I/O to process.

- plain Django: a sync view does the work inline (``time.sleep(15)`` stands in for the
  I/O) and then answers, under gunicorn with 2 workers x 10 threads (gthread): 20
  requests in parallel, so Django is never queueing; the best case for it. (gunicorn's
  default sync workers would be worse: 2 at a time, the last one done after 150 s.)
- Hookway: one uvicorn process with the embedded dispatcher, as ``make run`` runs it. The
  webhook is acknowledged once stored; the dispatcher then delivers it to a local
  receiver (bench/peers/receiver.py) that answers after 15 s (destination
  ``timeout_seconds = 20``). Processing counts as finished when the delivery is recorded
  ``succeeded`` in Hookway's database.

The senders are an asyncio + httpx client, not wrk: the scenario is 20 requests, each
with its own hard deadline, and what matters is which of them time out, not throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import shutil
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import common

SECRET = "bench-secret"


@dataclass
class Send:
    sender: int
    started: float  # unix time
    ended: float
    status: int | None  # None: timed out or failed
    error: str
    event_id: str | None = None
    processed: float | None = None  # unix time the work finished

    @property
    def seconds(self) -> float:
        return self.ended - self.started


async def _send(
    client: httpx.AsyncClient, url: str, sender: int, deadline: float, go: asyncio.Event
) -> Send:
    body = f'{{"event_name": "job", "sender": {sender}}}'.encode()
    headers = {
        "Content-Type": "application/json",
        "X-Sender": str(sender),
        "X-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }
    await go.wait()
    started = time.time()
    try:
        async with asyncio.timeout(deadline):
            response = await client.post(url, content=body, headers=headers)
    except TimeoutError:
        return Send(sender, started, time.time(), None, "timeout")
    except httpx.HTTPError as exc:
        return Send(sender, started, time.time(), None, type(exc).__name__)
    event_id = None
    with contextlib.suppress(ValueError):
        event_id = response.json().get("id")
    return Send(sender, started, time.time(), response.status_code, "", event_id)


async def _senders(url: str, count: int, deadline: float) -> list[Send]:
    go = asyncio.Event()
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    # The client's own timeout is looser; asyncio.timeout enforces the sender's deadline.
    async with httpx.AsyncClient(timeout=deadline + 5, limits=limits) as client:
        tasks = [asyncio.create_task(_send(client, url, i, deadline, go)) for i in range(count)]
        await asyncio.sleep(0.05)
        go.set()
        return list(await asyncio.gather(*tasks))


def _wait_until(check: Any, deadline: float, interval: float = 0.2) -> bool:
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return bool(check())


def run_django(work: Path, senders: int, timeout: float, seconds: float) -> list[Send]:
    done_file = work / "django-done.txt"
    port = common.free_port()
    env = {
        "DJANGO_SETTINGS_MODULE": "bench.peers.ingest_site.settings",
        "INGEST_DB": str(work / "django.sqlite3"),
        "INGEST_WORK_SECONDS": str(seconds),
        "INGEST_DONE_FILE": str(done_file),
    }
    cmd = [
        common.PYTHON,
        "-m",
        "gunicorn",
        "bench.peers.ingest_site.wsgi:application",
        "--bind",
        f"{common.HOST}:{port}",
        "--workers",
        "2",
        "--worker-class",
        "gthread",
        "--threads",
        "10",
        "--timeout",
        "60",
        "--log-level",
        "warning",
    ]
    url = f"http://{common.HOST}:{port}/hooks/slow"
    with common.Server("django-slow", cmd, env=env, logdir=work) as server:
        # A GET on a missing path answers 404 at once; /hooks/slow would sleep.
        server.wait_http(f"http://{common.HOST}:{port}/", timeout=60)
        sends = asyncio.run(_senders(url, senders, timeout))

        def lines() -> list[str]:
            return done_file.read_text().splitlines() if done_file.exists() else []

        # Bounded: every request started at once, so all finish about `seconds` after.
        _wait_until(lambda: len(lines()) >= senders, time.monotonic() + seconds + 30)
    done = {}
    for line in lines():
        sender, at = line.split()
        done[int(sender)] = float(at)
    for s in sends:
        s.processed = done.get(s.sender)
    return sends


HOOKWAY_CONFIG = """
[[sources]]
slug = "jobs"
verify = "hmac-sha256"
secret = "{secret}"

[[destinations]]
name = "slow-worker"
url = "http://127.0.0.1:{port}/job"
timeout_seconds = 20
max_attempts = 3
concurrency = 20

[[routes]]
source = "jobs"
destination = "slow-worker"
"""


def _succeeded(db: Path) -> dict[str, float]:
    """event id -> unix time its delivery was recorded succeeded."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute(
            "SELECT event_id, completed_at FROM hookway_delivery WHERE state = 'succeeded'"
        ).fetchall()
    finally:
        conn.close()
    out = {}
    for event_id, completed in rows:
        at = datetime.fromisoformat(str(completed))
        if at.tzinfo is None:  # Django stores UTC without an offset in SQLite
            at = at.replace(tzinfo=UTC)
        out[event_id] = at.timestamp()
    return out


def run_hookway(
    work: Path, senders: int, timeout: float, seconds: float
) -> tuple[list[Send], dict[str, float]]:
    rport = common.free_port()
    port = common.free_port()
    config = work / "hookway.toml"
    config.write_text(HOOKWAY_CONFIG.format(secret=SECRET, port=rport))
    db = work / "hookway.sqlite3"
    lag_file = work / "hookway-lag.json"
    env = {
        "DJANGO_SETTINGS_MODULE": "hookway.standalone.settings",
        "DATABASE_URL": f"sqlite:///{db}",
        "HOOKWAY_CONFIG": str(config),
        "HOOKWAY_EMBEDDED_DISPATCHER": "true",
        "HOOKWAY_ALLOW_PRIVATE_DESTINATIONS": "true",
        "HOOKWAY_LOG_LEVEL": "WARNING",
        "HOOKWAY_LOOP_LAG_FILE": str(lag_file),
    }
    common.run_checked([common.PYTHON, "manage.py", "migrate", "--no-input", "-v0"], env=env)
    receiver_cmd = [
        common.PYTHON,
        "-m",
        "bench.peers.receiver",
        "--port",
        str(rport),
        "--delay-ms",
        str(seconds * 1000),
    ]
    hookway_cmd = common.hookway_uvicorn(
        port, "--log-level", "warning", "--timeout-graceful-shutdown", "5"
    )
    with (
        common.Server("receiver", receiver_cmd, logdir=work) as receiver,
        common.Server("hookway", hookway_cmd, env=env, logdir=work) as server,
    ):
        receiver.wait_log("ready", timeout=30)
        server.wait_http(f"http://{common.HOST}:{port}/hooks/jobs", timeout=60)
        sends = asyncio.run(_senders(f"http://{common.HOST}:{port}/hooks/jobs", senders, timeout))
        acked = {s.event_id for s in sends if s.event_id}
        _wait_until(
            lambda: acked <= set(_succeeded(db)), time.monotonic() + seconds + 30, interval=0.25
        )
        done = _succeeded(db)
        server.stop()
    for s in sends:
        s.processed = done.get(s.event_id or "")
    return sends, _read_lag(lag_file)


def _read_lag(path: Path) -> dict[str, float]:
    import json

    return json.loads(path.read_text()) if path.exists() else {}


def _row(label: str, server: str, sends: list[Send], timeout: float) -> list[Any]:
    t0 = min(s.started for s in sends)
    answered = [s.seconds * 1000 for s in sends if s.status is not None]
    timeouts = sum(1 for s in sends if s.error == "timeout")
    other = sum(1 for s in sends if s.status is None and s.error != "timeout")
    non_2xx = sum(1 for s in sends if s.status is not None and not 200 <= s.status < 300)
    processed = [s.processed for s in sends if s.processed is not None]
    return [
        label,
        server,
        f"{timeouts} / {len(sends)}",
        non_2xx + other,
        common.percentile(answered, 50) if answered else "none answered",
        common.percentile(answered, 99) if answered else f"> {timeout:.0f} s (all timed out)",
        f"{len(processed)} / {len(sends)}",
        max(processed) - t0 if processed else float("nan"),
    ]


def run(quick: bool) -> common.Result:
    senders, timeout, seconds = (5, 2.0, 3.0) if quick else (20, 10.0, 15.0)
    work = common.tempdir("sender-timeout")
    try:
        print(f"   plain Django: {senders} senders, {timeout:.0f} s timeout, {seconds:.0f} s work")
        django = run_django(work, senders, timeout, seconds)
        print(f"   Hookway: {senders} senders, {timeout:.0f} s timeout, {seconds:.0f} s work")
        hookway, lag = run_hookway(work, senders, timeout, seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows = [
        _row("plain Django, work inline", "gunicorn, 2 workers x 10 threads", django, timeout),
        _row("Hookway", "uvicorn, 1 process, embedded dispatcher", hookway, timeout),
    ]
    hw_timeouts = sum(1 for s in hookway if s.status is None)
    hw_acks = [s.seconds * 1000 for s in hookway if s.status is not None]
    hw_p99 = common.percentile(hw_acks, 99) if hw_acks else float("inf")
    hw_done = sum(1 for s in hookway if s.processed is not None)
    targets = [
        common.Target(
            f"Hookway: 0 sender timeouts ({senders} senders, {timeout:.0f} s timeout)",
            f"{hw_timeouts}",
            hw_timeouts == 0,
        ),
        common.Target("Hookway: ack p99 ≤ 50 ms", f"{hw_p99:.1f} ms", hw_p99 <= 50),
        common.Target(
            "Hookway: everything processed",
            f"{hw_done} / {senders} in {rows[1][-1]:.1f} s",
            hw_done == senders,
        ),
    ]
    notes = [
        f"{senders} senders post one webhook each at the same moment with a {timeout:.0f} s "
        f"client timeout; each webhook needs {seconds:.0f} s of I/O (a sleep in the Django "
        "view; a receiver answering after that long for Hookway).",
        "Senders: asyncio + httpx, one connection each, the deadline enforced with "
        "asyncio.timeout (a load generator like wrk measures throughput, not which of 20 "
        "requests hit their deadline).",
        "plain Django runs under gunicorn with 2 workers x 10 gthread threads: 20 threads, "
        "one per sender, a generous setup for the inline approach (gunicorn's default sync "
        "workers would run 2 at a time, the last finishing after "
        f"{senders // 2 * seconds:.0f} s). gunicorn does not balance connections between "
        "its workers, so a worker may take more than its 10 threads can run and the excess "
        "waits for a thread: see 'processing finished'. It times out every sender: the answer "
        "can't come before the work is done. (The work does finish: the timed-out request "
        "keeps running; a sender that retries would trigger it again.)",
        "Hookway answers once the webhook is stored (fsync'd); its embedded dispatcher "
        "delivers it to the receiver (destination timeout_seconds = 20). 'processing "
        "finished' = the last delivery recorded succeeded in Hookway's database, counted "
        "from the first send.",
        "Ack latency is measured by the sender, from just before the request to the "
        "answer; 'none answered' means every request timed out.",
    ]
    if lag:
        notes.append(
            f"Hookway event-loop lag over the run: p99 {lag.get('p99_ms', 0):.1f} ms, "
            f"max {lag.get('max_ms', 0):.1f} ms."
        )

    horizon = max(
        max(s.processed or s.ended, s.ended) - min(x.started for x in sends)
        for sends in (django, hookway)
        for s in sends
    )

    def plot(fig: Any) -> None:
        axes = fig.subplots(1, 2, sharey=True)
        for ax, (name, sends) in zip(
            axes, (("plain Django, work inline", django), ("Hookway", hookway)), strict=True
        ):
            t0 = min(s.started for s in sends)
            for s in sends:
                color = "tab:green" if s.status is not None else "tab:red"
                ax.barh(s.sender, s.ended - s.started, left=s.started - t0, color=color, height=0.6)
                if s.processed is not None:
                    ax.plot(s.processed - t0, s.sender, marker="|", color="black", markersize=8)
                if s.status is not None:
                    ax.text(
                        s.ended - t0 + 0.1,
                        s.sender,
                        f"{s.status} in {s.seconds * 1000:.0f} ms",
                        va="center",
                        fontsize=6,
                    )
            ax.axvline(timeout, color="tab:red", linestyle="--", linewidth=1)
            ax.set_title(name, fontsize=10)
            ax.set_xlabel("seconds since the senders started")
            ax.set_xlim(0, horizon * 1.15)
            ax.set_yticks(range(0, len(sends), max(1, len(sends) // 10)))
            ax.grid(axis="x", alpha=0.3)
        axes[0].set_ylabel("sender")
        axes[0].invert_yaxis()
        axes[1].plot([], [], color="tab:green", linewidth=6, label="waiting, answered")
        axes[1].plot([], [], color="tab:red", linewidth=6, label="waiting, timed out")
        axes[1].plot([], [], marker="|", color="black", linestyle="", label="work finished")
        axes[1].plot(
            [], [], color="tab:red", linestyle="--", label=f"sender timeout ({timeout:.0f} s)"
        )
        axes[1].legend(fontsize=7, loc="center right")

    return common.Result(
        title=f"Sender timeout: {senders} senders, {timeout:.0f} s timeout, {seconds:.0f} s of work each",
        columns=[
            "contender",
            "server",
            "timeouts",
            "errors (non-2xx)",
            "ack p50 ms",
            "ack p99 ms",
            "processed",
            "processing finished (s)",
        ],
        rows=rows,
        notes=notes,
        targets=targets,
        plot=plot,
        figsize=(11.0, 5.5),
    )
