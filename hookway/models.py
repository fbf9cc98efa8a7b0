"""Hookway's tables: what senders call (Source), what it delivers to (Destination, Route),
what it stored (Event) and what it did about it (Delivery, Attempt)."""

from __future__ import annotations

from django.db import models
from django.db.models import Value

from hookway import ids
from hookway.inbound import VerifyScheme
from hookway.outbound import DeliveryState, ErrorKind
from hookway.policy import (
    DEFAULT_CIRCUIT_COOLDOWN,
    DEFAULT_CIRCUIT_FAILURES,
    DEFAULT_DISABLE_AFTER,
    Change,
    CircuitState,
)

# Re-exported: models and code share one definition.
__all__ = ["Change", "CircuitState", "DeliveryState", "ErrorKind", "VerifyScheme"]

ONE_MIB = 1024 * 1024

# How the admin names each scheme: with the header it reads.
VERIFY_LABELS = {
    VerifyScheme.NONE: "none",
    VerifyScheme.TOKEN: "token (X-Webhook-Token)",
    VerifyScheme.HMAC_SHA256: "hmac-sha256 (X-Signature-256)",
    VerifyScheme.GITHUB: "GitHub (X-Hub-Signature-256)",
    VerifyScheme.GITLAB: "GitLab (X-Gitlab-Token)",
    VerifyScheme.STRIPE: "Stripe (Stripe-Signature)",
    VerifyScheme.STANDARD_WEBHOOKS: "Standard Webhooks (webhook-signature)",
}


