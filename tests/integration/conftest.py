"""Fixtures of the integration suites."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from hookway.models import Destination, Route, Source

SW_SECRET = "whsec_" + base64.b64encode(b"hookway-contract-test-key-32byte").decode()
SECRETS = {
    "none": None,
    "token": "tok-contract-7f3a",
    "hmac-sha256": "hmac-contract-91c2",
    "github": "It's a Secret to Everybody",
    "gitlab": "glpat-contract-55d0",
    "stripe": "whsec_stripe_contract_0b8e",
    "standard-webhooks": SW_SECRET,
}


@pytest.fixture
def source(make_source: Callable[..., Source]) -> Callable[..., Any]:
    """``await source(slug, verify, ...)``: a Source with one catch-all route, so any event
    that got stored would also show up as a Delivery."""

    def create(slug: str = "demo", verify: str = "none", **kw: Any) -> Source:
        secret = SECRETS.get(verify)
        kw.setdefault("secrets", [secret] if secret else [])
        created = make_source(slug=slug, verify=verify, **kw)
        destination = Destination.objects.create(
            name=f"catch-all-{slug}", url="http://127.0.0.1:9/hooks"
        )
        Route.objects.create(source=created, destination=destination)
        return created

    return sync_to_async(create)
