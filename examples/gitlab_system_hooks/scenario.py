"""Run the example one way ("before" or "after") under gunicorn with the uvicorn worker,
as GitLab would call it: 20 system hooks at once from senders that give up after 10 s,
and one system hook without ``event_name``. Used by the end-to-end test
(tests/e2e/test_example_gitlab_system_hooks.py) and the benchmark
(bench/gitlab_example.py); ``python examples/gitlab_system_hooks/scenario.py after``
prints the result as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]  # the Hookway checkout: on PYTHONPATH for the "after" project
SENDERS = 20
CLIENT_TIMEOUT = 10.0  # GitLab's webhook timeout
IO_SECONDS = 15.0
TOKEN = "example-gitlab-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def _send(port: int, body: dict[str, Any]) -> dict[str, Any]:
    """POST one system hook as GitLab does, on its own connection; the time is from the
    first byte sent to the whole answer read (the client's 10 s budget covers it all).
    Plain asyncio streams rather than an HTTP client library, so the senders' own CPU
    time (20 at once in one process) stays out of what is measured."""
    data = json.dumps(body).encode()
    head = (
        f"POST /hooks/gitlab HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        f"X-Gitlab-Token: {TOKEN}\r\nX-Gitlab-Event: System Hook\r\n"
        f"X-Gitlab-Event-UUID: {uuid.uuid4()}\r\nConnection: close\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CLIENT_TIMEOUT):
            writer.write(head + data)
            await writer.drain()
            answer = await reader.read()  # Connection: close: the server ends it
    except TimeoutError:
        return {"status": None, "timed_out": True, "ms": (time.perf_counter() - started) * 1000}
    finally:
        writer.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    return {"status": status, "timed_out": False, "ms": (time.perf_counter() - started) * 1000}


async def _senders(port: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    # The hook without event_name goes first: it also starts the server's lazy parts
    # (the first database connection, the source lookup), as earlier traffic would.
    nameless = await _send(port, {"project_id": 999, "name": "no-event-name"})
    hooks = [
        {"event_name": "project_create", "project_id": i, "name": f"app-{i}"}
        for i in range(SENDERS)
    ]
    results = await asyncio.gather(*(_send(port, body) for body in hooks))
    return list(results), nameless


def _handled(log: Path) -> list[dict[str, Any]]:
    if not log.is_file():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def run(variant: str, workdir: Path, io_seconds: float = IO_SECONDS) -> dict[str, Any]:
    """Run ``variant`` in a fresh database under ``workdir``; return what happened."""
    project = HERE / variant
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / f"{variant}.sqlite3"
    log = workdir / f"{variant}-handled.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(project), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "mysite.settings",
        "SECRET_KEY": "example-only-" + uuid.uuid4().hex,
        "GITLAB_TOKEN": TOKEN,
        "EXAMPLE_DB": str(db),
        "EXAMPLE_HANDLED_LOG": str(log),
        "EXAMPLE_IO_SECONDS": str(io_seconds),
    }
    env.pop("DATABASE_URL", None)
    env.pop("HOOKWAY_CONFIG", None)  # "after" names its file in settings.HOOKWAY
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
        cwd=project,
        env=env,
        check=True,
    )
    port = _free_port()
    server_log = workdir / f"{variant}-gunicorn.log"
    with server_log.open("wb") as out:
        server = subprocess.Popen(
            [
                str(bin_dir / "gunicorn"),
                "mysite.asgi:application",
                "-k",
                "uvicorn_worker.UvicornWorker",
                "-w",
                "1",
                "-b",
                f"127.0.0.1:{port}",
                "--graceful-timeout",
                "5",
            ],
            cwd=project,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/hooks/gitlab"
    try:
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{server_log.read_text()}")
            try:
                httpx.get(url, timeout=1)  # 405: it answers
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn not ready:\n{server_log.read_text()}") from None
                time.sleep(0.1)
        started = time.monotonic()
        results, nameless = asyncio.run(_senders(port))
        # Give the work its time (and a margin) to finish wherever it runs.
        wait_until = started + io_seconds + 10
        while time.monotonic() < wait_until:
            if variant == "after" and len(_handled(log)) >= SENDERS:
                break
            time.sleep(0.2)
        time.sleep(0.5)  # a duplicate would show up now
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    acks = [r["ms"] for r in results if not r["timed_out"]]
    stored = stored_nameless = None
    if variant == "after":
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT body FROM hookway_event").fetchall()
        stored = len(rows)
        stored_nameless = sum(1 for (body,) in rows if b"no-event-name" in bytes(body))
    return {
        "variant": variant,
        "senders": SENDERS,
        "client_timeout_s": CLIENT_TIMEOUT,
        "io_seconds": io_seconds,
        "timeouts": sum(1 for r in results if r["timed_out"]),
        "statuses": sorted({str(r["status"]) for r in results}),
        "ack_ms_p50": _percentile(acks, 0.50),
        "ack_ms_p99": _percentile(acks, 0.99),
        "ack_ms_max": max(acks) if acks else None,
        "nameless_status": nameless["status"],
        "handled_project_ids": sorted(h["project_id"] for h in _handled(log)),
        "stored_events": stored,
        "stored_nameless": stored_nameless,
    }


if __name__ == "__main__":
    variant = sys.argv[1] if len(sys.argv) > 1 else "after"
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(variant, Path(tmp)), indent=2))
