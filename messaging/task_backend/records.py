"""The READY row an enqueue writes, as one plain INSERT: no model instance, the
statement's column list worked out once (what ``Model.save()`` costs per call is most
of an enqueue's own Python time). With a ``pre_save`` or ``post_save`` receiver for
``TaskRecord`` it is saved through the ORM, so the receiver still runs."""

from __future__ import annotations

from typing import Any

from django.db import connections, router
from django.db.models.signals import post_save, pre_save

from ..db import operations
from ..models import TaskRecord
from .results import new_record, record_values
from .wire import TaskMessage

#: Per database alias: the quoted table, its column list and the fields, in order.
_STATEMENTS: dict[str, tuple[str, str, list[Any]]] = {}


def _statement(conn: Any) -> tuple[str, str, list[Any]]:
    found = _STATEMENTS.get(conn.alias)
    if found is None:
        fields = [f for f in TaskRecord._meta.concrete_fields if not f.primary_key]
        quote = conn.ops.quote_name
        columns = ", ".join(quote(f.column) for f in fields)
        found = _STATEMENTS[conn.alias] = (quote(TaskRecord._meta.db_table), columns, fields)
    return found


def insert_ready(result_id: str, message: TaskMessage) -> None:
    """INSERT the READY row of ``message``'s run (``enqueued_at`` must be set) in the
    current transaction of the database TaskRecord is written to."""
    if pre_save.has_listeners(TaskRecord) or post_save.has_listeners(TaskRecord):
        new_record(result_id, message).save(force_insert=True)
        return
    conn = connections[router.db_for_write(TaskRecord)]
    table, columns, fields = _statement(conn)
    values = {
        "result_id": result_id,
        **record_values(message),
        "status": TaskRecord.Status.READY.value,
    }
    row = tuple(
        f.get_db_prep_save(values[f.attname] if f.attname in values else f.get_default(), conn)
        for f in fields
    )
    operations(conn).insert_rows(conn, None, table, columns, [row], ())
