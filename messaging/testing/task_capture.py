"""Django tasks in :func:`messaging.testing.capture`: ``captured.filter(task=add)`` finds
the messages of ``add``'s runs (a task, or its module path), and ``deliver()`` runs a
task queue's messages with the real task runner (``runconsumer --tasks``'s handler), in
the test database, with the started stamp written in the task's transaction."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .captured_message import CapturedMessage

#: Whose receipts and worker_ids the delivered tasks carry.
TEST_WORKER = "messaging.testing"


def is_task(message: CapturedMessage, task: Any) -> bool:
    """Is ``message`` a run of ``task`` (a Task, or its module path)?"""
    path = task if isinstance(task, str) else getattr(task, "module_path", None)
    try:
        body = json.loads(message.body)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("task") == path


def task_handler(queue: str) -> Any:
    """The task runner of the RabbitMQBackend whose task queue ``queue`` is; None when
    it is none's (or Django's Tasks framework is not installed)."""
    try:
        from ..task_backend.compat import task_backends
        from ..task_backend.worker import TaskRunner
        from ..task_backend.worker_queues import rabbitmq_aliases
    except ImproperlyConfigured:
        return None
    for alias in rabbitmq_aliases():
        backend: Any = task_backends[alias]  # a RabbitMQBackend (rabbitmq_aliases)
        if queue in {backend.task_options.broker_queue(name) for name in backend.queues}:
            return TaskRunner(backend, TEST_WORKER, background=False)
    return None
