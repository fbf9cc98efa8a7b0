"""/api/v1/stats"""

from __future__ import annotations

from ninja import Router

router = Router(tags=["stats"])
