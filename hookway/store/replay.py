"""Replay: new deliveries for events already stored. A replay never changes the original
delivery or its attempts; it adds a delivery (with a new ``webhook-id``) that points back
at what it replays (``replay_of``; the original lists it in ``replays``).

Replaying is safe to repeat: what is already done is skipped, and every skip says why
(``Skipped``), unless ``force`` asks for another copy anyway:

- a delivery that was replayed already is not replayed again;
- nothing is replayed to a destination while a delivery of that event to it is still
  pending (an original still retrying, or an earlier replay not sent yet);
- an event is replayed only to destinations a route of its source now takes it to
  (``force`` replays to a named destination whatever the routes say: an operator may
  have removed the route on purpose, or by mistake).

Each call is one transaction; on PostgreSQL it locks the events it replays, so two
operators replaying the same event at once make one copy, not two. Sync code, reached
from async code only through hookway.gate.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import QuerySet

from hookway.models import Delivery, DeliveryState, Destination, Event, Route, Source
from hookway.routing import expr, lanes, rules
from hookway.store.db import db_now
from hookway.store.events import NOTIFY_CHANNEL, route_matches

# Rows looked at per query: keeps every IN (...) list well under the databases' limits
# when --dead replays thousands.
CHUNK = 500


class SkipKind(StrEnum):
    """Why something was not replayed."""

    # Already done: nothing to do, not an error.
    ALREADY_REPLAYED = "already_replayed"  # the delivery has a replay (force: another)
    PENDING = "pending"  # a delivery of that event to that destination is still pending
    NOTHING_DEAD = "nothing_dead"  # --dead found nothing to replay
    # Refused: the request can't be done as asked.
    NO_ROUTE = "no_route"  # no route takes the event to the destination (force: anyway)
    NO_TARGET = "no_target"  # no route takes the event and it was never delivered
    NO_SUCH_EVENT = "no_such_event"
    NO_SUCH_DELIVERY = "no_such_delivery"
    NO_SUCH_DESTINATION = "no_such_destination"


# Kinds that mean "already done": a request whose every skip is one of these succeeded.
DONE = frozenset({SkipKind.ALREADY_REPLAYED, SkipKind.PENDING, SkipKind.NOTHING_DEAD})
# Kinds that ``force`` overrides.
FORCEABLE = frozenset({SkipKind.ALREADY_REPLAYED, SkipKind.PENDING, SkipKind.NO_ROUTE})


@dataclass(frozen=True)
class Skipped:
    """One thing not replayed: ``subject`` names it ("evt_… → ci-bot", "msg_…", or ""
    for a whole request), ``reason`` says why in words."""

    subject: str
    kind: SkipKind
    reason: str

    @property
    def done(self) -> bool:
        """True when it was skipped because it is already done (not an error)."""
        return self.kind in DONE

    @property
    def forceable(self) -> bool:
        """True when ``force`` would replay it anyway."""
        return self.kind in FORCEABLE

    def __str__(self) -> str:
        return f"{self.subject}: {self.reason}" if self.subject else self.reason


@dataclass(frozen=True)
class Created:
    """One delivery a replay created. ``waits`` says why it won't be sent yet (its
    destination is paused or disabled), or is empty."""

    delivery_id: str
    event_id: str
    destination: str
    replay_of: str | None
    waits: str = ""


@dataclass(frozen=True)
class ReplayResult:
    """What a replay did: the deliveries it created, and each target it skipped."""

    created: tuple[Created, ...] = ()
    skipped: tuple[Skipped, ...] = ()

    @property
    def refused(self) -> tuple[Skipped, ...]:
        """The skips that are not "already done": the request asked for something that
        can't be done (an unknown id, no route without force)."""
        return tuple(s for s in self.skipped if not s.done)

    @property
    def failed(self) -> bool:
        """True when nothing was created and something was refused: the request, not the
        state of the queue, is what went wrong."""
        return not self.created and bool(self.refused)


class _Dest(NamedTuple):
    name: str
    waits: str
    # Its order_key when it is ordered and has one (or why the stored one can't be
    # used): for an event replayed to it with no earlier delivery to keep the key of.
    order_key: expr.Expression | None = None
    order_key_broken: str = ""

    def key(self, event: Event) -> lanes.Key:
        if self.order_key_broken:
            return lanes.Key(lanes.FALLBACK, self.order_key_broken)
        if self.order_key is None:
            return lanes.Key(lanes.FALLBACK)
        variables = rules.EventVariables(
            bytes(event.body),
            event.headers if isinstance(event.headers, dict) else {},
            event.event_name,
            event.source.slug,
        )
        return lanes.evaluate(self.order_key, variables)


