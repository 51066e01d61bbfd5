"""The failure triage page's aggregates: failed receipts grouped by queue and **cause**
(``Receipt.error_cause``, the error's folded first line, written with the receipt:
:mod:`messaging.db.error_causes`) — :func:`failure_cause_rows` — and each group's
distinct first lines, its variants (:func:`failure_variant_rows`). Nothing is folded at
read time.

Both read the partial index of failed receipts (``messaging_rcpt_failed_idx``, led by
``received_at``), so acked receipts are never scanned and the page stays fast with
millions of them. What became of a group's messages is the outcome of each distinct
message's newest receipt on that queue (one lookup per distinct message, not per failed
receipt, on the message index ``messaging_one_acked_receipt``): ``acked``/``duplicate``
— recovered, ``dead_lettered``, ``rejected``, ``requeued`` — still retrying. Receipts
without a message id cannot be followed: each of their outcomes counts as one message
with that fate. The distinct messages are a subquery kept out of the outer query by
:data:`NOT_INLINED`, so the lookup runs once per message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from ..models import Receipt
from . import operations
from .error_causes import stored_cause
from .raw_sql import FAILED_OUTCOMES, column, table, when

#: Per vendor: what keeps a subquery in FROM from being merged into the outer query.
NOT_INLINED = {"postgresql": " OFFSET 0", "sqlite": " LIMIT -1 OFFSET 0"}
#: A newest receipt with one of these outcomes: the message recovered.
RECOVERED_OUTCOMES = (Receipt.Outcome.ACKED, Receipt.Outcome.DUPLICATE)
#: What became of a failed receipt's message → the outcomes of its newest receipt on the
#: queue that say so (the fates :class:`CauseRow` counts; the receipt list's fate filter).
FATE_OUTCOMES: dict[str, tuple[str, ...]] = {
    "recovered": tuple(str(o) for o in RECOVERED_OUTCOMES),
    "dead_lettered": (str(Receipt.Outcome.DEAD_LETTERED),),
    "rejected": (str(Receipt.Outcome.REJECTED),),
    "retrying": (str(Receipt.Outcome.REQUEUED),),
}


@dataclass
class CauseRow:
    """The failed receipts of one queue with one cause. ``messages``: distinct messages;
    ``recovered``, ``dead_lettered``, ``rejected`` and ``retrying`` count them by what
    became of them (their newest receipt on the queue). ``example_id``: the newest
    receipt with a traceback, else the newest."""

    queue: str
    cause: str
    last_hour: int
    last_day: int
    total: int
    first_seen: datetime
    last_seen: datetime
    example_id: int
    messages: int
    recovered: int
    dead_lettered: int
    rejected: int
    retrying: int


@dataclass
class VariantRow:
    """One distinct first line of a (queue, cause) group: its failed receipts, and how
    many distinct lines the group has."""

    queue: str
    cause: str
    line: str
    total: int
    variants: int


@dataclass
class Window:
    """Which failed receipts: received since ``since``, of ``queue`` only when given,
    with one of ``outcomes`` (failed ones only)."""

    since: datetime
    queue: str | None = None
    outcomes: Sequence[str] = FAILED_OUTCOMES

    def where(self, connection: Any) -> tuple[str, list[Any]]:
        """The WHERE clause on receipts ``r`` and its parameters."""
        outcome, queue_name, received_at = (
            column(connection, Receipt, n) for n in ("outcome", "queue_name", "received_at")
        )
        outcomes = [str(o) for o in self.outcomes if o in FAILED_OUTCOMES]
        outcomes = outcomes or [str(FAILED_OUTCOMES[0])]
        where = [
            f"r.{outcome} IN ({', '.join(['%s'] * len(outcomes))})",
            f"r.{received_at} >= %s",
        ]
        params: list[Any] = [*outcomes, when(connection, self.since)]
        if self.queue is not None:
            where.append(f"r.{queue_name} = %s")
            params.append(self.queue)
        return " AND ".join(where), params


def failure_cause_rows(
    connection: Any, now: datetime, window: Window, limit: int
) -> list[CauseRow]:
    """Up to ``limit`` (queue, cause) groups of the failed receipts in ``window``, the
    most recently seen first: one scan of the window's failed receipts, aggregated per
    (queue, cause, message), one fate lookup per message, then summed per group."""
    per_message, params = _per_message(connection, window)
    counts: list[str] = []
    fate_params: list[str] = []
    for outcomes in FATE_OUTCOMES.values():
        marks = ", ".join(["%s"] * len(outcomes))
        counts.append(f"SUM(CASE WHEN x.fate IN ({marks}) THEN 1 ELSE 0 END)")
        fate_params.extend(outcomes)
    sql = (
        "SELECT x.q, x.c, SUM(x.h), SUM(x.d), SUM(x.n), MIN(x.first), MAX(x.last), "
        f"COALESCE(MAX(x.example_tb), MAX(x.example)), COUNT(*), {', '.join(counts)} "
        f"FROM ({per_message}) x GROUP BY x.q, x.c "
        f"ORDER BY MAX(x.last) DESC, SUM(x.n) DESC LIMIT {int(limit)}"
    )
    hour_day = [
        when(connection, now - timedelta(hours=1)),
        when(connection, now - timedelta(days=1)),
    ]
    with without_jit(connection), connection.cursor() as cursor:
        cursor.execute(sql, [*fate_params, *hour_day, *params])
        rows = cursor.fetchall()
    convert = _datetime_converter(connection)
    return [_cause_row(r, convert) for r in rows]


def _cause_row(r: Sequence[Any], convert: Callable[[Any], Any]) -> CauseRow:
    """One row of :func:`failure_cause_rows`' query as a :class:`CauseRow`."""
    last_hour, last_day, total = (int(v or 0) for v in r[2:5])
    example_id, messages, recovered, dead_lettered, rejected, retrying = (
        int(v or 0) for v in r[7:]
    )
    return CauseRow(
        queue=r[0],
        cause=r[1] or "",
        last_hour=last_hour,
        last_day=last_day,
        total=total,
        first_seen=convert(r[5]),
        last_seen=convert(r[6]),
        example_id=example_id,
        messages=messages,
        recovered=recovered,
        dead_lettered=dead_lettered,
        rejected=rejected,
        retrying=retrying,
    )


