"""The failure triage page's aggregate (:func:`failure_group_rows`): failed receipts
grouped by queue and error kind, in one query.

It reads the partial index of failed receipts (``messaging_rcpt_failed_idx``, led by
``received_at``), so acked receipts are never read and the page stays fast with millions
of them. The error's kind is its first line, vendor SQL (``operations(connection)
.first_line``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ..models import Receipt
from . import operations
from .raw_sql import failed_outcomes_sql, table, when


def failure_group_rows(
    connection: Any, now: datetime, since: datetime, kind_chars: int, limit: int
) -> list[tuple[Any, ...]]:
    """Up to ``limit`` groups of the failed receipts received since ``since``, the most
    recently seen first: ``(queue, kind, last hour, last day, total, first seen, last
    seen, distinct messages, example receipt id)`` — the example is the newest receipt
    with a traceback, else the newest. ``kind`` is the error's first line, at most
    ``kind_chars`` characters."""
    quote = connection.ops.quote_name
    meta = Receipt._meta
    queue, error, outcome, traceback, received, message = (
        quote(meta.get_field(name).column)
        for name in ("queue_name", "error", "outcome", "traceback", "received_at", "message")
    )
    pk = quote(meta.pk.column)
    kind = operations(connection).first_line(error, kind_chars)
    outcomes, outcome_params = failed_outcomes_sql()
    sql = (
        f"SELECT {queue}, {kind} AS kind, "
        f"SUM(CASE WHEN {received} >= %s THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN {received} >= %s THEN 1 ELSE 0 END), COUNT(*), "
        f"MIN({received}), MAX({received}), COUNT(DISTINCT {message}), "
        f"COALESCE(MAX(CASE WHEN {traceback} <> '' THEN {pk} END), MAX({pk})) "
        f"FROM {table(connection, Receipt)} WHERE {outcome} IN {outcomes} AND {received} >= %s "
        f"GROUP BY {queue}, kind ORDER BY MAX({received}) DESC, COUNT(*) DESC "
        f"LIMIT {int(limit)}"
    )
    params = [when(connection, now - timedelta(hours=1)), when(connection, now - timedelta(days=1))]
    params += [*outcome_params, when(connection, since)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    convert = _datetime_converter(connection)
    return [(*r[:5], convert(r[5]), convert(r[6]), *r[7:]) for r in rows]


def _datetime_converter(connection: Any) -> Callable[[Any], Any]:
    """Raw SQL returns SQLite's timestamps as text: parse them as Django would."""
    field = Receipt._meta.get_field("received_at")
    converters = connection.ops.get_db_converters(field.get_col(Receipt._meta.db_table))

    def convert(value: Any) -> Any:
        for converter in converters:
            value = converter(value, field, connection)
        return value

    return convert
