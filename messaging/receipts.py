"""Writing receipts fast: the consumer's batch path inserts plain tuples (no model
instances, no per-field preparation) — ``COPY`` on PostgreSQL, ``executemany`` elsewhere —
inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections

from .models import Receipt

#: Receipt fields in the order of the tuples :func:`insert_receipts` takes.
FIELDS = (
    "message",  # the message_id column
    "queue_name",
    "consumer_name",
    "consumer_host",
    "consumer_pid",
    "consumer_tag",
    "delivery_tag",
    "redelivered",
    "attempt",
    "outcome",
    "error",
    "traceback",
    "received_at",
    "finished_at",
)
_DATETIMES = (FIELDS.index("received_at"), FIELDS.index("finished_at"))
#: From this many rows COPY (two round trips) beats one multi-row INSERT statement.
COPY_THRESHOLD = 10


def as_instances(rows: Sequence[tuple[Any, ...]]) -> list[Receipt]:
    """Unsaved ``Receipt`` objects for rows (for signal receivers)."""
    names = [Receipt._meta.get_field(name).attname for name in FIELDS]
    return [Receipt(**dict(zip(names, row, strict=True))) for row in rows]


def _columns(conn: Any) -> str:
    quote = conn.ops.quote_name
    return ", ".join(quote(Receipt._meta.get_field(name).column) for name in FIELDS)


def insert_receipts(rows: Sequence[tuple[Any, ...]], using: str = "default") -> None:
    """Insert receipt rows (tuples in :data:`FIELDS` order, aware datetimes) in the
    current transaction of ``using``. Unique-constraint violations raise IntegrityError
    as ``bulk_create`` would."""
    if not rows:
        return
    conn = connections[using]
    table = conn.ops.quote_name(Receipt._meta.db_table)
    columns = _columns(conn)
    with conn.cursor() as cursor:
        if conn.vendor == "postgresql" and len(rows) >= COPY_THRESHOLD:
            raw = cursor.cursor  # psycopg's own cursor: COPY is not in the DB-API
            with (
                conn.wrap_database_errors,
                raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return
        if conn.vendor == "postgresql" and len(rows) == 1:
            _insert_prepared(conn, f"INSERT INTO {table} ({columns}) VALUES ", rows[0])
            return
        adapt = conn.ops.adapt_datetimefield_value
        prepared = []
        for row in rows:
            values = list(row)
            for index in _DATETIMES:
                values[index] = adapt(values[index])
            prepared.append(values)
        placeholders = ", ".join(["%s"] * len(FIELDS))
        sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"
        if len(prepared) == 1:
            cursor.execute(sql, prepared[0])
        else:
            cursor.executemany(sql, prepared)


def _insert_prepared(conn: Any, prefix: str, row: tuple[Any, ...]) -> None:
    """One row on PostgreSQL through a server-side-binding cursor, so the statement is
    prepared once per connection (Django's default client-side binding would have the
    server parse and plan it for every message)."""
    import psycopg

    placeholders = ", ".join(["%s"] * len(row))
    with conn.wrap_database_errors, psycopg.Cursor(conn.connection) as cursor:
        cursor.execute(f"{prefix}({placeholders})", row)