class _Latest(NamedTuple):
    """An event's latest delivery to a destination: a replay of it keeps its lane."""

    pk: str
    key: lanes.Key


class _Plan:
    """What one call creates, built up target by target inside its transaction."""

    def __init__(self, now: datetime, force: bool, dry_run: bool = False) -> None:
        self.now = now
        self.force = force
        self.dry_run = dry_run
        self.rows: list[Delivery] = []
        self.created: list[Created] = []
        self.skipped: list[Skipped] = []
        self.destinations: dict[int, _Dest] = {}
        # (event id, destination id) -> a pending delivery, including those made here.
        self.pending: dict[tuple[str, int], str] = {}

    def load_destinations(self, ids: Iterable[int]) -> None:
        missing = set(ids) - set(self.destinations)
        rows = Destination.objects.filter(pk__in=missing).values_list(
            "pk",
            "name",
            "enabled",
            "disabled_reason",
            "paused",
            "paused_reason",
            "ordered",
            "order_key",
        )
        for pk, name, enabled, disabled_reason, paused, paused_reason, ordered, text in rows:
            compiled: expr.Expression | None = None
            broken = ""
            if ordered and text:
                try:
                    compiled = lanes.check(text)
                except lanes.RuleError as exc:
                    broken = (
                        f"order_key error: the destination's order_key can't be used ({exc}); "
                        "sent in the empty key's lane"
                    )
            self.destinations[pk] = _Dest(
                name,
                _waits(name, enabled, disabled_reason, paused, paused_reason),
                compiled,
                broken,
            )

    def load_pending(self, event_ids: Sequence[str]) -> None:
        rows = (
            Delivery.objects.filter(event_id__in=event_ids, state=DeliveryState.PENDING)
            .order_by("created_at", "pk")
            .values_list("event_id", "destination_id", "pk")
        )
        for event_id, destination_id, pk in rows:
            self.pending.setdefault((event_id, destination_id), pk)

    def skip(self, subject: str, kind: SkipKind, reason: str) -> None:
        self.skipped.append(Skipped(subject, kind, reason))

    def add(
        self, event_id: str, destination_id: int, replay_of: str | None, key: lanes.Key
    ) -> None:
        """Plan a delivery; ``key`` is its lane (a replay keeps the original's)."""
        dest = self.destinations[destination_id]
        row = Delivery(
            event_id=event_id,
            destination_id=destination_id,
            next_attempt_at=self.now,
            created_at=self.now,
            replay_of_id=replay_of,
            order_key=key.value,
            order_key_error=key.problem,
        )
        self.rows.append(row)
        self.pending[event_id, destination_id] = row.pk
        self.created.append(Created(row.pk, event_id, dest.name, replay_of, dest.waits))

    def commit(self) -> ReplayResult:
        if self.rows and not self.dry_run:
            Delivery.objects.bulk_create(self.rows)
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
        return ReplayResult(tuple(self.created), tuple(self.skipped))


