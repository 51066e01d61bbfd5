"""The failure triage page's numbers: failed receipts (``requeued``, ``dead_lettered``,
``rejected``) of the last :data:`WINDOW_DAYS` days grouped by queue and error kind (the
error's first line: exception class and message), with counts for the last hour and day,
first and last seen, distinct messages and one example traceback per group.

One aggregate over the partial index of failed receipts (``messaging_rcpt_failed_idx``,
led by ``received_at``), so acked receipts are never read and the page stays fast with
millions of them; the error's first line is vendor SQL (:meth:`first_line`). Then one
query for the example receipts of the groups shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, router
from django.utils import timezone

from ..db import operations
from ..models import Receipt

#: Days of failed receipts the page groups.
WINDOW_DAYS = 7
#: Characters of an error's first line that make its kind.
KIND_CHARS = 200
#: Groups shown (the most recently seen first).
MAX_GROUPS = 200
FAILED = (Receipt.Outcome.REQUEUED, Receipt.Outcome.DEAD_LETTERED, Receipt.Outcome.REJECTED)


@dataclass
class FailureGroup:
    queue: str
    kind: str
    last_hour: int
    last_day: int
    total: int
    first_seen: datetime
    last_seen: datetime
    messages: int
    example_id: int
    example: Receipt | None = None

    @property
    def exception(self) -> str:
        """The exception class of the kind ("ValueError" of "ValueError: bad"), or ""."""
        head, sep, _rest = self.kind.partition(":")
        return head if sep and head.replace(".", "").replace("_", "").isalnum() else ""


@dataclass
class Triage:
    groups: list[FailureGroup]
    since: datetime
    now: datetime
    truncated: bool


def build_triage(now: datetime | None = None, using: str | None = None) -> Triage:
    """The failure groups of the last :data:`WINDOW_DAYS` days, newest seen first."""
    now = now or timezone.now()
    since = now - timedelta(days=WINDOW_DAYS)
    alias = using or router.db_for_read(Receipt)
    rows = _aggregate(alias, now, since)
    groups = [FailureGroup(*row) for row in rows[:MAX_GROUPS]]
    examples = Receipt.objects.using(alias).in_bulk([g.example_id for g in groups])
    for group in groups:
        group.example = examples.get(group.example_id)
    return Triage(groups=groups, since=since, now=now, truncated=len(rows) > MAX_GROUPS)


def _aggregate(alias: str, now: datetime, since: datetime) -> list[tuple[Any, ...]]:
    connection = connections[alias]
    ops = operations(connection)
    quote = connection.ops.quote_name
    meta = Receipt._meta
    table = quote(meta.db_table)
    names = ("queue_name", "error", "outcome", "traceback")
    column = {f: quote(meta.get_field(f).column) for f in names}
    received, message, pk = (
        quote(meta.get_field("received_at").column),
        quote(meta.get_field("message").column),
        quote(meta.pk.column),
    )
    kind = ops.first_line(column["error"], KIND_CHARS)
    outcomes = ", ".join(["%s"] * len(FAILED))
    sql = (
        f"SELECT {column['queue_name']}, {kind} AS kind, "
        f"SUM(CASE WHEN {received} >= %s THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN {received} >= %s THEN 1 ELSE 0 END), COUNT(*), "
        f"MIN({received}), MAX({received}), COUNT(DISTINCT {message}), "
        f"COALESCE(MAX(CASE WHEN {column['traceback']} <> '' THEN {pk} END), MAX({pk})) "
        f"FROM {table} WHERE {column['outcome']} IN ({outcomes}) AND {received} >= %s "
        f"GROUP BY {column['queue_name']}, kind ORDER BY MAX({received}) DESC, COUNT(*) DESC "
        f"LIMIT {MAX_GROUPS + 1}"
    )
    adapt = connection.ops.adapt_datetimefield_value
    params = [adapt(now - timedelta(hours=1)), adapt(now - timedelta(days=1))]
    params += [str(o) for o in FAILED] + [adapt(since)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    convert = _datetime_converter(connection)
    return [(*r[:5], convert(r[5]), convert(r[6]), *r[7:]) for r in rows]


def _datetime_converter(connection: Any) -> Any:
    """Raw SQL returns SQLite's timestamps as text: parse them as Django would."""
    field = Receipt._meta.get_field("received_at")
    converters = connection.ops.get_db_converters(field.get_col(Receipt._meta.db_table))

    def convert(value: Any) -> Any:
        for converter in converters:
            value = converter(value, field, connection)
        return value

    return convert
