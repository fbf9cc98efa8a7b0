"""``hookway send SOURCE``: a webhook signed the way the source verifies (any of the seven
schemes, hookway.signers), POSTed to its ``/hooks/<slug>`` like a real sender would, and
ingest's answer shown as it is: 202 stored, 200 duplicate, 401 signature refused, ….

The source's scheme comes from the API (``GET /api/v1/sources/{slug}``, a read key), or
from ``--scheme`` without any key; its secret never does (the API does not show secrets),
so it comes from ``--secret``, ``HOOKWAY_SEND_SECRET`` or the profile's ``secrets``. The
API does show each secret's fingerprint: a secret that matches none is pointed out
before sending."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from rich.text import Text

from hookway.cli.client import Api, decode, error_fields, path
from hookway.cli.errors import CliError, NotFound, Refused, UsageProblem
from hookway.cli.output import Output, plural, status_text
from hookway.inbound import VerifyScheme
from hookway.signers import SignError, needs_secret, sign_webhook


def fingerprint(secret: str) -> str:
    """What the API shows of a secret: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:8]


async def source_settings(api: Api, slug: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = await api.get_json(path("sources", slug), what=f"source {slug}")
    except NotFound:
        raise NotFound(
            f"no source {slug!r} on {api.url}",
            code="not_found",
            hint="`hookway send` posts to /hooks/<slug>: the slug of a source that exists",
        ) from None
    return data


async def send(
    api: Api,
    out: Output,
    *,
    source: str,
    body: bytes,
    event_name: str | None,
    secret: str | None,
    scheme: str | None,
    content_type: str,
    extra_headers: list[tuple[str, str]],
    need_lookup: bool,
) -> None:
    facts: dict[str, Any] = {}
    if need_lookup:
        facts = await source_settings(api, source)
        scheme = str(facts["verify"])
        if not facts.get("enabled", True):
            out.notice("warning", f"source {source} is disabled: ingest will answer 404")
    assert scheme is not None
    verify = VerifyScheme(scheme)
    if needs_secret(verify) and not secret:
        raise UsageProblem(
            f"source {source} verifies with {verify.value}: give its secret",
            hint="--secret S, HOOKWAY_SEND_SECRET, or the profile's [profiles.NAME.secrets] "
            "(the API never shows secrets)",
        )
    known = [f for f in facts.get("secret_fingerprints", []) if f]
    if secret and known and needs_secret(verify) and fingerprint(secret) not in known:
        out.notice(
            "warning",
            f"this secret's fingerprint {fingerprint(secret)} matches none of source "
            f"{source}'s ({', '.join(known)}): expect a 401",
        )
    try:
        signed = sign_webhook(verify, body, secret, event_name=event_name)
    except SignError as exc:
        raise UsageProblem(str(exc)) from None
    # --header last: a person testing a route may mean to send something else on purpose.
    headers = {"Content-Type": content_type, **signed.headers, **dict(extra_headers)}
    url = f"/hooks/{quote(source, safe='')}"
    response = await api.request(
        "POST",
        url,
        what=f"sending to {source}",
        content=signed.body,
        headers=headers,
        expect=range(100, 600),
    )
    if response.is_success:
        answer = decode(response, f"sending to {source}")
        if not isinstance(answer, dict):
            raise CliError(f"sending to {source}: {api.url} answered {answer!r}: is it a Hookway?")
        if out.as_json:
            out.json({"status": response.status_code, "scheme": verify.value, **answer})
        elif response.status_code == 202:
            line = Text("✓ ", style="green")
            line.append_text(status_text(202))
            line.append(
                f": {source}/{event_name or '(name from the body)'} stored as {answer.get('id')}"
                f" ({plural(answer.get('deliveries', 0), 'delivery')}), signed with {verify.value}"
            )
            out.print(line)
        else:
            line = status_text(response.status_code)
            if answer.get("duplicate"):
                line.append(f": a duplicate of {answer.get('id')} (stored before)", "yellow")
            out.print(line)
        return
    code, detail, data = error_fields(response)
    message = f"ingest answered {response.status_code} {code}: {detail}"
    if response.status_code == 401:
        raise Refused(
            message,
            code=code,
            hint="the secret is not the source's (check --secret / HOOKWAY_SEND_SECRET)",
            data=data,
        )
    if response.status_code == 404:
        raise NotFound(message, code=code, data=data)
    raise CliError(message, code=code, data=data)
