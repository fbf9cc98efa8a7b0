"""Fan-out (issue 4, benchmark 3): one webhook to 50 destinations that each answer after
100 ms. How long after the sender's ack does the last destination get it?

- **Hookway**: one uvicorn process with the embedded dispatcher; the config routes one
  source to 50 destinations. The sender POSTs to ``/hooks/<slug>``; the ack is the 202
  reaching it; the receiver (bench.peers.receiver, its own process) records when each of
  the 50 copies arrived. One warm-up event first (not counted), as a running server has
  its connections open.
- **Sequential**: what a view that "just forwards" does: await the 50 POSTs one after
  another (httpx.AsyncClient, keep-alive), timed from the start of the loop.
- **Reference**: the same 50 POSTs with ``asyncio.gather`` in-process (aiohttp; no
  durability, no retries): the floor for "all 50 at once".

Hookway runs with its default HTTP transport and, in full mode, with the other one too.

Each is repeated; the table gives the median and p99 of "last delivery after ack".
"""

from __future__ import annotations

import asyncio
import shutil
import time

from bench.common import (
    HOST,
    Chart,
    Result,
    Server,
    Target,
    fmt,
    free_port,
    median,
    percentile,
    tempdir,
)
from bench.deliverykit import (
    Dest,
    Phases,
    ProcSampler,
    Receiver,
    hookway_env,
    migrate_hookway,
    read_lag,
    uvicorn_cmd,
    write_config,
)
from bench.peers.hookway_produce import body_for

DELAY_MS = 100


def _fan_times(
    acks: dict[str, float], arrivals: list[tuple[str, float, str]], per_event: int
) -> tuple[list[float], list[float], int]:
    """(last-after-ack ms, first-after-ack ms, incomplete events) per acked event."""
    by_id: dict[str, list[float]] = {}
    seen: set[tuple[str, str]] = set()
    for bench_id, at, path in arrivals:
        if (bench_id, path) in seen:
            continue  # a retry of a copy already delivered
        seen.add((bench_id, path))
        by_id.setdefault(bench_id, []).append(at)
    last, first, incomplete = [], [], 0
    for bench_id, ack in acks.items():
        times = by_id.get(bench_id, [])
        if len(times) < per_event:
            incomplete += 1
            continue
        last.append((max(times) - ack) * 1000)
        first.append((min(times) - ack) * 1000)
    return last, first, incomplete


def _hookway_repeats(
    rx: Receiver, url: str, repeats: int, per_event: int, prefix: str
) -> dict[str, float]:
    """POST one event at a time; bench_id -> when its 202 arrived (the warm-up excluded)."""
    import httpx

    acks: dict[str, float] = {}
    with httpx.Client(timeout=10, trust_env=False) as client:
        for i in range(repeats + 1):
            bench_id = f"{prefix}-warmup" if i == 0 else f"{prefix}-{i}"
            before = rx.stats()["count"]
            response = client.post(
                url, content=body_for(bench_id), headers={"Content-Type": "application/json"}
            )
            if response.status_code == 202 and i > 0:
                acks[bench_id] = time.time()
            # Wait for all copies (bounded), then let the answers finish before the next.
            rx.wait_for(before + per_event, timeout=10)
            time.sleep(DELAY_MS / 1000 + 0.1)
    return acks


async def _sequential(urls: list[str], repeats: int) -> list[float]:
    """Await one POST after another to every URL (httpx), ``repeats`` times after a warm-up
    round; return each counted round's start time (unix)."""
    import httpx

    starts = []
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        for i in range(repeats + 1):
            body = body_for(f"seq-{i}")
            start = time.time()
            for u in urls:
                await client.post(u, content=body, headers=headers)
            if i > 0:
                starts.append(start)
    return starts


async def _gather(urls: list[str], repeats: int) -> list[float]:
    """All POSTs at once with asyncio.gather (aiohttp: httpx's pool slows down with many
    connections, see http_client.md); start times as in _sequential."""
    import aiohttp

    starts = []
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=len(urls))
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(url: str, body: bytes) -> None:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()

        for i in range(repeats + 1):
            body = body_for(f"gather-{i}")
            start = time.time()
            await asyncio.gather(*(post(u, body) for u in urls))
            if i > 0:
                starts.append(start)
    return starts


def _default_transport() -> str:
    from hookway.conf import load

    return load({"HOOKWAY_DEMO": "true"}).http_transport


