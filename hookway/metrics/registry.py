"""The metrics Hookway counts as it works, and the one call per thing counted.

Several processes (gunicorn workers, standalone dispatchers) count into one set of
numbers with prometheus-client's multiprocess mode: when ``PROMETHEUS_MULTIPROC_DIR`` is
set, every process writes its values to memory-mapped files in that directory and a
scrape of any of them sums the files (hookway.metrics.exposition). prometheus-client
decides which mode it is in when it is first imported, so the variable must be in the
environment before any Hookway process starts (hookway.metrics.workers sets it for
gunicorn's workers when the operator did not).

Only counters and histograms are kept here: they sum across processes as they are. The
gauges (the queue's backlog, destinations' state) are read from the database at scrape
time instead, the same whichever process answers.

Ingest's call (``webhook_received``) is on the hot path, so it only adds to plain
integers; ``flush()`` moves the sums into prometheus-client at every scrape of this
process and every second (hookway.loopmonitor.ProcessMetricsTask), so another process's
scrape sees them within about a second. Counting each webhook into prometheus-client
directly cost 2.7 µs per webhook, 9 µs with PROMETHEUS_MULTIPROC_DIR (a lock and a
memory-mapped write per value); this costs a fraction of a microsecond
(bench/results/observability.md).
"""

from __future__ import annotations

import os
from bisect import bisect_left
from pathlib import Path

# Read before prometheus_client is imported, as prometheus_client itself does.
MULTIPROC_DIR: Path | None = (
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    else None
)
if MULTIPROC_DIR is not None:
    # prometheus-client writes its files there at the first value and fails if it is
    # missing; an operator's fresh (emptied) directory may not exist yet.
    MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)

from prometheus_client import CollectorRegistry, Counter, Histogram  # noqa: E402

# Hookway's own registry, not prometheus-client's global one: a host project's metrics
# (and their names) stay its own. In multiprocess mode nothing is registered: values go
# to the files, which the scrape reads.
REGISTRY: CollectorRegistry | None = None if MULTIPROC_DIR is not None else CollectorRegistry()

# Ingest answers in milliseconds; past HOOKWAY_DB_TIMEOUT (5 s) it answers 503.
INGEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# An attempt takes up to its destination's timeout (15 s by default, any value allowed).
ATTEMPT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# How late a 50 ms timer fires: under 10 ms is healthy; 200 ms is where the dispatcher warns.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

received = Counter(
    "hookway_webhooks_received",
    "Webhooks answered by ingest, by source and HTTP status code (source is empty when "
    "no enabled source has the slug).",
    ["source", "status"],
    registry=REGISTRY,
)
ingest_duration = Histogram(
    "hookway_ingest_duration_seconds",
    "Time from a webhook's arrival to its answer.",
    buckets=INGEST_BUCKETS,
    registry=REGISTRY,
)
deliveries = Counter(
    "hookway_deliveries",
    "Deliveries that reached a final state, by destination and outcome (succeeded, dead).",
    ["destination", "outcome"],
    registry=REGISTRY,
)
retries = Counter(
    "hookway_retries_scheduled",
    "Failed attempts after which another attempt was scheduled, by destination.",
    ["destination"],
    registry=REGISTRY,
)
attempt_duration = Histogram(
    "hookway_delivery_attempt_duration_seconds",
    "Duration of each recorded delivery attempt, by destination (its count is the attempts).",
    ["destination"],
    buckets=ATTEMPT_BUCKETS,
    registry=REGISTRY,
)
loop_lag = Histogram(
    "hookway_event_loop_lag_seconds",
    "How late a 50 ms timer fired on a Hookway process's event loop (blocking shows here).",
    buckets=LAG_BUCKETS,
    registry=REGISTRY,
)

# Ingest's counts since the last flush, kept on the event loop's thread (the only one
# that calls webhook_received and flush): by (source, status), and the histogram's
# per-bucket counts (its buckets plus +Inf) and sum.
_received: dict[tuple[str, int], int] = {}
_latency_counts = [0] * (len(INGEST_BUCKETS) + 1)
_latency_sum = 0.0


def webhook_received(source: str, status: int, seconds: float) -> None:
    """Count one webhook answered with ``status`` after ``seconds``; ``source`` is the
    slug of the enabled source it reached, or "" (never the slug as sent: unknown slugs
    must not make new series). Seen by scrapes after the next ``flush()``."""
    global _latency_sum
    key = (source, status)
    _received[key] = _received.get(key, 0) + 1
    _latency_counts[bisect_left(INGEST_BUCKETS, seconds)] += 1
    _latency_sum += seconds


def flush() -> None:
    """Move ingest's counts since the last flush into prometheus-client (and so into
    PROMETHEUS_MULTIPROC_DIR's files). Call it on the thread that runs ingest."""
    global _received, _latency_sum
    if not _received:
        return
    counts, _received = _received, {}
    latency_sum, _latency_sum = _latency_sum, 0.0
    for (source, status), n in counts.items():
        received.labels(source, str(status)).inc(n)
    # Histogram.observe adds one observation at a time; these are its own per-bucket
    # values and sum (prometheus-client's fields: tests/unit/test_metrics_registry.py
    # checks a flush exposes what as many observe() calls would).
    for i, n in enumerate(_latency_counts):
        if n:
            ingest_duration._buckets[i].inc(n)
            _latency_counts[i] = 0
    ingest_duration._sum.inc(latency_sum)


def attempt_recorded(destination: str, seconds: float, outcome: str) -> None:
    """Count one recorded attempt: ``outcome`` is what it did to its delivery,
    "succeeded", "dead" or "retry" (another attempt scheduled)."""
    attempt_duration.labels(destination).observe(seconds)
    if outcome == "retry":
        retries.labels(destination).inc()
    else:
        deliveries.labels(destination, outcome).inc()


def loop_lagged(seconds: float) -> None:
    loop_lag.observe(seconds)
