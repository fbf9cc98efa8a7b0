"""Why did a receiver get the same delivery twice?

A receiver accepted a copy of a delivery (answered or began answering 2xx), and then got
it again. The attempt that carried the accepted copy says why Hookway sent it again: it
must not have been recorded as a success, and its error must name something that makes
a resend unavoidable under at-least-once delivery:

- its dispatcher was killed, so the attempt was still in flight when its lease expired
  (and the process really was killed by the drill: a lease that expires under a
  living dispatcher explains nothing);
- its dispatcher could not reach the database for longer than its lease (the drill
  terminates connections), so another dispatcher claimed the delivery again: the
  attempt's record says so (hookway.store.deliveries.LEASE_LOST);
- its dispatcher stopped (SIGTERM) before it finished and released it;
- the receiver did not answer within the destination's timeout;
- the connection failed after the request was sent.

Anything else is unexplained, and fails the drill.

``classify_repeat`` is the one place that reads why an attempt failed: the attempt's
``error_kind`` (hookway.outbound.ErrorKind), and for an interrupted attempt, Hookway's own
lease and shutdown texts, to tell a killed dispatcher from a stopped one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from drill.database import AttemptRow

KILLED = "dispatcher killed (lease expired)"
LOST = "lease lost (database out of its holder's reach)"
RELEASED = "released at shutdown"
TIMEOUT = "receiver timeout"
CONNECTION = "connection error"
UNEXPLAINED = "unexplained"
CAUSES = (KILLED, LOST, RELEASED, TIMEOUT, CONNECTION, UNEXPLAINED)

# hookway.outbound.ErrorKind values: what a failed attempt ran into.
TIMEOUT_KINDS = frozenset({"timeout"})
CONNECTION_KINDS = frozenset({"connection_reset", "connection", "connection_refused"})


@dataclass(frozen=True)
class HookwayTexts:
    lease_expired: str  # hookway.store.deliveries.LEASE_EXPIRED
    lease_lost: str  # hookway.store.deliveries.LEASE_LOST
    released: str  # hookway.dispatch.dispatcher.SHUTDOWN_REASON


def hookway_texts(env: dict[str, str]) -> HookwayTexts:
    """Import the error texts from Hookway itself (which needs Django set up, with the
    drill's environment so its settings validate)."""
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "hookway.standalone.settings"
    import django

    django.setup()
    from hookway.dispatch.dispatcher import SHUTDOWN_REASON
    from hookway.store.deliveries import LEASE_EXPIRED, LEASE_LOST

    return HookwayTexts(
        lease_expired=LEASE_EXPIRED, lease_lost=LEASE_LOST, released=SHUTDOWN_REASON
    )


def worker_pid(worker: str) -> int | None:
    """The process id in a dispatcher's worker id (``host:pid:random``), or None."""
    parts = worker.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit():
        return int(parts[1])
    return None


def classify_repeat(
    accepted: AttemptRow | None,
    resent_at: float | None,
    texts: HookwayTexts,
    killed_at: dict[int, float],
) -> tuple[str, str]:
    """Why a delivery was sent again after the receiver accepted the copy that
    ``accepted`` (its attempt row) carried; ``resent_at`` is when the next copy's attempt
    started and ``killed_at`` maps the pids the drill killed to when (both epoch
    seconds). Returns (cause, detail): cause is one of CAUSES; detail is the evidence."""
    if accepted is None:
        return UNEXPLAINED, "no attempt row for the accepted copy"
    n = accepted.number
    error = accepted.error
    if texts.lease_lost in error:
        return LOST, f"attempt {n} ({accepted.outcome}) was written after its lease was taken over"
    if accepted.outcome == "success":
        took = f" after {accepted.duration_ms / 1000:.1f} s" if accepted.duration_ms else ""
        return UNEXPLAINED, f"attempt {n} was recorded as a success{took}, yet sent again"
    if accepted.outcome == "in_flight":
        return UNEXPLAINED, f"attempt {n} is still recorded in flight, yet sent again"
    if error.startswith(texts.lease_expired):
        pid = worker_pid(accepted.worker)
        killed = killed_at.get(pid) if pid is not None else None
        if killed is not None and (resent_at is None or killed <= resent_at):
            return KILLED, f"attempt {n}: its dispatcher (pid {pid}) was killed"
        return UNEXPLAINED, (
            f"attempt {n}: lease expired while its dispatcher (pid {pid}) was alive"
        )
    if error.startswith(texts.released):
        return RELEASED, f"attempt {n} released at shutdown"
    if accepted.error_kind in TIMEOUT_KINDS:
        return TIMEOUT, f"attempt {n}: {error[:60]}"
    if accepted.error_kind in CONNECTION_KINDS:
        return CONNECTION, f"attempt {n}: {error[:60]}"
    return UNEXPLAINED, f"attempt {n} ({accepted.outcome}): {error[:80]!r}"
