"""The changelists' date hierarchy on big tables. Django's asks the database for the
distinct years, months or days of the whole filtered list (``SELECT DISTINCT
DATE_TRUNC(…)``): a scan of every row, 0.36 s on a million receipts. :class:`ProbedDates`
answers the same question with one MIN/MAX and then one ``EXISTS`` per candidate period
between them (a probe of the date's index each; at most :data:`MAX_PROBES`, else
Django's query)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.db.models import Max, Min, QuerySet
from django.utils import timezone

#: Candidate periods probed at most; a longer span falls back to Django's DISTINCT query.
MAX_PROBES = 62


def period_starts(first: date, last: date, kind: str) -> Iterator[date]:
    """The first day of each ``kind`` (``year``, ``month``, ``day``) period from the one
    holding ``first`` to the one holding ``last``."""
    if kind == "year":
        current = date(first.year, 1, 1)
    elif kind == "month":
        current = date(first.year, first.month, 1)
    else:
        current = first
    while current <= last:
        yield current
        current = next_start(current, kind)


def next_start(day: date, kind: str) -> date:
    """The first day of the ``kind`` period after the one starting on ``day``."""
    if kind == "year":
        return date(day.year + 1, 1, 1)
    if kind == "month":
        return date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return day + timedelta(days=1)


def span(first: date, last: date, kind: str) -> int:
    """How many ``kind`` periods ``first`` … ``last`` touch."""
    if kind == "year":
        return last.year - first.year + 1
    if kind == "month":
        return (last.year - first.year) * 12 + last.month - first.month + 1
    return (last - first).days + 1


#: The periods ``QuerySet.dates`` and ``QuerySet.datetimes`` take.
DateKind = Literal["year", "month", "week", "day"]
DatetimeKind = Literal["year", "month", "week", "day", "hour", "minute", "second"]


class ProbedDates:
    """A changelist's queryset whose ``datetimes()`` / ``dates()`` (what the date
    hierarchy reads) probe each candidate period instead of a DISTINCT over every row;
    everything else is the queryset's."""

    def __init__(self, queryset: QuerySet[Any], many: bool = False) -> None:
        self.queryset = queryset
        #: Many rows match (a capped count): MIN and MAX read from the index's ends.
        self.many = many
        self._bounds: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queryset, name)

    def aggregate(self, *args: Any, **kwargs: Any) -> Any:
        """The queryset's; the first and last dates (asked by Django's tag, then by
        :meth:`_probe`) are read once."""
        key = repr((args, sorted(kwargs.items())))
        if key not in self._bounds:
            self._bounds[key] = self._ends(kwargs) if self.many and not args else None
            if self._bounds[key] is None:
                self._bounds[key] = self.queryset.aggregate(*args, **kwargs)
        return self._bounds[key]

    def _ends(self, aggregates: dict[str, Any]) -> dict[str, Any] | None:
        """MIN and MAX of plain fields as the first row of each order (``ORDER BY field
        LIMIT 1``): the date's index read from either end until a row matches the
        filters, instead of every matching row (1.4 s for a list filtered by consumer
        outcome at a million messages). Only when many rows match (:attr:`many`): with
        few, the walk from an end could read the whole index before a match, and the
        aggregate over the few is cheap. None for any other aggregate."""
        ends = {}
        for name, aggregate in aggregates.items():
            if type(aggregate) not in (Min, Max) or aggregate.filter is not None:
                return None
            sources = aggregate.source_expressions
            field = getattr(sources[0], "name", None) if len(sources) == 1 else None
            if not isinstance(field, str) or aggregate.distinct:
                return None
            order = field if isinstance(aggregate, Min) else f"-{field}"
            rows = self.queryset.filter(**{f"{field}__isnull": False}).order_by(order)
            ends[name] = rows.values_list(field, flat=True).first()
        return ends

    def datetimes(self, field: str, kind: DatetimeKind, *args: Any, **kwargs: Any) -> Any:
        found = self._probe(field, kind, aware=True)
        return self.queryset.datetimes(field, kind, *args, **kwargs) if found is None else found

    def dates(self, field: str, kind: DateKind, *args: Any, **kwargs: Any) -> Any:
        found = self._probe(field, kind, aware=False)
        return self.queryset.dates(field, kind, *args, **kwargs) if found is None else found

    def _probe(self, field: str, kind: str, aware: bool) -> list[Any] | None:
        """The starts of the ``kind`` periods with rows (None: too many to probe)."""
        bounds = self.aggregate(first=Min(field), last=Max(field))
        first, last = bounds["first"], bounds["last"]
        if first is None or last is None:
            return []
        if aware and timezone.is_aware(first):
            first, last = timezone.localtime(first), timezone.localtime(last)
        as_date = (lambda v: v.date()) if isinstance(first, datetime) else (lambda v: v)
        first_day, last_day = as_date(first), as_date(last)
        if kind not in ("year", "month", "day") or span(first_day, last_day, kind) > MAX_PROBES:
            return None
        found = []
        for start in period_starts(first_day, last_day, kind):
            begin, end = self._bound(start, aware), self._bound(next_start(start, kind), aware)
            if self.queryset.filter(**{f"{field}__gte": begin, f"{field}__lt": end}).exists():
                found.append(begin)
        return found

    @staticmethod
    def _bound(day: date, aware: bool) -> Any:
        if not aware:
            return day
        moment = datetime(day.year, day.month, day.day)
        return timezone.make_aware(moment) if settings.USE_TZ else moment


class ProbedChangeList:
    """A ChangeList seen through :class:`ProbedDates` (for the date hierarchy tag)."""

    def __init__(self, changelist: Any) -> None:
        self.changelist = changelist
        many = getattr(getattr(changelist, "paginator", None), "capped", False)
        self.queryset = ProbedDates(changelist.queryset, many=bool(many))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.changelist, name)