def run(quick: bool) -> Result:
    n_dest = 5 if quick else 50
    repeats = 3 if quick else 20
    seq_repeats = 1 if quick else 3
    tmp = tempdir("fanout")
    phase = Phases("fanout")
    try:
        with Receiver(tmp, delay_ms=DELAY_MS) as rx:
            dests = [
                Dest(f"d{i:02d}", rx.url(DELAY_MS, f"d{i:02d}"), concurrency=20)
                for i in range(n_dest)
            ]
            config = write_config(tmp / "hookway.toml", dests, source="fan")
            lag_file = tmp / "lag.json"
            env = hookway_env(tmp / "hookway.sqlite3", config, HOOKWAY_LOOP_LAG_FILE=str(lag_file))
            with phase("migrate"):
                migrate_hookway(env)
            default = _default_transport()
            transports = (
                [default] if quick else [default, "aiohttp" if default == "httpx" else "httpx"]
            )
            hookway: dict[str, tuple[list[float], list[float], int, float, dict[str, float]]] = {}
            for transport in transports:
                port = free_port()
                base = f"http://{HOST}:{port}"
                lag_file = tmp / f"lag-{transport}.json"
                server_env = {
                    **env,
                    "HOOKWAY_HTTP_TRANSPORT": transport,
                    "HOOKWAY_LOOP_LAG_FILE": str(lag_file),
                }
                server = Server(
                    f"hookway-{transport}", uvicorn_cmd(port), env=server_env, logdir=tmp
                )
                with phase(f"Hookway ({transport}), {repeats} events x {n_dest} destinations"):
                    with server, ProcSampler(server.pid) as sampler:
                        server.wait_http(base + "/healthz")
                        rx.reset()
                        acks = _hookway_repeats(rx, base + "/hooks/fan", repeats, n_dest, transport)
                        server.stop(timeout=30)
                    last, first, incomplete = _fan_times(acks, rx.arrivals(), n_dest)
                hookway[transport] = (
                    last,
                    first,
                    incomplete,
                    sampler.peak_rss_mb,
                    read_lag(lag_file),
                )

            urls = [d.url for d in dests]
            results: dict[str, list[float]] = {}
            for tag, count in (("seq", seq_repeats), ("gather", repeats)):
                with phase(f"{tag}, {count} x {n_dest} POSTs"):
                    rx.reset()
                    sender = _sequential if tag == "seq" else _gather
                    starts = asyncio.run(sender(urls, count))
                    ids = {f"{tag}-{i + 1}": s for i, s in enumerate(starts)}
                    results[tag], _, _ = _fan_times(ids, rx.arrivals(), n_dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def row(name: str, how: str, values: list[float], planned: int) -> list[object]:
        return [
            name,
            how,
            f"{len(values)}/{planned}",
            median(values),
            percentile(values, 99),
            max(values) if values else float("nan"),
        ]

    rows = [
        row(
            f"Hookway, embedded dispatcher ({t} transport{', default' if t == default else ''})",
            "ack = 202 to the sender",
            hookway[t][0],
            repeats,
        )
        for t in transports
    ]
    rows += [
        row(
            "sequential: await each POST in turn (httpx)",
            "from the loop's start",
            results["seq"],
            seq_repeats,
        ),
        row(
            "reference: asyncio.gather in-process (aiohttp; not durable)",
            "from the start",
            results["gather"],
            repeats,
        ),
    ]
    last = hookway[default][0]
    hw_median = median(last)
    hw_p99 = percentile(last, 99)
    seq_median = median(results["seq"])
    notes = [
        f"Each destination is a different URL on one local receiver process that answers "
        f"after {DELAY_MS} ms; 'delivered' is when the request arrived there.",
        f"Sequential: {seq_repeats} repeats (each takes ≈ {n_dest} x {DELAY_MS} ms); "
        f"Hookway ({default}) is {fmt(seq_median / hw_median if hw_median else float('nan'))}x "
        "faster at the median.",
        "One warm-up event (Hookway) and one warm-up round (sequential, gather) open the "
        "connections first and are not counted.",
        "The target is judged on Hookway's default transport (HOOKWAY_HTTP_TRANSPORT).",
    ]
    for t in transports:
        _, t_first, incomplete, rss, lag = hookway[t]
        lag_text = (
            f"{lag['p50_ms']:.1f}/{lag['p99_ms']:.1f}/{lag['max_ms']:.1f} ms"
            if lag.get("samples")
            else "n/a"
        )
        notes.append(
            f"Hookway ({t}): first copy after ack, median {fmt(median(t_first))} ms; the "
            f"server's peak RSS {fmt(rss)} MB; its event-loop lag p50/p99/max {lag_text}."
            + (
                f" {incomplete} events did not reach all destinations in 10 s."
                if incomplete
                else ""
            )
        )
    targets = [
        Target(
            f"last delivery ≤ 200 ms after ack, median ({n_dest} destinations, {default})",
            f"median {fmt(hw_median)} ms, p99 {fmt(hw_p99)} ms",
            None if hw_median != hw_median else hw_median <= 200,
        )
    ]
    labels = [f"Hookway ({t})" for t in transports] + ["sequential", "gather (not durable)"]
    chart = Chart(
        f"Last of {n_dest} deliveries after ack (ms, log scale)",
        "ms",
        labels,
        {
            "median": [median(hookway[t][0]) for t in transports]
            + [seq_median, median(results["gather"])],
            "p99": [percentile(hookway[t][0], 99) for t in transports]
            + [percentile(results["seq"], 99), percentile(results["gather"], 99)],
        },
        log=True,
    )
    return Result(
        title=f"Fan-out: one webhook to {n_dest} destinations answering after {DELAY_MS} ms",
        columns=["system", "timed from", "complete", "median ms", "p99 ms", "max ms"],
        rows=rows,
        notes=notes,
        targets=targets,
        charts=[chart],
    )
