"""``manage.py banner``: what `make run` prints before serving."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from hookway import conf


class Command(BaseCommand):
    help = "Print Hookway's URLs and a curl command that sends a demo webhook."

    def handle(self, *args: Any, **options: Any) -> None:
        base = f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
        self.stdout.write(
            f"""
Hookway is starting on {base}
  ingest   POST {base}/hooks/demo   (demo source; token 'demo-token')
  admin    {base}/admin/            (create a login: make superuser)
  health   {base}/healthz  {base}/readyz

Send a demo webhook:
  curl -X POST {base}/hooks/demo \\
    -H 'Content-Type: application/json' -H 'X-Webhook-Token: demo-token' \\
    -d '{{"event_name": "push", "ref": "main"}}'
"""
        )
        if settings.SECRET_KEY == conf.DEVELOPMENT_SECRET_KEY:
            self.stdout.write(
                f"""
This process uses a development SECRET_KEY (demo mode): it is public, so never
expose this server. For anything but a local demo, set a real one:
  export SECRET_KEY="$({conf.MAKE_A_KEY})"
"""
            )
