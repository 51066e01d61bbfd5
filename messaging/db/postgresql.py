"""PostgreSQL: COPY and server-side prepared INSERTs, ``unnest``, ``date_bin`` and
``percentile_cont``, collation-dependent text order, ``bytea`` searched escape-encoded."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db.models import Expression, Func, TextField, Value

from .base import DatabaseOperations, Rows

try:
    from psycopg.pq import TransactionStatus

    _IDLE: TransactionStatus | None = TransactionStatus.IDLE
except ImportError:  # pragma: no cover - psycopg2 is not supported
    _IDLE = None

#: Collations that order text by code point, as ``PrefixRange``'s range needs
#: (``C.UTF-8`` is glibc's code-point collation).
CODE_POINT_COLLATIONS = frozenset({"C", "POSIX", "C.UTF-8", "C.utf8", "ucs_basic"})
#: From this many rows COPY (two round trips) beats one multi-row INSERT statement.
COPY_THRESHOLD = 10
#: A type modifier in ``db_type()``: ``(255)``, ``(10, 2)``.
_TYPMOD = re.compile(r"\(.*?\)")


class EscapeEncode(Func):
    """``encode(bytea, 'escape')``: text in which bytes >= 0x80 and NUL are ``\\ooo``
    octal and a backslash is doubled; safe for any body."""

    function = "encode"
    output_field = TextField()


def escape_encoded(term: str) -> str:
    """``term`` as ``encode(…, 'escape')`` would spell its UTF-8 bytes."""
    out = []
    for byte in term.encode("utf-8"):
        if byte == 0x5C:
            out.append("\\\\")
        elif byte >= 0x80 or byte == 0:
            out.append(f"\\{byte:03o}")
        else:
            out.append(chr(byte))
    return "".join(out)


class PostgreSQLOperations(DatabaseOperations):
    groups_window_in_one_scan = True
    has_percentile_cont = True

    def __init__(self, vendor: str) -> None:
        super().__init__(vendor)
        self._code_point_order: dict[str, bool] = {}

    def sorts_by_code_point(self, connection: Any) -> bool:
        """Depends on the database's collation (asked once per database name)."""
        name = str(connection.settings_dict["NAME"])
        if name not in self._code_point_order:
            self._code_point_order[name] = _collation_sorts_by_code_point(connection)
        return self._code_point_order[name]

    def bytes_as_text(self, expression: Any) -> Expression:
        return EscapeEncode(expression, Value("escape"))

    def bytes_text_term(self, term: str) -> str:
        return escape_encoded(term)

    def first_line(self, column: str, length: int) -> str:
        return f"left(split_part({column}, chr(10), 1), {int(length)})"

    def insert_copies(
        self,
        cursor: Any,
        table: str,
        columns: Sequence[str],
        values: Sequence[Any],
        id_position: int,
        ids: Sequence[str],
    ) -> None:
        """One ``INSERT … SELECT … FROM unnest(ids)``: one round trip, four times faster
        than executemany here."""
        selected = ["%s"] * len(columns)
        selected[id_position] = "m"
        params = [v for i, v in enumerate(values) if i != id_position]
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"SELECT {', '.join(selected)} FROM unnest(%s::varchar[]) AS m",
            [*params, list(ids)],
        )

    @contextmanager
    def last_statement(self, connection: Any) -> Iterator[None]:
        """psycopg sends BEGIN before a transaction's first statement and COMMIT at the
        end, two round trips a batch of receipts waits for. When the outermost
        ``atomic()`` has sent nothing yet (a handler that did no database work), the
        statement runs in autocommit instead: committed as one, with the same effect;
        Django's COMMIT then finds no transaction open and does nothing."""
        connection.ensure_connection()
        raw = connection.connection
        status = getattr(getattr(raw, "pgconn", None), "transaction_status", None)
        alone = len(connection.atomic_blocks) == 1 and not raw.autocommit and status == _IDLE
        if not alone:
            yield
            return
        raw.autocommit = True
        try:
            yield
        finally:
            raw.autocommit = False

    def insert_one(self, connection: Any, into: str, row: tuple[Any, ...]) -> bool:
        """With server-side binding (:func:`_insert_prepared`), on no Django cursor."""
        connection.ensure_connection()
        _insert_prepared(connection, f"INSERT INTO {into} VALUES ", row)
        return True

    def copy_rows(
        self, connection: Any, cursor: Any, into: str, rows: Rows, types: Sequence[str]
    ) -> bool:
        """COPY from :data:`COPY_THRESHOLD` rows — binary when ``types`` are given (about
        a sixth of the text format's client time, and less parsing on the server)."""
        if len(rows) < COPY_THRESHOLD:
            return False
        _copy(connection, cursor.cursor, into, rows, _binary_types(types))
        return True

    # ------------------------------------------------------------------ overview

    def minute_start(self, column: str) -> str:
        """``date_bin()``: the minute as a timestamp, without per-row numeric arithmetic."""
        return f"date_bin(interval '1 minute', {column}, %s)"

    def seconds_between(self, start: str, end: str) -> str:
        return f"GREATEST(EXTRACT(EPOCH FROM ({end} - {start})), 0)"


def _binary_types(types: Sequence[str]) -> tuple[str, ...] | None:
    """psycopg's names for ``db_type()`` strings (``varchar(255)`` → ``varchar``); None
    (text COPY) without them or with naive datetimes (``USE_TZ = False``), which the
    binary ``timestamptz`` format does not take."""
    if not types or not settings.USE_TZ:
        return None
    return _psycopg_names(tuple(types))


@lru_cache(maxsize=16)
def _psycopg_names(types: tuple[str, ...]) -> tuple[str, ...]:
    """Worked out once per column list, not for every batch of receipts."""
    return tuple(_TYPMOD.sub("", t).strip() for t in types)


def _copy(
    connection: Any,
    raw: Any,
    into: str,
    rows: Rows,
    types: tuple[str, ...] | None,
) -> None:
    """``COPY into FROM STDIN`` (``into``: ``table (columns)``) on psycopg's own cursor
    ``raw`` (COPY is not in the DB-API)."""
    binary = " (FORMAT BINARY)" if types else ""
    with (
        connection.wrap_database_errors,
        raw.copy(f"COPY {into} FROM STDIN{binary}") as copy,
    ):
        if types:
            copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def _collation_sorts_by_code_point(connection: Any) -> bool:
    provider = "datlocprovider" if connection.pg_version >= 150000 else "'c'"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {provider}, datcollate FROM pg_database WHERE datname = current_database()"
        )
        row = cursor.fetchone()
    # "b" (PostgreSQL 17's builtin provider): its collations all sort by code point.
    return row is not None and (
        row[0] == "b" or (row[0] == "c" and row[1] in CODE_POINT_COLLATIONS)
    )


def _insert_prepared(connection: Any, prefix: str, row: tuple[Any, ...]) -> None:
    """One row through a server-side-binding cursor: psycopg prepares the statement
    once per connection — when the connection allows prepared statements. Django turns
    them off by default (``prepare_threshold=None``, for connection poolers); set
    ``DATABASES[...]["OPTIONS"]["prepare_threshold"]`` (psycopg's default is 5) to let
    the server skip parsing and planning it for every message."""
    import psycopg

    placeholders = ", ".join(["%s"] * len(row))
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(f"{prefix}({placeholders})", row)
