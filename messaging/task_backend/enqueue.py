"""Enqueueing: the task's ``TaskRecord`` and its outbox message, in the caller's
transaction when there is one (published after its commit, never after a rollback; the
relay sends it if the process dies in between), else in one of their own, published at
once. A task with a future ``run_after`` stays in the outbox (``pending``, due at
``run_after``) and the relay publishes it then."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, cast

from django.db import transaction
from django.utils import timezone

from ..models import Message
from ..publishing import build_message, publish
from .compat import TaskResult, TaskResultStatus, normalize_json, signals
from .records import insert_ready
from .task_queues import ensure_queue
from .wire import CONTENT_TYPE, MESSAGE_TYPE, TaskMessage, amqp_priority, encode


def enqueue_task(backend: Any, task: Any, args: Any, kwargs: Any) -> TaskResult:
    """Record and send one run of ``task``; its READY ``TaskResult``."""
    now = timezone.now()
    message = TaskMessage(
        task=task.module_path,
        args=cast(list[Any], normalize_json(list(args))),
        kwargs=cast(dict[str, Any], normalize_json(dict(kwargs))),
        backend=backend.alias,
        queue_name=task.queue_name,
        priority=task.priority,
        enqueued_at=now,
        run_after=task.run_after,
    )
    body = encode(message)
    options = backend.task_options
    # Before the transaction (when it is ours): on SQLite a transaction that reads
    # before it writes may fail at once when another connection writes.
    queue = ensure_queue(options, task.queue_name)
    in_transaction = transaction.get_connection().in_atomic_block
    with nullcontext() if in_transaction else transaction.atomic():
        properties: dict[str, Any] = {
            "content_type": CONTENT_TYPE,
            "type": MESSAGE_TYPE,
            "priority": amqp_priority(task.priority, options.max_priority)
            if options.priorities
            else None,
        }
        if task.run_after is not None and task.run_after > now:
            row = _deferred(queue, body, task.run_after, properties)
        else:
            row = publish(queue, body, **properties)
        insert_ready(row.message_id, message)
    result: TaskResult[Any, Any] = TaskResult(
        task=task,
        id=row.message_id,
        status=TaskResultStatus.READY,
        enqueued_at=now,
        started_at=None,
        finished_at=None,
        last_attempted_at=None,
        args=message.args,
        kwargs=message.kwargs,
        backend=backend.alias,
        errors=[],
        worker_ids=[],
    )
    signals.task_enqueued.send(type(backend), task_result=result)
    return result


def _deferred(queue: Any, body: bytes, run_after: Any, properties: dict[str, Any]) -> Message:
    """An outbox row the relay publishes once ``run_after`` has come (``pending``,
    never tried, due then)."""
    row = build_message(queue, body, **properties)
    row.next_attempt_at = run_after
    row.save()
    return row
