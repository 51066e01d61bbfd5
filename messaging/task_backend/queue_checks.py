"""``messaging.W041``: task queues whose ``Queue`` row is declared otherwise than their
backend declares them (a database check, registered by :mod:`messaging.checks`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django.core import checks
from django.db import DatabaseError, router

from ..models import Queue
from .compat import task_backends
from .task_queues import differences
from .worker_queues import rabbitmq_aliases

if TYPE_CHECKING:
    from .backend import RabbitMQBackend


def queue_checks(databases: Any = None) -> list[checks.CheckMessage]:
    """``messaging.W041`` for each task queue of a RabbitMQBackend whose ``Queue`` row is
    declared otherwise: a database check (``check --database default``, ``migrate``)."""
    if not databases or router.db_for_read(Queue) not in databases:
        return []
    found: list[checks.CheckMessage] = []
    try:
        for alias in rabbitmq_aliases():
            backend = cast("RabbitMQBackend", task_backends[alias])
            for line in differences(backend.task_options, backend.queues):
                found.append(
                    checks.Warning(
                        f"TASKS[{alias!r}]: {line}",
                        hint="Change the Queue row (and redeclare the queue) or the "
                        "backend's OPTIONS.",
                        id="messaging.W041",
                    )
                )
    except DatabaseError:
        return []  # no tables yet
    return found
