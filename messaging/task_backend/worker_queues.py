"""``runconsumer --tasks [ALIAS]``: the task queues to consume and their handler."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ..models import Queue
from .compat import task_backends
from .task_queues import queue_row
from .worker import TaskRunner

if TYPE_CHECKING:
    from .backend import RabbitMQBackend

#: ``--tasks`` without an alias: every RabbitMQBackend in TASKS.
ALL = "*"


def rabbitmq_aliases() -> list[str]:
    """The TASKS aliases whose backend is a ``RabbitMQBackend``."""
    from .backend import RabbitMQBackend

    return [
        alias
        for alias in getattr(settings, "TASKS", {})
        if isinstance(task_backends[alias], RabbitMQBackend)
    ]


def task_queues(alias: str, worker_name: str = "") -> dict[str, tuple[Queue, Any]]:
    """Broker queue name → (its ``Queue`` row, the task runner) for ``--tasks ALIAS``
    (``ALL``: every RabbitMQBackend). ``ImproperlyConfigured`` (one line) for an alias
    that is not one, or none configured."""
    aliases = rabbitmq_aliases()
    if alias != ALL and alias not in aliases:
        raise ImproperlyConfigured(
            f"--tasks {alias}: TASKS has no RabbitMQBackend named {alias!r} "
            f"(it has: {', '.join(aliases) or 'none'})"
        )
    if not aliases:
        raise ImproperlyConfigured(
            "--tasks: no backend in TASKS is messaging.task_backend.RabbitMQBackend"
        )
    worker = worker_name or f"{socket.gethostname()}:{os.getpid()}"
    found: dict[str, tuple[Queue, Any]] = {}
    for name in aliases if alias == ALL else [alias]:
        backend = cast("RabbitMQBackend", task_backends[name])
        problems = backend.configuration_problems()
        if problems:
            raise ImproperlyConfigured(f"TASKS[{name!r}]: {problems[0]}")
        runner = TaskRunner(backend, worker)
        for queue_name in sorted(backend.queues):
            row = queue_row(backend.task_options, queue_name)
            found[row.name] = (row, runner)
    return found