class Source(models.Model):
    slug = models.SlugField(max_length=64, unique=True, help_text="Receives at POST /hooks/<slug>.")
    verify = models.CharField(
        max_length=32,
        choices=[(s.value, VERIFY_LABELS[s]) for s in VerifyScheme],
        default=VerifyScheme.NONE.value,
    )
    secrets = models.JSONField(
        default=list,
        blank=True,
        help_text='Secrets as a JSON list; each a literal or "env:NAME". Any may match (rotation).',
    )
    require_event_name = models.BooleanField(default=False)
    max_body_bytes = models.PositiveIntegerField(default=ONE_MIB)
    enabled = models.BooleanField(default=True)
    managed = models.BooleanField(default=False, help_text="Managed by the HOOKWAY_CONFIG file.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


# Why a managed destination is disabled when the config file did it (hookway.config.sync):
# only the file turns it back on, so `manage.py destination enable` refuses these.
DISABLED_IN_FILE = "disabled in the config file"
REMOVED_FROM_FILE = "removed from the config file"
# Why a destination was disabled by Hookway itself, as disabled_reason starts: the
# receiver answered 410, or every attempt failed for its disable_after (the reason goes
# on: "failing for 5d since …"). Like the file's, these stay across restarts.
DISABLED_GONE = "410"
DISABLED_FAILING = "failing for"


class DestinationKind(models.TextChoices):
    """What a destination is: exactly one of its ``url``, ``handler`` and ``celery_task``."""

    HTTP = "http", "HTTP URL"
    HANDLER = "handler", "Python handler"
    CELERY = "celery", "Celery task"


class OnDead(models.TextChoices):
    """What an ordered destination's lane does when a delivery in it dies."""

    SKIP = "skip", "skip it: the next delivery goes"
    BLOCK = "block", "block: later deliveries wait until it is replayed"


class Destination(models.Model):
    name = models.SlugField(max_length=64, unique=True)
    # Exactly one of url, handler and celery_task is set (a constraint says so).
    url = models.URLField(max_length=2000, blank=True, default="")
    handler = models.CharField(
        max_length=300,
        blank=True,
        default="",
        help_text='A Python callable, "module:function" (docs/handlers.md); instead of a URL.',
    )
    celery_task = models.CharField(
        max_length=300,
        blank=True,
        default="",
        help_text='A Celery task name, e.g. "myapp.tasks.process_hook"; instead of a URL.',
    )
    signing_secret = models.CharField(
        max_length=200, blank=True, help_text='Optional "whsec_…" (or "env:NAME"): sign outbound.'
    )
    timeout_seconds = models.FloatField(default=15.0)
    max_attempts = models.PositiveIntegerField(default=10)
    concurrency = models.PositiveIntegerField(default=20)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    # Paused: new events still create deliveries, which wait until it is resumed
    # (hookway.store.destinations). Operational state: the config file never sets it.
    paused = models.BooleanField(default=False)
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_reason = models.CharField(max_length=500, blank=True)
    headers = models.JSONField(
        default=dict, blank=True, help_text="Static headers added to every request (name: value)."
    )
    bearer_token = models.CharField(
        max_length=500,
        blank=True,
        help_text='Sent as "Authorization: Bearer …"; a literal or "env:NAME".',
    )
    basic_auth = models.CharField(
        max_length=500,
        blank=True,
        help_text='"user:password" (or "env:NAME" holding it), sent as HTTP Basic auth.',
    )
    forward_headers = models.JSONField(
        default=list,
        blank=True,
        help_text="Glob patterns of the sender's stored headers to pass on (e.g. X-Gitlab-*).",
    )
    # Ordered delivery (hookway.store.deliveries, docs/delivery.md "Ordered delivery"):
    # one delivery in flight at a time, in the order the events were received.
    ordered = models.BooleanField(
        default=False,
        help_text="Deliver one at a time, in the order events were received (a retry holds "
        "back later deliveries).",
    )
    on_dead = models.CharField(
        max_length=8,
        choices=OnDead.choices,
        default=OnDead.SKIP,
        help_text="Ordered only: when a delivery dies, skip it or block the later ones "
        "until it is replayed.",
    )
    # Ordered only: a CEL expression (hookway.routing.lanes) giving each delivery its
    # lane's key at fan-out; one lane per key, each in order, the lanes in parallel.
    order_key = models.TextField(
        blank=True,
        default="",
        db_default="",
        help_text="Ordered only: a CEL expression over payload, headers, event_name and "
        "source, e.g. payload.customer_id: one lane per value, in order within it, lanes in "
        "parallel. Empty: one lane.",
    )
    managed = models.BooleanField(default=False, help_text="Managed by the HOOKWAY_CONFIG file.")
    # Health, kept by hookway.store.deliveries.record_attempts as attempts are recorded
    # (the admin's list reads them; counting them from attempts would scan the table).
    last_success_at = models.DateTimeField("last success", null=True, blank=True)
    failures_in_a_row = models.PositiveIntegerField(
        default=0, help_text="Failed attempts since its last success."
    )
    # When its attempts started failing without a success since (disable_after counts
    # from here); kept with the health columns above.
    failing_since = models.DateTimeField(null=True, blank=True)
    # Delivery policies (docs/delivery.md), set like its other settings.
    rate_limit = models.CharField(
        max_length=32,
        blank=True,
        help_text='At most this many deliveries, spread evenly: "50/s", "3000/min", "100/h". '
        "Empty: no limit. Held across every dispatcher sharing the database.",
    )
    circuit_failures = models.PositiveIntegerField(
        default=DEFAULT_CIRCUIT_FAILURES,
        help_text="Failed attempts in a row that open its circuit (nothing sent until a "
        "probe succeeds); 0: no circuit breaker.",
    )
    circuit_cooldown_seconds = models.FloatField(
        default=DEFAULT_CIRCUIT_COOLDOWN,
        help_text="Seconds an open circuit waits before it sends one probe; doubled after "
        "each failed probe, up to an hour.",
    )
    disable_after_seconds = models.FloatField(
        default=DEFAULT_DISABLE_AFTER,
        help_text="Disable it once every attempt failed for this long (default 5 days); 0: never.",
    )
    notifications = models.BooleanField(
        default=False,
        help_text="Receives Hookway's notifications of destination state changes "
        "([notifications] in the config file).",
    )
    # The rate limit's state: the time its next delivery may go at the earliest (GCRA's
    # theoretical arrival time), advanced by every claim (hookway.store.pacing).
    rate_next_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The circuit breaker's state (hookway.store.circuit).
    circuit_state = models.CharField(
        max_length=16,
        choices=[(s.value, s.value.replace("_", "-")) for s in CircuitState],
        default=CircuitState.CLOSED.value,
    )
    circuit_changed_at = models.DateTimeField(null=True, blank=True)
    circuit_retry_at = models.DateTimeField(
        null=True, blank=True, help_text="When an open circuit sends its next probe."
    )
    circuit_cooldown = models.FloatField(default=0.0, help_text="The current cool-down (s).")
    circuit_probe = models.CharField(max_length=32, blank=True, help_text="The probe's delivery.")
    circuit_probe_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(url__gt="", handler="", celery_task="")
                    | models.Q(url="", handler__gt="", celery_task="")
                    | models.Q(url="", handler="", celery_task__gt="")
                ),
                name="destination_one_kind",
                violation_error_message="Set exactly one of URL, handler and Celery task.",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def kind(self) -> DestinationKind:
        if self.handler:
            return DestinationKind.HANDLER
        if self.celery_task:
            return DestinationKind.CELERY
        return DestinationKind.HTTP

    @property
    def target(self) -> str:
        """Where it delivers: its URL, handler or Celery task name."""
        return self.url or self.handler or self.celery_task


