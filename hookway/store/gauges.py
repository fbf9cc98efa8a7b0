"""What ``/metrics`` reads from the database when it is scraped: each destination's
backlog (pending and dead deliveries, the age of its oldest pending one) and its state.

Every query is bounded whatever the tables hold: counts stop at COUNT_CAP per
destination and state (an index range of at most that many entries), and the oldest
pending delivery is one index seek per destination (the (destination, state,
created_at) index). Sync code, reached only through hookway.gate.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Min

from hookway.models import Delivery, DeliveryState, Destination
from hookway.store.db import db_now

# A count at this value means "at least this many".
COUNT_CAP = 100_000


@dataclass(frozen=True)
class DestinationGauges:
    name: str
    enabled: bool
    paused: bool
    failures_in_a_row: int
    pending: int
    dead: int
    # Seconds since the oldest pending delivery was created; None with none pending.
    oldest_pending_seconds: float | None
    # The circuit breaker's state ("closed", "open", "half_open"; hookway.store.circuit),
    # exported as hookway_destination_circuit_state.
    circuit: str = ""


def _capped_count(destination_id: int, state: DeliveryState) -> int:
    rows = Delivery.objects.filter(destination_id=destination_id, state=state).order_by()
    return rows.values("pk")[:COUNT_CAP].count()


def read() -> list[DestinationGauges]:
    """Every destination's gauges, by name."""
    now = db_now()
    found = []
    for pk, name, enabled, paused, failures, circuit in Destination.objects.order_by(
        "name"
    ).values_list("pk", "name", "enabled", "paused", "failures_in_a_row", "circuit_state"):
        oldest = (
            Delivery.objects.filter(destination_id=pk, state=DeliveryState.PENDING)
            .order_by()
            .aggregate(t=Min("created_at"))["t"]
        )
        found.append(
            DestinationGauges(
                name=name,
                enabled=enabled,
                paused=paused,
                failures_in_a_row=failures,
                circuit=circuit,
                pending=_capped_count(pk, DeliveryState.PENDING),
                dead=_capped_count(pk, DeliveryState.DEAD),
                oldest_pending_seconds=None
                if oldest is None
                else max(0.0, (now - oldest).total_seconds()),
            )
        )
    return found
