"""The handler ``runconsumer --tasks`` gives each task queue: runs one task in its
receipt's transaction (so the task's database work, its result and the receipt commit
together, or not at all), with receipts, dedup, retries and dead letters from the
consumer. A message that is not a task of this backend is rejected to the dead-letter
queue with one line."""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from .. import conf
from ..consumer.handlers import Delivery
from ..consumer.retry_policy import attempt_number
from ..exceptions import Reject
from ..models import Receipt, TaskRecord
from ..publishing import get_queue
from .compat import TaskContext, exception_traceback, module_path, normalize_json, signals
from .resolve import NotATask, resolve_task
from .results import as_error, as_result, new_record, set_status
from .stamps import Stamp, failures, writer
from .wire import TaskMessage, WireError, decode

logger = logging.getLogger("messaging.task_backend")

Status = TaskRecord.Status


class TaskRunner:
    """``handler(delivery)`` for the task queues of one backend."""

    def __init__(self, backend: Any, worker_id: str, background: bool | None = None) -> None:
        self.backend = backend
        self.worker_id = worker_id
        #: Started stamps on the writer thread (True), or in the task's transaction
        #: (False; messaging.testing). None: the thread where the database has row locks.
        self.background = background
        self.__name__ = f"task runner of backend {backend.alias!r}"

    def __call__(self, delivery: Delivery) -> None:
        message, task = self.accept(delivery)
        attempt = attempt_of(delivery)
        started = timezone.now()
        rid = delivery.message_id
        self.started(Stamp(rid, message, attempt, self.worker_id, started))
        result = self.running_result(task, rid, message, attempt, started)
        signals.task_started.send(type(self.backend), task_result=result)
        try:
            value = normalize_json(run(task, result))
        except Exception as exc:
            self.failed(delivery, message, task, result, attempt, exc)
            raise
        finished = timezone.now()
        self.succeeded(rid, message, attempt, started, finished, value)
        set_status(result, Status.SUCCESSFUL, finished_at=finished)
        object.__setattr__(result, "_return_value", value)
        signals.task_finished.send(type(self.backend), task_result=result)

    def started(self, stamp: Stamp) -> None:
        background = self.background
        if background is None:
            background = self.background = connection.features.has_select_for_update
        if background:
            writer.put(stamp)
        else:
            stamp.apply()

    def accept(self, delivery: Delivery) -> tuple[TaskMessage, Any]:
        """The message and its task, or ``Reject`` (to the dead-letter queue)."""
        try:
            if not delivery.message_id:
                raise WireError("task message has no message_id (the result id)")
            message = decode(delivery.body)
            expected = self.backend.task_options.broker_queue(message.queue_name)
            if message.backend != self.backend.alias or expected != delivery.queue:
                raise WireError(
                    f"task message for backend {message.backend!r} queue "
                    f"{message.queue_name!r} arrived on {delivery.queue!r}"
                )
            task = resolve_task(
                message.task, type(self.backend), self.backend.task_options.task_modules
            )
        except (WireError, NotATask) as exc:
            self.refuse(delivery, exc)
        return message, task

    def refuse(self, delivery: Delivery, exc: Exception) -> None:
        reason = f"not run: {exc}"
        logger.error(
            "task message %s on %s %s", delivery.message_id or "(no id)", delivery.queue, reason
        )
        if delivery.message_id:  # our own row, if any, says FAILED with why
            error = error_entry(exc, 0, self.worker_id, traceback=reason)
            stamp = Stamp(
                delivery.message_id,
                TaskMessage(task=""),
                1,
                self.worker_id,
                timezone.now(),
                error=error,
                final=True,
                create=False,
            )
            failures.put(delivery.queue, stamp)
        raise Reject(reason)

    def running_result(
        self, task: Any, rid: str, message: TaskMessage, attempt: int, started: Any
    ) -> Any:
        """The ``TaskResult`` the task and the signals see: RUNNING. Built from the
        message; the row (earlier attempts' workers and errors) is read only for a task
        that takes a context."""
        row = None
        if task.takes_context:
            row = TaskRecord.objects.filter(result_id=rid).first()
        if row is None:
            row = new_record(rid, message)
        workers = list(row.worker_ids or [])[: attempt - 1]
        workers += [""] * (attempt - 1 - len(workers)) + [self.worker_id]
        row.worker_ids = workers
        row.status = Status.RUNNING
        row.started_at = row.started_at or started
        row.last_attempted_at = started
        return as_result(task, row)

    def succeeded(
        self, rid: str, message: TaskMessage, attempt: int, started: Any, finished: Any, value: Any
    ) -> None:
        """The row says SUCCESSFUL, in the receipt's transaction (a first attempt's
        worker too: its started stamp may come later)."""
        changes = {
            "status": Status.SUCCESSFUL,
            "return_value": value,
            "finished_at": finished,
            "last_attempted_at": started,
        }
        if attempt == 1:
            changes["worker_ids"] = [self.worker_id]
        updated = TaskRecord.objects.filter(result_id=rid).update(
            started_at=Coalesce("started_at", Value(started)), **changes
        )
        if not updated:
            changes["worker_ids"] = [""] * (attempt - 1) + [self.worker_id]
            new_record(rid, message, started_at=started, **changes).save(force_insert=True)

    def failed(
        self,
        delivery: Delivery,
        message: TaskMessage,
        task: Any,
        result: Any,
        attempt: int,
        exc: Exception,
    ) -> None:
        """Record the attempt's error; FAILED after the last attempt (the queue's
        MAX_ATTEMPTS, or the task's ``max_attempts`` when lower: then ``Reject``)."""
        own_limit = getattr(task, "max_attempts", None)
        limit = queue_max_attempts(delivery.queue)
        final = attempt >= limit or (own_limit is not None and attempt >= own_limit)
        now = timezone.now()
        error = error_entry(exc, attempt, self.worker_id)
        failures.put(
            delivery.queue,
            Stamp(
                delivery.message_id, message, attempt, self.worker_id, now, error=error, final=final
            ),
        )
        if not final:
            return
        set_status(result, Status.FAILED, finished_at=now)
        result.errors.append(as_error(error))
        signals.task_finished.send(type(self.backend), task_result=result)
        if attempt < limit:  # the task's own max_attempts: no more tries
            raise Reject(
                f"{type(exc).__name__}: {exc} (attempt {attempt}, the task's max_attempts "
                f"is {own_limit})"
            ) from exc


def run(task: Any, result: Any) -> Any:
    """Call the task (``async def`` ones through ``async_to_sync``), with its context
    when it takes one."""
    if task.takes_context:
        return task.call(TaskContext(task_result=result), *result.args, **result.kwargs)
    return task.call(*result.args, **result.kwargs)


def attempt_of(delivery: Delivery) -> int:
    """The attempt number, counted as the consumer counts it."""
    history = None
    if delivery.redelivered:
        history = list(
            Receipt.objects.filter(queue_name=delivery.queue, message_id=delivery.message_id)
            .order_by("-id")
            .values_list("outcome", flat=True)[:200]
        )
    return attempt_number(delivery.properties.headers, delivery.redelivered, history)


def queue_max_attempts(queue: str) -> int:
    row = get_queue(queue)
    return row.max_attempts or int(conf.get("MAX_ATTEMPTS"))


def error_entry(
    exc: BaseException, attempt: int, worker: str, traceback: str = ""
) -> dict[str, Any]:
    return {
        "attempt": attempt,
        "exception_class_path": module_path(type(exc)),
        "traceback": traceback or exception_traceback(exc),
        "worker": worker,
    }