def _waits(name: str, enabled: bool, disabled_reason: str, paused: bool, why: str) -> str:
    states = []
    if paused:
        states.append(f"'{name}' is paused" + (f" ({why})" if why else ""))
    if not enabled:
        states.append(
            f"'{name}' is disabled" + (f" ({disabled_reason})" if disabled_reason else "")
        )
    return "; ".join(states)


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _locked(events: QuerySet[Event]) -> QuerySet[Event]:
    # PostgreSQL: concurrent replays of one event wait for each other, so the second
    # sees the first one's pending delivery. (SQLite's IMMEDIATE transactions already
    # serialise writers.)
    if connection.vendor == "postgresql":
        return events.select_for_update(of=("self",))
    return events


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def replay_events(
    event_ids: Iterable[str], destination: str | None = None, *, force: bool = False
) -> ReplayResult:
    """Create a delivery of each event to every destination a route of its source now
    takes it to, and every destination it was delivered to before (or only to
    ``destination``). Each new delivery is a replay of the latest delivery of that event
    to that destination, if there is one.

    Skipped, each with its reason, unless ``force``: a destination with a delivery of
    that event still pending, and one no route takes the event to. Returns a
    ReplayResult."""
    ids = _unique(event_ids)
    with transaction.atomic():
        plan = _Plan(db_now(), force)
        named: int | None = None
        if destination is not None:
            named = (
                Destination.objects.filter(name=destination).values_list("pk", flat=True).first()
            )
            if named is None:
                plan.skip("", SkipKind.NO_SUCH_DESTINATION, f"no destination named {destination!r}")
                return plan.commit()
        for chunk in _chunks(ids):
            events = {
                e.pk: e
                for e in _locked(Event.objects.filter(pk__in=chunk).select_related("source"))
            }
            routes = _routes_of({e.source_id for e in events.values()})
            latest = _latest_deliveries(list(events))
            plan.load_pending(list(events))
            before: dict[str, set[int]] = {}
            for event_id, destination_id in latest:
                before.setdefault(event_id, set()).add(destination_id)
            targets_of: dict[str, list[int]] = {}
            for event_id in chunk:
                event = events.get(event_id)
                if event is None:
                    plan.skip(event_id, SkipKind.NO_SUCH_EVENT, "no such event")
                    continue
                if named is not None:
                    targets_of[event_id] = [named]
                    continue
                taken = {
                    r.destination_id
                    for r in routes.get(event.source_id, [])
                    if r.enabled and route_matches(r.patterns, event.event_name)
                }
                targets_of[event_id] = list(taken | before.get(event_id, set()))
            plan.load_destinations(d for targets in targets_of.values() for d in targets)
            for event_id, targets in targets_of.items():
                event = events[event_id]
                if not targets:
                    plan.skip(
                        event_id,
                        SkipKind.NO_TARGET,
                        f"no route of source '{event.source.slug}' takes "
                        f"{_name(event.event_name)} and it was never delivered",
                    )
                    continue
                for destination_id in sorted(targets, key=lambda d: plan.destinations[d].name):
                    _replay_event_to(plan, event, destination_id, routes, latest)
        return plan.commit()


def _replay_event_to(
    plan: _Plan,
    event: Event,
    destination_id: int,
    routes: dict[int, list[_Route]],
    latest: dict[tuple[str, int], _Latest],
) -> None:
    dest = plan.destinations[destination_id]
    subject = f"{event.pk} → {dest.name}"
    if not plan.force:
        pending = plan.pending.get((event.pk, destination_id))
        if pending is not None:
            plan.skip(subject, SkipKind.PENDING, f"{pending} is still pending")
            return
        problem = _no_route(event, destination_id, dest.name, routes.get(event.source_id, []))
        if problem:
            plan.skip(subject, SkipKind.NO_ROUTE, problem)
            return
    original = latest.get((event.pk, destination_id))
    if original is not None:
        plan.add(event.pk, destination_id, original.pk, original.key)
    else:
        plan.add(event.pk, destination_id, None, dest.key(event))


class _Route(NamedTuple):
    destination_id: int
    patterns: list[str]
    enabled: bool


def _routes_of(source_ids: Iterable[int]) -> dict[int, list[_Route]]:
    routes: dict[int, list[_Route]] = {}
    rows = Route.objects.filter(source_id__in=list(source_ids)).values_list(
        "source_id", "destination_id", "events", "enabled"
    )
    for source_id, destination_id, patterns, enabled in rows:
        routes.setdefault(source_id, []).append(_Route(destination_id, patterns or [], enabled))
    return routes


def _no_route(event: Event, destination_id: int, name: str, routes: list[_Route]) -> str:
    """Why no route takes ``event`` to the destination, or "" when one does."""
    source: Source = event.source
    route = next((r for r in routes if r.destination_id == destination_id), None)
    if route is None:
        return f"no route from source '{source.slug}' leads to '{name}'"
    if not route.enabled:
        return f"the route from '{source.slug}' to '{name}' is disabled"
    if not route_matches(route.patterns, event.event_name):
        takes = ", ".join(route.patterns)
        return (
            f"the route from '{source.slug}' to '{name}' takes only {takes}, "
            f"not {_name(event.event_name)}"
        )
    return ""


def _name(event_name: str) -> str:
    return f"'{event_name}'" if event_name else "events without a name"


def _latest_deliveries(event_ids: Sequence[str]) -> dict[tuple[str, int], _Latest]:
    """The latest delivery of each of these events to each destination."""
    latest: dict[tuple[str, int], _Latest] = {}
    rows = (
        Delivery.objects.filter(event_id__in=event_ids)
        .order_by("created_at", "pk")
        .values_list("event_id", "destination_id", "pk", "order_key", "order_key_error")
    )
    for event_id, destination_id, pk, key, problem in rows:
        latest[event_id, destination_id] = _Latest(pk, lanes.Key(key, problem))
    return latest


