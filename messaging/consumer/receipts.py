"""Writing receipts fast: the consumer's batch path inserts plain tuples (no model
instances, no per-field preparation) — ``COPY`` on PostgreSQL, ``executemany`` elsewhere —
inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

from django.db import connections

from ..db import operations
from ..db.error_causes import stored_cause
from ..db.postgresql import COPY_THRESHOLD  # noqa: F401 - importable here as before
from ..models import Receipt

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
    "exchange",
    "routing_key",
    "stream_offset",
    "reply",
    "reply_content_type",
)
_DATETIMES = (FIELDS.index("received_at"), FIELDS.index("finished_at"))
_ERROR = FIELDS.index("error")


def as_instances(rows: Sequence[tuple[Any, ...]]) -> list[Receipt]:
    """Unsaved ``Receipt`` objects for rows (for signal receivers)."""
    names = [Receipt._meta.get_field(name).attname for name in FIELDS]  # type: ignore[union-attr]
    return [Receipt(**dict(zip(names, row, strict=True))) for row in rows]


#: Per database alias: the quoted table, the column list of the receipt INSERT and the
#: columns' database types.
_STATEMENT_PARTS: dict[tuple[str, bool], tuple[str, str, tuple[str, ...]]] = {}


def _statement_parts(conn: Any, caused: bool = False) -> tuple[str, str, tuple[str, ...]]:
    """``caused``: the rows end with ``error_cause`` (else its database default, '')."""
    parts = _STATEMENT_PARTS.get((conn.alias, caused))
    if parts is None:
        quote = conn.ops.quote_name
        names = (*FIELDS, "error_cause") if caused else FIELDS
        fields: list[Any] = [Receipt._meta.get_field(name) for name in names]
        columns = ", ".join(quote(f.column) for f in fields)
        types = tuple(f.db_type(conn) for f in fields)
        parts = (quote(Receipt._meta.db_table), columns, types)
        _STATEMENT_PARTS[(conn.alias, caused)] = parts
    return parts


def insert_receipts(
    rows: Sequence[tuple[Any, ...]], using: str = "default", *, last: bool = False
) -> None:
    """Insert receipt rows (tuples in :data:`FIELDS` order, aware datetimes) in the
    current transaction of ``using``. Unique-constraint violations raise IntegrityError
    as ``bulk_create`` would. ``last``: nothing else runs in the transaction after this
    (see :meth:`~messaging.db.base.DatabaseOperations.last_statement`)."""
    if not rows:
        return
    conn = connections[using]
    caused = any(row[_ERROR] for row in rows)  # acked batches have no error: no cause
    if caused:
        rows = [(*row, stored_cause(row[_ERROR])) for row in rows]
    table, columns, types = _statement_parts(conn, caused)
    ops = operations(conn)
    with ops.last_statement(conn) if last else nullcontext():
        ops.insert_rows(conn, None, table, columns, rows, _DATETIMES, types)
