"""``/dead/``: deliveries that ran out of attempts, grouped by destination and error,
most first. *Replay…* on a group asks first, saying how many deliveries a replay will
create (a dry run of the very replay, hookway.store.replay: already-replayed ones are
skipped), then replays them in one transaction."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render

from hookway import gate
from hookway.api.deliveries import MAX_BULK
from hookway.console.access import staff_only
from hookway.models import Delivery
from hookway.store import stats


@staff_only
async def dead_letters(request: HttpRequest) -> HttpResponse:
    groups = await stats.adead_groups()
    return render(request, "console/dead.html", {"section": "dead", "groups": groups})


async def _group_ids(destination: str, error: str) -> list[str]:
    """The group's dead deliveries, oldest first (at most MAX_BULK + 1)."""
    rows = (
        Delivery.objects.filter(stats.dead_group_rows(destination, error))
        .order_by("completed_at", "id")
        .values_list("pk", flat=True)
    )
    return [pk async for pk in rows[: MAX_BULK + 1]]


@staff_only
async def replay_group(request: HttpRequest) -> HttpResponseBase:
    """GET: the confirmation (how many will be replayed). POST: replay them."""
    source = request.POST if request.method == "POST" else request.GET
    destination, error = source.get("destination", ""), source.get("error")
    if not destination or error is None:
        return render(
            request,
            "console/dead.html",
            {
                "section": "dead",
                "groups": await stats.adead_groups(),
                "problem": "Choose a group of dead deliveries to replay.",
            },
            status=400,
        )
    ids = await _group_ids(destination, error)
    too_many = len(ids) > MAX_BULK
    ids = ids[:MAX_BULK]
    context = {
        "section": "dead",
        "destination": destination,
        "error": error,
        "dead": len(ids),
        "too_many": too_many,
        "max_bulk": MAX_BULK,
    }
    if request.method == "POST":
        if not ids:
            messages.info(request, f"No dead deliveries to {destination} with that error.")
            return redirect("hookway-console:dead")
        result = await gate.areplay_deliveries(ids)
        report_group(request, destination, result)
        return redirect("hookway-console:dead")
    plan = await gate.areplay_deliveries(ids, dry_run=True)
    context.update(
        replays=len(plan.created),
        skipped=len(plan.skipped),
        reasons=sorted({s.reason for s in plan.skipped})[:5],
    )
    return render(request, "console/dead_confirm.html", context)


def report_group(request: HttpRequest, destination: str, result: gate.ReplayResult) -> None:
    """One message for a bulk replay (not one per delivery), and the reasons of skips."""
    if result.created:
        n = len(result.created)
        messages.success(
            request, f"Replayed {n} dead deliver{'y' if n == 1 else 'ies'} to {destination}."
        )
    if result.skipped:
        reasons = "; ".join(sorted({s.reason for s in result.skipped})[:3])
        messages.info(request, f"{len(result.skipped)} not replayed: {reasons}.")
