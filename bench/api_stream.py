"""API stream: does a crowd of idle event-stream subscribers slow ingest down?

One Hookway server process (uvicorn, SQLite, embedded dispatcher off) and one wrk load
(``POST /hooks/bench``, 1 KB JSON, 64 connections), measured alternately with no stream
subscribers and with 500 of them connected to ``GET /api/v1/stream?source=quiet``: idle
(their filter matches none of the load), so what is measured is what their presence
costs (the shared watcher's polls, the fan-out's filter check, the open connections),
not the cost of sending them messages. Same process, same run, rounds interleaved;
medians over rounds. Target: ingest with 500 subscribers at >= 90 % of ingest without.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

from bench import common

SUBSCRIBERS = 500
CONNECTIONS = 64
CONFIG = """
[[sources]]
slug = "bench"

[[sources]]
slug = "quiet"

[[destinations]]
name = "sink"
url = "http://127.0.0.1:9/"

[[routes]]
source = "bench"
destination = "sink"
"""


class Subscribers:
    """``n`` stream clients held open on a loop in a thread of this process."""

    def __init__(self, port: int, key: str, n: int) -> None:
        self.port, self.key, self.n = port, key, n
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.writers: list[asyncio.StreamWriter] = []
        self.readers: list[asyncio.Task[None]] = []

    async def _one(self) -> None:
        reader, writer = await asyncio.open_connection(common.HOST, self.port)
        writer.write(
            (
                "GET /api/v1/stream?source=quiet HTTP/1.1\r\n"
                f"Host: {common.HOST}\r\nAuthorization: Bearer {self.key}\r\n"
                "Accept: text/event-stream\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"stream answered {status!r}")
        await reader.readuntil(b"hookway event stream")
        self.writers.append(writer)
        # Read (and drop) heartbeats, as a real client would.
        self.readers.append(asyncio.create_task(self._drain(reader)))

    async def _drain(self, reader: asyncio.StreamReader) -> None:
        while await reader.read(4096):
            pass

    async def _open(self) -> None:
        for start in range(0, self.n, 50):  # not all at once: the accept backlog
            await asyncio.gather(*(self._one() for _ in range(min(50, self.n - start))))

    async def _close(self) -> None:
        for writer in self.writers:
            writer.close()
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        self.writers.clear()
        self.readers.clear()

    def __enter__(self) -> Subscribers:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._open(), self.loop).result(120)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def run(quick: bool) -> common.Result:
    subscribers = 20 if quick else SUBSCRIBERS
    rounds = 1 if quick else 4
    duration = 2.0 if quick else 10.0
    work = common.tempdir("api_stream")
    config = work / "hookway.toml"
    config.write_text(CONFIG)
    env = {
        "DJANGO_SETTINGS_MODULE": "hookway.standalone.settings",
        "DATABASE_URL": f"sqlite:///{work / 'hookway.sqlite3'}",
        "HOOKWAY_CONFIG": str(config),
        "HOOKWAY_EMBEDDED_DISPATCHER": "false",
        "HOOKWAY_LOG_LEVEL": "WARNING",
    }
    common.run_checked([common.PYTHON, "manage.py", "migrate", "--no-input", "-v0"], env=env)
    out = common.run_checked(
        [common.PYTHON, "manage.py", "create_api_key", "bench", "--scope", "read"], env=env
    )
    key = out.strip().splitlines()[-1]
    port = common.free_port()
    base = f"http://{common.HOST}:{port}"
    cmd = common.hookway_uvicorn(port)
    body = json.dumps({"event_name": "push", "pad": "x" * 990}).encode()
    results: dict[str, list[common.WrkResult]] = {"none": [], "with": []}
    with common.Server("hookway", cmd, env=env, logdir=work) as server:
        server.wait_http(base + "/healthz")
        hit = f"{base}/hooks/bench"
        headers = {"Content-Type": "application/json"}
        common.run_wrk(hit, duration=1, connections=CONNECTIONS, body=body, headers=headers)
        # ABBA order: each side runs as often first as second, so neither always meets
        # the bigger database (every round adds its events) or a warmer cache.
        for round_ in range(rounds):
            for side in ("none", "with") if round_ % 2 == 0 else ("with", "none"):
                if side == "none":
                    result = common.run_wrk(
                        hit, duration=duration, connections=CONNECTIONS, body=body, headers=headers
                    )
                else:
                    with Subscribers(port, key, subscribers):
                        time.sleep(1)  # the watcher is up and polling
                        result = common.run_wrk(
                            hit,
                            duration=duration,
                            connections=CONNECTIONS,
                            body=body,
                            headers=headers,
                        )
                results[side].append(result)
    none = common.median(r.rps for r in results["none"])
    with_subs = common.median(r.rps for r in results["with"])
    share = with_subs / none if none else 0.0
    rows = [
        [
            label,
            f"{common.median(r.rps for r in runs):.0f}",
            f"{common.median(r.p50_ms for r in runs):.2f}",
            f"{common.median(r.p99_ms for r in runs):.2f}",
            sum(r.non_2xx + r.timeouts for r in runs),
        ]
        for label, runs in (
            ("no subscribers", results["none"]),
            (f"{subscribers} idle subscribers", results["with"]),
        )
    ]
    print(f"ingest, no subscribers:       {none:8.0f} req/s")
    print(f"ingest, {subscribers} subscribers: {with_subs:8.0f} req/s")
    print(f"ratio:                        {share:8.1%}")
    return common.Result(
        title="Ingest with idle event-stream subscribers",
        columns=["run", "req/s (median)", "p50 ms", "p99 ms", "errors"],
        rows=rows,
        notes=[
            f"One uvicorn process, SQLite, {CONNECTIONS} wrk connections, {rounds} rounds "
            f"of {duration:.0f} s each way, interleaved in ABBA order; the subscribers stay "
            "connected through their rounds and read their heartbeats.",
            "Each round's req/s, without: "
            + ", ".join(f"{r.rps:.0f}" for r in results["none"])
            + "; with: "
            + ", ".join(f"{r.rps:.0f}" for r in results["with"])
            + ".",
            "The subscribers filter on a source the load never posts to: one watcher polls "
            "for all of them, and an event of a source nobody subscribes to makes no "
            "message at all.",
            f"Ratio (with / without): {share:.1%}.",
        ],
        targets=[
            common.Target(
                f"ingest with {SUBSCRIBERS} idle subscribers >= 90 % of without",
                f"{share:.1%} ({with_subs:.0f} vs {none:.0f} req/s)",
                None if quick else share >= 0.9,
            )
        ],
        quick=quick,
    )
