"""The handler ``runconsumer --tasks`` gives each task queue: runs one task in its
receipt's transaction (so the task's database work, its result and the receipt commit
together, or not at all), with receipts, dedup, retries and dead letters from the
consumer. At a prefetch that batches, a batch's tasks share one transaction and their
results are written as one statement after the last of them (:mod:`.finish`); the
started stamps are written apart, only for tasks still running after a moment
(:mod:`.stamps`). A message that is not a task of this backend is rejected to the
dead-letter queue with one line."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from django.db import connection
from django.utils import timezone

from .. import conf
from ..amqp.retry_delays import delay_for
from ..consumer.handlers import Delivery
from ..consumer.retry_policy import RETRY_DELAY_ATTRIBUTE, attempt_number
from ..exceptions import Reject
from ..models import Receipt, TaskRecord
from ..publishing import get_queue
from .compat import TaskContext, exception_traceback, module_path, normalize_json, signals
from .finish import Success, record_success
from .resolve import NotATask, resolve_task
from .results import as_error, as_result, message_result, set_status
from .stamps import Stamp, failures, writer
from .wire import TaskMessage, WireError, decode

logger = logging.getLogger("messaging.task_backend")

Status = TaskRecord.Status


class _NotStamped:
    """The handle of a started stamp that is not written (SQLite, messaging.testing)."""

    def end(self) -> None:
        pass


NOT_STAMPED = _NotStamped()


class TaskRunner:
    """``handler(delivery)`` for the task queues of one backend."""

    def __init__(self, backend: Any, worker_id: str, background: bool | None = None) -> None:
        self.backend = backend
        self.worker_id = worker_id
        #: Started stamps on the writer thread (True), or none (False: SQLite,
        #: messaging.testing). None: the thread where the database has row locks.
        self.background = background
        self.__name__ = f"task runner of backend {backend.alias!r}"
        #: Tasks resolved so far, by module path (only tasks of a RabbitMQBackend).
        self._tasks: dict[str, Any] = {}

    def __call__(self, delivery: Delivery) -> None:
        message, task = self.accept(delivery)
        attempt = attempt_of(delivery)
        started = timezone.now()
        rid = delivery.message_id
        running = self.started(Stamp(rid, message, attempt, self.worker_id, started))
        result = self.running_result(task, rid, message, attempt, started)
        signals.task_started.send(type(self.backend), task_result=result)
        try:
            value = normalize_json(run(task, result))
        except Exception as exc:
            self.failed(delivery, message, task, result, attempt, exc)
            raise
        finally:
            running.end()
        finished = timezone.now()
        record_success(Success(rid, message, attempt, started, finished, value), self.worker_id)
        set_status(result, Status.SUCCESSFUL, finished_at=finished)
        object.__setattr__(result, "_return_value", value)
        signals.task_finished.send(type(self.backend), task_result=result)

    def started(self, stamp: Stamp) -> Any:
        """The started stamp handed to the writer thread (where rows lock); its handle."""
        background = self.background
        if background is None:
            background = self.background = connection.features.has_select_for_update
        return writer.put(stamp) if background else NOT_STAMPED

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
            task = self._tasks.get(message.task)
            if task is None:
                task = resolve_task(
                    message.task, type(self.backend), self.backend.task_options.task_modules
                )
                self._tasks[message.task] = task
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
            return message_result(task, rid, message, started, self.worker_id, attempt)
        workers = list(row.worker_ids or [])[: attempt - 1]
        workers += [""] * (attempt - 1 - len(workers)) + [self.worker_id]
        row.worker_ids = workers
        row.status = Status.RUNNING
        row.started_at = row.started_at or started
        row.last_attempted_at = started
        return as_result(task, row)

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
            ask_delay(task, attempt, exc)
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


def ask_delay(task: Any, attempt: int, exc: Exception) -> None:
    """A task's own ``retry_delay``: the broker holds its next attempt that long after
    the first failure, doubling after each (up to RETRY_MAX_DELAY, or ``retry_delay``
    when that is longer) — asked of the consumer through the exception."""
    first = getattr(task, "retry_delay", None)
    if first is None:
        return
    cap = max(float(first), float(conf.get("RETRY_MAX_DELAY")))
    with contextlib.suppress(AttributeError, TypeError):  # an exception without a __dict__
        setattr(exc, RETRY_DELAY_ATTRIBUTE, delay_for(attempt, float(first), cap))


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