def replay_deliveries(
    delivery_ids: Iterable[str], *, force: bool = False, dry_run: bool = False
) -> ReplayResult:
    """Create a new delivery for each given delivery (same event, same destination),
    pointing back at it.

    Skipped, each with its reason, unless ``force``: a delivery replayed already, one
    still pending, and one whose event has another delivery to that destination still
    pending. Routes are not consulted: the delivery names its destination. Returns a
    ReplayResult. With ``dry_run``, creates nothing and returns what it would have
    created (ids included, though no such rows exist)."""
    ids = _unique(delivery_ids)
    with transaction.atomic():
        plan = _Plan(db_now(), force, dry_run)
        for chunk in _chunks(ids):
            found = list(
                Delivery.objects.filter(pk__in=chunk).values_list(
                    "pk", "event_id", "destination_id", "state", "order_key", "order_key_error"
                )
            )
            keys = {pk: lanes.Key(key, problem) for pk, *_, key, problem in found}
            rows = {
                pk: (event_id, destination_id, state)
                for pk, event_id, destination_id, state, *_ in found
            }
            event_ids = _unique(event_id for event_id, _, _ in rows.values())
            list(_locked(Event.objects.filter(pk__in=event_ids)).values_list("pk", flat=True))
            plan.load_pending(event_ids)
            plan.load_destinations(destination_id for _, destination_id, _ in rows.values())
            replays: dict[str, list[tuple[str, str]]] = {}
            for pk, original, state in (
                Delivery.objects.filter(replay_of_id__in=list(rows))
                .order_by("created_at", "pk")
                .values_list("pk", "replay_of_id", "state")
            ):
                replays.setdefault(original, []).append((pk, state))
            for pk in chunk:
                row = rows.get(pk)
                if row is None:
                    plan.skip(pk, SkipKind.NO_SUCH_DELIVERY, "no such delivery")
                    continue
                event_id, destination_id, state = row
                if not force:
                    if pk in replays:
                        copies = ", ".join(f"{r} ({s})" for r, s in replays[pk])
                        plan.skip(pk, SkipKind.ALREADY_REPLAYED, f"already replayed as {copies}")
                        continue
                    if state == DeliveryState.PENDING:
                        plan.skip(pk, SkipKind.PENDING, "still pending")
                        continue
                    pending = plan.pending.get((event_id, destination_id))
                    if pending is not None:
                        name = plan.destinations[destination_id].name
                        plan.skip(
                            pk,
                            SkipKind.PENDING,
                            f"{pending}, a delivery of {event_id} to '{name}', is still pending",
                        )
                        continue
                plan.add(event_id, destination_id, pk, keys[pk])
        return plan.commit()


def replay_dead(
    since: datetime | None = None, destination: str | None = None, *, force: bool = False
) -> ReplayResult:
    """Replay every dead delivery (that died at or after ``since``, and only to
    ``destination``, when given) not replayed yet; with ``force``, those replayed
    already too. Returns a ReplayResult, which says so when there was nothing to do."""
    dead = Delivery.objects.filter(state=DeliveryState.DEAD)
    scope = ""
    if destination is not None:
        if not Destination.objects.filter(name=destination).exists():
            skip = Skipped(
                "", SkipKind.NO_SUCH_DESTINATION, f"no destination named {destination!r}"
            )
            return ReplayResult(skipped=(skip,))
        dead = dead.filter(destination__name=destination)
        scope += f" to '{destination}'"
    if since is not None:
        dead = dead.filter(completed_at__gte=since)
        scope += f" since {since:%Y-%m-%d %H:%M:%S %Z}".rstrip()
    with transaction.atomic():
        if force:
            ids = list(dead.order_by("completed_at", "pk").values_list("pk", flat=True))
            replayed = 0
        else:
            ids = list(
                dead.filter(replays__isnull=True)
                .order_by("completed_at", "pk")
                .values_list("pk", flat=True)
            )
            replayed = dead.filter(replays__isnull=False).distinct().count()
        result = replay_deliveries(ids, force=force)
    notes: list[Skipped] = []
    if replayed:
        notes.append(
            Skipped(
                "",
                SkipKind.ALREADY_REPLAYED,
                f"{replayed} dead deliveries{scope} already replayed",
            )
        )
    elif not ids:
        notes.append(Skipped("", SkipKind.NOTHING_DEAD, f"no dead deliveries{scope}"))
    return ReplayResult(result.created, (*result.skipped, *notes))
