"""The admin's lists of what Hookway recorded, kept fast at millions of rows
(docs/operations.md, "The admin at scale"; measured by bench/admin.py).

Django's defaults read every row at that size: a ``COUNT(*)`` per page, a ``SELECT
DISTINCT`` per filter, ``icontains`` searches, and list queries that load each event's
body. Here a list counts its rows only up to a cap (an unfiltered one asks the database
for its estimate instead), lists at most ``MAX_PAGES`` pages (filters and search reach
older rows), loads only the columns it shows, and its filters list their choices
without reading the table.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest

from hookway import gate
from hookway.admin.base import _M, ModelAdmin

# A filtered list counts its rows up to this many ("more than 10,000 events"): counting a
# filter that matches most of a million rows reads most of them.
COUNT_CAP = 10_000
# Pages beyond this would skip (OFFSET) past this many pages' rows on every request.
MAX_PAGES = 100


class CappedCountPaginator(Paginator):  # type: ignore[type-arg]
    """Counts no more than it must: the database's estimate for a whole table, an exact
    count up to COUNT_CAP for a filtered one; ``count_label`` says which."""

    estimated = False
    capped = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        assert isinstance(queryset, QuerySet), "the admin paginates querysets"
        if not queryset.query.where:
            estimate = gate.run_sync(gate.aestimated_count, queryset.model)
            if estimate is not None and estimate > COUNT_CAP:
                self.estimated = True
                return estimate
        # Without ORDER BY the database stops at the cap, whatever the list's order.
        counted = queryset.order_by()[: COUNT_CAP + 1].count()
        if counted > COUNT_CAP:
            self.capped = True
            return COUNT_CAP
        return counted

    @cached_property
    def num_pages(self) -> int:
        return min(MAX_PAGES, super().num_pages)

    @property
    def count_label(self) -> str:
        """The count as the list's foot shows it: "about 1,000,000", "more than 10,000"
        or the exact number."""
        number = f"{self.count:,}"
        if self.estimated:
            return f"about {number}"
        if self.capped:
            return f"more than {number}"
        return number


class ColumnsOnlyChangeList(ChangeList):
    """Loads only the model admin's ``list_only`` columns (and the joined ones it names),
    not an event's body and headers for each row of the list."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().get_queryset(request, exclude_parameters)
        only: tuple[str, ...] = getattr(self.model_admin, "list_only", ())
        return queryset.only(*only) if only else queryset


class LargeListAdmin(ModelAdmin[_M]):
    """The list of a table that grows with traffic (events, deliveries)."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    # A facet counts every filter choice over the whole table.
    show_facets = admin.ShowFacets.NEVER
    list_only: tuple[str, ...] = ()

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ColumnsOnlyChangeList


class EventNameFilter(admin.SimpleListFilter):
    """The event names received, read from the event-name index one name at a time (not
    a ``SELECT DISTINCT`` over every event)."""

    title = "event name"
    parameter_name = "event_name"
    # More names than this belong in the search box (names starting with the text).
    max_choices = 100

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = gate.run_sync(gate.aevent_names, self.max_choices)
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(event_name=value) if value else queryset


def milliseconds(value: float | None) -> str:
    """A duration in milliseconds, rounded to the millisecond ("1,204 ms"), or "-"."""
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.0f} ms"


def shortened(text: str, limit: int = 60) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
