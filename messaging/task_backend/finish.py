"""The successful attempts of one transaction (a batch of deliveries, or one), written
at its end — after its last task, before its receipts, in the same transaction
(:mod:`messaging.consumer.deferred`) — as one statement: on PostgreSQL one ``UPDATE …
FROM unnest(…)`` that returns the ids it found, elsewhere one ``executemany``. A first
attempt's row is not read; a later attempt's row is (its earlier workers are kept); a
task without a row (another producer's message) gets one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connections, router, transaction

from ..consumer.deferred import pending
from ..models import TaskRecord
from .results import new_record
from .stamps import Stamp
from .wire import TaskMessage

Status = TaskRecord.Status


@dataclass(frozen=True, slots=True)
class Success:
    result_id: str
    message: TaskMessage
    attempt: int
    started: datetime
    finished: datetime
    value: Any

    def changes(self) -> dict[str, Any]:
        """The row's fields after this attempt (``started_at`` only when it has none)."""
        return {
            "status": Status.SUCCESSFUL,
            "return_value": self.value,
            "finished_at": self.finished,
            "last_attempted_at": self.started,
        }


class Successes:
    """One transaction's successful attempts of one worker, until :meth:`flush`."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.done: list[Success] = []

    def flush(self) -> None:
        done, self.done = self.done, []
        write(done, self.worker)


def record_success(success: Success, worker: str) -> None:
    """Write ``success`` at the end of the dispatcher's transaction, with the others of
    its batch; at once when no dispatcher runs one (a direct call)."""
    gathered = pending(("messaging.task_backend.successes", worker), lambda: Successes(worker))
    if gathered is None:
        write([success], worker)
    else:
        gathered.done.append(success)


def write(done: list[Success], worker: str) -> None:
    """Mark ``done`` SUCCESSFUL in the current transaction."""
    firsts = [s for s in done if s.attempt == 1]
    for success in done:
        if success.attempt != 1:
            _write_later(success, worker)
    if not firsts:
        return
    found = _update_firsts(firsts, worker)
    for success in firsts:
        if success.result_id not in found:
            _insert(success, worker)


def _write_later(success: Success, worker: str) -> None:
    """A retried task: its row read and merged (the worker of each attempt kept)."""

    def finish(row: TaskRecord) -> None:
        for name, value in success.changes().items():
            setattr(row, name, value)

    stamp = Stamp(success.result_id, success.message, success.attempt, worker, success.started)
    stamp.apply(then=finish)


def _insert(success: Success, worker: str) -> None:
    """A task without a row: one is written (or updated, when the started stamp wrote
    one meanwhile)."""
    fields = {**success.changes(), "worker_ids": [worker]}
    try:
        with transaction.atomic():
            row = new_record(success.result_id, success.message, started_at=success.started)
            for name, value in fields.items():
                setattr(row, name, value)
            row.save(force_insert=True)
    except IntegrityError:
        TaskRecord.objects.filter(result_id=success.result_id).update(**fields)


#: The columns the statement writes (quoted per connection, with ``table``).
COLUMNS = (
    "result_id",
    "status",
    "return_value",
    "finished_at",
    "last_attempted_at",
    "started_at",
    "worker_ids",
)


def _columns(conn: Any) -> dict[str, str]:
    quote = conn.ops.quote_name
    found = {n: quote(TaskRecord._meta.get_field(n).column) for n in COLUMNS}  # type: ignore[union-attr]
    found["table"] = quote(TaskRecord._meta.db_table)
    return found


def _update_firsts(firsts: list[Success], worker: str) -> set[str]:
    """One statement for the first attempts; the result ids it found a row for."""
    conn = connections[router.db_for_write(TaskRecord)]
    c = _columns(conn)
    with conn.cursor() as cursor:
        if conn.vendor != "postgresql":
            return _update_each(conn, cursor, c, firsts, worker)
        cursor.execute(
            f"UPDATE {c['table']} AS t SET {c['status']} = %s, "
            f"{c['return_value']} = v.value::jsonb, {c['finished_at']} = v.finished, "
            f"{c['last_attempted_at']} = v.started, "
            f"{c['started_at']} = COALESCE(t.{c['started_at']}, v.started), "
            f"{c['worker_ids']} = %s::jsonb "
            "FROM unnest(%s::varchar[], %s::timestamptz[], %s::timestamptz[], %s::text[]) "
            "AS v(rid, started, finished, value) "
            f"WHERE t.{c['result_id']} = v.rid RETURNING t.{c['result_id']}",
            [
                Status.SUCCESSFUL.value,
                json.dumps([worker]),
                [s.result_id for s in firsts],
                [s.started for s in firsts],
                [s.finished for s in firsts],
                [_json(s.value) for s in firsts],
            ],
        )
        return {row[0] for row in cursor.fetchall()}


def _update_each(
    conn: Any, cursor: Any, c: dict[str, str], firsts: list[Success], worker: str
) -> set[str]:
    """Elsewhere: one UPDATE per attempt in one ``executemany``; the ids with a row
    (read only when fewer rows changed than there were attempts)."""
    adapt = conn.ops.adapt_datetimefield_value
    field: Any = TaskRecord._meta.get_field("return_value")
    workers = field.get_db_prep_save([worker], conn)
    cursor.executemany(
        f"UPDATE {c['table']} SET {c['status']} = %s, {c['return_value']} = %s, "
        f"{c['finished_at']} = %s, {c['last_attempted_at']} = %s, "
        f"{c['started_at']} = COALESCE({c['started_at']}, %s), {c['worker_ids']} = %s "
        f"WHERE {c['result_id']} = %s",
        [
            (
                Status.SUCCESSFUL.value,
                field.get_db_prep_save(s.value, conn),
                adapt(s.finished),
                adapt(s.started),
                adapt(s.started),
                workers,
                s.result_id,
            )
            for s in firsts
        ],
    )
    ids = [s.result_id for s in firsts]
    if cursor.rowcount == len(ids):
        return set(ids)
    return set(TaskRecord.objects.filter(result_id__in=ids).values_list("result_id", flat=True))


def _json(value: Any) -> str | None:
    """A return value as JSON text; None (SQL NULL) for None, as the ORM stores it."""
    return None if value is None else json.dumps(value)