class DestinationChange(models.Model):
    """One change of a destination's state (its circuit, enabled, paused), with when and
    why: written in the transaction that made the change, so each is written once
    however many dispatchers run, and notified from here (hookway.store.changelog)."""

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="changes")
    at = models.DateTimeField()
    change = models.CharField(max_length=32, choices=[(c.value, c.value) for c in Change])
    from_state = models.CharField(max_length=16)
    to_state = models.CharField(max_length=16)
    reason = models.CharField(max_length=500)
    # Email (HOOKWAY_NOTIFY_EMAIL): "pending" until a dispatcher sent it ("sent"), or
    # "expired" when a day passed unsent; "" for changes not notified. A dispatcher
    # leases a pending one while it sends it.
    email = models.CharField(max_length=8, blank=True, default="")
    email_lease_until = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["destination", "at", "id"], name="destchange_destination_at"),
            models.Index(fields=["email", "id"], name="destchange_email"),
        ]

    def __str__(self) -> str:
        return f"{self.destination_id}: {self.from_state} -> {self.to_state}"


class Route(models.Model):
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="routes")
    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="routes")
    events = models.JSONField(
        default=list, blank=True, help_text="Glob patterns on the event name; empty = all events."
    )
    # Checked by hookway.routing.rules.check wherever a route is saved (config file,
    # API, admin); docs/delivery.md, "Filters and transformations".
    filter = models.TextField(
        blank=True,
        help_text="A CEL expression over payload, headers, event_name and source; the "
        "route takes an event only when it is true. Empty: no filter.",
    )
    match = models.JSONField(
        default=dict,
        blank=True,
        help_text='A $-operator filter, e.g. {"payload.data.amount": {"$gte": 100}}; must '
        "hold too. Empty: none.",
    )
    transform = models.TextField(
        blank=True,
        help_text="A CEL expression whose value is sent as the JSON body instead of the "
        "event's. Empty: the event's body as received.",
    )
    enabled = models.BooleanField(default=True)
    managed = models.BooleanField(default=False, help_text="Managed by the HOOKWAY_CONFIG file.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "destination"], name="route_source_destination"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source_id} → {self.destination_id}"


class Event(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=ids.event_id, editable=False)
    # Indexed with received_at (Meta.indexes): the admin's lists filter by these and
    # show the newest first.
    source = models.ForeignKey(
        Source, on_delete=models.PROTECT, related_name="events", db_index=False
    )
    event_name = models.CharField(max_length=255, blank=True)
    # NULL (not "") when the sender gives none: the unique constraint skips NULLs.
    delivery_id = models.CharField(  # noqa: DJ001
        max_length=255, null=True, blank=True, help_text="The sender's delivery id (dedupe key)."
    )
    content_type = models.CharField(max_length=255, blank=True)
    headers = models.JSONField(default=dict)
    body = models.BinaryField()
    # SHA-256 of the body (hex). A delivery id is a duplicate only with the same body: a
    # sender's id is not covered by most signature schemes, so a captured body replayed
    # under a chosen id must not turn the real event with that id into a "duplicate".
    body_sha256 = models.CharField(max_length=64, default="", editable=False)
    # Set when this event reused another event's delivery id with a different body.
    conflict_with = models.CharField(max_length=32, blank=True, default="")
    # The routes whose filter or match did not take this event, and why:
    # [{"destination": name, "reason": "..."}] (hookway.routing.rules.decide).
    # A database default too: rows written by raw SQL elsewhere (benchmarks) need none.
    filtered_out = models.JSONField(
        default=list,
        db_default=Value([], output_field=models.JSONField()),
        blank=True,
        editable=False,
    )
    received_at = models.DateTimeField()  # indexed with id (Meta.indexes)
    # NULL when the server gave no IP address (a Unix socket) or for published events.
    client_ip = models.GenericIPAddressField(
        null=True,
        blank=True,
        help_text="The sender's address: the TCP peer, or the client a trusted proxy "
        "(FORWARDED_ALLOW_IPS) named in X-Forwarded-For.",
    )
    # W3C Trace Context of ingest's span (hookway.tracing), which every delivery attempt's
    # span continues, in whichever process; "" when tracing is off. NULL for events stored
    # before tracing existed: nullable, so SQLite adds the columns in place instead of
    # copying the whole table (bodies and all) to add them.
    traceparent = models.CharField(max_length=55, null=True, blank=True, editable=False)  # noqa: DJ001
    tracestate = models.CharField(max_length=512, null=True, blank=True, editable=False)  # noqa: DJ001

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "delivery_id", "body_sha256"],
                condition=models.Q(delivery_id__isnull=False),
                name="event_source_delivery_id_body",
            )
        ]
        indexes = [
            models.Index(fields=["source", "delivery_id"], name="event_source_delivery"),
            # Newest first, whole or by source or event name; the id breaks ties and
            # makes the API's keyset pages (hookway.store.browse) an index range.
            models.Index(fields=["received_at", "id"], name="event_received"),
            models.Index(fields=["source", "received_at", "id"], name="event_source_received_id"),
            models.Index(fields=["event_name", "received_at", "id"], name="event_name_received_id"),
        ]

    def __str__(self) -> str:
        return self.id


