"""``/destinations/``: where Hookway delivers, each with its state and health; *Enable*,
*Disable*, *Pause*, *Resume* (through hookway.gate, as the API and ``manage.py
destination`` do) and *Send test* (hookway.dispatch.ping, as the API's test), whose
outcome is shown in words: delivered, destination error, unreachable, timed out.
Secrets are never shown: whether each is set, and its fingerprint."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from hookway import gate
from hookway.api.common import secret_fingerprint
from hookway.console.access import staff_only
from hookway.console.overview import DestinationRow, health
from hookway.dispatch import ping
from hookway.models import Destination
from hookway.secrets import redact_url
from hookway.store import stats


@dataclass(frozen=True)
class SecretView:
    label: str
    fingerprint: str | None
    ref: str | None  # the env:NAME it is read from


@dataclass(frozen=True)
class DestinationPage:
    row: DestinationRow
    destination: Destination
    kind: str
    secrets: list[SecretView]


def _secrets(row: Destination) -> list[SecretView]:
    found = []
    for label, ref in (
        ("signing secret", row.signing_secret),
        ("bearer token", row.bearer_token),
        ("basic auth", row.basic_auth),
    ):
        if ref:
            env = ref if ref.startswith("env:") else None
            found.append(SecretView(label, secret_fingerprint(ref), env))
    return found


async def _pages() -> list[DestinationPage]:
    pending = await stats.apending_by_destination()
    out = []
    async for row in Destination.objects.order_by("name"):
        state, detail = health(row)
        out.append(
            DestinationPage(
                row=DestinationRow(
                    name=row.name,
                    target=redact_url(row.url) if row.url else row.target,
                    state=state,
                    detail=detail,
                    last_success_at=row.last_success_at,
                    last_hour=None,
                    pending=pending.get(row.pk, 0),
                ),
                destination=row,
                kind=row.kind.label,
                secrets=_secrets(row),
            )
        )
    return out


@staff_only
async def destination_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "console/destinations.html",
        {"section": "destinations", "destinations": await _pages()},
    )


ACTIONS = ("enable", "disable", "pause", "resume")


async def _change(name: str, action: str) -> tuple[bool, str]:
    """Make the change; (True, what it did) or (False, why it could not)."""
    try:
        if action == "disable":
            changed = await gate.adisable_destination(name)
            return True, f"'{name}' disabled" if changed else f"'{name}' is already disabled"
        change = await {
            "enable": gate.aenable_destination,
            "pause": gate.apause_destination,
            "resume": gate.aresume_destination,
        }[action](name)
    except (gate.DestinationError, gate.EntryError) as exc:
        return False, str(exc)
    return True, change.message


@require_POST
@staff_only
async def change_state(request: HttpRequest, name: str, action: str) -> HttpResponseBase:
    if action not in ACTIONS:
        raise Http404("no such action")
    if not await Destination.objects.filter(name=name).aexists():
        raise Http404(f"no destination named {name!r}")
    ok, message = await _change(name, action)
    (messages.success if ok else messages.error)(request, message[:1].upper() + message[1:] + ".")
    if not ok:
        context = {"section": "destinations", "destinations": await _pages()}
        return render(request, "console/destinations.html", context, status=409)
    return redirect("hookway-console:destinations")


@require_POST
@staff_only
async def send_test(request: HttpRequest, name: str) -> HttpResponse:
    """Ping the destination; the outcome as a fragment (htmx) or on the list page."""
    outcome: ping.PingResult | None = None
    problem = ""
    status = 200
    try:
        outcome = await ping.aping(name)
    except ping.NoSuchDestination:
        raise Http404(f"no destination named {name!r}") from None
    except ping.NotHttp as exc:
        problem = f"{exc}: replay a stored event to it instead."
        status = 409
    context = {"name": name, "outcome": outcome, "problem": problem}
    if request.headers.get("HX-Request"):
        return render(request, "console/_test_result.html", context, status=status)
    pages = await _pages()
    return render(
        request,
        "console/destinations.html",
        {"section": "destinations", "destinations": pages, "tested": context},
        status=status,
    )
