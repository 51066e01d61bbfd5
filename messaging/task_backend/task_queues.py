"""The ``Queue`` rows of a backend's task queues: created as the backend declares them
(durable, its queue type, ``x-max-priority`` on classic queues) before the first task is
published to one, and compared with that declaration by the backend's check."""

from __future__ import annotations

import threading
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_migrate

from ..models import Queue
from ..publishing import get_queue
from .options import TaskOptions

_lock = threading.Lock()
#: Broker queue names whose row this process created or saw, committed.
_ensured: set[str] = set()


def ensure_queue(options: TaskOptions, queue_name: str) -> Queue:
    """The ``Queue`` row of task queue ``queue_name``, created first when missing
    (remembered once committed), from the publishing cache (no SELECT once cached)."""
    name = options.broker_queue(queue_name)
    if name not in _ensured:
        Queue.objects.get_or_create(
            name=name,
            defaults={"queue_type": options.queue_type, "arguments": options.queue_arguments()},
        )
        transaction.on_commit(lambda: _remember(name))
    return get_queue(name)


def queue_row(options: TaskOptions, queue_name: str) -> Queue:
    """The row of a task queue (created when missing), for the worker."""
    return ensure_queue(options, queue_name)


def differences(options: TaskOptions, queue_names: Any) -> list[str]:
    """One line per existing task queue row declared otherwise than the backend would."""
    wanted = {options.broker_queue(n): n for n in queue_names if isinstance(n, str)}
    lines = []
    for row in Queue.objects.filter(name__in=list(wanted)):
        args = {k: v for k, v in (row.arguments or {}).items() if k == "x-max-priority"}
        if row.queue_type != options.queue_type or args != options.queue_arguments():
            lines.append(
                f"task queue {row.name!r} is a {row.queue_type} queue with "
                f"{args or 'no priorities'}, the backend declares a {options.queue_type} "
                f"queue with "
                f"{options.queue_arguments() or 'no priorities'}"
            )
    return lines


def _remember(name: str) -> None:
    with _lock:
        _ensured.add(name)


def forget(**_kwargs: Any) -> None:
    with _lock:
        _ensured.clear()


post_delete.connect(forget, sender=Queue, dispatch_uid="messaging-task-queues-delete")
post_migrate.connect(forget, dispatch_uid="messaging-task-queues-migrate")