class Delivery(models.Model):
    # Sent as `webhook-id`: stable across every retry of this delivery, so receivers dedupe.
    id = models.CharField(primary_key=True, max_length=32, default=ids.delivery_id, editable=False)
    # Indexed with state (Meta.indexes), which serves every lookup by event too.
    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    # Indexed with created_at (Meta.indexes), as the admin's list shows them.
    destination = models.ForeignKey(
        Destination, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    state = models.CharField(
        max_length=16,
        choices=[(s.value, s.value) for s in DeliveryState],
        default=DeliveryState.PENDING.value,
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    replay_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays"
    )
    # Its lane in an ordered destination (hookway.routing.lanes): the destination's
    # order_key evaluated on the event at fan-out ("" for one lane, and the fallback when
    # that failed, with why in order_key_error). A replay keeps the original's.
    order_key = models.CharField(max_length=200, blank=True, default="", db_default="")
    order_key_error = models.TextField(blank=True, default="", db_default="")

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="delivery_due"),
            # An event's deliveries in a state (the API's event list state filter).
            models.Index(fields=["event", "state"], name="delivery_event_state"),
            # Newest first (the id breaking ties: the API's keyset pages), whole or by
            # state, destination, or both: the admin's and the API's delivery lists.
            models.Index(fields=["created_at", "id"], name="delivery_created"),
            models.Index(fields=["state", "created_at", "id"], name="delivery_state_created_id"),
            models.Index(fields=["destination", "created_at", "id"], name="delivery_dest_created"),
            models.Index(
                fields=["destination", "state", "created_at", "id"],
                name="delivery_dest_state_created",
            ),
            # Pending (no attempt yet) vs failing (1+) and dead, in all and by
            # destination, counted from the index alone: the overview's and the stats'
            # counts at millions of deliveries (bench/console.py).
            models.Index(
                fields=["state", "attempts", "destination"], name="delivery_state_attempts"
            ),
            # An ordered destination's lane (hookway.store.lanes): the claim looks for a
            # delivery of the same destination and key in flight, pending ahead, or dead.
            models.Index(fields=["destination", "order_key", "state"], name="delivery_lane"),
        ]

    def __str__(self) -> str:
        return self.id


