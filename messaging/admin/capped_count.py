"""Counting a filtered changelist on a big table without reading every matching row.

Django's changelist counts its filtered rows exactly (the paginator's ``COUNT(*)``): on a
million messages filtered by consumer outcome that is a join of every message with its
receipts, seconds for a number nobody pages through. :class:`CappedPaginator` counts at
most ``cap + 1`` rows (``SELECT COUNT(*) FROM (… LIMIT cap + 1)``): below the cap the
count is exact; above it the list says "10,000+ messages" and pages through the first
``cap`` rows only (narrower filters reach the rest)."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.utils.functional import cached_property

#: Rows counted at most by a filtered changelist (above: "10,000+").
COUNT_CAP = 10_000


class CappedPaginator(Paginator):
    """A paginator whose ``count`` stops at ``cap`` (then :attr:`capped` is true and
    ``count`` is ``cap``: the pages are those of the first ``cap`` rows)."""

    cap = COUNT_CAP

    def __init__(
        self, object_list: Any, per_page: int, *args: Any, cap: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(object_list, per_page, *args, **kwargs)
        if cap is not None:
            self.cap = cap

    @cached_property
    def capped(self) -> bool:
        """More rows match than :attr:`cap` (the count is a lower bound)."""
        return self._counted > self.cap

    @cached_property
    def _counted(self) -> int:
        rows: Any = self.object_list
        if hasattr(rows, "query"):  # a queryset: count at most cap + 1 rows in SQL
            return int(rows.order_by().values("pk")[: self.cap + 1].count())
        return len(rows)

    @cached_property
    def count(self) -> int:
        return min(self._counted, self.cap)

    @property
    def at_least(self) -> str:
        """The count as the page shows it when :attr:`capped`: "10,000+"."""
        return f"{self.cap:,}+"

    @property
    def cap_text(self) -> str:
        """The cap as the page shows it: "10,000"."""
        return f"{self.cap:,}"


def is_filtered(queryset: Any) -> bool:
    """Does the queryset have a WHERE clause (a filter or a search)?"""
    return bool(queryset.query.where)
