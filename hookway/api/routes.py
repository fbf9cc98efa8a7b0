"""/api/v1/routes"""

from __future__ import annotations

from ninja import Router

router = Router(tags=["routes"])
