"""/api/v1/destinations"""

from __future__ import annotations

from ninja import Router

router = Router(tags=["destinations"])
