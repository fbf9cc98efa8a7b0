"""A scrape's answer: the counters and histograms of every Hookway process (summed from
PROMETHEUS_MULTIPROC_DIR's files in multiprocess mode, this process's own otherwise),
plus the gauges read from the database for this scrape (hookway.store.gauges).

Blocking work (reading the files): run it off the event loop (hookway.gate).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from hookway.metrics import registry
from hookway.policy import CircuitState
from hookway.store.gauges import DestinationGauges

CONTENT_TYPE = CONTENT_TYPE_LATEST
CIRCUIT_STATES = tuple(CircuitState)


class DatabaseGauges(Collector):
    """The gauges of one scrape, from a snapshot read just before (None: the database
    could not be read; ``hookway_database_up`` then says 0 and the rest are absent)."""

    def __init__(self, destinations: Sequence[DestinationGauges] | None):
        self.destinations = destinations

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "hookway_database_up",
            "1 when this scrape read the queue's gauges from the database, 0 when it failed.",
            value=0 if self.destinations is None else 1,
        )
        yield up
        if self.destinations is None:
            return
        by = ["destination"]
        pending = GaugeMetricFamily(
            "hookway_deliveries_pending",
            "Deliveries waiting to be made (due now or later), by destination; counts stop "
            "at 100000.",
            labels=by,
        )
        dead = GaugeMetricFamily(
            "hookway_deliveries_dead",
            "Deliveries that ran out of attempts or failed permanently (until replayed), "
            "by destination; counts stop at 100000.",
            labels=by,
        )
        oldest = GaugeMetricFamily(
            "hookway_oldest_pending_delivery_age_seconds",
            "Age of the destination's oldest pending delivery (absent with none pending).",
            labels=by,
        )
        enabled = GaugeMetricFamily(
            "hookway_destination_enabled",
            "1 while the destination is enabled, 0 once disabled (a 410 Gone, the config file).",
            labels=by,
        )
        paused = GaugeMetricFamily(
            "hookway_destination_paused",
            "1 while an operator has the destination paused.",
            labels=by,
        )
        failures = GaugeMetricFamily(
            "hookway_destination_failures_in_a_row",
            "Failed attempts to the destination since its last success.",
            labels=by,
        )
        circuit = GaugeMetricFamily(
            "hookway_destination_circuit_state",
            "1 for the destination's circuit breaker state, 0 for the others.",
            labels=["destination", "state"],
        )
        for d in self.destinations:
            pending.add_metric([d.name], d.pending)
            dead.add_metric([d.name], d.dead)
            if d.oldest_pending_seconds is not None:
                oldest.add_metric([d.name], d.oldest_pending_seconds)
            enabled.add_metric([d.name], 1 if d.enabled else 0)
            paused.add_metric([d.name], 1 if d.paused else 0)
            failures.add_metric([d.name], d.failures_in_a_row)
            if d.circuit:
                for state in CIRCUIT_STATES:
                    circuit.add_metric([d.name, state], 1 if d.circuit == state else 0)
        yield from (pending, dead, oldest, enabled, paused, failures)
        if circuit.samples:
            yield circuit


def render(destinations: Sequence[DestinationGauges] | None, *, database: bool = True) -> bytes:
    """The text exposition of every Hookway metric, with ``destinations``' gauges (none
    of the database's gauges without ``database``: a standalone dispatcher's endpoint,
    since the web server's /metrics reports them)."""
    scrape = CollectorRegistry(auto_describe=False)
    if registry.MULTIPROC_DIR is not None:
        # prometheus-client leaves this constructor untyped.
        MultiProcessCollector(scrape, path=str(registry.MULTIPROC_DIR))  # type: ignore[no-untyped-call]
    else:
        assert registry.REGISTRY is not None
        scrape.register(_Own(registry.REGISTRY))
    if database:
        scrape.register(DatabaseGauges(destinations))
    return generate_latest(scrape)


class _Own(Collector):
    """This process's registry, as one collector of the scrape's."""

    def __init__(self, own: CollectorRegistry):
        self.own = own

    def collect(self) -> Iterable[Metric]:
        return self.own.collect()
