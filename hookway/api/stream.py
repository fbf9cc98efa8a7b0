"""/api/v1/stream"""

from __future__ import annotations

from ninja import Router

router = Router(tags=["stream"])
