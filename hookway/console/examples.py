"""A shell command that sends a source a webhook it accepts: curl, signed with openssl
for the schemes that sign the body (the commands docs/verification.md shows). The
secret is never written out: the command reads it from a shell variable, named after
the source's ``env:`` reference when it has one."""

from __future__ import annotations

import re
import shlex

from hookway.inbound import VerifyScheme

BODIES = {
    VerifyScheme.STRIPE: '{"id": "evt_test_1", "object": "event", "type": "invoice.paid"}',
    VerifyScheme.STANDARD_WEBHOOKS: '{"type": "order.created", "data": {"order": 1234}}',
    VerifyScheme.GITLAB: '{"object_kind": "push", "ref": "refs/heads/main"}',
}
DEFAULT_BODY = '{"event_name": "push", "ref": "main"}'
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def secret_variable(slug: str, refs: list[str]) -> str:
    """The shell variable the command reads the secret from: the ``env:`` variable the
    source reads it from, else one named after the source."""
    for ref in refs:
        if ref.startswith("env:") and _ENV_NAME.match(ref[4:]):
            return ref[4:]
    return re.sub(r"[^A-Z0-9_]", "_", f"{slug.upper()}_SECRET")


def example_command(url: str, slug: str, verify: str, refs: list[str]) -> str:
    """The command for a source at ``url`` with this scheme and secret references."""
    scheme = VerifyScheme(verify)
    body = BODIES.get(scheme, DEFAULT_BODY)
    json_header = "-H 'Content-Type: application/json'"
    lines: list[str] = []
    if scheme != VerifyScheme.NONE:
        var = secret_variable(slug, refs)
        lines.append(f'secret="${var}"  # the source\'s secret')
    lines.append(f"body='{body}'")
    headers = [json_header]
    if scheme == VerifyScheme.NONE:
        headers.append('-H "Idempotency-Key: $(openssl rand -hex 16)"')
    elif scheme == VerifyScheme.TOKEN:
        headers.append('-H "X-Webhook-Token: $secret"')
    elif scheme == VerifyScheme.GITLAB:
        headers.append("-H \"X-Gitlab-Token: $secret\" -H 'X-Gitlab-Event: Push Hook'")
    elif scheme in (VerifyScheme.HMAC_SHA256, VerifyScheme.GITHUB):
        lines.append(
            "sig=$(printf '%s' \"$body\" | openssl dgst -sha256 -hmac \"$secret\" | cut -d' ' -f2)"
        )
        if scheme == VerifyScheme.GITHUB:
            headers.append('-H "X-Hub-Signature-256: sha256=$sig"')
            headers.append(
                "-H 'X-GitHub-Event: push' -H \"X-GitHub-Delivery: $(openssl rand -hex 16)\""
            )
        else:
            headers.append('-H "X-Signature-256: sha256=$sig"')
    elif scheme == VerifyScheme.STRIPE:
        lines.append("ts=$(date +%s)")
        lines.append(
            'sig=$(printf \'%s\' "$ts.$body" | openssl dgst -sha256 -hmac "$secret" '
            "| cut -d' ' -f2)"
        )
        headers.append('-H "Stripe-Signature: t=$ts,v1=$sig"')
    elif scheme == VerifyScheme.STANDARD_WEBHOOKS:
        lines += [
            'id="msg_$(date +%s%N)"',
            "ts=$(date +%s)",
            "key=$(printf '%s' \"${secret#whsec_}\" | base64 -d | od -An -vtx1 | tr -d ' \\n')",
            "sig=$(printf '%s' \"$id.$ts.$body\" | openssl dgst -sha256 -mac HMAC "
            '-macopt "hexkey:$key" -binary | base64)',
        ]
        headers.append(
            '-H "webhook-id: $id" -H "webhook-timestamp: $ts" -H "webhook-signature: v1,$sig"'
        )
    lines.append(f"curl -i {shlex.quote(url)} \\")
    lines += [f"  {h} \\" for h in headers]
    lines.append('  --data-binary "$body"')
    return "\n".join(lines)
