"""Ordered destinations' lanes (docs/delivery.md, "Ordered delivery"): the condition
under which a pending delivery may be claimed, shared by the claim and its counts
(hookway.store.deliveries) and by a circuit's probe (hookway.store.circuit).

A lane is a destination and a key (``Delivery.order_key``, given at fan-out by the
destination's ``order_key``, hookway.routing.lanes; "" for a destination without one):
the subqueries below look for other deliveries of the same (destination, key), which
the ``delivery_lane`` index (destination, order_key, state) finds without reading other
lanes' rows.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, OuterRef, Q, Subquery

from hookway.models import Delivery, DeliveryState, Destination, Event, OnDead
from hookway.store.db import Prepared


def any_ordered() -> bool:
    """Whether any destination is ``ordered`` (a claim's ``in_turn(now, ordered=...)``)."""
    return bool(_ORDERED.rows(limit=1))


_ORDERED = Prepared(lambda s: Destination.objects.filter(ordered=True).values_list("pk"))


def in_turn(now: datetime, *, ordered: bool = True) -> Q:
    """A delivery's turn in its lane: always, unless its destination is ``ordered``;
    then only when no other delivery of its lane is in flight (leased) and none ahead of
    it (its event received earlier: received time, then event id, then delivery id) is
    still pending (due, or waiting for a retry: a retry holds the lane) or, with
    ``on_dead = "block"``, dead and not replayed. So a lane's head is its only pending
    delivery that can be claimed, and a claim takes at most one per lane; the lanes of
    one destination go in parallel, up to its concurrency.

    ``ordered=False``, for a claim made when ``any_ordered()`` said no destination is
    ordered: only unordered destinations' deliveries are in turn. That is the same set
    then, and a destination made ordered since the check is left for the next claim
    rather than claimed out of turn. The lane subqueries cost a claim ~5 ms of Django's
    query building, on a thread that shares the GIL with the event loop."""
    if not ordered:
        return Q(destination__ordered=False)
    lane = Delivery.objects.filter(
        destination_id=OuterRef("destination_id"), order_key=OuterRef("order_key")
    ).exclude(pk=OuterRef("pk"))
    # The claimed delivery's received time, read inside the subqueries (by its event's
    # primary key) rather than joined into the claim: the claim then never joins the
    # events table, and a delivery of an unordered destination (the OR's first arm)
    # never evaluates any of this. Joined, PostgreSQL hashed the whole events table on
    # every claim.
    received = Subquery(
        Event.objects.filter(pk=OuterRef(OuterRef("event_id"))).values("received_at")
    )
    ahead = lane.filter(
        Q(event__received_at__lt=received)
        | Q(event__received_at=received, event_id__lt=OuterRef("event_id"))
        | Q(event_id=OuterRef("event_id"), pk__lt=OuterRef("pk"))
    )
    replayed = Delivery.objects.filter(replay_of_id=OuterRef("pk"))
    return Q(destination__ordered=False) | ~(
        Q(Exists(lane.filter(state=DeliveryState.PENDING, lease_expires_at__gte=now)))
        | Q(Exists(ahead.filter(state=DeliveryState.PENDING)))
        | Q(
            Exists(
                ahead.filter(state=DeliveryState.DEAD, destination__on_dead=OnDead.BLOCK).exclude(
                    Exists(replayed)
                )
            )
        )
    )
