"""/api/v1/deliveries"""

from __future__ import annotations

from ninja import Router

router = Router(tags=["deliveries"])
