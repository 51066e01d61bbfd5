"""``RabbitMQBackend``: Django's Tasks framework on the app's outbox, queues and
consumer. Configure it as any backend::

    TASKS = {"default": {"BACKEND": "messaging.task_backend.RabbitMQBackend",
                         "QUEUES": ["default", "emails"],
                         "OPTIONS": {"QUEUE_PREFIX": "tasks."}}}
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from math import inf
from typing import Any

from django.core import checks

from ..amqp.queue_types import default_queue_type
from .compat import (
    DEFAULT_TASK_BACKEND_ALIAS,
    DEFAULT_TASK_PRIORITY,
    DEFAULT_TASK_QUEUE_NAME,
    BaseTaskBackend,
    InvalidTask,
    Task,
    TaskResult,
)
from .enqueue import enqueue_task
from .options import TaskOptions, queue_name_problems, read_options
from .results import load_result
from .task_checks import backend_checks


@dataclass(frozen=True, slots=True, kw_only=True)
class RabbitMQTask(Task):
    """A task of this backend: ``@task(max_attempts=3)`` gives up after 3 attempts
    when that is fewer than its queue's MAX_ATTEMPTS (then the last failure is
    rejected to the dead-letter queue); ``None``: the queue's. ``@task(retry_delay=5)``:
    the broker holds the task 5 seconds after its first failed attempt, doubling after
    each further one (up to RETRY_MAX_DELAY, or ``retry_delay`` when that is longer; 0:
    at once); ``None``: RETRY_DELAY's waits.

    Built directly (``RabbitMQTask(func=f, max_attempts=2)``), the fields ``@task`` fills
    in have ``@task``'s defaults, on every Django (6.0's ``Task`` has none)."""

    priority: int = DEFAULT_TASK_PRIORITY
    backend: str = DEFAULT_TASK_BACKEND_ALIAS
    queue_name: str = DEFAULT_TASK_QUEUE_NAME
    run_after: datetime | None = None
    max_attempts: int | None = None
    retry_delay: float | None = None


class RabbitMQBackend(BaseTaskBackend):
    task_class = RabbitMQTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.task_options: TaskOptions = read_options(self.options, default_queue_type())

    def configuration_problems(self) -> list[str]:
        """What is wrong with this backend's settings (one line each)."""
        problems = list(self.task_options.problems)
        if not self.queues:
            problems.append("QUEUES is empty")
        return problems + queue_name_problems(self.task_options, self.queues)

    def validate_task(self, task: Any) -> None:
        super().validate_task(task)
        if task.priority and not self.task_options.priorities:
            raise InvalidTask(
                f"priority {task.priority}: the task queues of backend {self.alias!r} are "
                "quorum queues, which have no priorities (set QUEUE_TYPE 'classic')"
            )
        attempts = getattr(task, "max_attempts", None)
        if attempts is not None and (
            isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1
        ):
            raise InvalidTask(f"max_attempts must be a whole number >= 1, got {attempts!r}")
        delay = getattr(task, "retry_delay", None)
        if delay is not None and (
            isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay < inf
        ):
            raise InvalidTask(f"retry_delay must be a number of seconds >= 0, got {delay!r}")

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> TaskResult:
        self.validate_task(task)
        problems = self.configuration_problems()
        if problems:
            raise InvalidTask(f"backend {self.alias!r} is misconfigured: {problems[0]}")
        return enqueue_task(self, task, args, kwargs)

    def get_result(self, result_id: str) -> TaskResult:
        return load_result(self, result_id)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        return [*super().check(**kwargs), *backend_checks(self)]
