"""``manage.py banner``: what `make run` prints before serving: the URLs, and for each
source actually configured (HOOKWAY_CONFIG, else the database), where to send webhooks
and, when it can be shown, a curl command that works."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from hookway import conf
from hookway.config import file as config_file
from hookway.inbound import VerifyScheme
from hookway.models import Source

# Schemes whose proof is the secret itself in a header: a curl can show it. The others
# sign each body (docs/verification.md shows how).
TOKEN_HEADERS = {VerifyScheme.TOKEN: "X-Webhook-Token", VerifyScheme.GITLAB: "X-Gitlab-Token"}
EXAMPLE_BODY = '{"event_name": "push", "ref": "main"}'


def _configured_sources() -> tuple[str, list[tuple[str, str, list[str]]]]:
    """Where the sources come from, and each one's slug, scheme and secret references."""
    path = conf.get().config_path
    if path is not None:
        try:
            config = config_file.load(path)
        except config_file.ConfigError as exc:
            raise CommandError(str(exc)) from None
        return str(path), [(s.slug, s.verify, list(s.secrets)) for s in config.sources if s.enabled]
    rows = Source.objects.filter(enabled=True).values_list("slug", "verify", "secrets")
    return "the database", [(slug, verify, list(secrets or [])) for slug, verify, secrets in rows]


class Command(BaseCommand):
    help = "Print Hookway's URLs and, for each configured source, how to send it a webhook."

    def handle(self, *args: Any, **options: Any) -> None:
        base = f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
        origin, sources = _configured_sources()
        # Under `make run` (demo mode) the make targets carry the demo's settings along.
        demo = settings.SECRET_KEY == conf.DEVELOPMENT_SECRET_KEY
        make_key = "make api-key NAME=me" if demo else "./manage.py create_api_key NAME"
        make_user = "make superuser" if demo else "./manage.py createsuperuser"
        lines = [
            "",
            f"Hookway is starting on {base}",
            f"  console  {base}/                  (log in as a staff user; create one: {make_user})",
            f"  admin    {base}/admin/            (the same login)",
            f"  api      {base}/api/v1/docs       (a key: {make_key})",
            f"  health   {base}/healthz  {base}/readyz",
            "",
        ]
        if not sources:
            lines.append(
                f"No sources yet (from {origin}): add one to a hookway.toml "
                "(HOOKWAY_CONFIG, docs/configuration.md) or in the admin."
            )
        else:
            lines.append(f"Sources (from {origin}):")
            for slug, verify, _ in sources:
                lines.append(f"  POST {base}/hooks/{slug}   (verify = {verify})")
        example = self._example(base, sources)
        if example:
            lines += ["", *example]
        self.stdout.write("\n".join(lines) + "\n")
        if demo:
            self.stdout.write(
                f"""
This process uses a development SECRET_KEY (demo mode): it is public, so never
expose this server. For anything but a local demo, set a real one:
  export SECRET_KEY="$({conf.MAKE_A_KEY})"
"""
            )

    def _example(self, base: str, sources: list[tuple[str, str, list[str]]]) -> list[str]:
        """A curl for the first source a curl can show; how to sign for the others."""
        for slug, verify, secrets in sources:
            header = TOKEN_HEADERS.get(VerifyScheme(verify))
            auth = ""
            if header and secrets:
                ref = secrets[0]
                # An env: secret is shown as the variable, for the shell to expand.
                value = f"${ref[4:]}" if ref.startswith("env:") else ref
                auth = (
                    f' -H "{header}: {value}"'
                    if ref.startswith("env:")
                    else f" -H '{header}: {value}'"
                )
            if verify == VerifyScheme.NONE or auth:
                return [
                    f"Send {slug!r} a webhook:",
                    f"  curl -X POST {base}/hooks/{slug} \\",
                    f"    -H 'Content-Type: application/json'{auth} \\",
                    f"    -d '{EXAMPLE_BODY}'",
                ]
        if sources:
            return ["How senders sign for each scheme: docs/verification.md"]
        return []
