"""Deliveries in one ordered lane, for the tests of ordered delivery."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.utils import timezone

from hookway.models import Delivery, Destination, Route, Source
from hookway.store.events import IncomingEvent, store_event


def lane(url: str, count: int, **destination: Any) -> list[str]:
    """``count`` events, received one millisecond apart (bodies ``{"n": 0}``, ``{"n":
    1}``, …), each routed to one destination made with ``destination``'s fields;
    returns the delivery ids in received order."""
    source = Source.objects.create(slug="shop", verify="none")
    target = Destination.objects.create(name="ledger", url=url, **destination)
    Route.objects.create(source=source, destination=target)
    start = timezone.now() - timedelta(seconds=10)
    for n in range(count):
        store_event(
            IncomingEvent(
                source_id=source.id,
                event_name="order.updated",
                delivery_id=None,
                content_type="application/json",
                headers={},
                body=json.dumps({"n": n}).encode(),
                received_at=start + timedelta(milliseconds=n),
            )
        )
    return list(Delivery.objects.order_by("event__received_at").values_list("pk", flat=True))