class AttemptOutcome(models.TextChoices):
    IN_FLIGHT = "in_flight", "in flight"
    SUCCESS = "success", "success"
    RETRY = "retry", "will retry"
    FAILED = "failed", "failed (permanent)"


class Attempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    worker = models.CharField(max_length=100, blank=True)
    started_at = models.DateTimeField()
    duration_ms = models.FloatField(null=True, blank=True)
    outcome = models.CharField(
        max_length=16, choices=AttemptOutcome.choices, default=AttemptOutcome.IN_FLIGHT
    )
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error_kind = models.CharField(
        max_length=32, blank=True, choices=[(k.value, k.value or "-") for k in ErrorKind]
    )
    error = models.TextField(blank=True)
    response_body = models.TextField(blank=True)
    # The body this attempt sent when a route's transform made it (the event keeps the
    # original); empty: the event's body as stored was sent.
    request_body = models.TextField(blank=True, db_default="")

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="attempt_delivery_number")
        ]
        # The last hour's or day's attempts by outcome and delivery (the stats, the
        # console's overview): an index range holding every column those counts read,
        # where without it every attempt ever made is read (bench/console.py).
        indexes = [
            models.Index(fields=["started_at", "outcome", "delivery"], name="attempt_started")
        ]

    def __str__(self) -> str:
        return f"{self.delivery_id} #{self.number}"


class Worker(models.Model):
    """A running Hookway process (web or dispatcher), seen at its last heartbeat.

    Written by readiness checks and dispatcher lease renewals: each write proves the
    database still commits, and the table tells an operator which dispatchers live."""

    id = models.CharField(primary_key=True, max_length=100)
    kind = models.CharField(max_length=16)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-seen_at"]

    def __str__(self) -> str:
        return self.id


class AppliedConfig(models.Model):
    """The HOOKWAY_CONFIG content last applied to this database (one row). A process
    starting with the same content skips the sync, so N web workers and the dispatchers
    apply a change once, and log it once."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    sha256 = models.CharField(max_length=64)
    path = models.CharField(max_length=1000)
    applied_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.path} ({self.sha256[:12]})"


class ApiKeyScope(models.TextChoices):
    READ = "read", "read"
    WRITE = "write", "write (read too)"


class ApiKey(models.Model):
    """A key for the operator API (hookway.api), sent as ``Authorization: Bearer <key>``.

    Only the key's SHA-256 is stored (keys are 256 random bits, so a fast hash is enough:
    there is nothing to brute-force); ``prefix`` is its first characters, shown so an
    operator can tell keys apart. A revoked key stays, so its history stays readable."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scope = models.CharField(max_length=8, choices=ApiKeyScope.choices, default=ApiKeyScope.READ)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…, {self.scope})"
