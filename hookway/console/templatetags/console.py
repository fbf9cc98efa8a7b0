"""Filters the console's templates share: ages, percentages, milliseconds."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone

register = template.Library()


def age_text(seconds: float) -> str:
    """``seconds`` as an operator reads an age: 45 s, 12 min, 3 h 5 min, 2 d 4 h."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


@register.filter
def ago(when: datetime | None) -> str:
    """How long ago ``when`` was ("3 min ago"), or "never"."""
    if when is None:
        return "never"
    return f"{age_text((timezone.now() - when).total_seconds())} ago"


@register.filter
def percent(rate: float | None) -> str:
    """0.9876 as "98.8 %"; "-" for no rate (nothing to measure)."""
    if rate is None:
        return "-"
    return f"{rate * 100:.1f} %".replace(".0 %", " %")


@register.filter
def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"
