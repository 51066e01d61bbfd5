"""The failure triage page's aggregate (:func:`failure_line_rows`): failed receipts
grouped by queue and the error's first line, in one query; the page folds the lines into
causes (:mod:`messaging.db.error_causes`).

It reads the partial index of failed receipts (``messaging_rcpt_failed_idx``, led by
``received_at``), so acked receipts are never scanned and the page stays fast with
millions of them. The error's first line is vendor SQL (``operations(connection)
.first_line``). What became of each failed receipt's message is the outcome of the
message's newest receipt on that queue (one lookup per failed receipt on the message
index, ``messaging_one_acked_receipt``): ``acked``/``duplicate`` — recovered,
``dead_lettered``, ``rejected``, ``requeued`` — still retrying. The inner query ends in
``OFFSET 0`` (:data:`NOT_INLINED`) so that the database does not inline it into the outer
one, which would run that lookup once per fate counted instead of once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..models import Receipt
from . import operations
from .error_causes import stored_cause
from .raw_sql import FAILED_OUTCOMES, table, when

#: Per vendor: what keeps a subquery in FROM from being merged into the outer query.
NOT_INLINED = {"postgresql": " OFFSET 0", "sqlite": " LIMIT -1 OFFSET 0"}
#: A newest receipt with one of these outcomes: the message recovered.
RECOVERED_OUTCOMES = (Receipt.Outcome.ACKED, Receipt.Outcome.DUPLICATE)
#: What became of a failed receipt's message → the outcomes of its newest receipt on the
#: queue that say so (the fates :class:`LineRow` counts; the receipt list's fate filter).
FATE_OUTCOMES: dict[str, tuple[str, ...]] = {
    "recovered": tuple(str(o) for o in RECOVERED_OUTCOMES),
    "dead_lettered": (str(Receipt.Outcome.DEAD_LETTERED),),
    "rejected": (str(Receipt.Outcome.REJECTED),),
    "retrying": (str(Receipt.Outcome.REQUEUED),),
}


@dataclass
class LineRow:
    """The failed receipts of one queue with one first line. ``recovered``,
    ``dead_lettered``, ``rejected`` and ``retrying`` count their distinct messages by
    what became of them (their newest receipt on the queue)."""

    queue: str
    line: str
    last_hour: int
    last_day: int
    total: int
    first_seen: datetime
    last_seen: datetime
    messages: int
    example_id: int
    recovered: int
    dead_lettered: int
    rejected: int
    retrying: int


def failure_line_rows(
    connection: Any,
    now: datetime,
    since: datetime,
    line_chars: int,
    limit: int,
    queue: str | None = None,
    outcomes: Sequence[str] = FAILED_OUTCOMES,
) -> list[LineRow]:
    """Up to ``limit`` (queue, first line) rows of the receipts with one of the failed
    ``outcomes`` received since ``since`` (on ``queue`` only, when given), the most
    recently seen first. The line is at most ``line_chars`` characters; the example is
    the newest receipt with a traceback, else the newest."""
    failed, failed_params = _failed_receipts(connection, since, line_chars, queue, outcomes)
    recovered = ", ".join(["%s"] * len(RECOVERED_OUTCOMES))

    def by_fate(test: str) -> str:
        return f"COUNT(DISTINCT CASE WHEN f.fate {test} THEN f.message END)"

    sql = (
        "SELECT f.queue, f.line, "
        "SUM(CASE WHEN f.received >= %s THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN f.received >= %s THEN 1 ELSE 0 END), COUNT(*), "
        "MIN(f.received), MAX(f.received), COUNT(DISTINCT f.message), "
        "COALESCE(MAX(CASE WHEN f.has_traceback = 1 THEN f.id END), MAX(f.id)), "
        f"{by_fate(f'IN ({recovered})')}, {by_fate('= %s')}, {by_fate('= %s')}, "
        f"{by_fate('= %s')} "
        f"FROM ({failed}) f "
        "GROUP BY f.queue, f.line ORDER BY MAX(f.received) DESC, COUNT(*) DESC "
        f"LIMIT {int(limit)}"
    )
    params: list[Any] = [
        when(connection, now - timedelta(hours=1)),
        when(connection, now - timedelta(days=1)),
        *[str(o) for o in RECOVERED_OUTCOMES],
        str(Receipt.Outcome.DEAD_LETTERED),
        str(Receipt.Outcome.REJECTED),
        str(Receipt.Outcome.REQUEUED),
        *failed_params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return _line_rows(connection, rows)


def _line_rows(connection: Any, rows: list[tuple[Any, ...]]) -> list[LineRow]:
    """The grouped rows as :class:`LineRow` (counts as ints, timestamps as datetimes)."""
    convert = _datetime_converter(connection)
    return [
        LineRow(
            r[0],
            r[1] or "",
            *(int(v or 0) for v in r[2:5]),
            convert(r[5]),
            convert(r[6]),
            *(int(v or 0) for v in r[7:]),
        )
        for r in rows
    ]


def _failed_receipts(
    connection: Any,
    since: datetime,
    line_chars: int,
    queue: str | None,
    outcomes: Sequence[str],
) -> tuple[str, list[Any]]:
    """The inner query and its parameters: each failed receipt since ``since`` as
    (queue, line, received, message, id, has_traceback, fate), kept out of the outer
    query by :data:`NOT_INLINED`."""
    quote = connection.ops.quote_name
    meta = Receipt._meta
    queue_col, error, outcome, traceback, received, message = (
        quote(meta.get_field(name).column)
        for name in ("queue_name", "error", "outcome", "traceback", "received_at", "message")
    )
    pk = quote(meta.pk.column)
    receipts = table(connection, Receipt)
    line = operations(connection).first_line(f"r.{error}", line_chars)
    outcomes = [str(o) for o in outcomes if o in FAILED_OUTCOMES] or [str(FAILED_OUTCOMES[0])]
    fate = (
        f"CASE WHEN r.{message} IS NULL OR r.{message} = '' THEN r.{outcome} ELSE "
        f"(SELECT a.{outcome} FROM {receipts} a WHERE a.{message} = r.{message} "
        f"AND a.{queue_col} = r.{queue_col} AND a.{received} >= r.{received} "
        f"ORDER BY a.{received} DESC, a.{pk} DESC LIMIT 1) END"
    )
    where = [f"r.{outcome} IN ({', '.join(['%s'] * len(outcomes))})", f"r.{received} >= %s"]
    params: list[Any] = [*outcomes, when(connection, since)]
    if queue is not None:
        where.append(f"r.{queue_col} = %s")
        params.append(queue)
    sql = (
        f"SELECT r.{queue_col} AS queue, {line} AS line, r.{received} AS received, "
        f"r.{message} AS message, r.{pk} AS id, "
        f"CASE WHEN r.{traceback} <> '' THEN 1 ELSE 0 END AS has_traceback, {fate} AS fate "
        f"FROM {receipts} r WHERE {' AND '.join(where)}{NOT_INLINED.get(connection.vendor, '')}"
    )
    return sql, params


def _datetime_converter(connection: Any) -> Callable[[Any], Any]:
    """Raw SQL returns SQLite's timestamps as text: parse them as Django would."""
    field = Receipt._meta.get_field("received_at")
    converters = connection.ops.get_db_converters(field.get_col(Receipt._meta.db_table))

    def convert(value: Any) -> Any:
        for converter in converters:
            value = converter(value, field, connection)
        return value

    return convert


def fill_error_causes(connection: Any, db_table: str, batch: int = 2000) -> int:
    """Write ``error_cause`` (:func:`~messaging.db.error_causes.stored_cause`) on the
    receipts of ``db_table`` that have an error and no cause yet, ``batch`` rows at a time
    in id order (migration 0014's backfill; the bench's fill). Returns the rows written."""
    quote = connection.ops.quote_name
    receipts = quote(db_table)
    select = (
        f"SELECT id, error FROM {receipts} WHERE id > %s AND error <> '' "
        f"AND error_cause = '' ORDER BY id LIMIT {int(batch)}"
    )
    update = f"UPDATE {receipts} SET error_cause = %s WHERE id = %s"
    written, last = 0, 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(select, [last])
            rows = cursor.fetchall()
            if not rows:
                return written
            cursor.executemany(update, [(stored_cause(error), pk) for pk, error in rows])
            written += len(rows)
            last = rows[-1][0]
