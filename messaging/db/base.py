"""Database operations for any vendor without its own module (MySQL, MariaDB, Oracle…):
portable SQL, and the SQL of MySQL where nothing portable exists."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django.db import NotSupportedError
from django.db.models import Expression, TextField
from django.db.models.functions import Cast

#: Rows of plain values, as :meth:`DatabaseOperations.insert_rows` takes them.
Rows = Sequence[tuple[Any, ...]]


class DatabaseOperations:
    """What the messaging code does differently per vendor; subclasses override."""

    #: Overview window counts: one ``GROUP BY`` over one range scan per table (else
    #: range counts per minute on covering indexes).
    groups_window_in_one_scan = False
    #: Overview latency: percentiles by ``percentile_cont`` in one statement for every
    #: queue (else one window-function statement per queue, interpolated in Python).
    has_percentile_cont = False

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.vendor}>"

    # ------------------------------------------------------------------ text

    def sorts_by_code_point(self, connection: Any) -> bool:
        """Does a text column without its own collation compare by code point? Assume not."""
        return False

    def bytes_as_text(self, expression: Any) -> Expression:
        """A binary column as text that ``icontains`` can search."""
        return Cast(expression, TextField())

    def bytes_text_term(self, term: str) -> str:
        """``term`` spelled as it appears in :meth:`bytes_as_text`'s text."""
        return term

    # ------------------------------------------------------------------ writes

    def begin_claim(self, connection: Any, table: str) -> None:
        """First statement of a claiming transaction: nothing where rows lock."""

    def probe_writes(self, cursor: Any, in_atomic_block: bool) -> None:
        """Raise DatabaseError unless the database can take a write right now."""
        cursor.execute("SELECT 1")

    def insert_copies(
        self,
        cursor: Any,
        table: str,
        columns: Sequence[str],
        values: Sequence[Any],
        id_position: int,
        ids: Sequence[str],
    ) -> None:
        """INSERT one row per id: ``values`` (prepared) with the id at ``id_position``."""
        rows = []
        for message_id in ids:
            row = list(values)
            row[id_position] = message_id
            rows.append(row)
        placeholders = ", ".join(["%s"] * len(columns))
        cursor.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", rows
        )

    def last_statement(self, connection: Any) -> AbstractContextManager[None]:
        """Around the last statement of the current transaction (nothing runs in it
        after this): where the transaction has sent nothing yet, the statement may run
        as a transaction of its own — the same outcome without the BEGIN and COMMIT
        round trips. Here: as it is."""
        return nullcontext()

    def insert_rows(
        self,
        connection: Any,
        cursor: Any,
        table: str,
        columns: str,
        rows: Rows,
        datetimes: Sequence[int],
        types: Sequence[str] = (),
    ) -> None:
        """INSERT plain tuples (aware datetimes at the ``datetimes`` positions), on
        ``cursor`` or (None) a cursor of ``connection``. ``types``: the columns' database
        types (``field.db_type()``), for vendors that send rows in a binary format.

        The steps a vendor may take over: :meth:`insert_one` (a single row, before any
        cursor is opened) and :meth:`copy_rows` (several); else one INSERT here."""
        into = f"{table} ({columns})"
        if len(rows) == 1 and self.insert_one(connection, into, rows[0]):
            return
        if cursor is None:
            with connection.cursor() as cursor:
                return self.insert_rows(connection, cursor, table, columns, rows, datetimes, types)
        if self.copy_rows(connection, cursor, into, rows, types):
            return
        adapt = connection.ops.adapt_datetimefield_value
        prepared = []
        for row in rows:
            values = list(row)
            for index in datetimes:
                values[index] = adapt(values[index])
            prepared.append(values)
        placeholders = ", ".join(["%s"] * len(prepared[0]))
        sql = f"INSERT INTO {into} VALUES ({placeholders})"
        if len(prepared) == 1:
            cursor.execute(sql, prepared[0])
        else:
            cursor.executemany(sql, prepared)

    def insert_one(self, connection: Any, into: str, row: tuple[Any, ...]) -> bool:
        """INSERT one row into ``into`` (``table (columns)``) the vendor's own way and
        return True, or return False to leave it to :meth:`insert_rows`. Here: False."""
        return False

    def copy_rows(
        self, connection: Any, cursor: Any, into: str, rows: Rows, types: Sequence[str]
    ) -> bool:
        """Send several rows the vendor's own way (a bulk load) and return True, or
        return False to leave them to :meth:`insert_rows`. Here: False."""
        return False

    # ------------------------------------------------------------------ overview

    def read_through_index(self, connection: Any, table: str, index: str) -> str:
        """``table`` (SQL) read through the named index where hints exist: as is."""
        return table

    def minute_start(self, column: str) -> str:
        """SQL for the start of the minute timestamp column ``column`` falls in, minutes
        counted from the origin parameter ``%s``: only where
        :attr:`groups_window_in_one_scan`."""
        raise NotSupportedError(f"{self.vendor}: the overview counts minutes by ranges")

    def seconds_between(self, start: str, end: str) -> str:
        """SQL for the seconds from column ``start`` to column ``end``, at least 0."""
        return f"GREATEST(TIMESTAMPDIFF(MICROSECOND, {start}, {end}) / 1e6, 0)"

    # ------------------------------------------------------------------ failure triage

    def first_line(self, column: str, length: int) -> str:
        """SQL for the first line of text column ``column``, at most ``length`` chars."""
        return f"LEFT(SUBSTRING_INDEX({column}, CHAR(10), 1), {int(length)})"