def _per_message(connection: Any, window: Window) -> tuple[str, list[Any]]:
    """SQL of the window's failed receipts per (queue q, cause c, message m; the outcome
    o for receipts without a message id): counts for the last hour (h, first parameter)
    and day (d, second), all (n), first and last seen, the newest id with a traceback
    and the newest id, and the message's ``fate`` (the outcome of its newest receipt on
    the queue). Each level is kept out of the next by :data:`NOT_INLINED`."""
    c = _columns(connection)
    receipts = table(connection, Receipt)
    where, params = window.where(connection)
    keep = NOT_INLINED.get(connection.vendor, "")
    message = f"COALESCE(r.{c.message}, '')"
    grouped = (
        f"SELECT r.{c.queue} AS q, r.{c.cause} AS c, {message} AS m, "
        f"CASE WHEN {message} = '' THEN r.{c.outcome} ELSE '' END AS o, "
        f"SUM(CASE WHEN r.{c.received} >= %s THEN 1 ELSE 0 END) AS h, "
        f"SUM(CASE WHEN r.{c.received} >= %s THEN 1 ELSE 0 END) AS d, COUNT(*) AS n, "
        f"MIN(r.{c.received}) AS first, MAX(r.{c.received}) AS last, "
        f"MAX(CASE WHEN r.{c.traceback} <> '' THEN r.{c.pk} END) AS example_tb, "
        f"MAX(r.{c.pk}) AS example FROM {receipts} r WHERE {where} GROUP BY 1, 2, 3, 4{keep}"
    )
    newest = (
        f"(SELECT a.{c.outcome} FROM {receipts} a WHERE a.{c.message} = g.m "
        f"AND a.{c.queue} = g.q ORDER BY a.{c.received} DESC, a.{c.pk} DESC LIMIT 1)"
    )
    sql = (
        f"SELECT g.*, CASE WHEN g.m = '' THEN g.o ELSE {newest} END AS fate "
        f"FROM ({grouped}) g{keep}"
    )
    return sql, params


def failure_variant_rows(
    connection: Any, window: Window, line_chars: int, per_group: int
) -> list[VariantRow]:
    """The ``per_group`` most frequent first lines (at most ``line_chars`` characters)
    of each (queue, cause) group in ``window``, with each group's count of them."""
    c = _columns(connection)
    receipts = table(connection, Receipt)
    where, params = window.where(connection)
    line = operations(connection).first_line(f"r.{c.error}", line_chars)
    sql = (
        "SELECT w.q, w.c, w.line, w.n, w.variants FROM (SELECT v.q, v.c, v.line, v.n, "
        "ROW_NUMBER() OVER (PARTITION BY v.q, v.c ORDER BY v.n DESC, v.line) AS pos, "
        "COUNT(*) OVER (PARTITION BY v.q, v.c) AS variants FROM ("
        f"SELECT r.{c.queue} AS q, r.{c.cause} AS c, {line} AS line, COUNT(*) AS n "
        f"FROM {receipts} r WHERE {where} GROUP BY 1, 2, 3) v) w "
        f"WHERE w.pos <= {int(per_group)}"
    )
    with without_jit(connection), connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [VariantRow(r[0], r[1] or "", r[2] or "", int(r[3]), int(r[4])) for r in rows]


@contextmanager
def without_jit(connection: Any) -> Iterator[None]:
    """PostgreSQL: the statements inside run with JIT compilation off (``SET LOCAL`` in
    a transaction: until it ends). The planner's estimate of the per-message lookups
    (tens of thousands) is high enough to JIT-compile with inlining and optimisation:
    measured on 50,000 failed receipts of a week, 0.84 s of compiling for 0.3 s of work.
    Elsewhere nothing changes."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(using=connection.alias):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
        yield


@dataclass(frozen=True)
class _Columns:
    queue: str
    cause: str
    error: str
    outcome: str
    traceback: str
    received: str
    message: str
    pk: str


def _columns(connection: Any) -> _Columns:
    """Receipt's columns the queries read, quoted for ``connection``."""

    def quoted(name: str) -> str:
        return column(connection, Receipt, name)

    return _Columns(
        queue=quoted("queue_name"),
        cause=quoted("error_cause"),
        error=quoted("error"),
        outcome=quoted("outcome"),
        traceback=quoted("traceback"),
        received=quoted("received_at"),
        message=quoted("message"),
        pk=connection.ops.quote_name(Receipt._meta.pk.column),
    )


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
