"""Task results: a ``TaskRecord`` row as Django's ``TaskResult``, and the row written at
enqueue. ``errors`` hold one entry per failed attempt (``attempt``,
``exception_class_path``, ``traceback``, ``worker``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from ..models import TaskRecord
from .compat import TaskError, TaskResult, TaskResultDoesNotExist, TaskResultStatus
from .resolve import NotATask, resolve_task
from .wire import TaskMessage


def record_values(message: TaskMessage) -> dict[str, Any]:
    """The row's columns that the task run ``message`` describes gives."""
    return {
        "backend": message.backend,
        "task_path": message.task,
        "queue_name": message.queue_name,
        "priority": message.priority,
        "args": message.args,
        "kwargs": message.kwargs,
        "enqueued_at": message.enqueued_at,
        "run_after": message.run_after,
    }


def new_record(result_id: str, message: TaskMessage, **fields: Any) -> TaskRecord:
    """An unsaved row for the task run ``message`` describes (status READY; enqueued
    now when the message does not say when)."""
    values = record_values(message)
    values["enqueued_at"] = values["enqueued_at"] or timezone.now()
    return TaskRecord(result_id=result_id, **{**values, **fields})


def load_result(backend: Any, result_id: str) -> TaskResult:
    """The result ``result_id`` of ``backend``; ``TaskResultDoesNotExist`` when there
    is none (never enqueued, rolled back, or of another backend)."""
    row = TaskRecord.objects.filter(result_id=str(result_id), backend=backend.alias).first()
    if row is None:
        raise TaskResultDoesNotExist(f"no task result {result_id!r}")
    try:
        task = resolve_task(row.task_path, type(backend), backend.task_options.task_modules)
    except NotATask as exc:
        raise TaskResultDoesNotExist(f"task result {result_id!r}: {exc}") from None
    return as_result(task, row)


def as_result(task: Any, row: TaskRecord) -> TaskResult:
    """Django's ``TaskResult`` for ``row`` (``task`` with the row's queue, priority and
    run_after)."""
    task = task.using(
        priority=row.priority,
        queue_name=row.queue_name,
        run_after=row.run_after,
        backend=row.backend,
    )
    result: TaskResult[Any, Any] = TaskResult(
        task=task,
        id=row.result_id,
        status=TaskResultStatus(row.status),
        enqueued_at=row.enqueued_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        last_attempted_at=row.last_attempted_at,
        args=list(row.args),
        kwargs=dict(row.kwargs),
        backend=row.backend,
        errors=[as_error(entry) for entry in row.errors or []],
        worker_ids=list(row.worker_ids or []),
    )
    object.__setattr__(result, "_return_value", row.return_value)
    return result


def message_result(
    task: Any, result_id: str, message: TaskMessage, started: datetime, worker: str, attempt: int
) -> TaskResult:
    """The RUNNING ``TaskResult`` of ``attempt`` of the run ``message`` describes, built
    from the message alone (earlier attempts' workers unknown: ``""``)."""
    result: TaskResult[Any, Any] = TaskResult(
        task=as_sent(task, message),
        id=result_id,
        status=TaskResultStatus.RUNNING,
        enqueued_at=message.enqueued_at or timezone.now(),
        started_at=started,
        finished_at=None,
        last_attempted_at=started,
        args=list(message.args),
        kwargs=dict(message.kwargs),
        backend=message.backend,
        errors=[],
        worker_ids=[""] * (attempt - 1) + [worker],
    )
    object.__setattr__(result, "_return_value", None)
    return result


def as_sent(task: Any, message: TaskMessage) -> Any:
    """``task`` with the message's queue, priority, run_after and backend (itself when
    they are its own)."""
    if (
        task.priority == message.priority
        and task.queue_name == message.queue_name
        and task.run_after == message.run_after
        and task.backend == message.backend
    ):
        return task
    return task.using(
        priority=message.priority,
        queue_name=message.queue_name,
        run_after=message.run_after,
        backend=message.backend,
    )


def as_error(entry: dict[str, Any]) -> TaskError:
    return TaskError(
        exception_class_path=entry.get("exception_class_path", ""),
        traceback=entry.get("traceback", ""),
    )


def set_status(result: TaskResult, status: str, **times: datetime | None) -> None:
    """Change a (frozen) ``TaskResult`` in place: its status and the given times."""
    object.__setattr__(result, "status", TaskResultStatus(status))
    for name, value in times.items():
        object.__setattr__(result, name, value)
