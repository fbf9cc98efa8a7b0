"""Ingest's batched counting (hookway.metrics.registry): a flush exposes exactly what
prometheus-client's own counter and histogram would after the same observations."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from hookway.metrics import registry
from tests.metricstext import parse

LATENCIES = [0.0005, 0.001, 0.0011, 0.004, 0.03, 0.03, 0.7, 4.9, 5.0, 12.0, 999.0, 0.0]


def own_samples() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    assert registry.REGISTRY is not None  # the tests run in one process
    return parse(generate_latest(registry.REGISTRY).decode())


def test_a_flush_exposes_what_observing_one_by_one_would():
    reference = CollectorRegistry()
    counter = Counter("ref_received", "", ["source", "status"], registry=reference)
    histogram = Histogram("ref_duration", "", buckets=registry.INGEST_BUCKETS, registry=reference)
    registry.flush()
    before = own_samples()

    for i, seconds in enumerate(LATENCIES):
        status = 202 if i % 3 else 401
        registry.webhook_received("flush-check", status, seconds)
        counter.labels("flush-check", str(status)).inc()
        histogram.observe(seconds)
    pending = own_samples()
    registry.flush()
    after = own_samples()
    expected = parse(generate_latest(reference).decode())

    assert pending == before, "nothing is exposed before the flush"
    for (name, labels), value in expected.items():
        if name.endswith("_created"):
            continue
        ours = name.replace("ref_received", "hookway_webhooks_received").replace(
            "ref_duration", "hookway_ingest_duration_seconds"
        )
        moved = after.get((ours, labels), 0.0) - before.get((ours, labels), 0.0)
        # A sum added to an earlier total may differ in its last bits; counts may not.
        assert moved == (pytest.approx(value) if name.endswith("_sum") else value), (
            ours,
            dict(labels),
        )


def test_a_flush_with_nothing_new_changes_nothing():
    registry.flush()
    before = own_samples()
    registry.flush()
    assert own_samples() == before
