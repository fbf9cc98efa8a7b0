"""``/sources/``: where senders POST: for each source the URL to give the sender, its
verification scheme, a command that sends it a webhook it accepts (secrets read from
a shell variable, never shown), and when it last received one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from hookway.api.common import secret_fingerprint
from hookway.console.access import staff_only
from hookway.console.examples import example_command
from hookway.models import VERIFY_LABELS, Source, VerifyScheme
from hookway.store import stats


@dataclass(frozen=True)
class SourceView:
    source: Source
    url: str
    scheme: str
    secrets: list[str]  # each described: "fingerprint 3f9a1c2b" or "env:NAME (not set)"
    example: str
    last_received_at: datetime | None


def _describe(ref: str) -> str:
    fingerprint = secret_fingerprint(ref)
    if ref.startswith("env:"):
        return f"{ref} ({'fingerprint ' + fingerprint if fingerprint else 'not set here'})"
    return f"fingerprint {fingerprint}"


@staff_only
async def source_list(request: HttpRequest) -> HttpResponse:
    last = await stats.alast_received()
    views = []
    async for source in Source.objects.order_by("slug"):
        refs = [str(r) for r in source.secrets] if isinstance(source.secrets, list) else []
        url = request.build_absolute_uri(
            reverse("hookway-ingest", kwargs={"slug": source.slug}).rstrip("/")
        )
        views.append(
            SourceView(
                source=source,
                url=url,
                scheme=VERIFY_LABELS[VerifyScheme(source.verify)],
                secrets=[_describe(r) for r in refs],
                example=example_command(url, source.slug, source.verify, refs),
                last_received_at=last.get(source.pk),
            )
        )
    return render(request, "console/sources.html", {"section": "sources", "sources": views})
